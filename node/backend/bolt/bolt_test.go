package bolt

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plumbdb/plumb/node/backend"
	"github.com/plumbdb/plumb/node/backend/backendtest"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		return mustOpen(t, filepath.Join(t.TempDir(), "db"), Options{})
	})
}

func mustOpen(t testing.TB, path string, opts Options) *Backend {
	t.Helper()
	be, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return be
}

func mustCommit(t testing.TB, b backend.Batch) {
	t.Helper()
	if err := b.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func dumpAll(t *testing.T, r backend.Reader, bucket []byte) string {
	t.Helper()
	var sb strings.Builder
	err := r.ForEach(bucket, func(k, v []byte) error {
		fmt.Fprintf(&sb, "%q=%q ", k, v)
		return nil
	})
	if err != nil {
		t.Fatalf("ForEach(%q): %v", bucket, err)
	}
	return sb.String()
}

// TestAgainstMemory runs one pseudo-random sequence of batches against the
// bbolt Backend and backend.Memory, the model, and compares every bucket,
// inside the batch and after it, and Size. Every so often the bbolt file is
// closed and reopened, which must change nothing.
func TestAgainstMemory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	be := mustOpen(t, path, Options{})
	defer func() { _ = be.Close() }()
	model := backend.NewMemory()
	rng := rand.New(rand.NewPCG(1, 2))
	buckets := [][]byte{[]byte("a"), []byte("b"), []byte("key")}
	key := func() []byte { return []byte{byte(rng.IntN(40)), byte(rng.IntN(3))} }
	compare := func(step int, got, want backend.Reader) {
		t.Helper()
		for _, bk := range buckets {
			if g, w := dumpAll(t, got, bk), dumpAll(t, want, bk); g != w {
				t.Fatalf("step %d, bucket %q:\n bolt:   %s\n memory: %s", step, bk, g, w)
			}
			k := key()
			gv, gok := got.Get(bk, k)
			wv, wok := want.Get(bk, k)
			if gok != wok || !bytes.Equal(gv, wv) {
				t.Fatalf("step %d: Get(%q, %q) = %q, %v; memory %q, %v", step, bk, k, gv, gok, wv, wok)
			}
		}
	}
	for step := range 600 {
		bb, mb := be.Begin(), model.Begin()
		for range 1 + rng.IntN(20) {
			bk, k := buckets[rng.IntN(len(buckets))], key()
			if rng.IntN(3) == 0 {
				bb.Delete(bk, k)
				mb.Delete(bk, k)
				continue
			}
			v := bytes.Repeat([]byte{byte(step)}, rng.IntN(3)*rng.IntN(300)) // some empty
			bb.Put(bk, k, v)
			mb.Put(bk, k, v)
		}
		compare(step, bb, mb)
		if rng.IntN(5) == 0 {
			bb.Rollback()
			mb.Rollback()
		} else {
			mustCommit(t, bb)
			mustCommit(t, mb)
		}
		compare(step, be, model)
		if be.Size() != model.Size() {
			t.Fatalf("step %d: Size = %d; memory %d", step, be.Size(), model.Size())
		}
		if step%97 == 0 {
			if err := be.Close(); err != nil {
				t.Fatal(err)
			}
			be = mustOpen(t, path, Options{})
			compare(step, be, model)
		}
	}
	// The size record agrees with a scan of the file.
	tx, err := be.db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if size, err := scanSize(tx); err != nil || size != model.Size() {
		t.Fatalf("scanned size = %d, %v; want %d", size, err, model.Size())
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	be := mustOpen(t, path, Options{})
	b := be.Begin()
	b.Put([]byte("a"), []byte("k"), []byte("v"))
	b.Put([]byte("b"), []byte("j"), []byte(""))
	mustCommit(t, b)
	b = be.Begin()
	b.Put([]byte("a"), []byte("lost"), []byte("x"))
	if err := be.Close(); err != nil { // rolls the open batch back
		t.Fatal(err)
	}
	if err := be.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	be = mustOpen(t, path, Options{})
	defer func() { _ = be.Close() }()
	if got := dumpAll(t, be, []byte("a")) + dumpAll(t, be, []byte("b")); got != `"k"="v" "j"="" ` {
		t.Fatalf("after reopen: %s", got)
	}
	if be.Size() != 3 {
		t.Fatalf("Size after reopen = %d; want 3", be.Size())
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v; want 0600", fi.Mode().Perm())
	}
}

// TestSecondOpenFails: bbolt's flock keeps a second opener out, even in the
// same process (each open file description locks on its own), for about a
// second, and then the error names the file.
func TestSecondOpenFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	be := mustOpen(t, path, Options{})
	start := time.Now()
	be2, err := Open(path, Options{})
	if err == nil {
		_ = be2.Close()
		t.Fatal("second Open succeeded while the first holds the file")
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "locked") {
		t.Errorf("second Open: %v; want an error naming %s and the lock", err, path)
	}
	if waited := time.Since(start); waited > 10*lockTimeout {
		t.Errorf("second Open took %v", waited)
	}
	if err := be.Close(); err != nil {
		t.Fatal(err)
	}
	be2 = mustOpen(t, path, Options{})
	if err := be2.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := bytes.Repeat([]byte("not a database "), 4096)
	tests := []struct {
		name    string
		content []byte
		want    string
	}{
		{"short", []byte("hello"), "not a bbolt database"},
		{"text", garbage, "not a bbolt database"},
		{"zeros", make([]byte, 64<<10), "not a bbolt database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name)
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			be, err := Open(path, Options{})
			if err == nil {
				_ = be.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open: %v; want %q and the path", err, tt.want)
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("Open(a directory) = %v; want an error naming it", err)
		}
	})
	t.Run("bad options", func(t *testing.T) {
		for _, o := range []Options{{QuotaBytes: -1}, {InitialMmapBytes: -1}} {
			if _, err := Open(filepath.Join(dir, "never"), o); err == nil {
				t.Errorf("Open(%+v) succeeded", o)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "never")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("bad options created the file: %v", err)
		}
	})
}

// TestQuota fills a database with a small quota until Commit refuses: the
// refused batch leaves nothing, everything before it stays, and batches that
// free space still commit, as etcd allows compaction under NOSPACE.
func TestQuota(t *testing.T) {
	const quotaBytes = 1 << 20
	path := filepath.Join(t.TempDir(), "db")
	be := mustOpen(t, path, Options{QuotaBytes: quotaBytes})
	defer func() { _ = be.Close() }()
	bucket := []byte("key")
	value := bytes.Repeat([]byte("v"), 1000)
	const putsPerBatch = 16
	var err error
	committed := 0
	for i := 0; i < 2*quotaBytes/len(value) && err == nil; i += putsPerBatch {
		b := be.Begin()
		for j := i; j < i+putsPerBatch; j++ {
			b.Put(bucket, fmt.Appendf(nil, "%08d", j), value)
		}
		if err = b.Commit(); err == nil {
			committed = i + putsPerBatch
		}
	}
	if !errors.Is(err, ErrQuota) {
		t.Fatalf("Commit error = %v after %d keys; want ErrQuota", err, committed)
	}
	if err.Error() != "etcdserver: mvcc: database space exceeded" {
		t.Errorf("ErrQuota says %q", err)
	}
	total, _ := be.DiskBytes()
	t.Logf("refused after %d keys, %d bytes of keys and values; db %d bytes, quota %d", committed, be.Size(), total, quotaBytes)
	if total > 2*quotaBytes {
		t.Errorf("db grew to %d bytes, far past the %d quota", total, quotaBytes)
	}
	check := func(what string, n int) {
		t.Helper()
		got := 0
		err := be.ForEach(bucket, func(k, v []byte) error {
			if want := fmt.Sprintf("%08d", got); string(k) != want || !bytes.Equal(v, value) {
				return fmt.Errorf("key %d is %q (%d bytes); want %q", got, k, len(v), want)
			}
			got++
			return nil
		})
		if err != nil || got != n {
			t.Fatalf("%s: %d keys, %v; want %d", what, got, err, n)
		}
		if want := int64(n * (8 + len(value))); be.Size() != want {
			t.Fatalf("%s: Size = %d; want %d", what, be.Size(), want)
		}
	}
	check("after ErrQuota", committed)

	// The same batch again is still refused: nothing was freed.
	b := be.Begin()
	for j := committed; j < committed+putsPerBatch; j++ {
		b.Put(bucket, fmt.Appendf(nil, "%08d", j), value)
	}
	if err := b.Commit(); !errors.Is(err, ErrQuota) {
		t.Fatalf("second Commit = %v; want ErrQuota", err)
	}
	// An overwrite of the same size adds nothing, and commits.
	b = be.Begin()
	b.Put(bucket, []byte("00000000"), value)
	mustCommit(t, b)
	// Deleting (compaction) commits.
	b = be.Begin()
	for j := committed - putsPerBatch; j < committed; j++ {
		b.Delete(bucket, fmt.Appendf(nil, "%08d", j))
	}
	mustCommit(t, b)
	committed -= putsPerBatch
	check("after deleting", committed)

	if err := be.Close(); err != nil {
		t.Fatal(err)
	}
	be = mustOpen(t, path, Options{QuotaBytes: quotaBytes})
	check("after reopen", committed)
}

// TestRemapWhileReading grows the file far past a small mapping in one commit
// while a read made during the batch had opened a read transaction: Commit
// must end it first, or bbolt's remap waits for it forever.
func TestRemapWhileReading(t *testing.T) {
	be := mustOpen(t, filepath.Join(t.TempDir(), "db"), Options{InitialMmapBytes: 32 << 10})
	defer func() { _ = be.Close() }()
	b := be.Begin()
	b.Put([]byte("a"), []byte("k"), []byte("v"))
	mustCommit(t, b)

	value := bytes.Repeat([]byte("x"), 4000)
	for round := range 3 {
		b = be.Begin()
		if _, ok := be.Get([]byte("a"), []byte("k")); !ok { // opens a read transaction
			t.Fatal("committed key missing")
		}
		for i := range 1000 {
			b.Put([]byte("a"), fmt.Appendf(nil, "%d-%06d", round, i), value)
		}
		done := make(chan error, 1)
		go func() { done <- b.Commit() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Commit is stuck: the remap waits for the read transaction")
		}
		if v, ok := be.Get([]byte("a"), []byte(fmt.Sprintf("%d-%06d", round, 999))); !ok || !bytes.Equal(v, value) {
			t.Fatalf("round %d: last key missing after commit", round)
		}
	}
	if total, _ := be.DiskBytes(); total < 3*1000*4000 {
		t.Fatalf("db is %d bytes; the test meant to grow it past its mapping", total)
	}
}

// TestReadsStayValid: a value read from the Backend keeps its bytes through a
// Begin, the batch's writes and reads, and a Rollback, as documented (until
// the next Commit).
func TestReadsStayValid(t *testing.T) {
	be := mustOpen(t, filepath.Join(t.TempDir(), "db"), Options{})
	defer func() { _ = be.Close() }()
	b := be.Begin()
	for i := range 100 {
		b.Put([]byte("a"), fmt.Appendf(nil, "%03d", i), bytes.Repeat([]byte{byte(i)}, 500))
	}
	mustCommit(t, b)
	v, _ := be.Get([]byte("a"), []byte("050"))
	want := bytes.Clone(v)
	b = be.Begin()
	for i := range 100 {
		b.Put([]byte("a"), fmt.Appendf(nil, "%03d", i), bytes.Repeat([]byte("z"), 500))
		b.Delete([]byte("a"), fmt.Appendf(nil, "%03d", (i+50)%100))
	}
	if got, ok := be.Get([]byte("a"), []byte("050")); !ok || !bytes.Equal(got, want) {
		t.Fatal("committed value changed under an open batch")
	}
	b.Rollback()
	if !bytes.Equal(v, want) {
		t.Fatal("a value read before Begin changed before the next Commit")
	}
}

// TestRefusedWrites: bbolt refuses empty and oversized keys and bucket names;
// the batch's Commit reports it and writes nothing, and the Backend goes on.
func TestRefusedWrites(t *testing.T) {
	be := mustOpen(t, filepath.Join(t.TempDir(), "db"), Options{})
	defer func() { _ = be.Close() }()
	tests := []struct {
		name             string
		bucket, key, val []byte
	}{
		{"empty key", []byte("a"), nil, []byte("v")},
		{"empty bucket", nil, []byte("k"), []byte("v")},
		{"long key", []byte("a"), make([]byte, 40000), []byte("v")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := be.Begin()
			b.Put([]byte("a"), []byte("before"), []byte("1"))
			b.Put(tt.bucket, tt.key, tt.val)
			b.Put([]byte("a"), []byte("after"), []byte("2"))
			if err := b.Commit(); err == nil {
				t.Fatal("Commit succeeded")
			} else {
				t.Log(err)
			}
			if got := dumpAll(t, be, []byte("a")); got != "" || be.Size() != 0 {
				t.Fatalf("a refused batch left %s, Size %d", got, be.Size())
			}
		})
	}
	b := be.Begin()
	b.Put([]byte("a"), []byte("k"), []byte("v"))
	mustCommit(t, b)
}

func TestReservedBucket(t *testing.T) {
	be := mustOpen(t, filepath.Join(t.TempDir(), "db"), Options{})
	defer func() { _ = be.Close() }()
	b := be.Begin()
	b.Put([]byte("a"), []byte("k"), []byte("v"))
	mustCommit(t, b)
	if got := dumpAll(t, be, metaBucket); got != "" {
		t.Errorf("the reserved bucket reads as %s", got)
	}
	if _, ok := be.Get(metaBucket, sizeKey); ok {
		t.Error("the size record is visible")
	}
	b = be.Begin()
	defer b.Rollback()
	if got := dumpAll(t, b, metaBucket); got != "" {
		t.Errorf("the reserved bucket reads as %s in a batch", got)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Put in the reserved bucket did not panic")
			}
		}()
		b.Put(metaBucket, []byte("x"), []byte("y"))
	}()
}

// TestForEachGuards: writing a batch inside its own ForEach, or committing
// inside a ForEach of the Backend, would invalidate the cursor; both panic.
func TestForEachGuards(t *testing.T) {
	be := mustOpen(t, filepath.Join(t.TempDir(), "db"), Options{})
	defer func() { _ = be.Close() }()
	b := be.Begin()
	b.Put([]byte("a"), []byte("k"), []byte("v"))
	mustCommit(t, b)
	mustPanic := func(what string, fn func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", what)
			}
		}()
		fn()
	}
	b = be.Begin()
	mustPanic("Put inside the batch's ForEach", func() {
		_ = b.ForEach([]byte("a"), func(k, _ []byte) error {
			b.Put([]byte("a"), []byte("j"), []byte("w"))
			return nil
		})
	})
	b.Rollback()
	mustPanic("Commit inside the Backend's ForEach", func() {
		_ = be.ForEach([]byte("a"), func(k, _ []byte) error {
			b := be.Begin()
			defer b.Rollback()
			b.Put([]byte("a"), []byte("j"), []byte("w"))
			return b.Commit()
		})
	})
	// The Backend still works.
	b = be.Begin()
	b.Put([]byte("a"), []byte("j"), []byte("w"))
	mustCommit(t, b)
	if got := dumpAll(t, be, []byte("a")); got != `"j"="w" "k"="v" ` {
		t.Fatalf("after the guards: %s", got)
	}
}

func TestDiskBytes(t *testing.T) {
	be := mustOpen(t, filepath.Join(t.TempDir(), "db"), Options{})
	defer func() { _ = be.Close() }()
	empty, _ := be.DiskBytes()
	b := be.Begin()
	for i := range 1000 {
		b.Put([]byte("a"), fmt.Appendf(nil, "%06d", i), make([]byte, 1000))
	}
	mustCommit(t, b)
	full, _ := be.DiskBytes()
	if full < empty+1000*1000 {
		t.Fatalf("DiskBytes %d -> %d after 1 MB of values", empty, full)
	}
	b = be.Begin()
	for i := range 1000 {
		b.Delete([]byte("a"), fmt.Appendf(nil, "%06d", i))
	}
	mustCommit(t, b)
	b = be.Begin() // lets the pages freed above be counted free
	b.Put([]byte("b"), []byte("k"), []byte("v"))
	mustCommit(t, b)
	total, inUse := be.DiskBytes()
	if total != full || inUse > total/2 {
		t.Fatalf("after deleting everything: total %d (was %d), in use %d", total, full, inUse)
	}
}

// TestAppendsFillPages: ascending keys (revisions) fill bbolt's pages to
// about 90%, as etcd's key bucket does, not to bbolt's default 50%.
func TestAppendsFillPages(t *testing.T) {
	be := mustOpen(t, filepath.Join(t.TempDir(), "db"), Options{})
	defer func() { _ = be.Close() }()
	empty, _ := be.DiskBytes()
	value := make([]byte, 256)
	for n := range 200 {
		b := be.Begin()
		for i := range 100 {
			b.Put([]byte("key"), fmt.Appendf(nil, "%016x", n*100+i), value)
		}
		mustCommit(t, b)
	}
	total, inUse := be.DiskBytes()
	ratio := float64(inUse-empty) / float64(be.Size())
	t.Logf("%d bytes of keys and values: db %d bytes, %d in use (%.2fx)", be.Size(), total, inUse, ratio)
	if ratio > 1.4 {
		t.Errorf("appends take %.2fx their bytes on disk; want pages about 90%% full", ratio)
	}
}

// TestDeferredOverBolt: the conformance suite on a Deferred over bbolt, as
// the node uses it.
func TestDeferredOverBolt(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		be, err := Open(filepath.Join(t.TempDir(), "db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return backend.NewDeferred(be)
	})
}
