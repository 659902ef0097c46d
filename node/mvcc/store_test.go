package mvcc_test

import (
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/node/mvcc"
)

// The expected answers below are etcd v3.7's, worked out from its code
// (server/storage/mvcc and server/etcdserver/txn): a fresh store is at
// revision 1, the first change gets revision 2, a transaction is one
// revision, a generation's create_revision is its first put, and a delete
// restarts the version.

func TestFreshStore(t *testing.T) {
	h := newHarness(t)
	if h.s.Rev() != 1 || h.s.CompactRev() != -1 {
		t.Fatalf("fresh store: Rev %d CompactRev %d; want 1, -1", h.s.Rev(), h.s.CompactRev())
	}
	if i, term := h.s.ConsistentIndex(); i != 0 || term != 0 {
		t.Fatalf("fresh store: ConsistentIndex %d/%d", i, term)
	}
	runSteps(t, h, []step{
		{op: get("foo"), want: rangeResp(0, false)},
		{op: getAt("foo", 1), want: rangeResp(0, false)},
		{op: getAt("foo", 2), err: mvcc.ErrFutureRev},
		{op: compact(2), err: mvcc.ErrFutureRev},
		{op: compact(1), want: &pb.CompactionResponse{Header: hdr(1)}, rev: 1},
		{op: compact(1), err: mvcc.ErrCompacted},
		{op: getAt("foo", 1), want: rangeResp(0, false)}, // at the compaction point is fine
		{op: put("foo", "bar"), want: putResp(2, nil), rev: 2},
	})
}

func TestPutDeleteVersions(t *testing.T) {
	runSteps(t, newHarness(t), []step{
		{op: put("foo", "bar"), want: putResp(2, nil), rev: 2},
		{op: get("foo"), want: rangeResp(1, false, kv("foo", "bar", 2, 2, 1))},
		// An identical value is a new revision and version.
		{op: &pb.PutRequest{Key: []byte("foo"), Value: []byte("bar"), PrevKv: true},
			want: putResp(3, kv("foo", "bar", 2, 2, 1)), rev: 3},
		{op: get("foo"), want: rangeResp(1, false, kv("foo", "bar", 2, 3, 2))},
		{op: &pb.DeleteRangeRequest{Key: []byte("foo"), PrevKv: true},
			want: delResp(4, 1, kv("foo", "bar", 2, 3, 2)), rev: 4},
		{op: get("foo"), want: rangeResp(0, false)},
		// Deleting nothing keeps the revision.
		{op: del("foo"), want: delResp(4, 0), rev: 4},
		{op: &pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), PrevKv: true}, want: delResp(4, 0), rev: 4},
		// A new generation: created anew, version 1.
		{op: put("foo", "baz"), want: putResp(5, nil), rev: 5},
		{op: get("foo"), want: rangeResp(1, false, kv("foo", "baz", 5, 5, 1))},
		// History.
		{op: getAt("foo", 3), want: rangeResp(1, false, kv("foo", "bar", 2, 3, 2))},
		{op: getAt("foo", 2), want: rangeResp(1, false, kv("foo", "bar", 2, 2, 1))},
		{op: getAt("foo", 4), want: rangeResp(0, false)},
		{op: getAt("foo", 1), want: rangeResp(0, false)},
		{op: getAt("foo", 6), err: mvcc.ErrFutureRev},
		{op: getAt("foo", -3), want: rangeResp(1, false, kv("foo", "baz", 5, 5, 1))}, // negative: current
		// An empty value is a value.
		{op: put("empty", ""), want: putResp(6, nil)},
		{op: get("empty"), want: rangeResp(1, false, kv("empty", "", 6, 6, 1))},
	})
}

func TestDeleteRanges(t *testing.T) {
	h := newHarness(t)
	for _, k := range []string{"a", "b", "c", "d"} {
		h.mustDo(put(k, k))
	}
	runSteps(t, h, []step{
		// [b, d), several keys in one revision with sub-revisions.
		{op: &pb.DeleteRangeRequest{Key: []byte("b"), RangeEnd: []byte("d"), PrevKv: true},
			want: delResp(6, 2, kv("b", "b", 3, 3, 1), kv("c", "c", 4, 4, 1)), rev: 6},
		{op: span("a", "z"), want: rangeResp(2, false, kv("a", "a", 2, 2, 1), kv("d", "d", 5, 5, 1))},
		// "\x00": every key from key on.
		{op: &pb.DeleteRangeRequest{Key: []byte("b"), RangeEnd: []byte{0}}, want: delResp(7, 1), rev: 7},
		{op: span("a", "z"), want: rangeResp(1, false, kv("a", "a", 2, 2, 1))},
		{op: getAt("c", 5), want: rangeResp(1, false, kv("c", "c", 4, 4, 1))},
	})
}

func TestLeasesAndIgnoreFlags(t *testing.T) {
	runSteps(t, newHarness(t), []step{
		{op: &pb.PutRequest{Key: []byte("k"), Value: []byte("v"), Lease: 7}, want: putResp(2, nil)},
		{op: get("k"), want: rangeResp(1, false, leased(kv("k", "v", 2, 2, 1), 7))},
		{op: &pb.PutRequest{Key: []byte("k"), IgnoreValue: true, Lease: 8}, want: putResp(3, nil)},
		{op: get("k"), want: rangeResp(1, false, leased(kv("k", "v", 2, 3, 2), 8))},
		{op: &pb.PutRequest{Key: []byte("k"), Value: []byte("w"), IgnoreLease: true}, want: putResp(4, nil)},
		{op: get("k"), want: rangeResp(1, false, leased(kv("k", "w", 2, 4, 3), 8))},
		{op: &pb.PutRequest{Key: []byte("missing"), IgnoreValue: true}, err: mvcc.ErrKeyNotFound, rev: 4},
		{op: &pb.PutRequest{Key: []byte("missing"), Value: []byte("x"), IgnoreLease: true}, err: mvcc.ErrKeyNotFound, rev: 4},
		{op: get("missing"), want: rangeResp(0, false)},
		{op: &pb.PutRequest{Key: []byte("k"), IgnoreValue: true, IgnoreLease: true, PrevKv: true},
			want: putResp(5, leased(kv("k", "w", 2, 4, 3), 8)), rev: 5},
		{op: get("k"), want: rangeResp(1, false, leased(kv("k", "w", 2, 5, 4), 8))},
		// A plain put detaches the lease.
		{op: put("k", "x"), want: putResp(6, nil)},
		{op: get("k"), want: rangeResp(1, false, kv("k", "x", 2, 6, 5))},
	})
}

func TestRangeOptions(t *testing.T) {
	h := newHarness(t)
	for _, p := range [][2]string{{"a", "3"}, {"b", "1"}, {"c", "2"}, {"b", "4"}, {"d", "0"}} {
		h.mustDo(put(p[0], p[1]))
	}
	A, B, C, D := kv("a", "3", 2, 2, 1), kv("b", "4", 3, 5, 2), kv("c", "2", 4, 4, 1), kv("d", "0", 6, 6, 1)
	all := func(r *pb.RangeRequest) *pb.RangeRequest { r.Key, r.RangeEnd = []byte("a"), []byte("e"); return r }
	runSteps(t, h, []step{
		{op: span("a", "e"), want: rangeResp(4, false, A, B, C, D)},
		{op: span("b", "d"), want: rangeResp(2, false, B, C)},
		{op: span("d", "a"), want: rangeResp(0, false)},
		{op: &pb.RangeRequest{Key: []byte("c"), RangeEnd: []byte{0}}, want: rangeResp(2, false, C, D)},
		{op: &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}, want: rangeResp(4, false, A, B, C, D)},
		// Limit: count is of every match, more says there are others.
		{op: all(&pb.RangeRequest{Limit: 2}), want: rangeResp(4, true, A, B)},
		{op: all(&pb.RangeRequest{Limit: 4}), want: rangeResp(4, false, A, B, C, D)},
		{op: all(&pb.RangeRequest{Limit: 5}), want: rangeResp(4, false, A, B, C, D)},
		{op: all(&pb.RangeRequest{Limit: -1}), want: rangeResp(4, false, A, B, C, D)},
		// Sorting, then the limit.
		{op: all(&pb.RangeRequest{Limit: 2, SortTarget: pb.RangeRequest_MOD, SortOrder: pb.RangeRequest_DESCEND}), want: rangeResp(4, true, D, B)},
		{op: all(&pb.RangeRequest{SortTarget: pb.RangeRequest_VERSION, SortOrder: pb.RangeRequest_ASCEND}), want: rangeResp(4, false, A, C, D, B)},
		{op: all(&pb.RangeRequest{SortTarget: pb.RangeRequest_VERSION, SortOrder: pb.RangeRequest_DESCEND}), want: rangeResp(4, false, B, A, C, D)},
		// A target without an order sorts ascending.
		{op: all(&pb.RangeRequest{SortTarget: pb.RangeRequest_VALUE}), want: rangeResp(4, false, D, C, A, B)},
		{op: all(&pb.RangeRequest{SortTarget: pb.RangeRequest_KEY, SortOrder: pb.RangeRequest_DESCEND}), want: rangeResp(4, false, D, C, B, A)},
		{op: all(&pb.RangeRequest{SortTarget: pb.RangeRequest_KEY, SortOrder: pb.RangeRequest_ASCEND}), want: rangeResp(4, false, A, B, C, D)},
		{op: all(&pb.RangeRequest{SortTarget: pb.RangeRequest_CREATE, SortOrder: pb.RangeRequest_DESCEND}), want: rangeResp(4, false, D, C, B, A)},
		// An unknown order sorts ascending; an unknown target is refused.
		{op: all(&pb.RangeRequest{SortTarget: pb.RangeRequest_MOD, SortOrder: 7}), want: rangeResp(4, false, A, C, B, D)},
		{op: all(&pb.RangeRequest{SortTarget: 9}), err: mvcc.ErrSortTarget},
		// keys_only, count_only.
		{op: all(&pb.RangeRequest{KeysOnly: true, Limit: 1}), want: rangeResp(4, true, keyOnly(kv("a", "3", 2, 2, 1)))},
		{op: all(&pb.RangeRequest{KeysOnly: true, SortTarget: pb.RangeRequest_VALUE, SortOrder: pb.RangeRequest_DESCEND}),
			want: rangeResp(4, false, keyOnly(kv("b", "4", 3, 5, 2)), keyOnly(kv("a", "3", 2, 2, 1)), keyOnly(kv("c", "2", 4, 4, 1)), keyOnly(kv("d", "0", 6, 6, 1)))},
		{op: all(&pb.RangeRequest{CountOnly: true}), want: rangeResp(4, false)},
		{op: &pb.RangeRequest{Key: []byte("b"), RangeEnd: []byte("d"), CountOnly: true}, want: rangeResp(2, false)},
		{op: &pb.RangeRequest{Key: []byte("b"), CountOnly: true}, want: rangeResp(1, false)},
		{op: &pb.RangeRequest{Key: []byte("x"), CountOnly: true}, want: rangeResp(0, false)},
		// Revision filters prune the keys but not the count.
		{op: all(&pb.RangeRequest{MinModRevision: 5}), want: rangeResp(4, false, B, D)},
		{op: all(&pb.RangeRequest{MaxModRevision: 4}), want: rangeResp(4, false, A, C)},
		{op: all(&pb.RangeRequest{MinCreateRevision: 4}), want: rangeResp(4, false, C, D)},
		{op: all(&pb.RangeRequest{MaxCreateRevision: 3}), want: rangeResp(4, false, A, B)},
		{op: all(&pb.RangeRequest{MinModRevision: 3, MaxModRevision: 5}), want: rangeResp(4, false, B, C)},
		{op: all(&pb.RangeRequest{MinModRevision: 5, Limit: 1}), want: rangeResp(4, true, B)},
		// An older revision.
		{op: all(&pb.RangeRequest{Revision: 4}), want: rangeResp(3, false, A, kv("b", "1", 3, 3, 1), C)},
		{op: all(&pb.RangeRequest{Revision: 4, Limit: 3}), want: rangeResp(3, false, A, kv("b", "1", 3, 3, 1), C)},
	})
}

func TestTxn(t *testing.T) {
	h := newHarness(t)
	h.mustDo(put("a", "1"))
	h.mustDo(put("b", "2"))
	eq, ne, gt, lt := pb.Compare_EQUAL, pb.Compare_NOT_EQUAL, pb.Compare_GREATER, pb.Compare_LESS
	runSteps(t, h, []step{
		// Two puts and a range that sees them: one revision.
		{op: txn(cmps(cmpValue("a", eq, "1")),
			ops(opPut(put("a", "10")), opPut(put("c", "3")), opRange(span("a", "z"))),
			ops(opRange(get("a")))),
			want: txnResp(4, true,
				respPut(putResp(4, nil)), respPut(putResp(4, nil)),
				respRange(txnRangeResp(4, 3, kv("a", "10", 2, 4, 2), kv("b", "2", 3, 3, 1), kv("c", "3", 4, 4, 1)))),
			rev: 4},
		{op: get("c"), want: rangeResp(1, false, kv("c", "3", 4, 4, 1))},
		// The failure branch, read-only: no new revision.
		{op: txn(cmps(cmpVersion("a", eq, 5)), ops(opPut(put("a", "x"))), ops(opRange(get("a")))),
			want: txnResp(4, false, respRange(txnRangeResp(4, 1, kv("a", "10", 2, 4, 2)))), rev: 4},
		// A delete of nothing answers the revision so far.
		{op: txn(nil, ops(opDel(del("x")), opPut(put("d", "4"))), nil),
			want: txnResp(5, true, respDel(delResp(4, 0)), respPut(putResp(5, nil))), rev: 5},
		{op: txn(nil, ops(opPut(put("e", "5")), opDel(del("x"))), nil),
			want: txnResp(6, true, respPut(putResp(6, nil)), respDel(delResp(6, 0))), rev: 6},
		{op: txn(nil, ops(opDel(del("x"))), nil), want: txnResp(6, true, respDel(delResp(6, 0))), rev: 6},
		// Compares over a range: every key must hold.
		{op: txn(cmps(withEnd(cmpVersion("a", gt, 0), "c")), nil, nil), want: txnResp(6, true)},
		{op: txn(cmps(withEnd(cmpMod("a", lt, 5), "z")), nil, nil), want: txnResp(6, false)},
		{op: txn(cmps(withEnd(cmpMod("a", lt, 7), "z")), nil, nil), want: txnResp(6, true)},
		// Missing keys: VALUE fails whatever the result, others see zeros.
		{op: txn(cmps(cmpValue("missing", ne, "x")), nil, nil), want: txnResp(6, false)},
		{op: txn(cmps(cmpLease("missing", eq, 0), cmpCreate("missing", eq, 0), cmpVersion("missing", lt, 1)), nil, nil), want: txnResp(6, true)},
		{op: txn(cmps(cmpVersion("a", eq, 2), cmpCreate("a", eq, 2), cmpMod("a", eq, 4), cmpLease("a", eq, 0), cmpValue("a", gt, "1")), nil, nil), want: txnResp(6, true)},
		{op: txn(cmps(cmpVersion("a", eq, 2), cmpVersion("b", eq, 2)), nil, nil), want: txnResp(6, false)},
		// Nested: every compare sees the state before the transaction, so
		// the nested one finds n missing although the outer put wrote it.
		{op: txn(cmps(cmpVersion("n", eq, 0)), ops(
			opPut(put("n", "1")),
			opTxn(txn(cmps(cmpVersion("n", eq, 0)), ops(opPut(put("m", "1"))), ops(opPut(put("m", "2")))))), nil),
			want: txnResp(7, true, respPut(putResp(7, nil)),
				respTxn(&pb.TxnResponse{Header: &pb.ResponseHeader{}, Succeeded: true, Responses: ops2(respPut(putResp(7, nil)))})),
			rev: 7},
		{op: get("m"), want: rangeResp(1, false, kv("m", "1", 7, 7, 1))},
		// Reads see the transaction's own writes.
		{op: txn(nil, ops(opPut(put("p", "1")), opRange(get("p"))), nil),
			want: txnResp(8, true, respPut(putResp(8, nil)), respRange(txnRangeResp(8, 1, kv("p", "1", 8, 8, 1)))), rev: 8},
		// Checks before any write: nothing happens.
		{op: txn(nil, ops(opPut(put("q", "1")), opPut(&pb.PutRequest{Key: []byte("missing"), IgnoreValue: true})), nil),
			err: mvcc.ErrKeyNotFound, rev: 8},
		{op: txn(nil, ops(opPut(put("q", "1")), opRange(getAt("a", 100))), nil), err: mvcc.ErrFutureRev, rev: 8},
		{op: txn(nil, ops(opPut(put("q", "1")), opRange(&pb.RangeRequest{Key: []byte("a"), SortTarget: 9})), nil), err: mvcc.ErrSortTarget, rev: 8},
		// etcd quirk: a negative revision is below the "compaction" at -1.
		{op: txn(nil, ops(opRange(getAt("a", -5))), nil), err: mvcc.ErrCompacted, rev: 8},
		{op: get("q"), want: rangeResp(0, false)},
		// A revision of the past is fine.
		{op: txn(nil, ops(opRange(getAt("a", 3))), nil), want: txnResp(8, true, respRange(txnRangeResp(8, 1, kv("a", "1", 2, 2, 1))))},
		// The same key twice (ValidateTxn refuses it; the store does not):
		// versions add up within the revision.
		{op: txn(nil, ops(opPut(put("z", "1")), opPut(put("z", "2"))), nil),
			want: txnResp(9, true, respPut(putResp(9, nil)), respPut(putResp(9, nil))), rev: 9},
		{op: get("z"), want: rangeResp(1, false, kv("z", "2", 9, 9, 2))},
		// Put, delete and put again in one revision: a new generation.
		{op: txn(nil, ops(opPut(put("y", "1")), opDel(del("y")), opPut(put("y", "2"))), nil),
			want: txnResp(10, true, respPut(putResp(10, nil)), respDel(delResp(10, 1)), respPut(putResp(10, nil))), rev: 10},
		{op: get("y"), want: rangeResp(1, false, kv("y", "2", 10, 10, 1))},
		{op: getAt("y", 9), want: rangeResp(0, false)},
	})
}

func ops2(r ...*pb.ResponseOp) []*pb.ResponseOp { return r }

// TestTxnFailureAfterWritesTakesBack: the one failure possible after a
// transaction wrote (etcd panics there) leaves the store as it was.
func TestTxnFailureAfterWritesTakesBack(t *testing.T) {
	h := newHarness(t)
	h.mustDo(put("p", "1"))
	h.mustDo(put("q", "1"))
	hashBefore, _, _ := h.s.Hash()
	r := txn(nil, ops(
		opPut(put("new", "x")),
		opDel(&pb.DeleteRangeRequest{Key: []byte("p"), RangeEnd: []byte{0}}),
		opPut(&pb.PutRequest{Key: []byte("p"), IgnoreValue: true})), nil)
	if err := mvcc.ValidateTxn(r, 128); err != nil {
		t.Fatalf("ValidateTxn: %v (etcd lets this through)", err)
	}
	runSteps(t, h, []step{
		{op: r, err: mvcc.ErrKeyNotFound, rev: 3},
		{op: span("a", "z"), want: rangeResp(2, false, kv("p", "1", 2, 2, 1), kv("q", "1", 3, 3, 1))},
		{op: put("p", "2"), want: putResp(4, nil)},
		{op: get("p"), want: rangeResp(1, false, kv("p", "2", 2, 4, 2))},
		{op: put("new", "y"), want: putResp(5, nil)},
		{op: get("new"), want: rangeResp(1, false, kv("new", "y", 5, 5, 1))},
	})
	// The batch lost the undone writes too: a store with the same history
	// minus the failed transaction has the same hash.
	g := newHarness(t)
	g.mustDo(put("p", "1"))
	g.mustDo(put("q", "1"))
	if h2, _, _ := g.s.Hash(); h2 != hashBefore {
		t.Fatalf("hash differs before the failed txn: %x vs %x", h2, hashBefore)
	}
	g.mustDo(put("p", "2"))
	g.mustDo(put("new", "y"))
	a, _, _ := h.s.Hash()
	b, _, _ := g.s.Hash()
	if a != b {
		t.Fatalf("after the failed txn the hash is %x; the same history without it gives %x", a, b)
	}
}

func TestReadTxn(t *testing.T) {
	h := newHarness(t)
	h.mustDo(put("a", "1"))
	runSteps(t, h, []step{
		{op: readTxn{txn(cmps(cmpValue("a", pb.Compare_EQUAL, "1")), ops(opRange(get("a"))), ops(opRange(get("b"))))},
			want: txnResp(2, true, respRange(txnRangeResp(2, 1, kv("a", "1", 2, 2, 1))))},
		{op: readTxn{txn(cmps(cmpValue("a", pb.Compare_EQUAL, "2")), ops(opRange(get("a"))), ops(opRange(get("b"))))},
			want: txnResp(2, false, respRange(txnRangeResp(2, 0)))},
		{op: readTxn{txn(nil, ops(opRange(getAt("a", 3))), nil)}, err: mvcc.ErrFutureRev},
		{op: readTxn{txn(nil, ops(opPut(put("a", "2"))), nil)}, err: mvcc.ErrTxnNotReadOnly},
		{op: readTxn{txn(nil, ops(opTxn(txn(nil, nil, nil))), nil)}, err: mvcc.ErrTxnNotReadOnly},
	})
	if h.s.Rev() != 2 {
		t.Fatalf("Rev = %d after read-only txns", h.s.Rev())
	}
}

func TestCompaction(t *testing.T) {
	h := newHarness(t)
	for _, op := range []any{put("a", "1"), put("a", "2"), put("b", "1"), del("a"), put("b", "2"), put("c", "1"), del("c")} {
		h.mustDo(op) // revisions 2 to 8
	}
	runSteps(t, h, []step{
		{op: compact(9), err: mvcc.ErrFutureRev},
		{op: compact(6), want: &pb.CompactionResponse{Header: hdr(8)}, rev: 8},
		{op: getAt("b", 5), err: mvcc.ErrCompacted},
		{op: getAt("b", 6), want: rangeResp(1, false, kv("b", "2", 4, 6, 2))},
		{op: getAt("a", 6), want: rangeResp(0, false)},
		{op: getAt("c", 7), want: rangeResp(1, false, kv("c", "1", 7, 7, 1))},
		{op: compact(6), err: mvcc.ErrCompacted},
		{op: compact(5), err: mvcc.ErrCompacted},
		// The tombstone at the compaction point: c stays deleted.
		{op: compact(8), want: &pb.CompactionResponse{Header: hdr(8)}},
		{op: span("a", "z"), want: rangeResp(1, false, kv("b", "2", 4, 6, 2))},
		{op: getAt("c", 8), want: rangeResp(0, false)},
		{op: getAt("c", 7), err: mvcc.ErrCompacted},
		{op: put("c", "2"), want: putResp(9, nil)},
		{op: get("c"), want: rangeResp(1, false, kv("c", "2", 9, 9, 1))},
		{op: txn(nil, ops(opRange(getAt("b", 7))), nil), err: mvcc.ErrCompacted},
		{op: txn(nil, ops(opRange(getAt("b", 8))), nil), want: txnResp(9, true, respRange(txnRangeResp(9, 1, kv("b", "2", 4, 6, 2))))},
		// A compacted key keeps its create revision and version.
		{op: put("b", "3"), want: putResp(10, nil)},
		{op: get("b"), want: rangeResp(1, false, kv("b", "3", 4, 10, 3))},
		{op: compact(10), want: &pb.CompactionResponse{Header: hdr(10)}},
		{op: span("a", "z"), want: rangeResp(2, false, kv("b", "3", 4, 10, 3), kv("c", "2", 9, 9, 1))},
	})
	if h.s.CompactRev() != 10 {
		t.Fatalf("CompactRev = %d", h.s.CompactRev())
	}
}

func TestConsistentIndex(t *testing.T) {
	h := newHarness(t)
	b := h.be.Begin()
	w := h.s.Write(b)
	w.SetConsistentIndex(0, 0) // not stored, as in etcd
	if _, err := w.Put(put("a", "1")); err != nil {
		t.Fatal(err)
	}
	w.SetConsistentIndex(5, 2)
	if i, term := h.s.ConsistentIndex(); i != 5 || term != 2 {
		t.Fatalf("ConsistentIndex = %d/%d", i, term)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("SetConsistentIndex going back did not panic")
			}
		}()
		b := h.be.Begin()
		defer b.Rollback()
		h.s.Write(b).SetConsistentIndex(4, 2)
	}()
	s2, err := mvcc.Open(h.be)
	if err != nil {
		t.Fatal(err)
	}
	if i, term := s2.ConsistentIndex(); i != 5 || term != 2 {
		t.Fatalf("after Open: ConsistentIndex = %d/%d", i, term)
	}
}

func TestRangeBeforeCommitPanics(t *testing.T) {
	h := newHarness(t)
	b := h.be.Begin()
	defer b.Rollback()
	if _, err := h.s.Write(b).Put(put("a", "1")); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("Range of uncommitted writes did not panic")
		}
	}()
	_, _ = h.s.Range(get("a"))
}

func TestErrorsAreEtcds(t *testing.T) {
	for err, msg := range map[error]string{
		mvcc.ErrCompacted:    "mvcc: required revision has been compacted",
		mvcc.ErrFutureRev:    "mvcc: required revision is a future revision",
		mvcc.ErrKeyNotFound:  "etcdserver: key not found",
		mvcc.ErrEmptyKey:     "etcdserver: key is not provided",
		mvcc.ErrTooManyOps:   "etcdserver: too many operations in txn request",
		mvcc.ErrDuplicateKey: "etcdserver: duplicate key given in txn request",
	} {
		if err.Error() != msg {
			t.Errorf("%q; want %q", err, msg)
		}
	}
	if errors.Is(mvcc.ErrCompacted, mvcc.ErrFutureRev) {
		t.Error("distinct errors compare equal")
	}
}

func TestCheckLeases(t *testing.T) {
	h := newHarness(t)
	h.leases = map[int64]bool{1: true}
	lput := func(key string, lease int64) *pb.PutRequest {
		return &pb.PutRequest{Key: []byte(key), Value: []byte("v"), Lease: lease}
	}
	eq := pb.Compare_EQUAL
	runSteps(t, h, []step{
		{op: lput("a", 1), want: putResp(2, nil), rev: 2},
		{op: lput("a", 2), err: mvcc.ErrLeaseNotFound, rev: 2},
		// The lease is checked before ignore_value.
		{op: &pb.PutRequest{Key: []byte("missing"), IgnoreValue: true, Lease: 2}, err: mvcc.ErrLeaseNotFound},
		// Only the branch taken counts.
		{op: txn(cmps(cmpVersion("a", eq, 1)), ops(opPut(lput("b", 1))), ops(opPut(lput("b", 2)))),
			want: txnResp(3, true, respPut(putResp(3, nil))), rev: 3},
		{op: txn(cmps(cmpVersion("a", eq, 1)), ops(opPut(put("c", "1")), opTxn(txn(nil, ops(opPut(lput("d", 2))), nil))), nil),
			err: mvcc.ErrLeaseNotFound, rev: 3},
		// Within a put of a transaction, ignore_value is checked first.
		{op: txn(nil, ops(opPut(&pb.PutRequest{Key: []byte("missing"), IgnoreValue: true, Lease: 2})), nil), err: mvcc.ErrKeyNotFound},
		{op: get("c"), want: rangeResp(0, false)},
		{op: get("b"), want: rangeResp(1, false, leased(kv("b", "v", 3, 3, 1), 1))},
	})
}
