package sim

import (
	"github.com/plumbdb/plumb/node"
)

type eventKind uint8

const (
	evTick           eventKind = iota + 1 // a member's clock ticks
	evDeliver                             // a peer message reaches an address
	evClientNext                          // a client starts its next operation
	evRequest                             // a client request reaches a member's client address
	evReply                               // a reply reaches a client
	evClientTimeout                       // a client gives up on an operation
	evFault                               // the scenario's fault number `index` fires
	evRestart                             // a killed member restarts (restart_after)
	evHealCut                             // a partition's `for` ends
	evRestoreNetwork                      // a network change's `for` ends
	evMemberUpdate                        // the operator runs member update for a moved member
	evSettleCheck                         // after the scenario: are members converged?
	evIODone                              // a member's disk I/O completes
	evKillDeadline                        // a torn kill found no write to tear
	evDiskRestore                         // a disk latency or full fault's for ends
	evAlarmDisarm                         // the operator disarms a member's NOSPACE alarm
	evWatchNext                           // a watcher opens its next watch
	evWatchCall                           // a watcher's call reaches a member's client address
	evWatchReply                          // something on a watch stream reaches its watcher
	evWatchTimer                          // a watcher's progress request or cancel comes due
	evCompact                             // the leader's compactor runs
	evAppTimer                            // an app's timer (app.go): index is the app, op the timer's kind
	evLater                               // an app's deferred step (app.go): fn
)

// event is one thing that happens at a virtual instant. Fields beyond
// at, seq and kind are used by some kinds only.
type event struct {
	at    int64  // virtual nanoseconds since the start of the run
	seq   uint64 // tie-breaker: events at one instant run in the order scheduled
	kind  eventKind
	index int    // member, client, watcher, app or fault index, by kind
	inc   uint32 // the member's incarnation, so a dead member's ticks are dropped
	op    uint64 // client operation sequence number; a watcher timer's kind
	id    uint64 // cut or network-change ID
	addr  string
	env   node.Envelope
	req   *node.Request // evRequest
	rep   *node.Reply   // evReply
	from  int           // sender's member index, for message traces

	wcall  *watchCall  // evWatchCall
	wreply *watchReply // evWatchReply
	fn     func()      // evLater
}

// eventQueue is a binary min-heap ordered by (at, seq). It is written out
// rather than built on container/heap to avoid an interface call per swap
// on the simulator's hottest path.
type eventQueue struct {
	h    []*event
	free []*event
	seq  uint64
}

func (q *eventQueue) len() int { return len(q.h) }

// alloc returns a zeroed event, reusing finished ones.
func (q *eventQueue) alloc() *event {
	if n := len(q.free); n > 0 {
		e := q.free[n-1]
		q.free = q.free[:n-1]
		return e
	}
	return &event{}
}

// release returns a finished event for reuse.
func (q *eventQueue) release(e *event) {
	*e = event{}
	q.free = append(q.free, e)
}

func (q *eventQueue) push(e *event) {
	q.seq++
	e.seq = q.seq
	q.h = append(q.h, e)
	i := len(q.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

func (q *eventQueue) pop() *event {
	top := q.h[0]
	last := len(q.h) - 1
	q.h[0] = q.h[last]
	q.h[last] = nil
	q.h = q.h[:last]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(q.h) && q.less(l, m) {
			m = l
		}
		if r < len(q.h) && q.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		q.h[i], q.h[m] = q.h[m], q.h[i]
		i = m
	}
	return top
}

func (q *eventQueue) less(i, j int) bool {
	a, b := q.h[i], q.h[j]
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}
