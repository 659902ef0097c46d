package node

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node/backend"
)

// Membership changes: member add (a voter or a learner), promote, remove
// and update, each one raft conf change, as etcd makes them.
//
// Two kinds of rule guard them, as in etcd:
//   - rules on the replicated membership (an ID or peer URL already taken,
//     a removed ID, promoting a voter, more learners than allowed, removing
//     the last voter). They are checked when the request is submitted and
//     again when the conf change is applied, deterministically on every
//     member; a change that fails at apply is given to raft with NodeId 0,
//     which raft ignores, and recorded so that a replay rejects it again.
//   - rules on the live cluster, which only the leader can judge, at
//     submit: a learner is promoted only once its log is within 10% of the
//     leader's; and with the strict reconfiguration check (etcd's
//     --strict-reconfig-check, on unless Config.SkipReconfigCheck) a
//     change must not leave the cluster without a quorum of started
//     (published) and reachable voters. So member add, remove and promote
//     are answered by the leader alone; elsewhere they fail with
//     ErrNotLeader and the driver forwards them, as it does keep-alives.
//     Member update moves a member's URLs and is answered anywhere.
//
// plumb proposes etcd's ConfChange (v1) entries, as etcd does, one change
// at a time: raft applies each as a simple configuration change, and a
// WAL written by an earlier plumb replays unchanged.

// DefaultMaxLearners is etcd's --max-learners: how many learners a
// cluster may have at once.
const DefaultMaxLearners = 1

// learnerReadyFraction is etcd's rule for promote: the learner's match
// index must be at least this fraction of the leader's, or promoting it
// would add a voter that holds back commits while it catches up.
const learnerReadyFraction = 0.9

// proposedMember is a member conf change's context: the member, and the
// member that proposed the change, whose waiter its apply answers (a conf
// change's Id is a request ID, which two members can share: see
// waiterFor). The member's fields stay at the top level, so an entry
// written before Proposer existed decodes with Proposer 0 (no waiter).
// Promote marks a ConfChangeAddNode that promotes a learner (etcd's
// ConfigChangeContext.IsPromote).
type proposedMember struct {
	Member
	Proposer uint64 `json:"proposer,omitempty"`
	Promote  bool   `json:"isPromote,omitempty"`
}

// submitMemberChange checks a member request against this member's applied
// membership and, for add, remove and promote, against the live cluster
// (leader only), and proposes it as a raft conf change whose Id is the
// request's proposal ID. The rules on the membership are checked again at
// apply.
func (n *Node) submitMemberChange(req Request) {
	if n.lead == 0 {
		n.fail(req, ErrNoLeader)
		return
	}
	if req.MemberUpdate == nil && n.lead != n.cfg.ID {
		n.fail(req, ErrNotLeader)
		return
	}
	cc := &raftpb.ConfChange{}
	pm := proposedMember{Proposer: n.cfg.ID}
	switch {
	case req.MemberAdd != nil:
		if req.MemberAddUnix == 0 {
			n.fail(req, fmt.Errorf("node: member add without Request.MemberAddUnix, the time that salts the new member's ID"))
			return
		}
		pm.PeerURLs = slices.Clone(req.MemberAdd.PeerURLs)
		pm.IsLearner = req.MemberAdd.IsLearner
		// etcd's ID for an added member: its sorted peer URLs and the
		// time of the add, in seconds (membership.NewMember with an empty
		// cluster name).
		pm.ID = MemberID(pm.PeerURLs, "", strconv.FormatInt(req.MemberAddUnix, 10))
		cc.Type = raftpb.ConfChangeAddNode.Enum()
		if pm.IsLearner {
			cc.Type = raftpb.ConfChangeAddLearnerNode.Enum()
		}
	case req.MemberRemove != nil:
		pm.ID = req.MemberRemove.ID
		cc.Type = raftpb.ConfChangeRemoveNode.Enum()
	case req.MemberPromote != nil:
		cur, ok := n.members.members[req.MemberPromote.ID]
		if !ok {
			n.fail(req, ErrMemberNotFound)
			return
		}
		pm.Member = cloneMember(*cur)
		pm.IsLearner, pm.Promote = false, true
		cc.Type = raftpb.ConfChangeAddNode.Enum()
	default:
		cur, ok := n.members.members[req.MemberUpdate.ID]
		if !ok {
			n.fail(req, ErrMemberNotFound)
			return
		}
		pm.Member = cloneMember(*cur)
		pm.PeerURLs = slices.Clone(req.MemberUpdate.PeerURLs)
		cc.Type = raftpb.ConfChangeUpdateNode.Enum()
	}
	if err := n.validateConfChange(cc.GetType(), pm); err != nil {
		n.fail(req, err)
		return
	}
	if err := n.mayReconfigure(cc.GetType(), pm); err != nil {
		n.fail(req, err)
		return
	}
	ctx, err := json.Marshal(pm)
	if err != nil {
		n.fail(req, fmt.Errorf("node: encode member: %w", err))
		return
	}
	id := n.nextID()
	cc.Id, cc.NodeId, cc.Context = proto.Uint64(id), proto.Uint64(pm.ID), ctx
	if err := n.rn.ProposeConfChange(cc); err != nil {
		n.fail(req, proposeError(err))
		return
	}
	n.wait(req, id)
}

// validateConfChange checks a conf change against the applied membership.
// It is deterministic: every member gives every conf change the same
// verdict at the same applied index.
func (n *Node) validateConfChange(t raftpb.ConfChangeType, pm proposedMember) error {
	id := pm.ID
	cur, exists := n.members.members[id]
	switch t {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		if pm.Promote {
			switch {
			case !exists:
				return ErrMemberNotFound
			case !cur.IsLearner:
				return ErrMemberNotLearner
			}
			return nil
		}
		switch {
		case n.members.removed[id]:
			return ErrIDRemoved
		case exists:
			return ErrIDExists
		case t == raftpb.ConfChangeAddLearnerNode && n.members.learners() >= n.cfg.MaxLearners:
			return ErrTooManyLearners
		}
		return n.urlsFree(id, pm.PeerURLs)
	case raftpb.ConfChangeRemoveNode:
		switch {
		case n.members.removed[id]:
			return ErrIDRemoved
		case !exists:
			return ErrMemberNotFound
		case !cur.IsLearner && n.members.voters() == 1:
			// raft cannot run without a voter: removing the last one
			// would end the cluster, whatever the strict check says.
			return ErrNotEnoughStartedMembers
		}
	case raftpb.ConfChangeUpdateNode:
		if !exists {
			return ErrMemberNotFound
		}
		return n.urlsFree(id, pm.PeerURLs)
	default:
		return fmt.Errorf("node: conf change type %v is not one plumb proposes", t)
	}
	return nil
}

// urlsFree checks that no member but id owns any of urls.
func (n *Node) urlsFree(id uint64, urls []string) error {
	for _, u := range urls {
		if owner, ok := n.members.peerURLOwner(u); ok && owner != id {
			return ErrPeerURLExist
		}
	}
	return nil
}

// mayReconfigure applies the leader's rules on the live cluster (etcd's
// mayAddMember, mayRemoveMember and mayPromoteMember). A voter is started
// once it has published its name through raft (etcd's IsStarted), and
// reachable (active) when this leader has heard from it within the last
// activeWithinTicks.
func (n *Node) mayReconfigure(t raftpb.ConfChangeType, pm proposedMember) error {
	if t == raftpb.ConfChangeUpdateNode {
		return nil
	}
	if pm.Promote && !n.learnerReady(pm.ID) {
		return ErrLearnerNotReady
	}
	if n.cfg.SkipReconfigCheck {
		return nil
	}
	voters, started, active := 0, 0, 0
	for _, m := range n.members.sorted() {
		if m.IsLearner || (t == raftpb.ConfChangeRemoveNode && m.ID == pm.ID) {
			continue
		}
		voters++
		if m.Name != "" {
			started++
		}
		if n.active(m.ID) {
			active++
		}
	}
	switch {
	case pm.Promote:
		if started+1 < (voters+1)/2+1 {
			return ErrNotEnoughStartedMembers
		}
	case t == raftpb.ConfChangeAddNode:
		// etcd lets a 1-member cluster grow to 2 before the second
		// starts: its procedure for restoring a cluster from a backup.
		growFromOne := voters == 1 && started == 1
		if !growFromOne && started < (voters+1)/2+1 {
			return ErrNotEnoughStartedMembers
		}
		if active < voters {
			return ErrUnhealthy
		}
	case t == raftpb.ConfChangeAddLearnerNode:
		if active < voters {
			return ErrUnhealthy
		}
	case t == raftpb.ConfChangeRemoveNode:
		cur := n.members.members[pm.ID]
		if cur.IsLearner {
			return nil
		}
		if started < voters/2+1 {
			return ErrNotEnoughStartedMembers
		}
		if pm.ID != n.cfg.ID && !n.active(pm.ID) {
			return nil // a member that is down is not part of the active quorum
		}
		// The voters that stay and are reachable must be a quorum of
		// the voters that stay.
		if active < voters/2+1 {
			return ErrUnhealthy
		}
	}
	return nil
}

// learnerReady reports whether the leader's log has reached the learner far
// enough to promote it (etcd's isLearnerReady). Only a leader knows.
func (n *Node) learnerReady(id uint64) bool {
	st := n.rn.Status()
	if st.RaftState != raft.StateLeader {
		return false
	}
	pr, ok := st.Progress[id]
	if !ok {
		return false
	}
	return float64(pr.Match) >= float64(st.Progress[n.cfg.ID].Match)*learnerReadyFraction
}

// active reports whether this member heard from member id within the last
// activeWithinTicks (itself always). It stands for etcd's "connected since
// the health interval" check on its peer transport: a leader hears from
// every reachable voter at least once a heartbeat.
func (n *Node) active(id uint64) bool {
	if id == n.cfg.ID {
		return true
	}
	heard, ok := n.heardTick[id]
	return ok && n.ticks-heard <= n.activeWithinTicks()
}

// activeWithinTicks: an election timeout, the window in which CheckQuorum
// expects the leader to hear from a quorum.
func (n *Node) activeWithinTicks() int64 { return int64(n.cfg.ElectionTicks) }

// applyConfChange validates a conf change against the applied membership
// (rejecting it by giving raft NodeId 0, as etcd does), applies it to raft
// and to the membership, and answers its waiter.
func (n *Node) applyConfChange(b backend.Batch, e *raftpb.Entry, fresh bool, replies []Reply) []Reply {
	var cc raftpb.ConfChange
	if err := proto.Unmarshal(e.Data, &cc); err != nil {
		panic(fmt.Sprintf("node %s: conf change %d does not decode: %v", FormatID(n.cfg.ID), e.GetIndex(), err))
	}
	var pm proposedMember
	if len(cc.Context) > 0 {
		if err := json.Unmarshal(cc.Context, &pm); err != nil {
			panic(fmt.Sprintf("node %s: conf change %d has a bad member: %v", FormatID(n.cfg.ID), e.GetIndex(), err))
		}
	}
	pm.ID = cc.GetNodeId()
	key := make([]byte, 8)
	binary.BigEndian.PutUint64(key, e.GetIndex())
	var verdict error
	if fresh {
		verdict = n.validateConfChange(cc.GetType(), pm)
		if verdict != nil {
			b.Put(bucketConfRejected, key, []byte(verdict.Error()))
		}
	} else if _, rejected := b.Get(bucketConfRejected, key); rejected {
		verdict = ErrIDExists // the reason does not matter on replay
	}
	if verdict != nil {
		cc.NodeId = proto.Uint64(0)
	}
	n.confState = n.rn.ApplyConfChange(&cc)
	if !fresh {
		return replies
	}
	if verdict == nil {
		n.applyMembership(b, cc.GetType(), pm)
	}
	waiting, ok := n.waiterFor(pm.Proposer, cc.GetId())
	if !ok {
		return replies
	}
	n.finishInto(waiting, n.memberReply(waiting.req, pm.Member, verdict), &replies)
	return replies
}

func (n *Node) applyMembership(b backend.Batch, t raftpb.ConfChangeType, pm proposedMember) {
	switch t {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		if pm.Promote {
			cur := cloneMember(*n.members.members[pm.ID])
			cur.IsLearner = false
			n.members.put(b, cur)
			return
		}
		m := cloneMember(pm.Member)
		m.IsLearner = t == raftpb.ConfChangeAddLearnerNode
		n.members.put(b, m)
	case raftpb.ConfChangeRemoveNode:
		if !n.keepsRemovedMember() {
			n.members.remove(b, pm.ID)
		}
		delete(n.heardTick, pm.ID)
		if pm.ID == n.cfg.ID {
			n.removed = true
		}
	case raftpb.ConfChangeUpdateNode:
		cur := cloneMember(*n.members.members[pm.ID])
		cur.PeerURLs = slices.Clone(pm.PeerURLs)
		n.members.put(b, cur)
	}
}

func (n *Node) memberReply(req Request, m Member, err error) Reply {
	if err != nil {
		return Reply{Err: err}
	}
	h, members := n.clusterHeader(), n.pbMembers()
	switch {
	case req.MemberAdd != nil:
		if cur, ok := n.members.members[m.ID]; ok {
			m = cloneMember(*cur)
		}
		return Reply{MemberAdd: &pb.MemberAddResponse{Header: h, Member: pbMember(m), Members: members}}
	case req.MemberRemove != nil:
		return Reply{MemberRemove: &pb.MemberRemoveResponse{Header: h, Members: members}}
	case req.MemberPromote != nil:
		return Reply{MemberPromote: &pb.MemberPromoteResponse{Header: h, Members: members}}
	default:
		return Reply{MemberUpdate: &pb.MemberUpdateResponse{Header: h, Members: members}}
	}
}

// IsLearner reports whether this member is a learner in the applied
// membership.
func (n *Node) IsLearner() bool {
	m, ok := n.members.members[n.cfg.ID]
	return ok && m.IsLearner
}

// learnerServes reports whether a learner answers req: only serializable
// reads, as etcd's learners (isRPCSupportedForLearner). Everything else
// fails with ErrNotSupportedForLearner.
func learnerServes(req Request) bool {
	return req.Range != nil && req.Range.Serializable
}
