package bolt

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDefrag: after most keys are deleted the file keeps its size; Defrag
// gives the free pages back, keeps every key, Size and the file's
// directory entry, and the Backend goes on committing and reopens.
func TestDefrag(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	be := mustOpen(t, path, Options{})
	defer func() { _ = be.Close() }()
	bucket, value := []byte("key"), []byte(strings.Repeat("v", 1000))
	for batch := range 10 {
		b := be.Begin()
		for i := range 500 {
			b.Put(bucket, fmt.Appendf(nil, "%02d/%04d", batch, i), value)
		}
		mustCommit(t, b)
	}
	b := be.Begin()
	for batch := range 10 {
		for i := range 500 {
			if batch > 0 || i >= 10 {
				b.Delete(bucket, fmt.Appendf(nil, "%02d/%04d", batch, i))
			}
		}
	}
	mustCommit(t, b)
	before, _ := be.DiskBytes()
	want, size := dumpAll(t, be, bucket), be.Size()
	if err := be.Defrag(); err != nil {
		t.Fatal(err)
	}
	after, inUse := be.DiskBytes()
	if after > before/10 {
		t.Fatalf("DiskBytes %d after Defrag, %d before: want it to shrink to the 10 keys left", after, before)
	}
	if inUse > after {
		t.Fatalf("in use %d > total %d", inUse, after)
	}
	if got := dumpAll(t, be, bucket); got != want || be.Size() != size {
		t.Fatalf("Defrag changed the data (Size %d, was %d)", be.Size(), size)
	}
	if _, err := os.Stat(path + ".defrag"); !os.IsNotExist(err) {
		t.Fatalf("the temporary file is left behind: %v", err)
	}
	if info, err := os.Stat(path); err != nil || info.Size() >= before {
		t.Fatalf("the file at %s: %v, %v; want it smaller than %d", path, info.Size(), err, before)
	}
	b = be.Begin()
	b.Put(bucket, []byte("after"), []byte("x"))
	mustCommit(t, b)
	if err := be.Close(); err != nil {
		t.Fatal(err)
	}
	be = mustOpen(t, path, Options{})
	if v, ok := be.Get(bucket, []byte("after")); !ok || string(v) != "x" {
		t.Fatal("a write after Defrag is lost on reopen")
	}
	if be.Size() != size+int64(len("after")+len("x")) {
		t.Fatalf("Size after reopen %d, want %d", be.Size(), size+6)
	}
}
