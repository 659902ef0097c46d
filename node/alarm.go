package node

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node/backend"
)

// ErrNoSpace: the member's disk is full, or its key-value state reached
// Config.QuotaBackendBytes; the NOSPACE alarm is raised and writes that add
// data are refused until an operator disarms it (etcdctl alarm disarm).
// Reads, deletes and compaction still work, as in etcd.
var ErrNoSpace = errors.New("etcdserver: mvcc: database space exceeded")

// DefaultQuotaBackendBytes is etcd's --quota-backend-bytes default.
const DefaultQuotaBackendBytes = 2 << 30

// bucketAlarm holds the raised alarms, as etcd's "alarm" bucket: the key
// is the marshalled AlarmMember, the value empty.
var bucketAlarm = []byte("alarm")

// alarms are the cluster's raised alarms, as etcd keeps them: replicated
// state, raised and disarmed by proposals (an AlarmRequest through raft,
// applied by every member at the same index), so every member refuses the
// writes NOSPACE refuses. A member whose key-value state reaches the quota
// proposes NOSPACE for itself.
//
// One alarm is this member's alone: a full disk (its raft log cannot be
// written, so it cannot propose nor apply anything). It is held in memory,
// raised when a save fails with no space and cleared by a disarm of this
// member's NOSPACE; a restart clears it.
type alarms struct {
	raised []*pb.AlarmMember // replicated, sorted by member then type
	disk   bool              // this member's full disk
	// proposedTick is when this member last proposed its own NOSPACE, so
	// that refused writes do not each propose it again (0: never).
	proposedTick int64
}

func alarmKey(m *pb.AlarmMember) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("node: encode alarm %v: %v", m, err))
	}
	return b
}

func compareAlarms(a, b *pb.AlarmMember) int {
	return cmp.Or(cmp.Compare(a.MemberID, b.MemberID), cmp.Compare(a.Alarm, b.Alarm))
}

// loadAlarms reads the alarm bucket.
func loadAlarms(r backend.Reader) ([]*pb.AlarmMember, error) {
	var out []*pb.AlarmMember
	err := r.ForEach(bucketAlarm, func(k, _ []byte) error {
		m := &pb.AlarmMember{}
		if err := proto.Unmarshal(k, m); err != nil {
			return fmt.Errorf("alarm %x: %w", k, err)
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load alarms: %w", err)
	}
	slices.SortFunc(out, compareAlarms)
	return out, nil
}

func (a *alarms) find(member uint64, t pb.AlarmType) int {
	return slices.IndexFunc(a.raised, func(m *pb.AlarmMember) bool { return m.MemberID == member && m.Alarm == t })
}

// noSpace reports whether writes that add data are refused.
func (a *alarms) noSpace() bool {
	return a.disk || slices.ContainsFunc(a.raised, func(m *pb.AlarmMember) bool { return m.Alarm == pb.AlarmType_NOSPACE })
}

// raiseDisk raises this member's full-disk NOSPACE.
func (n *Node) raiseDisk() { n.alarms.disk = true }

// Alarms lists the raised alarms, as etcd's alarm list shows them: the
// cluster's, and this member's full disk.
func (n *Node) Alarms() []*pb.AlarmMember {
	out := make([]*pb.AlarmMember, 0, len(n.alarms.raised)+1)
	for _, m := range n.alarms.raised {
		out = append(out, proto.CloneOf(m))
	}
	if n.alarms.disk && n.alarms.find(n.cfg.ID, pb.AlarmType_NOSPACE) < 0 {
		out = append(out, &pb.AlarmMember{MemberID: n.cfg.ID, Alarm: pb.AlarmType_NOSPACE})
		slices.SortFunc(out, compareAlarms)
	}
	return out
}

// submitAlarm takes etcd's Maintenance.Alarm. GET answers from the applied
// alarms. ACTIVATE and DEACTIVATE go through raft, as in etcd; a disarm of
// this member's NOSPACE also clears its full-disk alarm at once, and one
// that has nothing replicated to clear is answered without raft (a member
// that had a full disk may have no leader to propose to yet).
func (n *Node) submitAlarm(req Request) {
	r := req.Alarm
	switch r.Action {
	case pb.AlarmRequest_GET:
		n.replies = append(n.replies, Reply{ID: req.ID, Alarm: &pb.AlarmResponse{Header: n.header(), Alarms: n.Alarms()}})
		return
	case pb.AlarmRequest_DEACTIVATE:
		member := cmp.Or(r.MemberID, n.cfg.ID)
		var cleared []*pb.AlarmMember
		if member == n.cfg.ID && n.alarms.disk && (r.Alarm == pb.AlarmType_NOSPACE || r.Alarm == pb.AlarmType_NONE) {
			n.alarms.disk = false
			cleared = append(cleared, &pb.AlarmMember{MemberID: member, Alarm: pb.AlarmType_NOSPACE})
		}
		if n.alarms.find(member, r.Alarm) < 0 {
			n.replies = append(n.replies, Reply{ID: req.ID, Alarm: &pb.AlarmResponse{Header: n.header(), Alarms: cleared}})
			return
		}
		r = &pb.AlarmRequest{Action: r.Action, MemberID: member, Alarm: r.Alarm}
	case pb.AlarmRequest_ACTIVATE:
		if r.Alarm == pb.AlarmType_NONE {
			n.replies = append(n.replies, Reply{ID: req.ID, Alarm: &pb.AlarmResponse{Header: n.header()}})
			return
		}
		r = &pb.AlarmRequest{Action: r.Action, MemberID: cmp.Or(r.MemberID, n.cfg.ID), Alarm: r.Alarm}
	}
	n.propose(req, &pb.InternalRaftRequest{Alarm: r})
}

// applyAlarm applies a committed AlarmRequest, as etcd's applier does: an
// alarm is raised for a member of the cluster only, and the response lists
// what changed.
func (n *Node) applyAlarm(b backend.Batch, r *pb.AlarmRequest) *pb.AlarmResponse {
	resp := &pb.AlarmResponse{}
	m := &pb.AlarmMember{MemberID: r.MemberID, Alarm: r.Alarm}
	i := n.alarms.find(m.MemberID, m.Alarm)
	switch r.Action {
	case pb.AlarmRequest_GET:
		resp.Alarms = n.Alarms()
	case pb.AlarmRequest_ACTIVATE:
		if _, ok := n.members.members[m.MemberID]; !ok || m.Alarm == pb.AlarmType_NONE {
			return resp
		}
		if i < 0 {
			b.Put(bucketAlarm, alarmKey(m), []byte{})
			n.alarms.raised = append(n.alarms.raised, m)
			slices.SortFunc(n.alarms.raised, compareAlarms)
		}
		resp.Alarms = []*pb.AlarmMember{proto.CloneOf(m)}
	case pb.AlarmRequest_DEACTIVATE:
		if i < 0 {
			return resp
		}
		b.Delete(bucketAlarm, alarmKey(m))
		n.alarms.raised = slices.Delete(n.alarms.raised, i, i+1)
		resp.Alarms = []*pb.AlarmMember{proto.CloneOf(m)}
	}
	return resp
}

// refusedForSpace reports whether a committed request is one NOSPACE
// refuses when applied, as etcd's capped applier does: puts, transactions
// that put, lease grants.
func (n *Node) refusedForSpace(r *pb.InternalRaftRequest) bool {
	if !slices.ContainsFunc(n.alarms.raised, func(m *pb.AlarmMember) bool { return m.Alarm == pb.AlarmType_NOSPACE }) {
		return false
	}
	return r.Put != nil || r.LeaseGrant != nil || (r.Txn != nil && txnPuts(r.Txn))
}

func txnPuts(t *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{t.GetSuccess(), t.GetFailure()} {
		for _, op := range ops {
			if op.GetRequestPut() != nil || (op.GetRequestTxn() != nil && txnPuts(op.GetRequestTxn())) {
				return true
			}
		}
	}
	return false
}

// spaceFor reports whether a write of size bytes may be proposed: not
// while NOSPACE is raised, and not past the quota, where this member
// proposes NOSPACE for itself (again after an election timeout, if the
// proposal was lost).
func (n *Node) spaceFor(size int) error {
	if n.alarms.noSpace() {
		return ErrNoSpace
	}
	if n.be.Size()+int64(size) <= n.cfg.QuotaBackendBytes {
		return nil
	}
	if n.alarms.proposedTick == 0 || n.ticks >= n.alarms.proposedTick+int64(n.cfg.ElectionTicks) {
		if n.proposeInternal(&pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{
			Action: pb.AlarmRequest_ACTIVATE, MemberID: n.cfg.ID, Alarm: pb.AlarmType_NOSPACE}}) {
			n.alarms.proposedTick = max(n.ticks, 1)
		}
	}
	return ErrNoSpace
}
