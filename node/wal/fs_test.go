package wal

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// testFSConformance checks the behaviour OSFS and MemFS must share, the way
// testing/fstest checks an fs.FS: everything but durability.
func testFSConformance(t *testing.T, fsys FS) {
	t.Helper()
	if err := fsys.MkdirAll("a/b"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.MkdirAll("a/b"); err != nil {
		t.Fatalf("MkdirAll of an existing directory: %v", err)
	}
	f, err := fsys.Create("a/b/f")
	if err != nil {
		t.Fatal(err)
	}
	write := func(f File, s string) {
		t.Helper()
		if n, err := f.Write([]byte(s)); err != nil || n != len(s) {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	write(f, "hello")
	if err := f.Truncate(2); err != nil {
		t.Fatal(err)
	}
	write(f, "y!") // appends at the new end, not at the old offset
	if size, err := f.Size(); err != nil || size != 4 {
		t.Fatalf("Size = %d, %v", size, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readString(fsys, "a/b/f"); got != "hey!" {
		t.Fatalf("content %q, want %q", got, "hey!")
	}
	g, err := fsys.OpenAppend("a/b/f")
	if err != nil {
		t.Fatal(err)
	}
	write(g, "+")
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readString(fsys, "a/b/f"); got != "hey!+" {
		t.Fatalf("after OpenAppend: %q", got)
	}
	h, err := fsys.Create("a/b/f") // truncates
	if err != nil {
		t.Fatal(err)
	}
	write(h, "new")
	_ = h.Close()
	if got := readString(fsys, "a/b/f"); got != "new" {
		t.Fatalf("after Create over it: %q", got)
	}

	for _, n := range []string{"a/b/z", "a/b/c"} {
		k, err := fsys.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		write(k, n)
		_ = k.Close()
	}
	names, err := fsys.ReadDir("a/b")
	if err != nil || strings.Join(names, ",") != "c,f,z" {
		t.Fatalf("ReadDir = %v, %v", names, err)
	}
	if err := fsys.Rename("a/b/z", "a/b/f"); err != nil {
		t.Fatalf("Rename over an existing file: %v", err)
	}
	if got := readString(fsys, "a/b/f"); got != "a/b/z" {
		t.Fatalf("after Rename: %q", got)
	}
	if err := fsys.Remove("a/b/c"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.SyncDir("a/b"); err != nil {
		t.Fatal(err)
	}
	names, _ = fsys.ReadDir("a/b")
	if strings.Join(names, ",") != "f" {
		t.Fatalf("ReadDir after Rename and Remove = %v", names)
	}
	for name, err := range map[string]error{
		"ReadFile":   func() error { _, err := fsys.ReadFile("a/nope"); return err }(),
		"OpenAppend": func() error { _, err := fsys.OpenAppend("a/nope"); return err }(),
		"ReadDir":    func() error { _, err := fsys.ReadDir("nope"); return err }(),
		"Remove":     fsys.Remove("a/nope"),
		"Create":     func() error { _, err := fsys.Create("nope/f"); return err }(),
		"Rename":     fsys.Rename("a/nope", "a/b/x"),
	} {
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s of a missing name: %v, want fs.ErrNotExist", name, err)
		}
	}
}

func TestMemFSConformance(t *testing.T) { testFSConformance(t, NewMemFS()) }
