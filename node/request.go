package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node/mvcc"
)

// ErrProposalDropped: raft refused the proposal (for example while the
// leader is transferring leadership). Nothing was appended: the outcome is
// known, nothing happened.
var ErrProposalDropped = errors.New("etcdserver: raft proposal dropped")

// ErrIDExists: member add names an ID that is already a member.
var ErrIDExists = errors.New("etcdserver: ID exists")

// Request is one client request. Exactly one operation is set. Requests use
// etcd's own messages so that the server passes them through unchanged.
type Request struct {
	// ID is the driver's correlation ID, echoed in the Reply.
	ID uint64

	Range        *pb.RangeRequest
	Put          *pb.PutRequest
	DeleteRange  *pb.DeleteRangeRequest
	Txn          *pb.TxnRequest
	Compaction   *pb.CompactionRequest
	MemberList   *pb.MemberListRequest
	MemberAdd    *pb.MemberAddRequest
	MemberRemove *pb.MemberRemoveRequest
	MemberUpdate *pb.MemberUpdateRequest
	// MemberPromote, like MemberAdd and MemberRemove, is answered by the
	// leader alone (see reconfig.go): elsewhere it fails with
	// ErrNotLeader and the driver forwards it.
	MemberPromote *pb.MemberPromoteRequest
	Alarm         *pb.AlarmRequest
	// MemberAddUnix is the time of a MemberAdd in Unix seconds, which
	// salts the new member's ID as etcd's does: the server passes the
	// wall clock, the simulator its virtual time. Required with MemberAdd.
	MemberAddUnix int64

	// Leases (lease.go). KeepAlive and TimeToLive are answered by the
	// leader alone: elsewhere they fail with ErrNotLeader and the driver
	// forwards them to the leader, as etcd does.
	LeaseGrant      *pb.LeaseGrantRequest
	LeaseRevoke     *pb.LeaseRevokeRequest
	LeaseKeepAlive  *pb.LeaseKeepAliveRequest
	LeaseTimeToLive *pb.LeaseTimeToLiveRequest
	LeaseLeases     *pb.LeaseLeasesRequest

	// Auth is one of etcd's auth requests (auth.go): exactly one of the
	// Auth* fields or Authenticate set. Passwords come hashed; Authenticate
	// comes after the driver checked the password against PasswordOf's
	// answer, with the auth revision it was read at in AuthRevision.
	Auth         *pb.InternalRaftRequest
	AuthRevision uint64
	// PasswordOf asks, after a linearizable read, for the password hash of
	// the named user (Reply.Password), as etcd's Authenticate starts.
	PasswordOf string

	// Creds say who sent the request; Submit resolves them (auth.go).
	Creds Credentials
	auth  AuthInfo
}

// Reply answers one Request: Err, or the response matching the request's
// operation. Every response carries a header.
type Reply struct {
	ID  uint64
	Err error

	Range         *pb.RangeResponse
	Put           *pb.PutResponse
	DeleteRange   *pb.DeleteRangeResponse
	Txn           *pb.TxnResponse
	Compaction    *pb.CompactionResponse
	MemberList    *pb.MemberListResponse
	MemberAdd     *pb.MemberAddResponse
	MemberRemove  *pb.MemberRemoveResponse
	MemberUpdate  *pb.MemberUpdateResponse
	MemberPromote *pb.MemberPromoteResponse
	Alarm         *pb.AlarmResponse

	LeaseGrant      *pb.LeaseGrantResponse
	LeaseRevoke     *pb.LeaseRevokeResponse
	LeaseKeepAlive  *pb.LeaseKeepAliveResponse
	LeaseTimeToLive *pb.LeaseTimeToLiveResponse
	LeaseLeases     *pb.LeaseLeasesResponse

	// Auth is the response to Request.Auth: the etcd response type of
	// its operation (*pb.AuthUserAddResponse, ...).
	Auth     proto.Message
	Password *PasswordHash
}

// Submit accepts a client request. Its Reply comes out of a later Process:
// reads once the member has applied a read index from the leader (or at once
// when serializable), writes once applied. A request fails with
// ErrLeaderChanged if the leader changes first, and with ErrTimeout when
// Config.RequestTimeoutTicks pass; for writes both mean the outcome is
// unknown (see OutcomeUnknown).
func (n *Node) Submit(req Request) {
	if !n.stopped() && req.Auth.GetAuthenticate() == nil && req.PasswordOf == "" {
		ai, err := n.ResolveAuth(req.Creds)
		if err == nil {
			req.auth = ai
			err = n.submitChecks(req)
		}
		if err != nil {
			n.fail(req, err)
			return
		}
	}
	switch {
	case n.stopped():
		n.fail(req, ErrStopped)
	case n.waiters.live >= n.cfg.MaxPendingRequests:
		n.fail(req, ErrTooManyRequests)
	case n.IsLearner() && !learnerServes(req):
		n.fail(req, ErrNotSupportedForLearner)
	case req.Range != nil:
		n.submitRange(req)
	case req.Txn != nil:
		n.submitTxn(req)
	case req.Put != nil:
		n.submitPut(req)
	case req.DeleteRange != nil:
		if err := mvcc.ValidateDeleteRange(req.DeleteRange); err != nil {
			n.fail(req, err)
			return
		}
		n.propose(req, &pb.InternalRaftRequest{DeleteRange: req.DeleteRange})
	case req.Compaction != nil:
		n.propose(req, &pb.InternalRaftRequest{Compaction: req.Compaction})
	case req.MemberList != nil:
		n.replies = append(n.replies, Reply{ID: req.ID, MemberList: &pb.MemberListResponse{
			Header: n.clusterHeader(), Members: n.pbMembers(),
		}})
	case req.MemberAdd != nil, req.MemberRemove != nil, req.MemberUpdate != nil, req.MemberPromote != nil:
		req, err := withCheckedPeerURLs(req)
		if err != nil {
			n.fail(req, err)
			return
		}
		n.submitMemberChange(req)
	case req.Alarm != nil:
		n.submitAlarm(req)
	case req.LeaseGrant != nil, req.LeaseRevoke != nil, req.LeaseKeepAlive != nil, req.LeaseTimeToLive != nil, req.LeaseLeases != nil:
		n.submitLease(req)
	case req.Auth != nil:
		n.submitAuth(req)
	case req.PasswordOf != "":
		n.read(req, false)
	default:
		n.fail(req, ErrEmptyRequest)
	}
}

func (n *Node) submitRange(req Request) {
	if err := mvcc.ValidateRange(req.Range); err != nil {
		n.fail(req, err)
		return
	}
	n.read(req, req.Range.Serializable)
}

func (n *Node) submitTxn(req Request) {
	if err := mvcc.ValidateTxn(req.Txn, n.cfg.MaxTxnOps); err != nil {
		n.fail(req, err)
		return
	}
	if mvcc.IsTxnReadOnly(req.Txn) {
		n.read(req, txnSerializable(req.Txn))
		return
	}
	if err := n.spaceFor(proto.Size(req.Txn)); err != nil {
		n.fail(req, err)
		return
	}
	n.propose(req, &pb.InternalRaftRequest{Txn: req.Txn})
}

func (n *Node) submitPut(req Request) {
	if err := mvcc.ValidatePut(req.Put); err != nil {
		n.fail(req, err)
		return
	}
	if n.spaceFor(proto.Size(req.Put)) != nil {
		n.fail(req, ErrNoSpace)
		return
	}
	n.propose(req, &pb.InternalRaftRequest{Put: req.Put})
}

// propose sends a write through raft and waits for it to be applied.
func (n *Node) propose(req Request, r *pb.InternalRaftRequest) {
	if n.lead == 0 {
		n.fail(req, ErrNoLeader)
		return
	}
	if n.refusesProposals() {
		n.fail(req, ErrProposalDropped) // the planted RefuseAfterFailover
		return
	}
	id := n.nextID()
	r.ID, r.Header = n.cfg.ID, &pb.RequestHeader{ID: id}
	if r.Authenticate != nil {
		r.Header.AuthRevision = req.AuthRevision // the revision the password was checked at
	} else {
		authHeader(r.Header, req.auth)
	}
	data, err := proto.Marshal(r)
	if err != nil {
		n.fail(req, fmt.Errorf("node: encode request: %w", err))
		return
	}
	if len(data) > n.cfg.MaxRequestBytes {
		n.fail(req, ErrRequestTooLarge)
		return
	}
	if err := n.rn.Propose(data); err != nil {
		n.fail(req, proposeError(err))
		return
	}
	if n.cfg.ReportWrites && isClientWrite(r) {
		n.proposedWrites = append(n.proposedWrites, ProposedWrite{RequestID: req.ID, Proposal: ProposalID{Member: n.cfg.ID, Seq: id}})
	}
	n.wait(req, id)
}

func proposeError(err error) error {
	if errors.Is(err, raft.ErrProposalDropped) {
		return ErrProposalDropped
	}
	return fmt.Errorf("node: propose: %w", err)
}

// wait registers a write waiting for its proposal to be applied.
func (n *Node) wait(req Request, proposalID uint64) {
	w := &waiter{req: req, deadlineTick: n.ticks + int64(n.cfg.RequestTimeoutTicks), proposalID: proposalID}
	n.proposed[proposalID] = w
	n.waiters.push(w)
}

// read answers a read: serializable reads (and, under the planted bug,
// every read) from local state at once; linearizable ones after ReadIndex.
func (n *Node) read(req Request, serializable bool) {
	if serializable || n.cfg.Planted.LocalReads {
		n.answerRead(req)
		return
	}
	if n.lead == 0 {
		n.fail(req, ErrNoLeader)
		return
	}
	w := &waiter{req: req, deadlineTick: n.ticks + int64(n.cfg.RequestTimeoutTicks), isRead: true}
	n.waiters.push(w)
	n.reads.queue = append(n.reads.queue, w)
}

func (n *Node) answerRead(req Request) {
	if req.PasswordOf != "" {
		h, err := n.PasswordHash(req.PasswordOf)
		n.replies = append(n.replies, Reply{ID: req.ID, Password: &h, Err: err})
		return
	}
	if err := n.checkRead(req); err != nil {
		n.fail(req, err)
		return
	}
	if req.Range == nil && req.Txn == nil {
		n.answerLease(req)
		return
	}
	rep := Reply{ID: req.ID}
	if req.Range != nil {
		mark := n.cfg.Stopwatch.Start(Work{Kind: WorkRange})
		rep.Range, rep.Err = n.kv.Range(req.Range)
		n.cfg.Stopwatch.Stop(Work{Kind: WorkRange}, mark, rep.Err == nil)
		if rep.Range != nil {
			rep.Range.Header = n.header()
		}
	} else {
		rep.Txn, rep.Err = n.readTxn(req.Txn)
	}
	n.replies = append(n.replies, rep)
}

// readTxn evaluates a transaction that writes nothing on committed state.
func (n *Node) readTxn(r *pb.TxnRequest) (*pb.TxnResponse, error) {
	resp, err := n.kv.ReadTxn(r)
	if resp != nil {
		resp.Header = n.header()
	}
	return resp, err
}

func (n *Node) fail(req Request, err error) {
	n.replies = append(n.replies, Reply{ID: req.ID, Err: err})
}

// finish answers a waiter once; later answers (a timeout racing an apply)
// are dropped.
func (n *Node) finish(w *waiter, rep Reply) {
	if w.done {
		return
	}
	w.done = true
	n.waiters.live--
	if w.proposalID != 0 {
		delete(n.proposed, w.proposalID)
	}
	rep.ID = w.req.ID
	n.replies = append(n.replies, rep)
}

// expireWaiters fails requests whose deadline has passed.
func (n *Node) expireWaiters() {
	n.waiters.expire(n.ticks, func(w *waiter) {
		if w.isRead && w.batch != nil && !w.batch.hasIndex && !w.batch.timedOut {
			w.batch.timedOut = true // its round is slow once, however many reads it carries
			n.reads.slow++
		}
		n.finish(w, Reply{Err: ErrTimeout})
	})
	n.reads.prune()
}

// failOnLeaderChange fails every write in flight and every read still
// without a read index: the old leader may never answer them. Reads that
// already have an index stay; that index was valid when it was read.
func (n *Node) failOnLeaderChange() {
	if n.reads.live() {
		n.reads.failed++ // the round in flight fails, as etcd's read loop's does
	}
	n.waiters.each(func(w *waiter) {
		if !w.isRead || w.batch == nil || !w.batch.hasIndex {
			n.finish(w, Reply{Err: ErrLeaderChanged})
		}
	})
	n.reads.queue = nil
	n.reads.pending = nil
}

// failAll fails every request in flight, when the node stops (its storage
// failed, or it was removed). A write was proposed: it may already be in
// other members' logs and commit, so its outcome is unknown
// (ErrStoppedInFlight). A read changes nothing: it just failed.
func (n *Node) failAll() {
	n.waiters.each(func(w *waiter) {
		err := ErrStopped
		if w.proposalID != 0 {
			err = ErrStoppedInFlight
		}
		n.finish(w, Reply{Err: err})
	})
	n.reads = readState{failed: n.reads.failed, slow: n.reads.slow}
}

// flushReads asks raft for one read index covering every read queued since
// the last one, as etcd's linearizable read loop does: at most one ReadIndex
// is in flight per member, and reads that arrive meanwhile wait for the
// next. Each ReadIndex costs the leader a heartbeat round to every peer, so
// one per Process would multiply the peer traffic under load. A ReadIndex
// left unanswered for readRetryTicks (its request or its answer was lost)
// is asked again, for its reads and the queued ones together.
func (n *Node) flushReads() {
	inFlight := len(n.reads.pending) > 0
	stale := inFlight && n.ticks-n.reads.sentTick >= n.readRetryTicks()
	if inFlight && !stale {
		return
	}
	var waiters []*waiter
	for _, b := range n.reads.pending { // only when stale: nothing answered them
		for _, w := range b.waiters {
			if !w.done {
				waiters = append(waiters, w)
			}
		}
	}
	waiters = append(waiters, n.reads.queue...)
	n.reads.queue, n.reads.pending = nil, nil
	if len(waiters) == 0 {
		return
	}
	batch := &readBatch{id: n.nextID(), waiters: waiters}
	for _, w := range batch.waiters {
		w.batch = batch
	}
	n.reads.pending = append(n.reads.pending, batch)
	n.reads.sentTick = n.ticks
	var ctx [8]byte
	binary.BigEndian.PutUint64(ctx[:], batch.id)
	n.rn.ReadIndex(ctx[:])
}

// readRetryTicks is how long a ReadIndex may go unanswered before it is
// asked again: half an election timeout (etcd's 500ms at its defaults).
func (n *Node) readRetryTicks() int64 { return int64(max(1, n.cfg.ElectionTicks/2)) }

// serveReads answers the reads whose read index has been applied.
func (n *Node) serveReads() {
	kept := n.reads.ready[:0]
	for _, b := range n.reads.ready {
		if b.index > n.applied {
			kept = append(kept, b)
			continue
		}
		for _, w := range b.waiters {
			if w.done {
				continue
			}
			w.done = true
			n.waiters.live--
			n.answerRead(w.req)
		}
	}
	clear(n.reads.ready[len(kept):])
	n.reads.ready = kept
}

// waiter is a request waiting for apply (proposalID != 0) or a read index.
type waiter struct {
	req          Request
	deadlineTick int64
	proposalID   uint64
	isRead       bool
	batch        *readBatch
	done         bool
}

// waitQueue holds waiters in submission order. Deadlines grow with it, so
// expiry only looks at the head. Finished waiters are removed lazily.
type waitQueue struct {
	q    []*waiter
	live int
}

func (wq *waitQueue) push(w *waiter) {
	wq.q = append(wq.q, w)
	wq.live++
}

func (wq *waitQueue) expire(nowTick int64, fn func(*waiter)) {
	i := 0
	for ; i < len(wq.q); i++ {
		w := wq.q[i]
		if !w.done && w.deadlineTick > nowTick {
			break
		}
		if !w.done {
			fn(w)
		}
	}
	wq.q = wq.q[i:]
	if len(wq.q) > 64 && wq.live < len(wq.q)/2 {
		wq.compact()
	}
}

func (wq *waitQueue) compact() {
	kept := make([]*waiter, 0, wq.live)
	for _, w := range wq.q {
		if !w.done {
			kept = append(kept, w)
		}
	}
	wq.q = kept
}

// each calls fn on every live waiter in submission order.
func (wq *waitQueue) each(fn func(*waiter)) {
	for _, w := range wq.q {
		if !w.done {
			fn(w)
		}
	}
	wq.compact()
}

// readState tracks linearizable reads: queued (no ReadIndex yet), pending
// (ReadIndex sent, index unknown) and ready (index known, maybe not applied).
type readState struct {
	// failed and slow are Status's ReadIndexesFailed and SlowReadIndexes.
	failed, slow int
	queue        []*waiter
	pending      []*readBatch // at most one: see flushReads
	ready        []*readBatch
	// sentTick is when the pending ReadIndex was asked for.
	sentTick int64
}

type readBatch struct {
	id       uint64
	index    uint64
	hasIndex bool
	// timedOut: a read of the batch timed out waiting for its index.
	timedOut bool
	waiters  []*waiter
}

// indexed moves the batches raft answered from pending to ready. An
// answer to no pending batch is out of date (its round was asked again,
// or its reads are gone): it is counted slow and ignored, as etcd's read
// loop ignores it.
func (rs *readState) indexed(states []raft.ReadState) {
	for _, s := range states {
		if len(s.RequestCtx) != 8 {
			continue
		}
		id := binary.BigEndian.Uint64(s.RequestCtx)
		i := slices.IndexFunc(rs.pending, func(b *readBatch) bool { return b.id == id })
		if i < 0 {
			rs.slow++
			continue
		}
		b := rs.pending[i]
		b.index, b.hasIndex = s.Index, true
		rs.ready = append(rs.ready, b)
		rs.pending = slices.Delete(rs.pending, i, i+1)
	}
}

// live reports whether a ReadIndex round is in flight for a read still
// waiting.
func (rs *readState) live() bool {
	for _, b := range rs.pending {
		for _, w := range b.waiters {
			if !w.done {
				return true
			}
		}
	}
	return false
}

// prune drops batches whose every waiter has finished (timed out).
func (rs *readState) prune() {
	kept := rs.pending[:0]
	for _, b := range rs.pending {
		for _, w := range b.waiters {
			if !w.done {
				kept = append(kept, b)
				break
			}
		}
	}
	clear(rs.pending[len(kept):])
	rs.pending = kept
}

// txnSerializable reports whether every range of a read-only txn asks for
// serializable reads (etcd's isTxnSerializable).
func txnSerializable(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if rr := op.GetRequestRange(); rr != nil && !rr.Serializable {
				return false
			}
		}
	}
	return true
}
