package mvcc

import (
	"bytes"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Request validation is the node's job, before proposing; these are etcd's
// rules (server/etcdserver/api/v3rpc/key.go) so its answers match etcd's.

// ValidateRange rejects a Range without a key.
func ValidateRange(r *pb.RangeRequest) error {
	if len(r.GetKey()) == 0 {
		return ErrEmptyKey
	}
	return nil
}

// ValidatePut rejects a Put without a key, or with a value (lease) it asks
// to ignore.
func ValidatePut(r *pb.PutRequest) error {
	switch {
	case len(r.GetKey()) == 0:
		return ErrEmptyKey
	case r.GetIgnoreValue() && len(r.GetValue()) != 0:
		return ErrValueProvided
	case r.GetIgnoreLease() && r.GetLease() != 0:
		return ErrLeaseProvided
	}
	return nil
}

// ValidateDeleteRange rejects a DeleteRange without a key.
func ValidateDeleteRange(r *pb.DeleteRangeRequest) error {
	if len(r.GetKey()) == 0 {
		return ErrEmptyKey
	}
	return nil
}

// ValidateTxn applies etcd's rules to a transaction: at most maxOps
// compares, and at most maxOps operations in each branch, where a nested
// transaction's budget is what its parent leaves (maxOps minus the parent's
// largest count); keys present; every operation set; and no key both put
// twice or put and deleted by the operations one execution may run
// (ErrDuplicateKey; the two branches of a nested transaction exclude each
// other, so they may put the same key).
//
// The overlap check is etcd's, quirks included: a delete with range_end
// "\x00" (every key from key on) overlaps nothing, and a put in a nested
// transaction is checked against the deletes of the nested transactions
// before it, not after it.
func ValidateTxn(r *pb.TxnRequest, maxOps int) error {
	if err := validateTxnRequest(r, maxOps); err != nil {
		return err
	}
	// Overlaps are checked after the rest, which bounds the work.
	if _, _, err := checkIntervals(r.GetSuccess()); err != nil {
		return err
	}
	_, _, err := checkIntervals(r.GetFailure())
	return err
}

func validateTxnRequest(r *pb.TxnRequest, maxOps int) error {
	opc := max(len(r.GetCompare()), len(r.GetSuccess()), len(r.GetFailure()))
	if opc > maxOps {
		return ErrTooManyOps
	}
	for _, c := range r.GetCompare() {
		if len(c.GetKey()) == 0 {
			return ErrEmptyKey
		}
	}
	for _, op := range r.GetSuccess() {
		if err := validateRequestOp(op, maxOps-opc); err != nil {
			return err
		}
	}
	for _, op := range r.GetFailure() {
		if err := validateRequestOp(op, maxOps-opc); err != nil {
			return err
		}
	}
	return nil
}

func validateRequestOp(op *pb.RequestOp, maxOps int) error {
	switch req := op.GetRequest().(type) {
	case *pb.RequestOp_RequestRange:
		return ValidateRange(req.RequestRange)
	case *pb.RequestOp_RequestPut:
		return ValidatePut(req.RequestPut)
	case *pb.RequestOp_RequestDeleteRange:
		return ValidateDeleteRange(req.RequestDeleteRange)
	case *pb.RequestOp_RequestTxn:
		return validateTxnRequest(req.RequestTxn, maxOps)
	default: // an empty operation
		return ErrKeyNotFound
	}
}

// interval is a deleted span [begin, end); end empty means unbounded, as
// with etcd's affine string intervals. A delete of one key is [key, key\0).
type interval struct {
	begin, end []byte
}

// contains is etcd's interval-tree stabbing test for the point key:
// begin <= key < end. An inverted interval (the "\x00" range_end of a
// delete from a key on) contains nothing.
func (iv interval) contains(key []byte) bool {
	return bytes.Compare(iv.begin, key) <= 0 && (len(iv.end) == 0 || bytes.Compare(key, iv.end) < 0)
}

func anyContains(ivs []interval, key []byte) bool {
	for _, iv := range ivs {
		if iv.contains(key) {
			return true
		}
	}
	return false
}

// checkIntervals returns the keys put and the spans deleted by ops and the
// transactions nested in them, or ErrDuplicateKey if a put overlaps another
// put or a delete (etcd's checkIntervals). The returned puts are a set;
// only membership is used, so map order never matters.
func checkIntervals(ops []*pb.RequestOp) (map[string]struct{}, []interval, error) {
	// This level's deletes first, to check the nested puts against them.
	var dels []interval
	for _, op := range ops {
		dr := op.GetRequestDeleteRange()
		if dr == nil {
			continue
		}
		iv := interval{begin: dr.GetKey(), end: dr.GetRangeEnd()}
		if len(iv.end) == 0 {
			iv.end = append(bytes.Clone(iv.begin), 0)
		}
		dels = append(dels, iv)
	}

	puts := make(map[string]struct{})
	for _, op := range ops {
		t := op.GetRequestTxn()
		if t == nil {
			continue
		}
		putsThen, delsThen, err := checkIntervals(t.GetSuccess())
		if err != nil {
			return nil, nil, err
		}
		putsElse, delsElse, err := checkIntervals(t.GetFailure())
		if err != nil {
			return nil, nil, err
		}
		for k := range putsThen {
			if _, dup := puts[k]; dup || anyContains(dels, []byte(k)) {
				return nil, nil, ErrDuplicateKey
			}
			puts[k] = struct{}{}
		}
		for k := range putsElse {
			if _, dup := puts[k]; dup {
				// The same key in both branches is fine: only one runs.
				if _, inThen := putsThen[k]; !inThen {
					return nil, nil, ErrDuplicateKey
				}
			}
			if anyContains(dels, []byte(k)) {
				return nil, nil, ErrDuplicateKey
			}
			puts[k] = struct{}{}
		}
		dels = append(dels, delsThen...)
		dels = append(dels, delsElse...)
	}

	for _, op := range ops {
		p := op.GetRequestPut()
		if p == nil {
			continue
		}
		k := string(p.GetKey())
		if _, dup := puts[k]; dup || anyContains(dels, p.GetKey()) {
			return nil, nil, ErrDuplicateKey
		}
		puts[k] = struct{}{}
	}
	return puts, dels, nil
}
