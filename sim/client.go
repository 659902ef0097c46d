package sim

import (
	"errors"
	"fmt"
	"math"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/faults"
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
	op        *pendingOp        // the operation in flight, nil if none
	known     map[string]string // per key: the last value this client saw, "" if none
	writes    int               // values written, for unique values
}

type pendingOp struct {
	seq          uint64
	rec          linearizability.Operation
	serializable bool // a serializable read, which the auth check does not judge
}

func (w *world) newClients() {
	for i := range w.sc.Workload.Clients {
		c := &client{idx: i, histID: w.newHistID(), endpoints: w.endpoints(),
			endpoint: i % len(w.members), known: make(map[string]string)}
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
	return w.now + int64(math.Min(w.rngClient.ExpFloat64()*mean, maxThinkNs))
}

// clientNext starts a client's next operation.
func (w *world) clientNext(c *client) {
	if w.now >= w.endNs || c.op != nil {
		return
	}
	if len(w.history.Operations)+len(w.clients) >= faults.OperationsMax {
		return // the checker takes no more (Parse refuses scenarios that would expect it)
	}
	c.seq++
	key := w.rngClient.IntN(w.sc.Workload.Keys)
	rec, req := w.makeOp(c, key)
	rec.Client, rec.Call = c.histID, w.now
	c.op = &pendingOp{seq: c.seq, rec: rec, serializable: req.Range.GetSerializable()}
	req.ID = replyID(c.idx, c.seq)
	req.Creds = w.clientCreds(c)
	w.record(TraceEvent{Kind: "call", Client: c.idx + 1, Detail: describeOp(rec)})
	w.schedule(&event{at: w.now + w.sc.Workload.Timeout.Nanoseconds(), kind: evClientTimeout, index: c.idx, op: c.seq})
	w.schedule(&event{at: w.now + w.net.clientDelay(), kind: evRequest, addr: c.endpoints[c.endpoint], req: &req, index: c.idx})
}

func keyName(k int) string { return fmt.Sprintf("key-%03d", k) }

// makeOp draws the operation kind by the scenario's weights, and its keys.
func (w *world) makeOp(c *client, k int) (linearizability.Operation, node.Request) {
	mix := w.sc.Workload.Ops
	key := keyName(k)
	weights := [...]int{mix.Put, mix.Get, mix.Delete, mix.CAS, mix.Txn, mix.Range, mix.DeleteRange}
	total := 0
	for _, n := range weights {
		total += n
	}
	r := w.rngClient.IntN(total)
	kind := 0
	for ; r >= weights[kind]; kind++ {
		r -= weights[kind]
	}
	switch kind {
	case 0:
		v := w.newValue(c)
		return linearizability.Operation{Kind: linearizability.KindPut, Key: key, Value: v},
			node.Request{Put: &pb.PutRequest{Key: []byte(key), Value: []byte(v)}}
	case 1:
		s := w.serializable()
		return linearizability.Operation{Kind: linearizability.KindGet, Key: key, Serializable: s},
			node.Request{Range: &pb.RangeRequest{Key: []byte(key), Serializable: s}}
	case 2:
		return linearizability.Operation{Kind: linearizability.KindDelete, Key: key},
			node.Request{DeleteRange: &pb.DeleteRangeRequest{Key: []byte(key)}}
	case 3:
		return w.makeCAS(c, key)
	case 4:
		return w.makeTxn(c, k)
	case 5:
		key, end := w.span(k, 2, 5)
		s := w.serializable()
		return linearizability.Operation{Kind: linearizability.KindRange, Key: key, End: end, Serializable: s},
			node.Request{Range: &pb.RangeRequest{Key: []byte(key), RangeEnd: []byte(end), Serializable: s}}
	default:
		key, end := w.span(k, 2, 3)
		return linearizability.Operation{Kind: linearizability.KindDelete, Key: key, End: end},
			node.Request{DeleteRange: &pb.DeleteRangeRequest{Key: []byte(key), RangeEnd: []byte(end)}}
	}
}

// serializable draws whether a read is serializable.
func (w *world) serializable() bool {
	return w.rngClient.Float64() < w.sc.Workload.Serializable
}

// span draws a range starting at key k: lo to hi consecutive keys, or one
// time in four every key sharing k's name but its last digit (a prefix,
// "key-01" for key-013).
func (w *world) span(k, lo, hi int) (key, end string) {
	key = keyName(k)
	if w.rngClient.IntN(4) == 0 {
		prefix := key[:len(key)-1]
		return prefix, linearizability.PrefixEnd(prefix)
	}
	n := lo + w.rngClient.IntN(hi-lo+1)
	return key, keyName(k + n)
}

// makeCAS is a compare-and-swap from the last value this client saw, as an
// application doing optimistic concurrency would.
func (w *world) makeCAS(c *client, key string) (linearizability.Operation, node.Request) {
	v := w.newValue(c)
	op := linearizability.Operation{Kind: linearizability.KindCAS, Key: key, Value: v}
	cmp := &pb.Compare{Key: []byte(key), Target: pb.Compare_CREATE,
		Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_CreateRevision{CreateRevision: 0}}
	if prev := c.known[key]; prev != "" {
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

// makeTxn is a txn of 2 to 4 writes on distinct keys from k on, each a put
// (two in three) or a delete, applied at one revision.
func (w *world) makeTxn(c *client, k int) (linearizability.Operation, node.Request) {
	n := 2 + w.rngClient.IntN(3)
	keys := w.sc.Workload.Keys
	op := linearizability.Operation{Kind: linearizability.KindTxn}
	txn := &pb.TxnRequest{}
	used := make([]bool, keys)
	for range n {
		j := (k + w.rngClient.IntN(max(keys, 1))) % keys
		if used[j] {
			continue // a txn never writes one key twice (etcd refuses it)
		}
		used[j] = true
		key := keyName(j)
		if w.rngClient.IntN(3) < 2 {
			v := w.newValue(c)
			op.Ops = append(op.Ops, linearizability.TxnOp{Kind: linearizability.KindPut, Key: key, Value: v})
			txn.Success = append(txn.Success, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{
				RequestPut: &pb.PutRequest{Key: []byte(key), Value: []byte(v)}}})
			continue
		}
		op.Ops = append(op.Ops, linearizability.TxnOp{Kind: linearizability.KindDelete, Key: key})
		txn.Success = append(txn.Success, &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{
			RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(key)}}})
	}
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
	if w.fwd.intercept(m, rep) {
		return // a lease request forwarded to the leader, or the leader's answer to one
	}
	w.schedule(&event{at: w.now + w.net.clientDelay(), kind: evReply, rep: &rep, index: m.idx})
}

// replyArrives completes a client's operation, unless it already timed out.
func (w *world) replyArrives(e *event) {
	if w.appReply(*e.rep) {
		return
	}
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
	w.noteAuthOp(c, c.op.serializable, true, nil, rec.Call, rec.Return, describeOp(rec))
	w.learn(c, rec)
	w.finish(c, rec)
}

// fillResult copies a successful reply's results into the record: what
// the client saw, revisions included.
func fillResult(rec *linearizability.Operation, rep node.Reply) {
	switch rec.Kind {
	case linearizability.KindPut:
		rec.Revision = rep.Put.GetHeader().GetRevision()
	case linearizability.KindGet:
		if kvs := rep.Range.GetKvs(); len(kvs) > 0 {
			kv := kvs[0]
			rec.Found, rec.Result = true, string(kv.Value)
			rec.ModRevision, rec.CreateRevision, rec.Version = kv.ModRevision, kv.CreateRevision, kv.Version
		}
		rec.Revision = rep.Range.GetHeader().GetRevision()
	case linearizability.KindRange:
		for _, kv := range rep.Range.GetKvs() {
			rec.KVs = append(rec.KVs, linearizability.KV{Key: string(kv.Key), Value: string(kv.Value),
				ModRevision: kv.ModRevision, CreateRevision: kv.CreateRevision, Version: kv.Version})
		}
		rec.Revision = rep.Range.GetHeader().GetRevision()
	case linearizability.KindDelete:
		rec.Deleted = rep.DeleteRange.GetDeleted()
		rec.Revision = rep.DeleteRange.GetHeader().GetRevision()
	case linearizability.KindCAS:
		rec.Succeeded = rep.Txn.GetSucceeded()
		rec.Revision = rep.Txn.GetHeader().GetRevision()
	case linearizability.KindTxn:
		rec.Ops = slices.Clone(rec.Ops)
		for i, r := range rep.Txn.GetResponses() {
			if i < len(rec.Ops) && rec.Ops[i].Kind == linearizability.KindDelete {
				rec.Ops[i].Deleted = r.GetResponseDeleteRange().GetDeleted()
			}
		}
		rec.Revision = rep.Txn.GetHeader().GetRevision()
	}
}

// learn remembers what the client now knows of the keys, for its next CAS.
func (w *world) learn(c *client, rec linearizability.Operation) {
	switch rec.Kind {
	case linearizability.KindPut:
		c.known[rec.Key] = rec.Value
	case linearizability.KindCAS:
		c.known[rec.Key] = ""
		if rec.Succeeded {
			c.known[rec.Key] = rec.Value
		} // else we do not know the value that beat us; start over
	case linearizability.KindGet:
		c.known[rec.Key] = rec.Result
	case linearizability.KindDelete:
		w.forget(c, rec.Key, rec.End)
	case linearizability.KindRange:
		w.forget(c, rec.Key, rec.End)
		for _, kv := range rec.KVs {
			c.known[kv.Key] = kv.Value
		}
	case linearizability.KindTxn:
		for _, t := range rec.Ops {
			c.known[t.Key] = t.Value // a delete's Value is ""
		}
	}
	if rec.IsWrite() {
		w.stats.okWrites = append(w.stats.okWrites, w.now)
	}
}

// forget clears what the client knows of the keys in a range.
func (w *world) forget(c *client, key, end string) {
	for k := range w.sc.Workload.Keys {
		if name := keyName(k); linearizability.InRange(name, key, end) {
			c.known[name] = ""
		}
	}
}

// finishFailed records an operation that returned an error. A write whose
// outcome is unknown is recorded so, never as failed; a read that failed had
// no effect either way.
func (w *world) finishFailed(c *client, rec linearizability.Operation, err error) {
	rec.Outcome = linearizability.OutcomeFailed
	if node.OutcomeUnknown(err) && rec.IsWrite() {
		rec.Outcome = linearizability.OutcomeUnknown
	}
	rec.Error = err.Error()
	w.noteAuthOp(c, c.op.serializable, false, err, rec.Call, rec.Return, describeOp(rec))
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
	if rec.Outcome == linearizability.OutcomeUnknown {
		w.writes.unknown = append(w.writes.unknown, unknownWrite{index: len(w.history.Operations), requestID: replyID(c.idx, c.op.seq)})
	}
	w.history.Add(rec)
	w.record(TraceEvent{Kind: "return", Client: c.idx + 1, Detail: describeOp(rec)})
	c.op = nil
	if rec.Outcome == linearizability.OutcomeUnknown {
		// The unknown operation stays open for ever in the check; the
		// client's next operations must not overlap it under one ID.
		c.histID = w.newHistID()
		clear(c.known)
	}
	w.schedule(&event{at: w.thinkTime(), kind: evClientNext, index: c.idx})
}

func describeOp(op linearizability.Operation) string { return linearizability.Describe(&op) }
