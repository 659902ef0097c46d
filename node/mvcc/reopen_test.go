package mvcc_test

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node/mvcc"
)

// everything is a Range over every key.
func everything(rev int64) *pb.RangeRequest {
	return &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: rev}
}

// sameStores fails unless a and b answer alike: revisions, consistent index,
// hash, and a Range over every key at every revision they both keep.
func sameStores(t *testing.T, a, b *mvcc.Store) {
	t.Helper()
	if a.Rev() != b.Rev() || a.CompactRev() != b.CompactRev() {
		t.Fatalf("Rev/CompactRev %d/%d vs %d/%d", a.Rev(), a.CompactRev(), b.Rev(), b.CompactRev())
	}
	ai, at := a.ConsistentIndex()
	bi, bt := b.ConsistentIndex()
	if ai != bi || at != bt {
		t.Fatalf("ConsistentIndex %d/%d vs %d/%d", ai, at, bi, bt)
	}
	ha, ca, ra := a.Hash()
	hb, cb, rb := b.Hash()
	if ha != hb || ca != cb || ra != rb {
		t.Fatalf("Hash %x/%d/%d vs %x/%d/%d", ha, ca, ra, hb, cb, rb)
	}
	for rev := max(a.CompactRev(), 1); rev <= a.Rev(); rev++ {
		ra, erra := a.Range(everything(rev))
		rb, errb := b.Range(everything(rev))
		if erra != nil || errb != nil || !proto.Equal(ra, rb) {
			t.Fatalf("Range at %d: %v %v\n%s\nvs\n%s", rev, erra, errb, text(ra), text(rb))
		}
		ha, _, _, erra := a.HashByRev(rev)
		hb, _, _, errb := b.HashByRev(rev)
		if ha != hb || (erra == nil) != (errb == nil) {
			t.Fatalf("HashByRev(%d) %x %v vs %x %v", rev, ha, erra, hb, errb)
		}
	}
}

// history writes a bit of everything, with compactions that leave a
// tombstone at the compaction point, and records a consistent index.
func history(h *harness) {
	steps := []any{
		put("a", "1"), put("b", "1"), put("c", "1"), put("a", "2"),
		&pb.PutRequest{Key: []byte("bl"), Value: []byte("leased"), Lease: 42},
		del("b"), put("b", "2"), compact(4),
		txn(nil, ops(opPut(put("d", "1")), opDel(del("c")), opPut(put("e", "1"))), nil),
		&pb.DeleteRangeRequest{Key: []byte("d"), RangeEnd: []byte{0}},
		compact(10),
		put("f", "1"), put("a", "3"), del("f"),
	}
	for _, op := range steps {
		h.mustDo(op)
	}
	b := h.be.Begin()
	h.s.Write(b).SetConsistentIndex(77, 3)
	if err := b.Commit(); err != nil {
		h.t.Fatal(err)
	}
}

// TestReopen: Open on the backend of a store rebuilds one that answers
// alike, at every revision, and keeps answering alike as both go on.
func TestReopen(t *testing.T) {
	live := newHarness(t)
	history(live)
	reopened := &harness{t: t, be: live.be}
	var err error
	if reopened.s, err = mvcc.Open(live.be); err != nil {
		t.Fatal(err)
	}
	sameStores(t, live.s, reopened.s)

	// Going on, the live store and a restarted twin stay alike (the twin
	// has its own backend with the same history).
	twin := newHarness(t)
	history(twin)
	if twin.s, err = mvcc.Open(twin.be); err != nil {
		t.Fatal(err)
	}
	for _, op := range []any{
		put("f", "2"), compact(14), put("c", "9"), compact(16), del("a"), compact(17),
		txn(cmps(cmpVersion("bl", pb.Compare_EQUAL, 1)), ops(opPut(&pb.PutRequest{Key: []byte("bl"), IgnoreValue: true, IgnoreLease: true})), nil),
	} {
		r1, err1 := live.do(op)
		r2, err2 := twin.do(op)
		if (err1 == nil) != (err2 == nil) || !proto.Equal(r1, r2) {
			t.Fatalf("%s: %v %v / %v %v", describe(op), r1, err1, r2, err2)
		}
		sameStores(t, live.s, twin.s)
	}
	if got, _ := live.s.Range(get("bl")); len(got.Kvs) != 1 || got.Kvs[0].Lease != 42 || got.Kvs[0].Version != 2 {
		t.Fatalf("bl after ignore_lease put: %v", got)
	}
}

// TestCompactKeyRebornInItsDeletingTxn: a txn deletes [a, "\x00") and puts
// a again, so a's old generation ends and a new one begins at one main
// revision. A compaction at that revision must keep the put (the key's
// value) and drop the tombstone; comparing main revisions only, as etcd
// does, keeps the tombstone and deletes the put, and the next read of a
// panics on an index entry with nothing in the backend.
func TestCompactKeyRebornInItsDeletingTxn(t *testing.T) {
	h := newHarness(t)
	h.mustDo(put("a", "1"))
	h.mustDo(put("b", "1"))
	h.mustDo(txn(nil, ops(opDel(&pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte{0}}), opPut(put("a", "2"))), nil))
	rev := h.s.Rev()
	h.mustDo(compact(rev))
	got := h.mustDo(get("a")).(*pb.RangeResponse)
	if len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "2" || got.Kvs[0].CreateRevision != rev {
		t.Fatalf("a after the compaction: %v", got)
	}
	if got := h.mustDo(get("b")).(*pb.RangeResponse); len(got.Kvs) != 0 {
		t.Fatalf("b after the compaction: %v", got)
	}
	reopened, err := mvcc.Open(h.be)
	if err != nil {
		t.Fatal(err)
	}
	sameStores(t, h.s, reopened)
}
