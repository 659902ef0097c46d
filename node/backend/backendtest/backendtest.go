package backendtest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/plumbdb/plumb/node/backend"
)

// Run checks the Backend contract on fresh Backends from open, one per
// subtest. open must return an empty Backend; Run closes it.
func Run(t *testing.T, open func(t *testing.T) backend.Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, be backend.Backend)
	}{
		{"PutGetDelete", testPutGetDelete},
		{"EmptyValue", testEmptyValue},
		{"ForEachOrder", testForEachOrder},
		{"ForEachStops", testForEachStops},
		{"BatchIsolation", testBatchIsolation},
		{"BatchForEachMerges", testBatchForEachMerges},
		{"Rollback", testRollback},
		{"CommitAtomicity", testCommitAtomicity},
		{"LastWriteWins", testLastWriteWins},
		{"MultipleBuckets", testMultipleBuckets},
		{"NoAliasing", testNoAliasing},
		{"Size", testSize},
		{"OneOpenBatch", testOneOpenBatch},
		{"FinishedBatch", testFinishedBatch},
		{"CloseRollsBack", testCloseRollsBack},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := open(t)
			defer func() {
				if err := be.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			tt.fn(t, be)
		})
	}
}

var (
	bucketA = []byte("a")
	bucketB = []byte("b")
)

func commit(t *testing.T, b backend.Batch) {
	t.Helper()
	if err := b.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func put(t *testing.T, be backend.Backend, bucket []byte, kvs ...string) {
	t.Helper()
	b := be.Begin()
	for i := 0; i+1 < len(kvs); i += 2 {
		b.Put(bucket, []byte(kvs[i]), []byte(kvs[i+1]))
	}
	commit(t, b)
}

func wantGet(t *testing.T, r backend.Reader, bucket []byte, key, want string, wantOK bool) {
	t.Helper()
	v, ok := r.Get(bucket, []byte(key))
	if ok != wantOK || string(v) != want {
		t.Errorf("Get(%q, %q) = %q, %v; want %q, %v", bucket, key, v, ok, want, wantOK)
	}
}

// dump lists a bucket as "k=v" pairs in ForEach order.
func dump(t *testing.T, r backend.Reader, bucket []byte) []string {
	t.Helper()
	var out []string
	err := r.ForEach(bucket, func(k, v []byte) error {
		out = append(out, string(k)+"="+string(v))
		return nil
	})
	if err != nil {
		t.Fatalf("ForEach(%q): %v", bucket, err)
	}
	return out
}

func wantDump(t *testing.T, r backend.Reader, bucket []byte, want ...string) {
	t.Helper()
	got := dump(t, r, bucket)
	if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != len(want) {
		t.Errorf("ForEach(%q) = %q; want %q", bucket, got, want)
	}
}

func testPutGetDelete(t *testing.T, be backend.Backend) {
	wantGet(t, be, bucketA, "k", "", false)
	put(t, be, bucketA, "k", "v1")
	wantGet(t, be, bucketA, "k", "v1", true)
	put(t, be, bucketA, "k", "v2")
	wantGet(t, be, bucketA, "k", "v2", true)

	b := be.Begin()
	b.Delete(bucketA, []byte("k"))
	b.Delete(bucketA, []byte("never-written"))
	commit(t, b)
	wantGet(t, be, bucketA, "k", "", false)
	wantDump(t, be, bucketA)
}

func testEmptyValue(t *testing.T, be backend.Backend) {
	put(t, be, bucketA, "k", "")
	wantGet(t, be, bucketA, "k", "", true)
	wantDump(t, be, bucketA, "k=")
}

func testForEachOrder(t *testing.T, be backend.Backend) {
	wantDump(t, be, []byte("never-written"))
	// Written out of order, in two batches, with bytes that sort differently
	// as signed numbers or as text than as unsigned bytes.
	put(t, be, bucketA, "b", "2", "\xff", "5", "a", "1")
	put(t, be, bucketA, "\x00", "0", "ab", "3", "b\x00", "4")
	wantDump(t, be, bucketA, "\x00=0", "a=1", "ab=3", "b=2", "b\x00=4", "\xff=5")

	b := be.Begin()
	b.Delete(bucketA, []byte("ab"))
	b.Put(bucketA, []byte("aa"), []byte("6"))
	commit(t, b)
	wantDump(t, be, bucketA, "\x00=0", "a=1", "aa=6", "b=2", "b\x00=4", "\xff=5")
}

func testForEachStops(t *testing.T, be backend.Backend) {
	put(t, be, bucketA, "a", "1", "b", "2", "c", "3")
	stop := errors.New("stop")
	var seen []string
	err := be.ForEach(bucketA, func(k, _ []byte) error {
		seen = append(seen, string(k))
		if string(k) == "b" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || fmt.Sprint(seen) != "[a b]" {
		t.Errorf("ForEach = %v after %q; want %v after [a b]", err, seen, stop)
	}
}

func testBatchIsolation(t *testing.T, be backend.Backend) {
	put(t, be, bucketA, "old", "1", "gone", "2")
	b := be.Begin()
	defer b.Rollback()
	b.Put(bucketA, []byte("new"), []byte("3"))
	b.Put(bucketA, []byte("old"), []byte("4"))
	b.Delete(bucketA, []byte("gone"))

	// Outside: the committed state only.
	wantGet(t, be, bucketA, "new", "", false)
	wantGet(t, be, bucketA, "old", "1", true)
	wantGet(t, be, bucketA, "gone", "2", true)
	wantDump(t, be, bucketA, "gone=2", "old=1")
	// Inside: its own writes on top.
	wantGet(t, b, bucketA, "new", "3", true)
	wantGet(t, b, bucketA, "old", "4", true)
	wantGet(t, b, bucketA, "gone", "", false)

	commit(t, b)
	wantDump(t, be, bucketA, "new=3", "old=4")
}

func testBatchForEachMerges(t *testing.T, be backend.Backend) {
	put(t, be, bucketA, "b", "1", "d", "2", "f", "3")
	b := be.Begin()
	defer b.Rollback()
	b.Put(bucketA, []byte("a"), []byte("4"))
	b.Put(bucketA, []byte("d"), []byte("5"))
	b.Delete(bucketA, []byte("f"))
	b.Put(bucketA, []byte("g"), []byte("6"))
	b.Put(bucketB, []byte("x"), []byte("7"))
	wantDump(t, b, bucketA, "a=4", "b=1", "d=5", "g=6")
	wantDump(t, b, bucketB, "x=7")
	wantDump(t, be, bucketB)
}

func testRollback(t *testing.T, be backend.Backend) {
	put(t, be, bucketA, "k", "1")
	b := be.Begin()
	b.Put(bucketA, []byte("k"), []byte("2"))
	b.Put(bucketA, []byte("other"), []byte("3"))
	b.Delete(bucketA, []byte("k"))
	b.Rollback()
	wantDump(t, be, bucketA, "k=1")
	if got := be.Size(); got != 2 {
		t.Errorf("Size after rollback = %d; want 2", got)
	}
	// The Backend takes a new batch after a rollback.
	put(t, be, bucketA, "k", "4")
	wantGet(t, be, bucketA, "k", "4", true)
}

func testCommitAtomicity(t *testing.T, be backend.Backend) {
	const n = 1000
	b := be.Begin()
	for i := range n {
		b.Put(bucketA, []byte(fmt.Sprintf("%06d", i)), []byte(fmt.Sprint(i)))
		b.Put(bucketB, []byte(fmt.Sprintf("%06d", i)), []byte(fmt.Sprint(i)))
	}
	if got := len(dump(t, be, bucketA)) + len(dump(t, be, bucketB)); got != 0 {
		t.Fatalf("%d keys visible before Commit; want 0", got)
	}
	if be.Size() != 0 {
		t.Fatalf("Size before Commit = %d; want 0", be.Size())
	}
	commit(t, b)
	if got := len(dump(t, be, bucketA)) + len(dump(t, be, bucketB)); got != 2*n {
		t.Fatalf("%d keys visible after Commit; want %d", got, 2*n)
	}
}

func testLastWriteWins(t *testing.T, be backend.Backend) {
	b := be.Begin()
	b.Put(bucketA, []byte("k"), []byte("1"))
	b.Delete(bucketA, []byte("k"))
	b.Put(bucketA, []byte("k"), []byte("2"))
	b.Put(bucketA, []byte("j"), []byte("3"))
	b.Delete(bucketA, []byte("j"))
	commit(t, b)
	wantDump(t, be, bucketA, "k=2")
}

func testMultipleBuckets(t *testing.T, be backend.Backend) {
	b := be.Begin()
	b.Put(bucketA, []byte("k"), []byte("in a"))
	b.Put(bucketB, []byte("k"), []byte("in b"))
	commit(t, b)
	wantGet(t, be, bucketA, "k", "in a", true)
	wantGet(t, be, bucketB, "k", "in b", true)
	wantGet(t, be, []byte("c"), "k", "", false)

	b = be.Begin()
	b.Delete(bucketA, []byte("k"))
	commit(t, b)
	wantGet(t, be, bucketA, "k", "", false)
	wantGet(t, be, bucketB, "k", "in b", true)
	wantDump(t, be, bucketB, "k=in b")
}

func testNoAliasing(t *testing.T, be backend.Backend) {
	key := []byte("key1")
	val := []byte("value1")
	b := be.Begin()
	b.Put(bucketA, key, val)
	// The caller reuses its buffers before and after Commit.
	copy(key, "XXXX")
	copy(val, "YYYYYY")
	wantGet(t, b, bucketA, "key1", "value1", true)
	commit(t, b)
	copy(key, "ZZZZ")
	copy(val, "WWWWWW")
	wantGet(t, be, bucketA, "key1", "value1", true)
	wantDump(t, be, bucketA, "key1=value1")

	// A bucket name buffer is reused too.
	name := []byte("bucket")
	b = be.Begin()
	b.Put(name, []byte("k"), []byte("v"))
	commit(t, b)
	copy(name, "xxxxxx")
	wantGet(t, be, []byte("bucket"), "k", "v", true)
}

func testSize(t *testing.T, be backend.Backend) {
	if got := be.Size(); got != 0 {
		t.Errorf("empty Size = %d; want 0", got)
	}
	put(t, be, bucketA, "abc", "12345") // 8 bytes
	put(t, be, bucketB, "xy", "1")      // 3 bytes
	if got := be.Size(); got < 11 {
		t.Errorf("Size = %d; want at least the 11 bytes of keys and values", got)
	}
	before := be.Size()
	put(t, be, bucketA, "abc", string(make([]byte, 10000)))
	if got := be.Size(); got < before+9000 {
		t.Errorf("Size after a 10000-byte value = %d; want at least %d", got, before+9000)
	}
}

func mustPanic(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	fn()
}

func testOneOpenBatch(t *testing.T, be backend.Backend) {
	b := be.Begin()
	mustPanic(t, "Begin with a batch open", func() { be.Begin() })
	b.Rollback()
	b = be.Begin() // fine again
	commit(t, b)
}

func testFinishedBatch(t *testing.T, be backend.Backend) {
	b := be.Begin()
	b.Put(bucketA, []byte("k"), []byte("v"))
	commit(t, b)
	b.Rollback() // a no-op after Commit
	mustPanic(t, "Put after Commit", func() { b.Put(bucketA, []byte("k"), []byte("w")) })
	mustPanic(t, "Commit after Commit", func() { _ = b.Commit() })
	wantGet(t, be, bucketA, "k", "v", true)

	b = be.Begin()
	b.Rollback()
	mustPanic(t, "Get after Rollback", func() { b.Get(bucketA, []byte("k")) })
}

func testCloseRollsBack(t *testing.T, be backend.Backend) {
	put(t, be, bucketA, "k", "v")
	b := be.Begin()
	b.Put(bucketA, []byte("k"), []byte("uncommitted"))
	// Run's deferred Close must roll the batch back rather than fail; check
	// the committed state first, since a closed Backend may not be readable.
	wantGet(t, be, bucketA, "k", "v", true)
}
