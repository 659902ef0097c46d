package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

func writeFile(t *testing.T, fsys FS, name, data string, sync bool) File {
	t.Helper()
	f, err := fsys.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func readString(fsys FS, name string) string {
	b, err := fsys.ReadFile(name)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func TestMemFSSyncedDataSurvivesUnsyncedDoesNot(t *testing.T) {
	mem := NewMemFS()
	f := writeFile(t, mem, "a", "synced", true)
	if err := mem.SyncDir("."); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("-lost")); err != nil {
		t.Fatal(err)
	}
	if got := readString(mem, "a"); got != "synced-lost" {
		t.Fatalf("before the crash, reads see %q", got)
	}
	// Over many seeds the unsynced write is dropped or kept torn, never
	// anything else, and both happen.
	seen := map[string]bool{}
	for seed := uint64(0); seed < 64; seed++ {
		m := NewMemFS()
		f := writeFile(t, m, "a", "synced", true)
		if err := m.SyncDir("."); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("-lost")); err != nil {
			t.Fatal(err)
		}
		m.Crash(newRand(seed))
		got := readString(m, "a")
		if !strings.HasPrefix("synced-lost", got) || len(got) < len("synced") {
			t.Fatalf("seed %d: after the crash %q", seed, got)
		}
		seen[got] = true
	}
	if !seen["synced"] || len(seen) < 4 {
		t.Fatalf("outcomes %v: want the write dropped, and torn at several lengths", seen)
	}
}

// TestMemFSOnlyLastWriteTears: earlier unsynced writes are dropped; if the
// last survives, the bytes before it read as zeros.
func TestMemFSOnlyLastWriteTears(t *testing.T) {
	seen := map[string]bool{}
	for seed := uint64(0); seed < 64; seed++ {
		m := NewMemFS()
		f := writeFile(t, m, "a", "base", true)
		_ = m.SyncDir(".")
		_, _ = f.Write([]byte("one"))
		_, _ = f.Write([]byte("two"))
		m.Crash(newRand(seed))
		got := readString(m, "a")
		switch {
		case got == "base":
		case strings.HasPrefix(got, "base\x00\x00\x00") && strings.HasPrefix("two", got[7:]) && len(got) > 7:
		default:
			t.Fatalf("seed %d: %q", seed, got)
		}
		seen[got] = true
	}
	if !seen["base"] || !seen["base\x00\x00\x00two"] {
		t.Fatalf("outcomes %q", fmt.Sprint(seen))
	}
}

func TestMemFSTruncateIsDurableOnlyAfterSync(t *testing.T) {
	for seed := uint64(0); seed < 16; seed++ {
		m := NewMemFS()
		f := writeFile(t, m, "a", "0123456789", true)
		_ = m.SyncDir(".")
		if err := f.Truncate(4); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("xy")); err != nil {
			t.Fatal(err)
		}
		if got := readString(m, "a"); got != "0123xy" {
			t.Fatalf("reads see %q", got)
		}
		m.Crash(newRand(seed))
		if got := readString(m, "a"); got != "0123456789" {
			t.Fatalf("seed %d: unsynced truncate: %q", seed, got)
		}
	}
	m := NewMemFS()
	f := writeFile(t, m, "a", "0123456789", true)
	_ = m.SyncDir(".")
	_ = f.Truncate(4)
	_ = f.Sync()
	m.Crash(newRand(1))
	if got := readString(m, "a"); got != "0123" {
		t.Fatalf("synced truncate: %q", got)
	}
}

func TestMemFSDirectoryDurability(t *testing.T) {
	tests := []struct {
		name    string
		do      func(m *MemFS)
		syncDir bool
		want    string // sorted files after the crash, with contents
	}{
		{"create, no SyncDir", func(m *MemFS) { writeFile(t, m, "d/new", "x", true) }, false, "d/old=old"},
		{"create, SyncDir", func(m *MemFS) { writeFile(t, m, "d/new", "x", true) }, true, "d/new=x d/old=old"},
		{"rename, no SyncDir", func(m *MemFS) { _ = m.Rename("d/old", "d/renamed") }, false, "d/old=old"},
		{"rename, SyncDir", func(m *MemFS) { _ = m.Rename("d/old", "d/renamed") }, true, "d/renamed=old"},
		{"remove, no SyncDir", func(m *MemFS) { _ = m.Remove("d/old") }, false, "d/old=old"},
		{"remove, SyncDir", func(m *MemFS) { _ = m.Remove("d/old") }, true, ""},
		{"rename over, SyncDir", func(m *MemFS) {
			writeFile(t, m, "d/tmp", "new", true)
			_ = m.Rename("d/tmp", "d/old")
		}, true, "d/old=new"},
		{"new directory, parent not synced", func(m *MemFS) {
			_ = m.MkdirAll("d/sub")
			writeFile(t, m, "d/sub/f", "x", true)
			_ = m.SyncDir("d/sub")
		}, false, "d/old=old"},
		{"new directory, parent synced", func(m *MemFS) {
			_ = m.MkdirAll("d/sub")
			writeFile(t, m, "d/sub/f", "x", true)
			_ = m.SyncDir("d/sub")
		}, true, "d/old=old d/sub/f=x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMemFS()
			_ = m.MkdirAll("d")
			_ = m.SyncDir(".")
			writeFile(t, m, "d/old", "old", true)
			_ = m.SyncDir("d")
			tt.do(m)
			if tt.syncDir {
				if err := m.SyncDir("d"); err != nil {
					t.Fatal(err)
				}
			}
			m.Crash(newRand(1))
			var got []string
			for _, f := range m.Files() {
				got = append(got, f+"="+readString(m, f))
			}
			if strings.Join(got, " ") != tt.want {
				t.Fatalf("after the crash: %q, want %q", strings.Join(got, " "), tt.want)
			}
		})
	}
}

func TestMemFSCrashInvalidatesHandles(t *testing.T) {
	m := NewMemFS()
	f := writeFile(t, m, "a", "x", true)
	m.Crash(newRand(1))
	if _, err := f.Write([]byte("y")); !errors.Is(err, ErrCrashed) {
		t.Fatalf("Write after Crash: %v", err)
	}
	if err := f.Sync(); !errors.Is(err, ErrCrashed) {
		t.Fatalf("Sync after Crash: %v", err)
	}
	g := writeFile(t, m, "b", "x", true)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Write([]byte("y")); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
}

func TestMemFSFull(t *testing.T) {
	m := NewMemFS()
	f := writeFile(t, m, "a", "abc", true)
	m.SetFull(true)
	if n, err := f.Write([]byte("def")); !errors.Is(err, ErrNoSpace) || n != 0 {
		t.Fatalf("Write on a full disk: %d, %v", n, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("Sync with nothing to sync on a full disk: %v", err)
	}
	if err := f.Truncate(1); err != nil {
		t.Fatalf("shrinking Truncate on a full disk: %v", err)
	}
	if err := f.Sync(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Sync of a change on a full disk: %v", err)
	}
	if got := readString(m, "a"); got != "a" {
		t.Fatalf("reads on a full disk: %q", got)
	}
	m.SetFull(false)
	if _, err := f.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := readString(m, "a"); got != "aok" {
		t.Fatalf("after space came back: %q", got)
	}
	if ErrNoSpace.Error() != "no space left on device" {
		t.Fatalf("ErrNoSpace says %q", ErrNoSpace)
	}
}

func TestMemFSCorrupt(t *testing.T) {
	m := NewMemFS()
	data := bytes.Repeat([]byte{0x55}, 64)
	writeFile(t, m, "a", string(data), true)
	if err := m.Corrupt("a", 10, newRand(1)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Corrupt of a file whose name is not durable: %v", err)
	}
	_ = m.SyncDir(".")
	if err := m.Corrupt("a", 64, newRand(1)); err == nil {
		t.Fatal("Corrupt beyond the end succeeded")
	}
	if err := m.Corrupt("a", 10, newRand(1)); err != nil {
		t.Fatal(err)
	}
	for _, got := range [][]byte{must(m.ReadFile("a")), func() []byte { m.Crash(newRand(2)); return must(m.ReadFile("a")) }()} {
		diff := 0
		for i := range got {
			if got[i] != data[i] {
				if i != 10 {
					t.Fatalf("byte %d changed", i)
				}
				x := got[i] ^ data[i]
				if x&(x-1) != 0 {
					t.Fatalf("more than one bit flipped: %08b", x)
				}
				diff++
			}
		}
		if diff != 1 {
			t.Fatalf("%d bytes changed, want 1", diff)
		}
	}
}

func TestMemFSNamespace(t *testing.T) {
	m := NewMemFS()
	if _, err := m.Create("missing/a"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Create in a missing directory: %v", err)
	}
	if _, err := m.OpenAppend("a"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenAppend of a missing file: %v", err)
	}
	if _, err := m.Create("../a"); !errors.Is(err, fs.ErrInvalid) {
		t.Fatalf("Create outside the root: %v", err)
	}
	_ = m.MkdirAll("d/e")
	writeFile(t, m, "d/b", "bb", false)
	writeFile(t, m, "d/a", "a", false)
	names, err := m.ReadDir("d")
	if err != nil || strings.Join(names, ",") != "a,b,e" {
		t.Fatalf("ReadDir = %v, %v", names, err)
	}
	if err := m.Remove("d/e"); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove("d"); err == nil {
		t.Fatal("Remove of a non-empty directory succeeded")
	}
	f, _ := m.OpenAppend("d/a")
	_, _ = f.Write([]byte("++"))
	if got := readString(m, "d/a"); got != "a++" {
		t.Fatalf("append: %q", got)
	}
	if m.SizeBytes() != 5 || strings.Join(m.Files(), ",") != "d/a,d/b" {
		t.Fatalf("SizeBytes %d, Files %v", m.SizeBytes(), m.Files())
	}
	// Create of an existing file truncates it.
	writeFile(t, m, "d/a", "new", false)
	if got := readString(m, "d/a"); got != "new" {
		t.Fatalf("Create over a file: %q", got)
	}
}

// TestMemFSDeterministic: the same operations and seed give the same disk.
func TestMemFSDeterministic(t *testing.T) {
	run := func() string {
		m := NewMemFS()
		for i := 0; i < 20; i++ {
			f := writeFile(t, m, fmt.Sprintf("f%02d", i), strings.Repeat("s", 10), true)
			_, _ = f.Write([]byte(strings.Repeat("u", 50)))
		}
		_ = m.SyncDir(".")
		m.Crash(newRand(42))
		var sb strings.Builder
		for _, f := range m.Files() {
			fmt.Fprintf(&sb, "%s=%d ", f, len(must(m.ReadFile(f))))
		}
		return sb.String()
	}
	if a, b := run(), run(); a != b {
		t.Fatalf("two runs differ:\n%s\n%s", a, b)
	}
}
