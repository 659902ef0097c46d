package mvcc_test

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/node/mvcc"
)

// TestOpCountsAsEtcd: the store counts ranges, puts, delete ranges and
// transactions as etcd's mvcc metrics do (each step's counts measured on
// etcd 3.7.3 with etcdctl, one step at a time): a lone put, get or delete is no transaction;
// a txn's compare is a range of its own, outside the write transaction,
// which counts once it has two operations; a read-only txn counts its
// compares with its ranges.
func TestOpCountsAsEtcd(t *testing.T) {
	h := newHarness(t)
	cmp := &pb.Compare{Key: []byte("k"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL,
		TargetUnion: &pb.Compare_Value{Value: []byte("v")}}
	get := &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("k")}}}
	put := &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("k2"), Value: []byte("v2")}}}
	for _, step := range []struct {
		name string
		op   any
		want mvcc.OpCounts
	}{
		{"put", &pb.PutRequest{Key: []byte("k"), Value: []byte("v")}, mvcc.OpCounts{Puts: 1}},
		{"get", &pb.RangeRequest{Key: []byte("k")}, mvcc.OpCounts{Puts: 1, Ranges: 1}},
		{"txn of one put", &pb.TxnRequest{Compare: []*pb.Compare{cmp}, Success: []*pb.RequestOp{put}},
			mvcc.OpCounts{Puts: 2, Ranges: 2}},
		{"delete", &pb.DeleteRangeRequest{Key: []byte("k2")}, mvcc.OpCounts{Puts: 2, Ranges: 2, Deletes: 1}},
		{"txn of a put and a get", &pb.TxnRequest{Compare: []*pb.Compare{cmp}, Success: []*pb.RequestOp{put, get}},
			mvcc.OpCounts{Puts: 3, Ranges: 4, Deletes: 1, Txns: 1}},
		{"read txn of a compare and a get", readTxn{&pb.TxnRequest{Compare: []*pb.Compare{cmp}, Success: []*pb.RequestOp{get}}},
			mvcc.OpCounts{Puts: 3, Ranges: 6, Deletes: 1, Txns: 2}},
	} {
		h.mustDo(step.op)
		if got := h.s.Ops(); got != step.want {
			t.Fatalf("after %s: %+v, want %+v", step.name, got, step.want)
		}
	}
}
