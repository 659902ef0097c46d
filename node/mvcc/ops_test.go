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

// TestKeysAndPutBytesAsEtcd: the store counts its live keys as etcd's
// keys_total gauge does (a put that creates a key, a delete that ends
// it; an overwrite, a delete of nothing and a transaction taken back
// change nothing; a store reopened counts the same), and the key and value
// bytes of every put, as etcd's total_put_size_in_bytes.
func TestKeysAndPutBytesAsEtcd(t *testing.T) {
	h := newHarness(t)
	// The one transaction taken back after writes began (see Write.Txn):
	// a put of a key its delete of range_end "\x00" removed, keeping the
	// value. Its first put's bytes stay counted, as its Puts do.
	keep := &pb.PutRequest{Key: []byte("k"), IgnoreValue: true}
	delFrom := &pb.DeleteRangeRequest{Key: []byte("k"), RangeEnd: []byte{0}}
	for _, step := range []struct {
		name     string
		op       any
		fails    bool
		keys     int64
		putBytes uint64
	}{
		{"put k", put("k", "v"), false, 1, 2},
		{"overwrite k", put("k", "vv"), false, 1, 5},
		{"put k2", put("k2", "v2"), false, 2, 9},
		{"delete k", del("k"), false, 1, 9},
		{"delete k again", del("k"), false, 1, 9},
		{"put k back", put("k", "v"), false, 2, 11},
		{"txn of a new key's put, a delete and a failing put, taken back",
			txn(nil, ops(opPut(put("new", "v")), opDel(delFrom), opPut(keep)), nil), true, 2, 15},
		{"delete both", span("k", "l"), false, 0, 15},
	} {
		var err error
		if r, ok := step.op.(*pb.RangeRequest); ok { // a span: deleted
			_, err = h.do(&pb.DeleteRangeRequest{Key: r.Key, RangeEnd: r.RangeEnd})
		} else {
			_, err = h.do(step.op)
		}
		if (err != nil) != step.fails {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got, gotBytes := h.s.Keys(), h.s.PutBytes(); got != step.keys || gotBytes != step.putBytes {
			t.Fatalf("after %s: %d keys, %d put bytes; want %d, %d", step.name, got, gotBytes, step.keys, step.putBytes)
		}
	}
	h.mustDo(put("a", "1"))
	h.mustDo(put("b", "1"))
	h.mustDo(del("a"))
	reopened, err := mvcc.Open(h.be)
	if err != nil {
		t.Fatal(err)
	}
	if got := reopened.Keys(); got != h.s.Keys() || got != 1 {
		t.Fatalf("reopened: %d keys, the store had %d, want 1", got, h.s.Keys())
	}
}

// TestWatchEventsCounted: every event handed to a watcher counts once per
// watcher that gets it, as etcd counts the events it sends its watchers;
// an event no watcher wants does not count.
func TestWatchEventsCounted(t *testing.T) {
	h := newHarness(t)
	for _, req := range []mvcc.WatchRequest{{Key: []byte("k")}, {Key: []byte("k"), End: []byte("l")}} {
		if _, err := h.s.Watch(req); err != nil {
			t.Fatal(err)
		}
	}
	h.mustDo(put("k", "v"))
	h.mustDo(put("other", "v"))
	h.mustDo(del("k"))
	var events int
	for _, r := range h.s.WatchResponses() {
		events += len(r.Events)
	}
	if got := h.s.WatchEvents(); got != 4 || events != 4 {
		t.Fatalf("two watchers of k, a put and a delete of k: WatchEvents %d, %d events handed out, want 4", got, events)
	}
}

// TestCompactedKeysCounted: a compaction counts the stored revisions it
// deletes, as etcd's db_compaction_keys_total: k's put at 2, overwritten
// at 3, goes with a compaction at 3.
func TestCompactedKeysCounted(t *testing.T) {
	h := newHarness(t)
	h.mustDo(put("k", "1"))
	h.mustDo(put("k", "2"))
	h.mustDo(put("j", "1"))
	if got := h.s.CompactedKeys(); got != 0 {
		t.Fatalf("before any compaction: %d", got)
	}
	h.mustDo(compact(3))
	if got := h.s.CompactedKeys(); got != 1 {
		t.Fatalf("a compaction at 3 of k@2, k@3, j@4: %d keys compacted, want 1", got)
	}
}
