package bolt

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestSnapshot: a snapshot is the database as of the commit before it,
// whatever is committed while it is open, and the copy it writes opens as
// a Backend holding exactly that.
func TestSnapshot(t *testing.T) {
	dir := t.TempDir()
	be := mustOpen(t, filepath.Join(dir, "db"), Options{})
	defer func() { _ = be.Close() }()
	b := be.Begin()
	b.Put([]byte("key"), []byte("a"), []byte("1"))
	mustCommit(t, b)
	snap, err := be.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	b = be.Begin()
	b.Put([]byte("key"), []byte("b"), []byte("2"))
	mustCommit(t, b)
	var buf bytes.Buffer
	n, err := snap.WriteTo(&buf)
	if err != nil || n != snap.Size() || int64(buf.Len()) != n {
		t.Fatalf("WriteTo wrote %d bytes (%d buffered), Size %d: %v", n, buf.Len(), snap.Size(), err)
	}
	if err := snap.Close(); err != nil {
		t.Fatal(err)
	}
	if err := snap.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
	copyPath := filepath.Join(dir, "copy")
	if err := os.WriteFile(copyPath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cp := mustOpen(t, copyPath, Options{})
	defer func() { _ = cp.Close() }()
	if got, want := dumpAll(t, cp, []byte("key")), `"a"="1" `; got != want {
		t.Fatalf("the snapshot holds %s, want %s (the state when it was taken)", got, want)
	}
	if cp.Size() != int64(len("a")+len("1")) {
		t.Fatalf("the snapshot's Size is %d, want its size record carried over (2)", cp.Size())
	}
}
