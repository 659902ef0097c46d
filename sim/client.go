package sim

import (
	"errors"
	"fmt"
	"math"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/linearizability"
	"github.com/plumbdb/plumb/node"
)

// errConnRefused is what a client sees when nothing listens at the address
// it dialled (the member is down, or moved). The request never arrived, so
// the outcome is known: nothing happened.
var errConnRefused = errors.New("connection refused")

// replyID packs the client (or operator) index and operation number into a
// node.Request ID, so a reply finds its way back.
func replyID(client int, op uint64) uint64 { return uint64(client)<<32 | op&0xffffffff }

func splitReplyID(id uint64) (client int, op uint64) { return int(id >> 32), id & 0xffffffff }

// client is one application instance using the cluster: one operation at a
// time, each with a timeout, sticking to one endpoint until it fails and
// then moving to the next, as clientv3 does when a connection breaks.
type client struct {
	idx       int
	histID    int      // porcupine client ID; fresh after every unknown outcome
	endpoints []string // client URLs, one per member, as this client knows them
	endpoint  int      // index into endpoints
	seq       uint64
	op        *pendingOp // the operation in flight, nil if none
	known     []string   // per key: the last value this client saw, "" if none
	writes    int        // values written, for unique values
}

type pendingOp struct {
	seq uint64
	rec linearizability.Operation
}

func (w *world) newClients() {
	for i := range w.sc.Workload.Clients {
		c := &client{idx: i, histID: w.newHistID(), endpoints: w.endpoints(),
			endpoint: i % len(w.members), known: make([]string, w.sc.Workload.Keys)}
		w.clients = append(w.clients, c)
		w.schedule(&event{at: w.thinkTime(), kind: evClientNext, index: i})
	}
}

func (w *world) newHistID() int {
	w.nextHist++
	return w.nextHist
}

// thinkTime draws the pause before a client's next operation: exponential,
// so that each client issues Workload.Rate operations per second on average.
func (w *world) thinkTime() int64 {
	mean := float64(1e9) / w.sc.Workload.Rate
	return w.now + int64(math.Min(w.rngClient.ExpFloat64()*mean, 60e9))
}

// clientNext starts a client's next operation.
func (w *world) clientNext(c *client) {
	if w.now >= w.endNs || c.op != nil {
		return
	}
	c.seq++
	key := w.rngClient.IntN(w.sc.Workload.Keys)
	rec, req := w.makeOp(c, key)
	rec.Client, rec.Call = c.histID, w.now
	c.op = &pendingOp{seq: c.seq, rec: rec}
	req.ID = replyID(c.idx, c.seq)
	w.record(TraceEvent{Kind: "call", Client: c.idx + 1, Detail: describeOp(rec)})
	w.schedule(&event{at: w.now + w.sc.Workload.Timeout.Nanoseconds(), kind: evClientTimeout, index: c.idx, op: c.seq})
	w.schedule(&event{at: w.now + w.net.clientDelay(), kind: evRequest, addr: c.endpoints[c.endpoint], req: &req, index: c.idx})
}

func keyName(k int) string { return fmt.Sprintf("key-%03d", k) }

// makeOp draws the operation kind by the scenario's weights.
func (w *world) makeOp(c *client, k int) (linearizability.Operation, node.Request) {
	mix := w.sc.Workload.Ops
	key := keyName(k)
	r := w.rngClient.IntN(mix.Put + mix.Get + mix.Delete + mix.CAS)
	switch {
	case r < mix.Put:
		v := w.newValue(c)
		return linearizability.Operation{Kind: linearizability.KindPut, Key: key, Value: v},
			node.Request{Put: &pb.PutRequest{Key: []byte(key), Value: []byte(v)}}
	case r < mix.Put+mix.Get:
		return linearizability.Operation{Kind: linearizability.KindGet, Key: key},
			node.Request{Range: &pb.RangeRequest{Key: []byte(key)}}
	case r < mix.Put+mix.Get+mix.Delete:
		return linearizability.Operation{Kind: linearizability.KindDelete, Key: key},
			node.Request{DeleteRange: &pb.DeleteRangeRequest{Key: []byte(key)}}
	}
	// Compare-and-swap from the last value this client saw, as an
	// application doing optimistic concurrency would.
	v := w.newValue(c)
	op := linearizability.Operation{Kind: linearizability.KindCAS, Key: key, Value: v}
	cmp := &pb.Compare{Key: []byte(key), Target: pb.Compare_CREATE,
		Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_CreateRevision{CreateRevision: 0}}
	if prev := c.known[k]; prev != "" {
		op.Expect = prev
		cmp = &pb.Compare{Key: []byte(key), Target: pb.Compare_VALUE,
			Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte(prev)}}
	} else {
		op.ExpectAbsent = true
	}
	txn := &pb.TxnRequest{Compare: []*pb.Compare{cmp}, Success: []*pb.RequestOp{{
		Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(key), Value: []byte(v)}},
	}}}
	return op, node.Request{Txn: txn}
}

// newValue returns a value no one else ever writes: the check relies on it.
func (w *world) newValue(c *client) string {
	c.writes++
	return fmt.Sprintf("c%d-%d", c.idx+1, c.writes)
}

// requestArrives hands a client request to the member at addr, or answers
// "connection refused" when no live member is there.
func (w *world) requestArrives(e *event) {
	idx, ok := w.byAddr[e.addr]
	if !ok || !w.members[idx].alive() {
		w.schedule(&event{at: w.now + w.net.clientDelay(), kind: evReply,
			rep: &node.Reply{ID: e.req.ID, Err: errConnRefused}})
		return
	}
	m := w.members[idx]
	if w.busy(m) {
		w.deferInput(m, e)
		return
	}
	m.node.Submit(*e.req)
	w.drive(m)
}

// replyFrom sends a member's reply back to its client.
func (w *world) replyFrom(m *member, rep node.Reply) {
	w.schedule(&event{at: w.now + w.net.clientDelay(), kind: evReply, rep: &rep, index: m.idx})
}

// replyArrives completes a client's operation, unless it already timed out.
func (w *world) replyArrives(e *event) {
	ci, seq := splitReplyID(e.rep.ID)
	if ci == len(w.clients) {
		w.operatorReply(seq, *e.rep)
		return
	}
	c := w.clients[ci]
	if c.op == nil || c.op.seq != seq {
		return // late: the client gave up on it already
	}
	rec := c.op.rec
	rec.Return = w.now
	if e.rep.Err != nil {
		w.finishFailed(c, rec, e.rep.Err)
		return
	}
	fillResult(&rec, *e.rep)
	rec.Outcome = linearizability.OutcomeOK
	w.learn(c, rec)
	w.finish(c, rec)
}

// fillResult copies a successful reply's results into the record.
func fillResult(rec *linearizability.Operation, rep node.Reply) {
	switch rec.Kind {
	case linearizability.KindPut:
		rec.Revision = rep.Put.GetHeader().GetRevision()
	case linearizability.KindGet:
		if kvs := rep.Range.GetKvs(); len(kvs) > 0 {
			rec.Found, rec.Result = true, string(kvs[0].Value)
		}
		rec.Revision = rep.Range.GetHeader().GetRevision()
	case linearizability.KindDelete:
		rec.Deleted = rep.DeleteRange.GetDeleted()
		rec.Revision = rep.DeleteRange.GetHeader().GetRevision()
	case linearizability.KindCAS:
		rec.Succeeded = rep.Txn.GetSucceeded()
		rec.Revision = rep.Txn.GetHeader().GetRevision()
	}
}

// learn remembers what the client now knows of the key, for its next CAS.
func (w *world) learn(c *client, rec linearizability.Operation) {
	var k int
	if _, err := fmt.Sscanf(rec.Key, "key-%d", &k); err != nil {
		panic(fmt.Sprintf("sim: bad key %q", rec.Key))
	}
	switch {
	case rec.Kind == linearizability.KindPut, rec.Kind == linearizability.KindCAS && rec.Succeeded:
		c.known[k] = rec.Value
	case rec.Kind == linearizability.KindGet:
		c.known[k] = rec.Result
	case rec.Kind == linearizability.KindDelete:
		c.known[k] = ""
	case rec.Kind == linearizability.KindCAS:
		c.known[k] = "" // we do not know the value that beat us; start over
	}
	if rec.Kind != linearizability.KindGet {
		w.stats.okWrites = append(w.stats.okWrites, w.now)
	}
}

// finishFailed records an operation that returned an error. A write whose
// outcome is unknown is recorded so, never as failed; a read that failed had
// no effect either way.
func (w *world) finishFailed(c *client, rec linearizability.Operation, err error) {
	rec.Outcome = linearizability.OutcomeFailed
	if node.OutcomeUnknown(err) && rec.Kind != linearizability.KindGet {
		rec.Outcome = linearizability.OutcomeUnknown
	}
	rec.Error = err.Error()
	w.finish(c, rec)
	if failoverOn(err) {
		c.endpoint = (c.endpoint + 1) % len(c.endpoints)
	}
}

// failoverOn reports whether an error means this endpoint is no use now.
func failoverOn(err error) bool {
	return errors.Is(err, errConnRefused) || errors.Is(err, node.ErrNoLeader) ||
		errors.Is(err, node.ErrLeaderChanged) || errors.Is(err, node.ErrTimeout) ||
		errors.Is(err, node.ErrStopped) || errors.Is(err, node.ErrProposalDropped) ||
		errors.Is(err, node.ErrTooManyRequests) || errors.Is(err, node.ErrNoSpace)
}

// clientTimeout gives up on an operation: a write's outcome is now unknown.
func (w *world) clientTimeout(e *event) {
	c := w.clients[e.index]
	if c.op == nil || c.op.seq != e.op {
		return
	}
	rec := c.op.rec
	rec.Return = w.now
	w.finishFailed(c, rec, node.ErrTimeout)
}

func (w *world) finish(c *client, rec linearizability.Operation) {
	w.history.Add(rec)
	w.record(TraceEvent{Kind: "return", Client: c.idx + 1, Detail: describeOp(rec)})
	c.op = nil
	if rec.Outcome == linearizability.OutcomeUnknown {
		// The unknown operation stays open for ever in the check; the
		// client's next operations must not overlap it under one ID.
		c.histID = w.newHistID()
		c.known = make([]string, len(c.known))
	}
	w.schedule(&event{at: w.thinkTime(), kind: evClientNext, index: c.idx})
}

func describeOp(op linearizability.Operation) string {
	s := string(op.Kind) + " " + op.Key
	switch op.Kind {
	case linearizability.KindPut:
		s += "=" + op.Value
	case linearizability.KindCAS:
		if op.ExpectAbsent {
			s += " absent->" + op.Value
		} else {
			s += " " + op.Expect + "->" + op.Value
		}
	}
	if op.Outcome == "" {
		return s
	}
	s += ": " + string(op.Outcome)
	switch {
	case op.Outcome != linearizability.OutcomeOK:
		if op.Error != "" {
			s += " (" + op.Error + ")"
		}
	case op.Kind == linearizability.KindGet && op.Found:
		s += " " + op.Result
	case op.Kind == linearizability.KindGet:
		s += " (none)"
	case op.Kind == linearizability.KindDelete:
		s += fmt.Sprintf(" %d", op.Deleted)
	case op.Kind == linearizability.KindCAS:
		s += fmt.Sprintf(" %v", op.Succeeded)
	}
	return s
}
