package node

import (
	"errors"
	"fmt"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node/backend"
	"github.com/plumbdb/plumb/node/mvcc"
)

// bucketConfRejected records the index of every conf change rejected at
// apply, so that a replay after restart rejects exactly the same ones.
var bucketConfRejected = []byte("confchange_rejected")

// apply applies committed entries in one backend batch and commits it, and
// only then queues the replies: an acknowledged write is durable.
//
// Entries at or below the backend's consistent index were applied before a
// restart; raft replays them (it restarts from its snapshot, not from our
// applied index), and only conf changes act again, on raft's own config.
func (n *Node) apply(ents []*raftpb.Entry) error {
	ents = n.applicable(ents)
	if len(ents) == 0 {
		return nil
	}
	n.handedOut = ents[len(ents)-1].GetIndex()
	b := n.be.Begin()
	w := n.kv.Write(b).CheckLeases(n.lessor.exists).TrackLeases(n.lessor.track)
	var replies []Reply
	fresh := false
	for _, e := range ents {
		idx := e.GetIndex()
		isFresh := idx > n.applied
		if isFresh && idx != n.applied+1 {
			panic(fmt.Sprintf("node %s: applying index %d after %d: an entry would be skipped", FormatID(n.cfg.ID), idx, n.applied))
		}
		if idx > n.commit {
			panic(fmt.Sprintf("node %s: applying index %d beyond the commit index %d", FormatID(n.cfg.ID), idx, n.commit))
		}
		switch e.GetType() {
		case raftpb.EntryNormal:
			if isFresh {
				replies = n.applyNormal(w, b, e, replies)
			}
		case raftpb.EntryConfChange:
			replies = n.applyConfChange(b, e, isFresh, replies)
		default:
			panic(fmt.Sprintf("node %s: entry %d has type %v, which plumb never proposes", FormatID(n.cfg.ID), idx, e.GetType()))
		}
		if isFresh {
			n.applied, fresh = idx, true
			w.SetConsistentIndex(idx, e.GetTerm())
		}
	}
	if !fresh {
		b.Rollback()
		return nil
	}
	if err := b.Commit(); err != nil {
		return fmt.Errorf("node %s: commit applied entries up to %d: %w", FormatID(n.cfg.ID), n.applied, err)
	}
	n.kv.Committed() // the batch's events to the watchers, now that it is committed
	n.replies = append(n.replies, replies...)
	if n.applied-n.syncedIndex >= syncEveryEntries {
		return n.syncState()
	}
	return nil
}

// The applied state is made durable (syncState) every syncEveryEntries
// entries and every election timeout, as etcd commits its backend every
// 10000 writes or 100ms, and whenever the log is about to be compacted. A
// reply does not wait for it: the entry it answers is durable in the raft
// log of a quorum, and a crash replays what the backend had not synced.
const syncEveryEntries = 1000

// syncState makes every applied batch durable in the backend.
func (n *Node) syncState() error {
	if err := n.syncLazy(); err != nil {
		return err
	}
	if !n.be.Dirty() {
		n.syncedIndex = n.applied
		return nil
	}
	if err := n.be.Sync(); err != nil {
		return fmt.Errorf("node %s: make the applied state durable up to %d: %w", FormatID(n.cfg.ID), n.applied, err)
	}
	n.syncedIndex = n.applied
	return nil
}

// Flush makes everything the member applied durable in its backend, for a
// driver about to close it (the raft log already holds it all; Flush saves
// the replay at the next start).
func (n *Node) Flush() error {
	if n.err != nil {
		return n.err
	}
	if err := n.syncState(); err != nil {
		n.err = err
		return err
	}
	return nil
}

func (n *Node) applyNormal(w *mvcc.Write, b backend.Batch, e *raftpb.Entry, replies []Reply) []Reply {
	if len(e.Data) == 0 {
		return replies // a new leader's empty entry
	}
	var r pb.InternalRaftRequest
	if err := proto.Unmarshal(e.Data, &r); err != nil {
		panic(fmt.Sprintf("node %s: committed entry %d does not decode: %v", FormatID(n.cfg.ID), e.GetIndex(), err))
	}
	if !n.sessions.admit(b, r.ID, r.Header.GetID()) {
		n.duplicates++
		return n.answerDropped(r.ID, r.Header.GetID(), replies)
	}
	var rep Reply
	var revoked []string
	revBefore := n.kv.Rev()
	work := Work{Kind: WorkApply, Op: ApplyOp(&r)}
	mark := n.cfg.Stopwatch.Start(work)
	authErr := n.checkApply(&r)
	switch {
	case authErr != nil:
		rep.Err = authErr
	case n.refusedForSpace(&r):
		rep.Err = ErrNoSpace
	case isAuthRequest(&r):
		rep.Auth, rep.Err = n.applyAuth(b, &r, e.GetIndex())
	case r.Alarm != nil:
		rep.Alarm = n.applyAlarm(b, r.Alarm)
	case r.LeaseGrant != nil:
		rep.LeaseGrant, rep.Err = n.applyLeaseGrant(b, r.LeaseGrant)
	case r.LeaseRevoke != nil:
		revoked, rep.Err = n.applyLeaseRevoke(w, b, r.LeaseRevoke.ID)
		if rep.Err == nil {
			rep.LeaseRevoke = &pb.LeaseRevokeResponse{}
		}
	case r.LeaseCheckpoint != nil:
		n.applyLeaseCheckpoint(b, r.LeaseCheckpoint)
	case r.Put != nil:
		rep.Put, rep.Err = w.Put(r.Put)
	case r.DeleteRange != nil:
		rep.DeleteRange, rep.Err = w.DeleteRange(r.DeleteRange)
	case r.Txn != nil:
		rep.Txn, rep.Err = w.Txn(r.Txn)
	case r.Compaction != nil:
		rep.Compaction, rep.Err = n.compact(w, r.Compaction.Revision)
	case r.ClusterMemberAttrSet != nil:
		n.applyAttributes(b, r.ClusterMemberAttrSet)
	default:
		panic(fmt.Sprintf("node %s: committed entry %d holds a request plumb never proposes", FormatID(n.cfg.ID), e.GetIndex()))
	}
	if errors.Is(rep.Err, mvcc.ErrLeaseNotFound) {
		rep.Err = ErrLeaseNotFound // one error for a missing lease, whatever found it
	}
	n.cfg.Stopwatch.Stop(work, mark, rep.Err == nil || errors.Is(rep.Err, mvcc.ErrCompacted))
	if n.cfg.ReportWrites && isClientWrite(&r) {
		applied := AppliedWrite{Proposal: ProposalID{Member: r.ID, Seq: r.Header.GetID()}}
		if rev := n.kv.Rev(); rev != revBefore && rep.Err == nil {
			applied.Revision = rev
		}
		if r.LeaseRevoke != nil && rep.Err == nil {
			applied.RevokedLease, applied.Deleted = r.LeaseRevoke.ID, revoked
		}
		n.appliedWrites = append(n.appliedWrites, applied)
	}
	waiting, ok := n.waiterFor(r.ID, r.Header.GetID())
	if !ok {
		return replies // proposed elsewhere, or its waiter gave up
	}
	if r.LeaseCheckpoint != nil {
		rep = n.keepAliveAfterCheckpoint(waiting.req)
	}
	n.setHeader(&rep)
	n.finishInto(waiting, rep, &replies)
	return replies
}

// compact applies a Compaction in its two steps, each timed.
func (n *Node) compact(w *mvcc.Write, rev int64) (*pb.CompactionResponse, error) {
	sw := n.cfg.Stopwatch
	mark := sw.Start(Work{Kind: WorkIndexCompaction})
	c, err := w.CompactIndex(rev)
	sw.Stop(Work{Kind: WorkIndexCompaction}, mark, err == nil)
	if err != nil {
		return nil, err
	}
	mark = sw.Start(Work{Kind: WorkDBCompaction})
	resp := c.Finish()
	sw.Stop(Work{Kind: WorkDBCompaction}, mark, true)
	return resp, nil
}

// waiterFor returns this member's waiter for the request that proposer
// proposed with request ID id, if it is still waiting. A request ID holds
// only the low 16 bits of its member's ID (etcd's layout, see nextID), so
// two members can hand out the same one: only the pair names a request.
func (n *Node) waiterFor(proposer, id uint64) (*waiter, bool) {
	if proposer != n.cfg.ID || id == 0 {
		return nil, false
	}
	w, ok := n.proposed[id]
	return w, ok
}

// finishInto is finish, but collects the reply in replies (held back until
// the batch commits) instead of n.replies.
func (n *Node) finishInto(w *waiter, rep Reply, replies *[]Reply) {
	if w.done {
		return
	}
	saved := n.replies
	n.replies = nil
	n.finish(w, rep)
	*replies = append(*replies, n.replies...)
	n.replies = saved
}

func (n *Node) setHeader(rep *Reply) {
	h := n.header()
	switch {
	case rep.Put != nil:
		rep.Put.Header = h
	case rep.DeleteRange != nil:
		rep.DeleteRange.Header = h
	case rep.Txn != nil:
		rep.Txn.Header = h
	case rep.Compaction != nil:
		rep.Compaction.Header = h
	case rep.LeaseGrant != nil:
		rep.LeaseGrant.Header = h
	case rep.LeaseRevoke != nil:
		rep.LeaseRevoke.Header = h
	case rep.LeaseKeepAlive != nil:
		rep.LeaseKeepAlive.Header = h
	case rep.Alarm != nil:
		rep.Alarm.Header = h
	case rep.Auth != nil:
		setAuthHeader(rep.Auth, h)
	}
}

func (n *Node) applyAttributes(b backend.Batch, r *membershippb.ClusterMemberAttrSetRequest) {
	m, ok := n.members.members[r.Member_ID]
	if !ok {
		return // removed since it published
	}
	updated := cloneMember(*m)
	updated.Name = r.MemberAttributes.GetName()
	updated.ClientURLs = slices.Clone(r.MemberAttributes.GetClientUrls())
	n.members.put(b, updated)
}

// maybePublish proposes this member's name and client URLs when the
// replicated ones differ, once per election timeout until they match.
func (n *Node) maybePublish() {
	if n.lead == 0 || n.ticks < n.publishAfterTick {
		return
	}
	m, ok := n.members.members[n.cfg.ID]
	if !ok || (m.Name == n.cfg.Name && slices.Equal(m.ClientURLs, n.cfg.ClientURLs)) {
		return
	}
	n.publishAfterTick = n.ticks + int64(n.cfg.ElectionTicks)
	r := &pb.InternalRaftRequest{
		ID:     n.cfg.ID,
		Header: &pb.RequestHeader{ID: n.nextID()},
		ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
			Member_ID:        n.cfg.ID,
			MemberAttributes: &membershippb.Attributes{Name: n.cfg.Name, ClientUrls: slices.Clone(n.cfg.ClientURLs)},
		},
	}
	data, err := proto.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("node: encode attributes: %v", err))
	}
	_ = n.rn.Propose(data) // retried after the next election timeout if dropped
}

func (n *Node) pbMembers() []*pb.Member {
	ms := n.members.sorted()
	out := make([]*pb.Member, len(ms))
	for i, m := range ms {
		out[i] = pbMember(m)
	}
	return out
}

func pbMember(m Member) *pb.Member {
	return &pb.Member{ID: m.ID, Name: m.Name, PeerURLs: slices.Clone(m.PeerURLs), ClientURLs: slices.Clone(m.ClientURLs), IsLearner: m.IsLearner}
}
