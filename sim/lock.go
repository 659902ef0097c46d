package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/plumbdb/plumb/linearizability"
	"github.com/plumbdb/plumb/node"
	"github.com/plumbdb/plumb/node/mvcc"
)

// Lock users: applications that take one lock with etcd's concurrency
// recipe (clientv3/concurrency's Mutex, faults.Locks) on a session of
// their own, a lease kept alive as a lease holder's is.
//
//   - Acquire: one txn, "if create_revision(lock/<lease ID>) == 0 then put
//     it with the session's lease, else get it; either way get the key
//     under the prefix with the smallest create revision". The user's
//     revision is its key's create revision. In the history: a cas that
//     expects the key absent.
//   - Wait: as waitDeletes does, read the key with the largest create
//     revision below the user's own (a range with max_create_revision,
//     sorted by create revision, limit 1; not in the history, which cannot
//     say what such a read must return), and watch that key from the
//     read's revision until it is deleted; again until none is left. Then
//     read its own key (a get in the history): gone means the session
//     expired.
//   - The critical section: fenced writes, each a cas on its own key from
//     the value it last wrote to the next, with the session's lease. A user
//     that stalls (the scenario's share) stops keeping its session alive
//     and writes next only after it would have expired: the fence must
//     refuse it.
//   - Release: delete its key. A user whose session is gone (it expired, a
//     write found the lease gone, or no keep-alive was answered within the
//     TTL) starts a new one.
//
// Every attempt is recorded (linearizability.LockHold) and checked after
// the run (the lock check). The wait's watches are the user's own: a watch
// request crosses a client link to the user's member, and its responses
// come back in order over one; a crash of the member ends them, and the
// user reads again.

// lockPrefix is the lock's, as concurrency.NewMutex(session, "lock")
// makes it.
const lockPrefix = "lock/"

// Lock user states.
const (
	lockIdle      = iota // between attempts
	lockGranting         // waiting for a session
	lockAcquiring        // the acquire txn in flight
	lockWaiting          // reading or watching its predecessor
	lockChecking         // reading its own key
	lockHolding          // in the critical section
	lockReleasing        // the delete of its key in flight
)

type lockUser struct {
	caller
	n        int
	state    int
	sess     *session
	sessions int // sessions it was granted
	key      string
	myRev    int64
	last     string // the value it last wrote to its key
	hold     int    // index of the current attempt in the lock record, -1 between
	writes   int    // fenced writes made in this hold
	stalled  bool
	attempt  uint64 // the current attempt's number: the answer to an earlier one's request does nothing
	wait     uint64 // the current wait's number: a stale watch event does nothing
	watch    *lockWatch
	pauseDue bool // a tmLockNext timer is scheduled
}

// lockWatch is a lock user's watch on its predecessor's key.
type lockWatch struct {
	user    *lockUser
	wait    uint64
	member  int
	inc     uint32 // the member's incarnation when created
	id      mvcc.WatchID
	created bool
	arrives int64 // when the last answer sent on it arrives: the stream keeps them in order
}

func (w *world) newLockUsers() {
	l := w.sc.Locks
	if l.Users == 0 {
		return
	}
	rng := rand.New(newStream(w.opts.Seed, streamLocks))
	w.locks.Prefix = lockPrefix
	for i := range l.Users {
		u := &lockUser{n: i + 1, hold: -1}
		u.caller = caller{w: w, name: fmt.Sprintf("lock user %d", i+1), rng: rng, endpoints: w.endpoints(),
			endpoint: i % len(w.members), histID: w.newHistID(), calls: make(map[uint64]*leaseCall)}
		u.onGone = u.sessionGone
		u.tag = func(lc *leaseCall) { lc.attempt, lc.hold = u.attempt, u.hold }
		u.idx = w.addApp(u)
		u.next(rng.Int64N(holderStartMaxNs))
	}
}

// next runs the user's next step after a pause.
func (u *lockUser) next(pause int64) {
	if u.pauseDue {
		return
	}
	u.pauseDue = true
	u.w.appTimer(u.idx, u.w.now+pause, timerKind(tmLockNext, 0))
}

func (u *lockUser) timer(kind uint64) {
	k, payload := splitTimer(kind)
	switch k {
	case tmTimeout:
		if lc := u.take(payload); lc != nil {
			u.answered(payload, lc, node.Reply{Err: node.ErrTimeout})
		}
	case tmKeepAlive:
		u.keepAlive(u.sess, payload)
	case tmLockNext:
		u.pauseDue = false
		u.step()
	}
}

func (u *lockUser) reply(seq uint64, rep node.Reply) {
	if lc := u.take(seq); lc != nil {
		u.answered(seq, lc, rep)
	}
}

// step starts what the user's state calls for.
func (u *lockUser) step() {
	w := u.w
	switch u.state {
	case lockIdle:
		if w.now >= w.endNs || len(w.history.Operations)+len(w.clients) >= linearizability.OperationsMax/2 {
			return
		}
		if u.sess == nil || u.sess.gone || u.sess.stopped {
			u.state = lockGranting
			u.grant(int64(w.sc.Locks.TTL))
			return
		}
		u.acquire()
	case lockWaiting:
		u.waitDeletes()
	case lockHolding:
		u.fencedWrite()
	}
}

// acquire sends Mutex.Lock's txn.
func (u *lockUser) acquire() {
	w := u.w
	u.state = lockAcquiring
	u.key = fmt.Sprintf("%s%x", lockPrefix, u.sess.id)
	if u.hold < 0 {
		w.locks.Holds = append(w.locks.Holds, linearizability.LockHold{User: u.name, Lease: u.sess.id, Key: u.key, Release: -1})
		u.hold = len(w.locks.Holds) - 1
		u.writes, u.stalled = 0, false
		u.attempt++
	}
	v := u.newValue(fmt.Sprintf("u%d", u.n))
	key := []byte(u.key)
	owner := &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{
		Key: []byte(lockPrefix), RangeEnd: []byte(linearizability.PrefixEnd(lockPrefix)),
		SortTarget: pb.RangeRequest_CREATE, SortOrder: pb.RangeRequest_ASCEND, Limit: 1}}}
	txn := &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: key, Target: pb.Compare_CREATE, Result: pb.Compare_EQUAL,
			TargetUnion: &pb.Compare_CreateRevision{CreateRevision: 0}}},
		Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{
			Key: key, Value: []byte(v), Lease: u.sess.id}}}, owner},
		Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: key}}}, owner},
	}
	u.sendOp(callAcquire, u.sess, linearizability.Operation{Kind: linearizability.KindCAS, Key: u.key, Value: v, ExpectAbsent: true},
		node.Request{Txn: txn})
}

// answered acts on the answer to a request (a timeout's included). The
// history and the lock record take every answer; only those of the current
// attempt move the user on.
func (u *lockUser) answered(seq uint64, lc *leaseCall, rep node.Reply) {
	if lc.attempt != u.attempt && lc.kind != callKeepAlive && lc.kind != callRevoke {
		u.stale(seq, lc, rep)
		return
	}
	switch lc.kind {
	case callGrant:
		u.sessionGranted(lc, rep)
	case callKeepAlive:
		u.keepAliveAnswered(lc, rep)
	case callRevoke:
		u.revokeAnswered(lc, rep)
	case callAcquire:
		u.acquired(seq, lc, rep)
	case callRange:
		u.waitRead(rep)
	case callGet:
		u.checked(seq, lc, rep)
	case callFenced:
		u.fenced(seq, lc, rep)
	case callRelease:
		u.released(seq, lc, rep)
	}
}

// stale records the answer to a request of an attempt the user has left.
func (u *lockUser) stale(seq uint64, lc *leaseCall, rep node.Reply) {
	w := u.w
	if lc.op.Kind == "" {
		return
	}
	i := u.finishOp(seq, lc.op, rep)
	u.noteWrite(i, lc)
	hd := &w.locks.Holds[lc.hold]
	switch lc.kind {
	case callAcquire:
		hd.Acquires = append(hd.Acquires, i)
	case callFenced:
		hd.Fenced = append(hd.Fenced, i)
	case callRelease:
		hd.Release = i
	}
}

func (u *lockUser) sessionGranted(lc *leaseCall, rep node.Reply) {
	u.state = lockIdle
	if rep.Err != nil {
		u.failed(rep.Err)
		u.next(regrantMinNs + u.rng.Int64N(regrantMaxNs-regrantMinNs))
		return
	}
	u.sessions++
	u.sess = u.caller.granted(lc.call, rep, u.sessions)
	u.next(0)
}

// acquired takes the acquire txn's answer: the user's revision, and
// whether its key is the oldest under the prefix.
func (u *lockUser) acquired(seq uint64, lc *leaseCall, rep node.Reply) {
	i := u.finishOp(seq, lc.op, rep)
	u.noteWrite(i, lc)
	u.w.locks.Holds[lc.hold].Acquires = append(u.w.locks.Holds[lc.hold].Acquires, i)
	if rep.Err != nil {
		u.failed(rep.Err)
		u.retry(rep.Err)
		return
	}
	resps := rep.Txn.GetResponses()
	if len(resps) != 2 {
		panic(fmt.Sprintf("sim: %s's acquire txn has %d responses, want 2", u.name, len(resps)))
	}
	if rep.Txn.Succeeded {
		u.myRev = rep.Txn.GetHeader().GetRevision()
		u.last = lc.op.Value
	} else {
		kvs := resps[0].GetResponseRange().GetKvs()
		if len(kvs) == 0 {
			panic(fmt.Sprintf("sim: %s's acquire found its key %s and then did not", u.name, u.key))
		}
		u.myRev, u.last = kvs[0].CreateRevision, string(kvs[0].Value)
	}
	owner := resps[1].GetResponseRange().GetKvs()
	if len(owner) > 0 && owner[0].CreateRevision == u.myRev {
		u.check()
		return
	}
	u.state = lockWaiting
	u.waitDeletes()
}

// retry acts on a failed request of an attempt: a session found gone
// starts over with a new one; anything else gives the lock up (releasing
// it if the key may exist) and tries again later.
func (u *lockUser) retry(err error) {
	if isLeaseGone(err) {
		u.sessionGone(u.sess, "a request found its lease gone")
		return
	}
	u.release()
}

// waitDeletes reads the newest key created before the user's own.
func (u *lockUser) waitDeletes() {
	u.state = lockWaiting
	u.wait++
	u.send(callRange, u.sess, node.Request{Range: &pb.RangeRequest{
		Key: []byte(lockPrefix), RangeEnd: []byte(linearizability.PrefixEnd(lockPrefix)),
		MaxCreateRevision: u.myRev - 1, SortTarget: pb.RangeRequest_CREATE, SortOrder: pb.RangeRequest_DESCEND, Limit: 1,
	}}, int64(u.w.sc.Workload.Timeout))
}

// waitRead takes that read: none left means the lock may be the user's;
// otherwise it watches the key until it is deleted.
func (u *lockUser) waitRead(rep node.Reply) {
	if u.state != lockWaiting {
		return
	}
	if rep.Err != nil {
		u.failed(rep.Err)
		u.next(regrantMinNs)
		return
	}
	kvs := rep.Range.GetKvs()
	if len(kvs) == 0 {
		u.check()
		return
	}
	u.watchDelete(string(kvs[0].Key), rep.Range.GetHeader().GetRevision())
}

// check reads the user's own key, as Mutex.Lock does once the wait is
// over: gone means the session expired.
func (u *lockUser) check() {
	u.state = lockChecking
	u.sendOp(callGet, u.sess, linearizability.Operation{Kind: linearizability.KindGet, Key: u.key},
		node.Request{Range: &pb.RangeRequest{Key: []byte(u.key)}})
}

func (u *lockUser) checked(seq uint64, lc *leaseCall, rep node.Reply) {
	w := u.w
	op := w.history.Operations[u.finishOp(seq, lc.op, rep)]
	switch {
	case rep.Err != nil:
		u.failed(rep.Err)
		u.release()
	case !op.Found:
		u.sessionGone(u.sess, "its key is gone: the session expired")
	default:
		u.state = lockHolding
		w.locks.Holds[u.hold].Owned = w.now
		w.record(TraceEvent{Kind: "lock", Node: u.name, Detail: fmt.Sprintf("owns the lock with %s (revision %d)", u.key, u.myRev)})
		if u.rng.Float64() < w.sc.Locks.Stall {
			u.stalled = true
			u.stop(u.sess, "stalled in the critical section")
			// It wakes once the session would have run out, been revoked
			// and its revoke retried.
			u.next(2*u.sess.ttlNs + int64(w.sc.Cluster.ElectionTimeout) + leaseRevokeRetryNs)
			return
		}
		u.next(int64(w.sc.Locks.WriteEvery))
	}
}

// fencedWrite writes the user's key from the value it last wrote, with
// its lease: refused once the key is gone.
func (u *lockUser) fencedWrite() {
	v := u.newValue(fmt.Sprintf("u%d", u.n))
	key := []byte(u.key)
	txn := &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: key, Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL,
			TargetUnion: &pb.Compare_Value{Value: []byte(u.last)}}},
		Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{
			Key: key, Value: []byte(v), Lease: u.sess.id}}}},
	}
	u.sendOp(callFenced, u.sess, linearizability.Operation{Kind: linearizability.KindCAS, Key: u.key, Expect: u.last, Value: v},
		node.Request{Txn: txn})
}

func (u *lockUser) fenced(seq uint64, lc *leaseCall, rep node.Reply) {
	w := u.w
	i := u.finishOp(seq, lc.op, rep)
	u.noteWrite(i, lc)
	w.locks.Holds[lc.hold].Fenced = append(w.locks.Holds[lc.hold].Fenced, i)
	op := &w.history.Operations[i]
	switch {
	case rep.Err != nil:
		u.failed(rep.Err)
		u.retry(rep.Err)
	case !op.Succeeded:
		w.record(TraceEvent{Kind: "lock", Node: u.name, Detail: "fenced write refused: the lock is lost"})
		u.sessionGone(u.sess, "a fenced write was refused")
	default:
		u.last = op.Value
		u.writes++
		if u.writes >= w.sc.Locks.Writes || w.now >= w.endNs {
			u.release()
			return
		}
		u.next(int64(w.sc.Locks.WriteEvery))
	}
}

// release deletes the user's key (Mutex.Unlock).
func (u *lockUser) release() {
	u.state = lockReleasing
	u.sendOp(callRelease, u.sess, linearizability.Operation{Kind: linearizability.KindDelete, Key: u.key},
		node.Request{DeleteRange: &pb.DeleteRangeRequest{Key: []byte(u.key)}})
}

func (u *lockUser) released(seq uint64, lc *leaseCall, rep node.Reply) {
	w := u.w
	i := u.finishOp(seq, lc.op, rep)
	w.locks.Holds[lc.hold].Release = i
	u.failed(rep.Err)
	w.record(TraceEvent{Kind: "lock", Node: u.name, Detail: "released " + u.key + ": " + errOrOK(rep.Err)})
	u.endHold()
}

// endHold ends the attempt; the next comes after a pause.
func (u *lockUser) endHold() {
	u.state, u.hold = lockIdle, -1
	u.attempt++
	u.cancelWatch()
	if u.stalled {
		// Its session ran out while it stalled: mark it gone (the state is
		// idle already, so that is all sessionGone does here), and the next
		// attempt takes a new one. Returning here left the user idle for
		// good, with no attempt scheduled.
		u.sessionGone(u.sess, "it stalled")
	}
	u.next(u.exp(int64(u.w.sc.Locks.Every)))
}

// sessionGone ends the user's session: the attempt is over, and the next
// one takes a new session.
func (u *lockUser) sessionGone(s *session, why string) {
	if s == nil {
		return
	}
	if !s.gone {
		s.gone = true
		u.w.record(TraceEvent{Kind: "lease", Node: u.name, Detail: fmt.Sprintf("session %x gone: %s", s.id, why)})
	}
	if s != u.sess || u.state == lockIdle || u.state == lockGranting {
		return
	}
	if u.state == lockReleasing {
		return // released: endHold follows
	}
	u.state, u.hold = lockIdle, -1
	u.attempt++
	u.leave()
	u.cancelWatch()
	u.next(u.exp(int64(u.w.sc.Locks.Every)))
}

// watchDelete watches key from rev until it is deleted (waitDelete).
func (u *lockUser) watchDelete(key string, rev int64) {
	w := u.w
	u.cancelWatch()
	m := w.members[0]
	idx, ok := w.byAddr[u.endpoints[u.endpoint]]
	if ok {
		m = w.members[idx]
	}
	lw := &lockWatch{user: u, wait: u.wait, member: m.idx}
	u.watch = lw
	req := mvcc.WatchRequest{Key: []byte(key), StartRev: rev, NoPut: true}
	w.record(TraceEvent{Kind: "lock", Node: u.name, Detail: fmt.Sprintf("watch %s from %d for its delete", key, rev)})
	w.later(w.now+w.net.clientDelay(), func() { w.createLockWatch(lw, req) })
}

// createLockWatch creates a lock user's watch on its member, if it runs.
func (w *world) createLockWatch(lw *lockWatch, req mvcc.WatchRequest) {
	m := w.members[lw.member]
	if lw.user.watch != lw {
		return // the user stopped waiting meanwhile
	}
	if !m.alive() {
		w.lockWatchEnded(lw, "connection refused")
		return
	}
	if w.busy(m) {
		w.later(m.ioUntil, func() { w.createLockWatch(lw, req) })
		return
	}
	_, err := m.node.AuthorizeWatch(w.appCreds(), req.Key, req.End)
	w.noteAppAuth(err, "a lock user's watch")
	var id mvcc.WatchID
	if err == nil {
		id, err = m.node.Watch(req)
	}
	if err != nil {
		w.lockWatchEnded(lw, err.Error())
		return
	}
	lw.id, lw.inc, lw.created = id, m.inc, true
	m.lockWatches = append(m.lockWatches, lw)
	w.drive(m)
}

// lockWatchOutput sends what a member's lock watches have to say back to
// their users, in order on each.
func (w *world) lockWatchOutput(m *member, resps []mvcc.WatchResponse) {
	for i := range resps {
		r := &resps[i]
		var lw *lockWatch
		for _, x := range m.lockWatches {
			if x.id == r.WatchID {
				lw = x
				break
			}
		}
		if lw == nil {
			continue // a watcher's (watcher.go), or one its user canceled
		}
		deleted := false
		for _, ev := range r.Events {
			deleted = deleted || ev.Type == mvccpb.DELETE
		}
		why := ""
		switch {
		case deleted:
			why = "deleted"
		case r.Canceled:
			why = "canceled"
		default:
			continue // a progress notification
		}
		w.dropLockWatch(m, lw)
		if !r.Canceled {
			m.node.CancelWatch(lw.id) // its user is done with it
		}
		lw.arrives = max(w.now+w.net.clientDelay(), lw.arrives)
		w.later(lw.arrives, func() { w.lockWatchEnded(lw, why) })
	}
}

// endLockWatches ends a crashed member's lock watches: their users read
// again.
func (w *world) endLockWatches(m *member) {
	for _, lw := range m.lockWatches {
		lw.arrives = max(w.now+w.net.clientDelay(), lw.arrives)
		w.later(lw.arrives, func() { w.lockWatchEnded(lw, "the member crashed") })
	}
	m.lockWatches = nil
}

func (w *world) dropLockWatch(m *member, lw *lockWatch) {
	for i, x := range m.lockWatches {
		if x == lw {
			m.lockWatches = append(m.lockWatches[:i], m.lockWatches[i+1:]...)
			return
		}
	}
}

// lockWatchEnded tells the user its watch ended: its predecessor's key was
// deleted, or the watch broke. Either way it reads again.
func (w *world) lockWatchEnded(lw *lockWatch, why string) {
	u := lw.user
	if u.watch != lw || u.state != lockWaiting || u.wait != lw.wait {
		return
	}
	u.watch = nil
	w.record(TraceEvent{Kind: "lock", Node: u.name, Detail: "watch ended: " + why})
	u.waitDeletes()
}

// cancelWatch stops the user's watch, if any: the cancel reaches its
// member after a client link's latency.
func (u *lockUser) cancelWatch() {
	lw := u.watch
	if lw == nil {
		return
	}
	u.watch = nil
	w := u.w
	w.later(w.now+w.net.clientDelay(), func() { w.cancelLockWatch(lw) })
}

// cancelLockWatch cancels a lock watch at its member, once the member's
// I/O in flight is done.
func (w *world) cancelLockWatch(lw *lockWatch) {
	m := w.members[lw.member]
	switch {
	case !lw.created || !m.alive() || m.inc != lw.inc:
	case w.busy(m):
		w.later(m.ioUntil, func() { w.cancelLockWatch(lw) })
	default:
		m.node.CancelWatch(lw.id)
		w.dropLockWatch(m, lw)
	}
}

func isLeaseGone(err error) bool { return errors.Is(err, node.ErrLeaseNotFound) }

func (u *lockUser) moved(idx int, url string) { u.reach(idx, url) }
func (u *lockUser) inFlight() string          { return u.inFlightOp() }
func (u *lockUser) finish()                   { u.finishCalls() }

// lockCheck runs linearizability.CheckLocks on the run.
func (w *world) lockCheck() Check {
	r := linearizability.CheckLocks(w.history, w.locks, w.resolved)
	c := Check{Name: "lock", OK: r.Reason == "", Detail: r.Reason}
	if c.OK {
		c.Detail = fmt.Sprintf("%d attempts, %d owned the lock; %d fenced writes each made by the owner, %d refused by the fence",
			r.Holds, r.Owned, r.Fenced, r.Refused)
		if r.Undecided > 0 {
			c.Detail += fmt.Sprintf(", %d not judged (a write of unknown revision)", r.Undecided)
		}
	}
	return c
}
