package mvcc_test

import (
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/node/mvcc"
)

// The expectations are those of etcd's v3rpc checkTxnRequest and
// checkIntervals.
func TestValidateTxn(t *testing.T) {
	eq := pb.Compare_EQUAL
	delSpan := func(key, end string) *pb.RequestOp {
		return opDel(&pb.DeleteRangeRequest{Key: []byte(key), RangeEnd: []byte(end)})
	}
	p := func(k string) *pb.RequestOp { return opPut(put(k, "v")) }
	tests := []struct {
		name string
		r    *pb.TxnRequest
		err  error
	}{
		{"empty", txn(nil, nil, nil), nil},
		{"at the limit", txn(cmps(cmpVersion("a", eq, 0), cmpVersion("b", eq, 0), cmpVersion("c", eq, 0)), ops(p("a"), p("b"), p("c")), ops(p("a"), p("b"), p("c"))), nil},
		{"too many compares", txn(cmps(cmpVersion("a", eq, 0), cmpVersion("b", eq, 0), cmpVersion("c", eq, 0), cmpVersion("d", eq, 0)), nil, nil), mvcc.ErrTooManyOps},
		{"too many failure ops", txn(nil, nil, ops(p("a"), p("b"), p("c"), p("d"))), mvcc.ErrTooManyOps},
		// A nested transaction has what its parent leaves: 3 - 2.
		{"nested within budget", txn(nil, ops(p("a"), opTxn(txn(nil, ops(p("b")), nil))), nil), nil},
		{"nested over budget", txn(nil, ops(p("a"), opTxn(txn(nil, ops(p("b"), p("c")), nil))), nil), mvcc.ErrTooManyOps},
		{"compare without key", txn(cmps(cmpVersion("", eq, 0)), nil, nil), mvcc.ErrEmptyKey},
		{"put without key", txn(nil, ops(p("")), nil), mvcc.ErrEmptyKey},
		{"range without key", txn(nil, nil, ops(opRange(get("")))), mvcc.ErrEmptyKey},
		{"delete without key", txn(nil, ops(opDel(del(""))), nil), mvcc.ErrEmptyKey},
		{"nested put without key", txn(nil, ops(opTxn(txn(nil, ops(p("")), nil))), nil), mvcc.ErrEmptyKey},
		{"ignored value given", txn(nil, ops(opPut(&pb.PutRequest{Key: []byte("a"), Value: []byte("v"), IgnoreValue: true})), nil), mvcc.ErrValueProvided},
		{"ignored lease given", txn(nil, ops(opPut(&pb.PutRequest{Key: []byte("a"), Lease: 1, IgnoreLease: true})), nil), mvcc.ErrLeaseProvided},
		{"empty operation", txn(nil, ops(&pb.RequestOp{}), nil), mvcc.ErrKeyNotFound},
		{"put twice", txn(nil, ops(p("a"), p("a")), nil), mvcc.ErrDuplicateKey},
		{"put twice in failure", txn(nil, nil, ops(p("a"), p("a"))), mvcc.ErrDuplicateKey},
		{"same key in success and failure", txn(nil, ops(p("a")), ops(p("a"))), nil},
		{"put and delete", txn(nil, ops(opDel(del("a")), p("a")), nil), mvcc.ErrDuplicateKey},
		{"delete one key, put a later one", txn(nil, ops(opDel(del("a")), p("b"), p("a\x00")), nil), nil},
		{"put inside a deleted span", txn(nil, ops(p("b"), delSpan("a", "c")), nil), mvcc.ErrDuplicateKey},
		{"put at a deleted span's end", txn(nil, ops(p("c"), delSpan("a", "c")), nil), nil},
		{"deletes may overlap", txn(nil, ops(delSpan("a", "c"), opDel(del("b"))), nil), nil},
		{"put and range", txn(nil, ops(p("a"), opRange(get("a"))), nil), nil},
		// etcd quirk: "\x00" (from the key on) is an empty interval to it.
		{"put after a delete from key on", txn(nil, ops(delSpan("a", "\x00"), p("b")), nil), nil},
		{"nested then and else may share", txn(nil, ops(opTxn(txn(nil, ops(p("a")), ops(p("a"))))), nil), nil},
		{"nested put and outer put", txn(nil, ops(opTxn(txn(nil, ops(p("a")), nil)), p("a")), nil), mvcc.ErrDuplicateKey},
		{"nested else put and outer put", txn(nil, ops(opTxn(txn(nil, nil, ops(p("a")))), p("a")), nil), mvcc.ErrDuplicateKey},
		{"two nested puts", txn(nil, ops(opTxn(txn(nil, ops(p("a")), nil)), opTxn(txn(nil, ops(p("a")), nil))), nil), mvcc.ErrDuplicateKey},
		{"nested else puts what an earlier nested then puts", txn(nil, ops(opTxn(txn(nil, ops(p("a")), nil)), opTxn(txn(nil, nil, ops(p("a"))))), nil), mvcc.ErrDuplicateKey},
		{"outer delete and nested put", txn(nil, ops(opDel(del("a")), opTxn(txn(nil, ops(p("a")), nil))), nil), mvcc.ErrDuplicateKey},
		{"nested delete and outer put", txn(nil, ops(opTxn(txn(nil, ops(delSpan("a", "c")), nil)), p("b")), nil), mvcc.ErrDuplicateKey},
		{"nested delete then nested put", txn(nil, ops(opTxn(txn(nil, ops(opDel(del("a"))), nil)), opTxn(txn(nil, ops(p("a")), nil))), nil), mvcc.ErrDuplicateKey},
		// etcd quirk: a nested put is not checked against later nested deletes.
		{"nested put then nested delete", txn(nil, ops(opTxn(txn(nil, ops(p("a")), nil)), opTxn(txn(nil, ops(opDel(del("a"))), nil))), nil), nil},
		// Two levels down the budget is 3 - 1 - 1.
		{"deep conflict over budget", txn(nil, ops(opTxn(txn(nil, ops(opTxn(txn(nil, ops(p("a"), p("a")), nil))), nil))), nil), mvcc.ErrTooManyOps},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := mvcc.ValidateTxn(tt.r, 3); !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Errorf("ValidateTxn = %v; want %v", err, tt.err)
			}
		})
	}
}

func TestValidateTxnDeep(t *testing.T) {
	p := func(k string) *pb.RequestOp { return opPut(put(k, "v")) }
	deep := func(inner ...*pb.RequestOp) *pb.RequestOp {
		return opTxn(txn(nil, ops(opTxn(txn(nil, inner, nil))), nil))
	}
	for _, tc := range []struct {
		r   *pb.TxnRequest
		err error
	}{
		{txn(nil, ops(deep(p("a"), p("a"))), nil), mvcc.ErrDuplicateKey},
		{txn(nil, ops(deep(p("a"), p("b"))), nil), nil},
		{txn(nil, ops(opDel(&pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("b")}), deep(p("a"))), nil), mvcc.ErrDuplicateKey},
		{txn(nil, ops(p("a"), deep(p("a"))), nil), mvcc.ErrDuplicateKey},
	} {
		if err := mvcc.ValidateTxn(tc.r, 10); err != tc.err {
			t.Errorf("ValidateTxn(%s) = %v; want %v", text(tc.r), err, tc.err)
		}
	}
}

func TestValidateSingleRequests(t *testing.T) {
	if err := mvcc.ValidateRange(get("")); err != mvcc.ErrEmptyKey {
		t.Errorf("ValidateRange empty key: %v", err)
	}
	if err := mvcc.ValidateDeleteRange(del("")); err != mvcc.ErrEmptyKey {
		t.Errorf("ValidateDeleteRange empty key: %v", err)
	}
	for _, tc := range []struct {
		r   *pb.PutRequest
		err error
	}{
		{put("", "v"), mvcc.ErrEmptyKey},
		{put("k", "v"), nil},
		{&pb.PutRequest{Key: []byte("k"), IgnoreValue: true}, nil},
		{&pb.PutRequest{Key: []byte("k"), Value: []byte("v"), IgnoreValue: true}, mvcc.ErrValueProvided},
		{&pb.PutRequest{Key: []byte("k"), Lease: 3, IgnoreLease: true}, mvcc.ErrLeaseProvided},
	} {
		if err := mvcc.ValidatePut(tc.r); err != tc.err {
			t.Errorf("ValidatePut(%v) = %v; want %v", tc.r, err, tc.err)
		}
	}
}
