package sim

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/linearizability"
	"github.com/plumbdb/plumb/node"
)

// What lease holders (lease.go) and lock users (lock.go) share: a caller
// keeps its requests in flight with their timeouts, fails over between
// endpoints as the workload's clients do, records its history operations,
// and keeps sessions (leases) alive as clientv3 does: a keep-alive once
// the last answer is TTL/3 old, again every keepAliveRetryNs while none
// comes, and the lease given up once none has come for a TTL.

// keepAliveRetryNs is clientv3's keep-alive loop period: a keep-alive not
// answered by then is sent again.
const keepAliveRetryNs = int64(500e6)

// Timer kinds of lease holders and lock users.
const (
	tmTimeout   uint8 = iota + 1 // a request's timeout; payload: its number
	tmKeepAlive                  // the keep-alive loop; payload: the session's generation
	tmPut                        // a holder's next put
	tmLife                       // a holder's lease reaches the end of its life; payload: the lease's number
	tmGrant                      // ask for a lease
	tmLockNext                   // a lock user's next step
)

// callKind names what a request of a lease holder or lock user is.
type callKind uint8

const (
	callGrant callKind = iota + 1
	callKeepAlive
	callRevoke
	callPut
	callRange
	callGet
	callAcquire
	callFenced
	callRelease
)

var callNames = [...]string{callGrant: "grant", callKeepAlive: "keep-alive", callRevoke: "revoke", callPut: "put",
	callRange: "range", callGet: "get", callAcquire: "acquire", callFenced: "fenced write", callRelease: "release"}

func (k callKind) String() string { return callNames[k] }

// leaseCall is one request in flight.
type leaseCall struct {
	kind    callKind
	call    int64  // when it was sent
	attempt uint64 // a lock user's attempt it belongs to
	hold    int    // and its index in the lock record
	session *session
	op      linearizability.Operation // a history operation's record
	ka      int                       // callKeepAlive: index in the lease record's keep-alives
	revoke  int                       // callRevoke: index in the record's revoke calls
}

// session is a lease as its holder keeps it: granted, kept alive, given
// up. Lease holders and lock users (whose sessions they are) share it.
type session struct {
	id      int64
	ttlNs   int64
	rec     int    // index in the lease record
	n       int    // the holder's count of its leases, from 1
	gen     uint64 // the keep-alive loop's generation: a stale timer does nothing
	lastAck int64  // when a keep-alive (or the grant) was last answered
	stopped bool   // no longer kept alive
	gone    bool   // its holder learnt that it is gone
}

// caller is what lease holders and lock users share: requests in flight
// with their timeouts, failover between endpoints, and sessions kept alive
// as clientv3 does.
type caller struct {
	w         *world
	idx       int // app number
	name      string
	rng       *rand.Rand
	endpoints []string
	endpoint  int
	histID    int
	seq       uint64
	calls     map[uint64]*leaseCall
	writes    int // values written, for unique values
	// onGone is told when a session is found gone or given up.
	onGone func(s *session, why string)
	// tag, if set, marks each request as it is sent (a lock user's with its
	// attempt).
	tag func(lc *leaseCall)
}

// reach takes member idx's client URL: a moved member's new one, or an
// added member's (the next index), as the app's clients learn them.
func (c *caller) reach(idx int, url string) {
	for len(c.endpoints) <= idx {
		c.endpoints = append(c.endpoints, "")
	}
	c.endpoints[idx] = url
}

func (c *caller) send(kind callKind, s *session, req node.Request, timeoutNs int64) uint64 {
	w := c.w
	c.seq++
	lc := &leaseCall{kind: kind, call: w.now, session: s}
	if c.tag != nil {
		c.tag(lc)
	}
	c.calls[c.seq] = lc
	if kind == callKeepAlive {
		w.leaseRequest(c.idx, c.seq, c.endpoints[c.endpoint], req)
	} else {
		w.appRequest(c.idx, c.seq, c.endpoints[c.endpoint], req)
	}
	w.appTimer(c.idx, w.now+timeoutNs, timerKind(tmTimeout, c.seq))
	return c.seq
}

// sendOp sends a request recorded in the history as op.
func (c *caller) sendOp(kind callKind, s *session, op linearizability.Operation, req node.Request) {
	op.Client, op.Call = c.histID, c.w.now
	seq := c.send(kind, s, req, int64(c.w.sc.Workload.Timeout))
	c.calls[seq].op = op
	c.w.record(TraceEvent{Kind: "call", Node: c.name, Detail: kind.String() + " " + linearizability.Describe(&op)})
}

// take returns the call a reply or timeout is for, and forgets it.
func (c *caller) take(seq uint64) *leaseCall {
	lc := c.calls[seq]
	if lc != nil {
		delete(c.calls, seq)
		if lc.kind == callKeepAlive {
			c.w.leaseAnswered(c.idx, seq)
		}
	}
	return lc
}

// failed moves to the next endpoint when an error says this one is no use.
func (c *caller) failed(err error) {
	if failoverOn(err) {
		c.endpoint = (c.endpoint + 1) % len(c.endpoints)
	}
}

// finishOp records a history operation's outcome; an unknown one goes to
// the write ledger, and the caller takes a fresh history ID. It returns
// the operation's index.
func (c *caller) finishOp(seq uint64, op linearizability.Operation, rep node.Reply) int {
	w := c.w
	op.Return = w.now
	switch {
	case rep.Err == nil:
		op.Outcome = linearizability.OutcomeOK
		fillResult(&op, rep)
	case node.OutcomeUnknown(rep.Err) && op.IsWrite():
		op.Outcome, op.Error = linearizability.OutcomeUnknown, rep.Err.Error()
	default: // a read that failed, however, had no effect
		op.Outcome, op.Error = linearizability.OutcomeFailed, rep.Err.Error()
	}
	i := len(w.history.Operations)
	if op.Outcome == linearizability.OutcomeUnknown {
		w.writes.unknown = append(w.writes.unknown, unknownWrite{index: i, requestID: replyID(appCallerBase+c.idx, seq)})
		c.histID = w.newHistID()
	}
	w.history.Add(op)
	w.record(TraceEvent{Kind: "return", Node: c.name, Detail: linearizability.Describe(&op)})
	return i
}

// grant asks for a session lease with the given TTL.
func (c *caller) grant(ttlNs int64) {
	c.send(callGrant, nil, node.Request{LeaseGrant: &pb.LeaseGrantRequest{TTL: ttlNs / 1e9}}, int64(c.w.sc.Workload.Timeout))
	c.w.record(TraceEvent{Kind: "lease", Node: c.name, Detail: "grant"})
}

// granted starts a session from a grant's answer: recorded, and kept
// alive from now on.
func (c *caller) granted(call int64, rep node.Reply, n int) *session {
	w := c.w
	g := rep.LeaseGrant
	s := &session{id: g.ID, ttlNs: g.TTL * 1e9, n: n, lastAck: w.now}
	s.rec = w.leaseRec.granted(linearizability.Lease{ID: g.ID, Holder: c.name, TTL: g.TTL, Known: w.now,
		Grant: linearizability.LeaseCall{Call: call, Return: w.now, Outcome: linearizability.OutcomeOK, TTL: g.TTL}})
	w.record(TraceEvent{Kind: "lease", Node: c.name, Detail: fmt.Sprintf("granted %x ttl %ds", g.ID, g.TTL)})
	// clientv3 sends the first keep-alive at its loop's next turn.
	w.appTimer(c.idx, w.now+c.rng.Int64N(keepAliveRetryNs), timerKind(tmKeepAlive, s.gen))
	return s
}

// keepAlive is the keep-alive loop's turn for s: clientv3 sends a
// keep-alive when the last answer is TTL/3 old, and again every
// keepAliveRetryNs while none comes; once none has come for a TTL, it
// gives the lease up.
func (c *caller) keepAlive(s *session, gen uint64) {
	w := c.w
	if s == nil || s.gen != gen || s.stopped || s.gone {
		return
	}
	if w.now > s.lastAck+s.ttlNs {
		c.stop(s, "no keep-alive answered within its TTL")
		c.onGone(s, "given up")
		return
	}
	rec := w.leaseRec.lease(s.rec)
	rec.KeepAlives = append(rec.KeepAlives, linearizability.LeaseCall{Call: w.now})
	seq := c.send(callKeepAlive, s, node.Request{LeaseKeepAlive: &pb.LeaseKeepAliveRequest{ID: s.id}}, s.ttlNs)
	c.calls[seq].ka = len(rec.KeepAlives) - 1
	w.appTimer(c.idx, w.now+keepAliveRetryNs, timerKind(tmKeepAlive, gen))
}

// keepAliveAnswered records a keep-alive's answer, and schedules the next
// one TTL/3 later when it renewed the lease.
func (c *caller) keepAliveAnswered(lc *leaseCall, rep node.Reply) {
	w := c.w
	s := lc.session
	ka := &w.leaseRec.lease(s.rec).KeepAlives[lc.ka]
	ka.Return = w.now
	switch {
	case rep.Err == nil || errors.Is(rep.Err, node.ErrLeaseNotFound):
		// The server answers a lease it does not have with TTL 0.
		ka.Outcome, ka.TTL = linearizability.OutcomeOK, rep.LeaseKeepAlive.GetTTL()
	case node.OutcomeUnknown(rep.Err):
		// It may have renewed the lease; the holder cannot know.
		ka.Outcome, ka.Error = linearizability.OutcomeUnknown, rep.Err.Error()
	default:
		ka.Outcome, ka.Error = linearizability.OutcomeFailed, rep.Err.Error()
	}
	switch {
	case ka.Outcome == linearizability.OutcomeOK && ka.TTL == 0:
		w.record(TraceEvent{Kind: "lease", Node: c.name, Detail: fmt.Sprintf("keep-alive %x: not found", s.id)})
		c.onGone(s, "a keep-alive found it gone")
	case ka.Outcome == linearizability.OutcomeOK:
		if s.stopped || s.gone {
			return
		}
		s.lastAck = w.now
		s.gen++
		w.appTimer(c.idx, w.now+ka.TTL*1e9/3, timerKind(tmKeepAlive, s.gen))
	default: // failed, or unanswered: the next one goes elsewhere, as a client's would
		c.failed(rep.Err)
	}
}

// stop stops keeping s alive: it expires unless revoked first.
func (c *caller) stop(s *session, why string) {
	if s.stopped {
		return
	}
	s.stopped = true
	c.w.leaseRec.lease(s.rec).Stopped = c.w.now
	c.w.record(TraceEvent{Kind: "lease", Node: c.name, Detail: fmt.Sprintf("stop keeping %x alive: %s", s.id, why)})
}

// revoke stops keeping s alive and revokes it.
func (c *caller) revoke(s *session) {
	w := c.w
	c.stop(s, "revoking it")
	w.leaseRec.calls = append(w.leaseRec.calls, revokeCall{lease: s.id, call: w.now})
	seq := c.send(callRevoke, s, node.Request{LeaseRevoke: &pb.LeaseRevokeRequest{ID: s.id}}, int64(w.sc.Workload.Timeout))
	lc := c.calls[seq]
	lc.revoke = len(w.leaseRec.calls) - 1
	w.leaseRec.calls[lc.revoke].requestID = replyID(appCallerBase+c.idx, seq)
}

// revokeAnswered records what the revoke's caller saw; it reports whether
// the lease is gone by its account.
func (c *caller) revokeAnswered(lc *leaseCall, rep node.Reply) bool {
	rc := &c.w.leaseRec.calls[lc.revoke]
	rc.ret = c.w.now
	switch {
	case rep.Err == nil:
		rc.outcome = linearizability.OutcomeOK
	case node.OutcomeUnknown(rep.Err):
		rc.outcome = linearizability.OutcomeUnknown
	default:
		rc.outcome = linearizability.OutcomeFailed
		c.failed(rep.Err)
	}
	c.w.record(TraceEvent{Kind: "lease", Node: c.name, Detail: fmt.Sprintf("revoke %x: %s", lc.session.id, errOrOK(rep.Err))})
	return rep.Err == nil || errors.Is(rep.Err, node.ErrLeaseNotFound)
}

// finishCalls records what is still in flight after the run as of unknown
// outcome, in request order.
func (c *caller) finishCalls() {
	w := c.w
	for _, seq := range slices.Sorted(maps.Keys(c.calls)) {
		lc := c.calls[seq]
		switch lc.kind {
		case callKeepAlive:
			w.leaseRec.lease(lc.session.rec).KeepAlives[lc.ka].Outcome = linearizability.OutcomeUnknown
		case callRevoke:
			w.leaseRec.calls[lc.revoke].outcome = linearizability.OutcomeUnknown
		default:
			if lc.op.Kind != "" {
				c.unknownAtEnd(seq, lc) // a grant, or a lock user's wait, is not in the history
			}
		}
	}
	clear(c.calls)
}

// unknownAtEnd records a history operation still in flight at the end.
func (c *caller) unknownAtEnd(seq uint64, lc *leaseCall) {
	if !lc.op.IsWrite() {
		return // a read in flight had no effect
	}
	i := c.finishOp(seq, lc.op, node.Reply{Err: node.ErrTimeout})
	c.noteWrite(i, lc)
}

// noteWrite records the lease of a put or cas made with one.
func (c *caller) noteWrite(i int, lc *leaseCall) {
	op := &c.w.history.Operations[i]
	if lc.session != nil && (lc.kind == callPut || lc.kind == callAcquire || lc.kind == callFenced) {
		c.w.leaseRec.attached(i, op.Key, lc.session.id)
	}
}

// leave is called when the caller moves on without waiting for what it
// has in flight: an operation it starts next must not overlap one still
// in flight under the same history client ID, so it takes a fresh one.
func (c *caller) leave() {
	for _, lc := range c.calls {
		if lc.op.Kind != "" {
			c.histID = c.w.newHistID()
			return
		}
	}
}

// inFlightOp names the history operation in flight, "" if none.
func (c *caller) inFlightOp() string {
	for _, seq := range slices.Sorted(maps.Keys(c.calls)) {
		if lc := c.calls[seq]; lc.op.Kind != "" || lc.kind == callRevoke {
			return c.name + " has a " + lc.kind.String() + " in flight"
		}
	}
	return ""
}

// newValue returns a value no one else ever writes.
func (c *caller) newValue(tag string) string {
	c.writes++
	return fmt.Sprintf("%s-%d", tag, c.writes)
}

// exp draws an exponential pause with the given mean, bounded.
func (c *caller) exp(meanNs int64) int64 {
	return int64(math.Min(c.rng.ExpFloat64()*float64(meanNs), maxPauseNs))
}

// maxPauseNs bounds one exponential pause of a holder or lock user.
const maxPauseNs = 60e9
