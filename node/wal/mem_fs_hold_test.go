package wal

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// holdBase returns a MemFS holding the durable file "a" with content base,
// its name durable too, and a handle on it.
func holdBase(t *testing.T, base string) (*MemFS, File) {
	t.Helper()
	m := NewMemFS()
	f := writeFile(t, m, "a", base, true)
	if err := m.SyncDir("."); err != nil {
		t.Fatal(err)
	}
	return m, f
}

func mustWrite(t *testing.T, f File, data string) {
	t.Helper()
	if _, err := f.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
}

func mustSync(t *testing.T, f File) {
	t.Helper()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestMemFSHeldSyncLostOnCrash: a Sync made while held is undone by a Crash
// before Release: the write it covered is dropped or kept torn, like any
// unsynced write, and both happen over seeds.
func TestMemFSHeldSyncLostOnCrash(t *testing.T) {
	seen := map[string]bool{}
	for seed := uint64(0); seed < 64; seed++ {
		m, f := holdBase(t, "base")
		m.Hold()
		if !m.Held() {
			t.Fatal("Held() = false after Hold")
		}
		mustWrite(t, f, "-held")
		mustSync(t, f)
		if got := readString(m, "a"); got != "base-held" {
			t.Fatalf("while held, reads see %q", got)
		}
		m.Crash(newRand(seed))
		if m.Held() {
			t.Fatal("Held() = true after Crash")
		}
		got := readString(m, "a")
		if !strings.HasPrefix("base-held", got) || len(got) < len("base") {
			t.Fatalf("seed %d: after the crash %q", seed, got)
		}
		seen[got] = true
	}
	if !seen["base"] || len(seen) < 3 {
		t.Fatalf("outcomes %q: want the held write dropped, and torn at several lengths", fmt.Sprint(seen))
	}
}

// TestMemFSHeldSyncTornOnTearNextCrash: TearNextCrash tears the last write
// a held Sync covered, for every seed.
func TestMemFSHeldSyncTornOnTearNextCrash(t *testing.T) {
	for seed := uint64(0); seed < 32; seed++ {
		m, f := holdBase(t, "base")
		m.Hold()
		mustWrite(t, f, "-held")
		mustSync(t, f)
		m.TearNextCrash()
		m.Crash(newRand(seed))
		got := readString(m, "a")
		if !strings.HasPrefix("base-held", got) || len(got) <= len("base") {
			t.Fatalf("seed %d: after a tearing crash %q, want base and part of -held", seed, got)
		}
	}
}

// TestMemFSHeldSyncOnlyLastWriteTears: with a held Sync between two writes,
// the crash sees both as unsynced: the first is dropped (zeros if the
// second survives) and only the second may be torn.
func TestMemFSHeldSyncOnlyLastWriteTears(t *testing.T) {
	for seed := uint64(0); seed < 32; seed++ {
		m, f := holdBase(t, "base")
		m.Hold()
		mustWrite(t, f, "one")
		mustSync(t, f)
		mustWrite(t, f, "two")
		mustSync(t, f)
		m.TearNextCrash()
		m.Crash(newRand(seed))
		got := readString(m, "a")
		if !strings.HasPrefix(got, "base\x00\x00\x00") || len(got) <= 7 || !strings.HasPrefix("two", got[7:]) {
			t.Fatalf("seed %d: %q, want base, three zeros, part of two", seed, got)
		}
	}
}

// TestMemFSReleaseMakesHeldSyncsDurable: after Release the held syncs are
// as durable as any, and what follows is unsynced as usual.
func TestMemFSReleaseMakesHeldSyncsDurable(t *testing.T) {
	for seed := uint64(0); seed < 32; seed++ {
		m, f := holdBase(t, "base")
		m.Hold()
		mustWrite(t, f, "-held")
		mustSync(t, f)
		m.Release()
		if m.Held() {
			t.Fatal("Held() = true after Release")
		}
		mustWrite(t, f, "-after")
		if seed%2 == 0 {
			m.TearNextCrash()
		}
		m.Crash(newRand(seed))
		got := readString(m, "a")
		if !strings.HasPrefix("base-held-after", got) || len(got) < len("base-held") {
			t.Fatalf("seed %d: %q, want base-held and maybe part of -after", seed, got)
		}
		if seed%2 == 0 && len(got) == len("base-held") {
			t.Fatalf("seed %d: TearNextCrash kept nothing of the unsynced write", seed)
		}
	}
}

// TestMemFSHeldTruncate: a truncate made durable by a held Sync is undone
// with it, even when later writes land where the old durable bytes were.
func TestMemFSHeldTruncate(t *testing.T) {
	for _, release := range []bool{false, true} {
		for seed := uint64(0); seed < 16; seed++ {
			m, f := holdBase(t, "0123456789")
			m.Hold()
			mustWrite(t, f, "AB") // shares the durable bytes' array
			mustSync(t, f)
			if err := f.Truncate(2); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "zzzzzz") // overwrites that array past 2
			mustSync(t, f)
			if release {
				m.Release()
			}
			m.TearNextCrash()
			m.Crash(newRand(seed))
			want := "0123456789"
			if release {
				want = "01zzzzzz"
			}
			if got := readString(m, "a"); got != want {
				t.Fatalf("release=%v seed %d: %q, want %q", release, seed, got, want)
			}
		}
	}
}

// TestMemFSHeldSyncDir mirrors TestMemFSDirectoryDurability with the
// SyncDir made while held: a Crash before Release loses the change, a
// Release keeps it.
func TestMemFSHeldSyncDir(t *testing.T) {
	tests := []struct {
		name     string
		do       func(m *MemFS)
		unsynced string // after a crash before Release
		synced   string // after Release, then a crash
	}{
		{"create", func(m *MemFS) { writeFile(t, m, "d/new", "x", true) }, "d/old=old", "d/new=x d/old=old"},
		{"rename", func(m *MemFS) { _ = m.Rename("d/old", "d/renamed") }, "d/old=old", "d/renamed=old"},
		{"remove", func(m *MemFS) { _ = m.Remove("d/old") }, "d/old=old", ""},
		{"rename over", func(m *MemFS) {
			writeFile(t, m, "d/tmp", "new", true)
			_ = m.Rename("d/tmp", "d/old")
		}, "d/old=old", "d/old=new"},
		{"new directory", func(m *MemFS) {
			_ = m.MkdirAll("d/sub")
			writeFile(t, m, "d/sub/f", "x", true)
			_ = m.SyncDir("d/sub")
		}, "d/old=old", "d/old=old d/sub/f=x"},
	}
	for _, tt := range tests {
		for _, release := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/release=%v", tt.name, release), func(t *testing.T) {
				m := NewMemFS()
				_ = m.MkdirAll("d")
				_ = m.SyncDir(".")
				writeFile(t, m, "d/old", "old", true)
				_ = m.SyncDir("d")
				m.Hold()
				tt.do(m)
				if err := m.SyncDir("d"); err != nil {
					t.Fatal(err)
				}
				want := tt.unsynced
				if release {
					m.Release()
					want = tt.synced
				}
				m.Crash(newRand(1))
				if got := dumpFiles(m); got != want {
					t.Fatalf("after the crash: %q, want %q", got, want)
				}
			})
		}
	}
}

// TestMemFSHoldDoesNotNest: Hold while held keeps the first mark, one
// Release completes everything, and Release when not held does nothing.
func TestMemFSHoldDoesNotNest(t *testing.T) {
	m, f := holdBase(t, "base")
	m.Release() // not held: nothing happens
	if m.Held() {
		t.Fatal("Release made the MemFS held")
	}
	m.Hold()
	mustWrite(t, f, "-one")
	mustSync(t, f)
	m.Hold()
	mustWrite(t, f, "-two")
	mustSync(t, f)
	m.Crash(newRand(3))
	if got := readString(m, "a"); !strings.HasPrefix(got, "base") || strings.Contains(got, "-one") {
		t.Fatalf("crash after two Holds: %q, want both held syncs undone", got)
	}

	m, f = holdBase(t, "base")
	m.Hold()
	mustWrite(t, f, "-one")
	mustSync(t, f)
	m.Hold()
	mustWrite(t, f, "-two")
	mustSync(t, f)
	m.Release()
	if m.Held() {
		t.Fatal("Held() after one Release of two Holds")
	}
	m.Crash(newRand(3))
	if got := readString(m, "a"); got != "base-one-two" {
		t.Fatalf("crash after Hold, Hold, Release: %q, want both syncs durable", got)
	}
}

// TestMemFSHoldEndsAtCrash: a Crash ends the hold, so later syncs are
// durable at once; SyncCount counts held syncs.
func TestMemFSHoldEndsAtCrash(t *testing.T) {
	m, _ := holdBase(t, "base")
	m.Hold()
	before := m.SyncCount()
	f, err := m.OpenAppend("a")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, "-x")
	mustSync(t, f)
	if err := m.SyncDir("."); err != nil {
		t.Fatal(err)
	}
	if got := m.SyncCount() - before; got != 2 {
		t.Fatalf("SyncCount rose by %d over two held syncs, want 2", got)
	}
	m.Crash(newRand(1))
	f, err = m.OpenAppend("a")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, "-y")
	mustSync(t, f)
	m.Crash(newRand(1))
	if got := readString(m, "a"); !strings.HasSuffix(got, "-y") {
		t.Fatalf("a sync after the crash ended the hold was lost: %q", got)
	}
}

// TestMemFSHeldFullSync: a Sync that fails on a full disk while held
// makes nothing durable, even once released.
func TestMemFSHeldFullSync(t *testing.T) {
	for seed := uint64(0); seed < 16; seed++ {
		m, f := holdBase(t, "base")
		mustWrite(t, f, "-x")
		mustWrite(t, f, "-y")
		m.Hold()
		m.SetFull(true)
		if err := f.Sync(); err == nil {
			t.Fatal("Sync on a full disk succeeded")
		}
		m.SetFull(false)
		m.Release()
		m.Crash(newRand(seed))
		if got := readString(m, "a"); strings.HasPrefix(got, "base-x") {
			t.Fatalf("seed %d: after a failed held Sync, Release and a crash: %q", seed, got)
		}
	}
}

// TestMemFSCorruptWhileHeld: a byte corrupted while held stays corrupt
// whether the held sync completes or not.
func TestMemFSCorruptWhileHeld(t *testing.T) {
	data := bytes.Repeat([]byte{0x55}, 64)
	for _, release := range []bool{false, true} {
		m, f := holdBase(t, string(data))
		m.Hold()
		mustWrite(t, f, "tail")
		mustSync(t, f)
		if err := m.Corrupt("a", 10, newRand(1)); err != nil {
			t.Fatal(err)
		}
		if got := must(m.ReadFile("a")); got[10] == 0x55 {
			t.Fatalf("release=%v: reads do not see the flip", release)
		}
		if release {
			m.Release()
		}
		m.Crash(newRand(0))
		got := must(m.ReadFile("a"))
		if len(got) < 64 || got[10] == 0x55 || !bytes.Equal(got[:10], data[:10]) || !bytes.Equal(got[11:64], data[11:]) {
			t.Fatalf("release=%v: after the crash % x", release, got)
		}
		if release && string(got[64:]) != "tail" {
			t.Fatalf("released sync lost: %q", got[64:])
		}
	}
}

func dumpFiles(m *MemFS) string {
	var out []string
	for _, f := range m.Files() {
		out = append(out, f+"="+readString(m, f))
	}
	return strings.Join(out, " ")
}

// TestMemFSHoldEquivalence checks Hold against its definition on random
// operations: a MemFS whose held syncs end in a Crash reads, after the
// crash, exactly like one where those syncs were never called, and one
// whose held syncs end in a Release exactly like one where they were
// called without a hold. The twin runs the same operations unheld,
// skipping the syncs of windows that end in a Crash, and both crash with
// the same seed.
func TestMemFSHoldEquivalence(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		ops := holdOps(seed, 300)
		held, twin := NewMemFS(), NewMemFS()
		skip := false // in a window that ends in a crash
		for i, op := range ops {
			if op.kind == "hold" {
				skip = endsInCrash(ops[i:])
			}
			if err := op.run(held, true, false); err != nil {
				t.Fatalf("seed %d op %d %v: %v", seed, i, op, err)
			}
			if err := op.run(twin, false, skip && op.isSync()); err != nil {
				t.Fatalf("seed %d op %d %v (twin): %v", seed, i, op, err)
			}
			if op.kind == "release" || op.kind == "crash" {
				skip = false
			}
			if a, b := dumpFiles(held), dumpFiles(twin); a != b {
				t.Fatalf("seed %d after op %d %v:\n held %q\n twin %q", seed, i, op, a, b)
			}
		}
	}
}

type holdOp struct {
	kind    string // write, sync, truncate, create, rename, remove, mkdir, syncdir, hold, release, crash
	name    string
	to      string
	data    string
	size    int64
	tear    bool
	rngSeed uint64
}

func (op holdOp) isSync() bool { return op.kind == "sync" || op.kind == "syncdir" }

// endsInCrash reports whether the window starting at ops[0] (a hold) ends
// in a crash rather than a release (or the end).
func endsInCrash(ops []holdOp) bool {
	for _, op := range ops {
		switch op.kind {
		case "crash":
			return true
		case "release":
			return false
		}
	}
	return false
}

// run applies op to m; held says whether m honours hold and release, skip
// whether to leave out this (sync) operation. Operation errors are part of
// the outcome both MemFSs must share, so they are folded into nothing: only
// a failure to open the file for an op on an existing name is returned.
func (op holdOp) run(m *MemFS, held, skip bool) error {
	if skip {
		return nil
	}
	switch op.kind {
	case "hold":
		if held {
			m.Hold()
		}
	case "release":
		if held {
			m.Release()
		}
	case "crash":
		if op.tear {
			m.TearNextCrash()
		}
		m.Crash(newRand(op.rngSeed))
	case "create":
		f, err := m.Create(op.name)
		if err == nil {
			return f.Close()
		}
	case "rename":
		_ = m.Rename(op.name, op.to)
	case "remove":
		_ = m.Remove(op.name)
	case "mkdir":
		_ = m.MkdirAll(op.name)
	case "syncdir":
		_ = m.SyncDir(op.name)
	case "write", "sync", "truncate":
		f, err := m.OpenAppend(op.name)
		if err != nil {
			return nil // no such file, in both
		}
		switch op.kind {
		case "write":
			_, err = f.Write([]byte(op.data))
		case "sync":
			err = f.Sync()
		case "truncate":
			err = f.Truncate(op.size)
		}
		if err != nil {
			return err
		}
		return f.Close()
	}
	return nil
}

func holdOps(seed uint64, n int) []holdOp {
	rng := newRand(seed)
	names := []string{"a", "b", "d/a", "d/b"}
	dirs := []string{".", "d"}
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	ops := make([]holdOp, 0, n)
	for range n {
		var op holdOp
		switch r := rng.IntN(100); {
		case r < 30:
			op = holdOp{kind: "write", name: pick(names), data: strings.Repeat(string(rune('a'+rng.IntN(26))), 1+rng.IntN(9))}
		case r < 50:
			op = holdOp{kind: "sync", name: pick(names)}
		case r < 55:
			op = holdOp{kind: "truncate", name: pick(names), size: int64(rng.IntN(30))}
		case r < 62:
			op = holdOp{kind: "create", name: pick(names)}
		case r < 66:
			op = holdOp{kind: "rename", name: pick(names), to: pick(names)}
		case r < 69:
			op = holdOp{kind: "remove", name: pick(append(names, "d"))}
		case r < 72:
			op = holdOp{kind: "mkdir", name: "d"}
		case r < 82:
			op = holdOp{kind: "syncdir", name: pick(dirs)}
		case r < 89:
			op = holdOp{kind: "hold"}
		case r < 94:
			op = holdOp{kind: "release"}
		default:
			op = holdOp{kind: "crash", tear: rng.IntN(3) == 0, rngSeed: rng.Uint64()}
		}
		ops = append(ops, op)
	}
	return ops
}
