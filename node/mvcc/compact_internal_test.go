package mvcc

import (
	"fmt"
	"hash/crc32"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/plumbdb/plumb/node/backend"
)

func write(t *testing.T, be backend.Backend, s *Store, fn func(w *Write) error) {
	t.Helper()
	b := be.Begin()
	if err := fn(s.Write(b)); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

func putKey(key, value string) func(w *Write) error {
	return func(w *Write) error {
		_, err := w.Put(&pb.PutRequest{Key: []byte(key), Value: []byte(value)})
		return err
	}
}

func deleteKey(key string) func(w *Write) error {
	return func(w *Write) error {
		_, err := w.DeleteRange(&pb.DeleteRangeRequest{Key: []byte(key)})
		return err
	}
}

func compactAt(rev int64) func(w *Write) error {
	return func(w *Write) error {
		_, err := w.Compact(rev)
		return err
	}
}

// stored lists the revisions in the key bucket, "main.sub" with a t for
// tombstones.
func stored(t *testing.T, r backend.Reader) string {
	t.Helper()
	var out []string
	err := r.ForEach(keyBucket, func(k, _ []byte) error {
		rev, tomb, err := parseRevKey(k)
		if err != nil {
			return err
		}
		s := fmt.Sprintf("%d.%d", rev.main, rev.sub)
		if tomb {
			s += "t"
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(out)
}

// TestCompactBackendContents follows what etcd leaves in its "key" bucket,
// including the tombstone at the compaction point, which a restarted store
// leaves out of its index and the next compaction deletes.
func TestCompactBackendContents(t *testing.T) {
	be := backend.NewMemory()
	s, err := Open(be)
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range []func(*Write) error{
		putKey("a", "1"), putKey("a", "2"), putKey("b", "1"), deleteKey("a"), // 2 3 4 5
		putKey("b", "2"), putKey("c", "1"), deleteKey("c"), // 6 7 8
	} {
		write(t, be, s, fn)
	}
	if got := stored(t, be); got != "[2.0 3.0 4.0 5.0t 6.0 7.0 8.0t]" {
		t.Fatalf("before compaction: %s", got)
	}
	write(t, be, s, compactAt(6))
	if got := stored(t, be); got != "[6.0 7.0 8.0t]" {
		t.Fatalf("after compact(6): %s", got)
	}
	write(t, be, s, compactAt(8))
	if got := stored(t, be); got != "[6.0 8.0t]" {
		t.Fatalf("after compact(8): %s", got)
	}
	if s.index.lookup([]byte("c")) == nil {
		t.Fatal("the live index dropped the tombstone at the compaction point")
	}

	// Restart: the tombstone of c is the first stored revision of c, and
	// stays out of the index.
	s, err = Open(be)
	if err != nil {
		t.Fatal(err)
	}
	if s.index.lookup([]byte("c")) != nil {
		t.Fatal("the restored index holds a key that only has a tombstone")
	}
	if s.Rev() != 8 || s.CompactRev() != 8 {
		t.Fatalf("restored Rev %d CompactRev %d; want 8, 8", s.Rev(), s.CompactRev())
	}
	write(t, be, s, putKey("c", "2")) // 9
	write(t, be, s, compactAt(9))
	if got := stored(t, be); got != "[6.0 9.0]" {
		t.Fatalf("after compact(9) of the restored store: %s", got)
	}
}

// TestOpenResumesScheduledCompaction: a compaction scheduled but not
// finished (etcd compacts in the background and can leave one) is finished
// by Open.
func TestOpenResumesScheduledCompaction(t *testing.T) {
	be := backend.NewMemory()
	s, _ := Open(be)
	write(t, be, s, putKey("a", "1"))
	write(t, be, s, putKey("a", "2"))
	write(t, be, s, putKey("a", "3"))
	b := be.Begin()
	writeCompactRev(b, scheduledCompactKey, 3)
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(be)
	if err != nil {
		t.Fatal(err)
	}
	if s.CompactRev() != 3 || s.Rev() != 4 {
		t.Fatalf("CompactRev %d Rev %d; want 3, 4", s.CompactRev(), s.Rev())
	}
	if got := stored(t, be); got != "[3.0 4.0]" {
		t.Fatalf("stored %s; want [3.0 4.0]", got)
	}
	if m, _ := readMeta(be); m.finishedCompact != 3 {
		t.Fatalf("finishedCompactRev %d", m.finishedCompact)
	}
}

func TestOpenRejectsCorruptBackend(t *testing.T) {
	be := backend.NewMemory()
	b := be.Begin()
	b.Put(keyBucket, []byte("not a revision"), nil)
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(be); err == nil {
		t.Fatal("Open of a bad revision key succeeded")
	}
	be = backend.NewMemory()
	b = be.Begin()
	b.Put(metaBucket, consistentIndexKey, []byte{1, 2})
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(be); err == nil {
		t.Fatal("Open of a bad consistent index succeeded")
	}
}

// TestCompactSameRevisionChanges: a transaction that changed a key twice
// keeps only its last change when compacted at its own revision.
func TestCompactSameRevisionChanges(t *testing.T) {
	be := backend.NewMemory()
	s, _ := Open(be)
	write(t, be, s, func(w *Write) error {
		_, err := w.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{
			{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("x"), Value: []byte("1")}}},
			{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("x"), Value: []byte("2")}}},
			{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("y"), Value: []byte("1")}}},
			{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("y")}}},
		}})
		return err
	})
	write(t, be, s, compactAt(2))
	if got := stored(t, be); got != "[2.1 2.3t]" {
		t.Fatalf("after compact(2): %s; want [2.1 2.3t]", got)
	}
}

// TestHashIsEtcds computes etcd's HashKV by hand for small histories: the
// bucket name, then each counted revision's key and value.
func TestHashIsEtcds(t *testing.T) {
	crc := func(parts ...[]byte) uint32 {
		h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		for _, p := range parts {
			h.Write(p)
		}
		return h.Sum32()
	}
	stored := func(rev revision, tomb bool, kv *mvccpb.KeyValue) [][]byte {
		return [][]byte{revKey(rev, tomb), appendKV(nil, kv)}
	}
	a2 := stored(revision{2, 0}, false, &mvccpb.KeyValue{Key: []byte("a"), Value: []byte("1"), CreateRevision: 2, ModRevision: 2, Version: 1})
	a3t := stored(revision{3, 0}, true, &mvccpb.KeyValue{Key: []byte("a")})
	b4 := stored(revision{4, 0}, false, &mvccpb.KeyValue{Key: []byte("b"), Value: []byte("1"), CreateRevision: 4, ModRevision: 4, Version: 1})
	join := func(parts ...[][]byte) [][]byte {
		out := [][]byte{[]byte("key")}
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}

	be := backend.NewMemory()
	s, _ := Open(be)
	check := func(what string, rev int64, want uint32) {
		t.Helper()
		got, _, _, err := s.HashByRev(rev)
		if err != nil || got != want {
			t.Errorf("%s: HashByRev(%d) = %x, %v; want %x", what, rev, got, err, want)
		}
	}
	check("empty store", 0, crc([]byte("key")))
	write(t, be, s, putKey("a", "1"))
	write(t, be, s, deleteKey("a"))
	check("put and delete", 0, crc(join(a2, a3t)...))
	check("at revision 2", 2, crc(join(a2)...))

	// Compacted at the tombstone: nothing is kept, and etcd then hashes
	// whatever is stored.
	write(t, be, s, compactAt(3))
	check("compacted at the tombstone", 0, crc(join(a3t)...))

	// With something kept, the tombstone at the compaction point is not
	// counted.
	write(t, be, s, putKey("b", "1"))
	check("with a kept revision", 0, crc(join(b4)...))
	if _, _, _, err := s.HashByRev(3); err != ErrCompacted {
		t.Errorf("HashByRev at the compaction point: %v", err)
	}
	if _, _, _, err := s.HashByRev(5); err != ErrFutureRev {
		t.Errorf("HashByRev in the future: %v", err)
	}
	if h, c, r := s.Hash(); c != 3 || r != 4 || h != crc(join(b4)...) {
		t.Errorf("Hash = %x, %d, %d", h, c, r)
	}
}
