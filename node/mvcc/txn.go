package mvcc

import (
	"bytes"
	"cmp"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// txnPath records which branch a transaction and each transaction nested in
// its chosen branch take. As in etcd, every compare, nested ones included,
// is evaluated on the state BEFORE the transaction's writes.
type txnPath struct {
	succeeded bool
	// children has one path per nested transaction of the chosen branch,
	// in order.
	children []*txnPath
}

// ops returns the operations of the branch the path chose.
func (p *txnPath) ops(r *pb.TxnRequest) []*pb.RequestOp {
	if p.succeeded {
		return r.GetSuccess()
	}
	return r.GetFailure()
}

func compareToPath(v view, r *pb.TxnRequest) *txnPath {
	p := &txnPath{succeeded: applyCompares(v, r.GetCompare())}
	for _, op := range p.ops(r) {
		if t := op.GetRequestTxn(); t != nil {
			p.children = append(p.children, compareToPath(v, t))
		}
	}
	return p
}

func applyCompares(v view, cmps []*pb.Compare) bool {
	for _, c := range cmps {
		if !applyCompare(v, c) {
			return false
		}
	}
	return true
}

// applyCompare holds if every key of the compare's span satisfies it. An
// empty span compares as a zero KeyValue (version 0, revisions 0, lease 0),
// except for VALUE, which fails: a missing value cannot equal anything.
func applyCompare(v view, c *pb.Compare) bool {
	v.s.ops.Ranges++ // etcd reads the compare's key with a range
	rr, err := v.rangeKeys(c.GetKey(), spanEnd(c.GetRangeEnd()), rangeOptions{
		keysOnly: c.GetTarget() != pb.Compare_VALUE,
	})
	if err != nil {
		return false
	}
	if len(rr.kvs) == 0 {
		if c.GetTarget() == pb.Compare_VALUE {
			return false
		}
		return compareKV(c, &mvccpb.KeyValue{})
	}
	for _, kv := range rr.kvs {
		if !compareKV(c, kv) {
			return false
		}
	}
	return true
}

// compareKV compares kv's target field with the compare's operand; an
// operand of another target's type counts as zero, an unknown target
// compares equal and an unknown result holds, all as in etcd.
func compareKV(c *pb.Compare, kv *mvccpb.KeyValue) bool {
	var result int
	switch c.GetTarget() {
	case pb.Compare_VALUE:
		var operand []byte
		if tv, ok := c.GetTargetUnion().(*pb.Compare_Value); ok {
			operand = tv.Value
		}
		result = bytes.Compare(kv.Value, operand)
	case pb.Compare_CREATE:
		result = cmp.Compare(kv.CreateRevision, c.GetCreateRevision())
	case pb.Compare_MOD:
		result = cmp.Compare(kv.ModRevision, c.GetModRevision())
	case pb.Compare_VERSION:
		result = cmp.Compare(kv.Version, c.GetVersion())
	case pb.Compare_LEASE:
		result = cmp.Compare(kv.Lease, c.GetLease())
	}
	switch c.GetResult() {
	case pb.Compare_EQUAL:
		return result == 0
	case pb.Compare_NOT_EQUAL:
		return result != 0
	case pb.Compare_GREATER:
		return result > 0
	case pb.Compare_LESS:
		return result < 0
	}
	return true
}

// IsTxnReadOnly reports whether every operation of both branches of r is a
// Range (etcd's test: a nested transaction counts as a write). Such
// transactions need not go through raft's log: see Store.ReadTxn.
func IsTxnReadOnly(r *pb.TxnRequest) bool {
	for _, op := range r.GetSuccess() {
		if op.GetRequestRange() == nil {
			return false
		}
	}
	for _, op := range r.GetFailure() {
		if op.GetRequestRange() == nil {
			return false
		}
	}
	return true
}

// walkPath calls f on every non-transaction operation the path executes.
func walkPath(r *pb.TxnRequest, p *txnPath, f func(op *pb.RequestOp) error) error {
	child := 0
	for _, op := range p.ops(r) {
		if t := op.GetRequestTxn(); t != nil {
			if err := walkPath(t, p.children[child], f); err != nil {
				return err
			}
			child++
			continue
		}
		if err := f(op); err != nil {
			return err
		}
	}
	return nil
}

// checkTxnPuts fails a transaction, before it writes anything, whose puts
// with ignore_value or ignore_lease name a key missing before the
// transaction, or whose puts name a lease checkLease refuses (etcd's
// checkRequestPut, in that order for each put).
func checkTxnPuts(v view, r *pb.TxnRequest, p *txnPath, checkLease func(id int64) error) error {
	return walkPath(r, p, func(op *pb.RequestOp) error {
		put := op.GetRequestPut()
		if put == nil {
			return nil
		}
		if put.GetIgnoreValue() || put.GetIgnoreLease() {
			rr, err := v.rangeKeys(put.GetKey(), nil, rangeOptions{keysOnly: true})
			if err != nil {
				return err
			}
			if len(rr.kvs) == 0 {
				return ErrKeyNotFound
			}
		}
		return checkLease(put.GetLease())
	})
}

// checkTxnRanges fails a transaction whose ranges name a revision that is
// compacted or in the future (judged before the transaction, as etcd's
// checkRequestRange does) or an unknown sort target.
func checkTxnRanges(v view, r *pb.TxnRequest, p *txnPath) error {
	return walkPath(r, p, func(op *pb.RequestOp) error {
		rr := op.GetRequestRange()
		if rr == nil {
			return nil
		}
		switch rev := rr.GetRevision(); {
		case rev == 0:
		case rev > v.rev:
			return ErrFutureRev
		case rev < v.s.compactRev:
			return ErrCompacted
		}
		return checkSortTarget(rr)
	})
}
