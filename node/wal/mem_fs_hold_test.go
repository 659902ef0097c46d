package wal

import (
	"bytes"
	"fmt"
	"slices"
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

// TestMemFSCrashTearsOnlyTheWriteInProgress: a program writes again only
// once its fsync returned, so a crash inside a step's two held syncs can
// never find the first write lost (zeros) and the second torn after it,
// as it used to: a crash at the first keeps base and part of "one" only
// ("two" was never issued); at the second, all of "one" and part of "two".
func TestMemFSCrashTearsOnlyTheWriteInProgress(t *testing.T) {
	for seed := uint64(0); seed < 64; seed++ {
		for _, tear := range []bool{false, true} {
			m, f := holdBase(t, "base")
			m.Hold()
			mustWrite(t, f, "one")
			mustSync(t, f)
			mustWrite(t, f, "two")
			mustSync(t, f)
			if tear {
				m.TearNextCrash()
			}
			m.Crash(newRand(seed))
			got := readString(m, "a")
			if strings.Contains(got, "\x00") || !strings.HasPrefix("baseone", got) || len(got) < len("base") {
				t.Fatalf("seed %d tear=%v: %q, want base and maybe part of one: nothing after the sync in progress", seed, tear, got)
			}
			if tear && got == "base" {
				t.Fatalf("seed %d: TearNextCrash kept nothing of the write in progress", seed)
			}
		}
	}
}

// TestMemFSCrashAtPoint: CrashAt(k) completes the first k held syncs and
// finds the disk as it was when the next was called: only the write that
// sync covered can be torn, and later writes were never issued.
func TestMemFSCrashAtPoint(t *testing.T) {
	for seed := uint64(0); seed < 32; seed++ {
		for _, tc := range []struct {
			point      int
			durable    string // what must survive whole
			inProgress string // what may survive torn after it
		}{
			{0, "base", "one"},
			{1, "baseone", "two"},
			{2, "baseonetwo", "three"},
			{3, "baseonetwothree", ""}, // every held sync completed
			{9, "baseonetwothree", ""},
		} {
			m, f := holdBase(t, "base")
			m.Hold()
			for _, w := range []string{"one", "two", "three"} {
				mustWrite(t, f, w)
				mustSync(t, f)
			}
			if m.HeldPoints() != 3 {
				t.Fatalf("%d points for three held syncs", m.HeldPoints())
			}
			m.TearNextCrash()
			m.CrashAt(tc.point, newRand(seed))
			got := readString(m, "a")
			rest, ok := strings.CutPrefix(got, tc.durable)
			if !ok || !strings.HasPrefix(tc.inProgress, rest) || (tc.inProgress != "" && rest == "") {
				t.Fatalf("seed %d point %d: %q, want %q and part of %q", seed, tc.point, got, tc.durable, tc.inProgress)
			}
			if m.Held() || m.HeldPoints() != 0 {
				t.Fatal("CrashAt did not end the hold")
			}
		}
	}
}

// TestMemFSHoldPoint: another device's sync between two of the disk's is a
// point too: a crash there completes the first sync, and the second write,
// issued after it, never happened.
func TestMemFSHoldPoint(t *testing.T) {
	for seed := uint64(0); seed < 16; seed++ {
		m, f := holdBase(t, "base")
		m.Hold()
		mustWrite(t, f, "one")
		mustSync(t, f)
		if p := m.HoldPoint(); p != 1 {
			t.Fatalf("HoldPoint after one held sync = %d, want 1", p)
		}
		mustWrite(t, f, "two")
		mustSync(t, f)
		m.TearNextCrash()
		m.CrashAt(1, newRand(seed))
		if got := readString(m, "a"); got != "baseone" {
			t.Fatalf("seed %d: %q, want baseone: two was never issued", seed, got)
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
// A crash at the first sync tears "AB" (in progress); at the second, the
// first sync completed and the truncate with its write did not, so the
// file is back to what the first made durable; after Release, the second
// completed.
func TestMemFSHeldTruncate(t *testing.T) {
	for _, point := range []int{0, 1, -1} { // -1: Release
		for seed := uint64(0); seed < 16; seed++ {
			m, f := holdBase(t, "0123456789")
			m.Hold()
			mustWrite(t, f, "AB") // shares the durable bytes' array
			mustSync(t, f)
			if err := f.Truncate(2); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "zzzzzz") // would overwrite that array past 2
			mustSync(t, f)
			if point < 0 {
				m.Release()
			}
			m.TearNextCrash()
			m.CrashAt(point, newRand(seed))
			got := readString(m, "a")
			switch point {
			case 0:
				if got != "0123456789A" && got != "0123456789AB" {
					t.Fatalf("point 0 seed %d: %q, want 0123456789 and part of AB", seed, got)
				}
			case 1:
				if got != "0123456789AB" {
					t.Fatalf("point 1 seed %d: %q, want 0123456789AB", seed, got)
				}
			default:
				if got != "01zzzzzz" {
					t.Fatalf("released seed %d: %q, want 01zzzzzz", seed, got)
				}
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
	if m.HeldPoints() != 2 {
		t.Fatalf("%d points after two Holds, want the second Hold to keep the first's", m.HeldPoints())
	}
	m.Crash(newRand(3))
	if got := readString(m, "a"); !strings.HasPrefix("base-one", got) || len(got) < len("base") {
		t.Fatalf("crash after two Holds: %q, want the first held sync in progress and the second never called", got)
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
// operations. A twin MemFS runs the same operations without a hold. When
// the held one's hold ends in a Release, both read the same throughout.
// When it ends in a crash at point k (CrashAt), the held one, after the
// crash, reads exactly like the twin as it was just before the operation
// that made point k (a held sync that succeeded, or a HoldPoint), crashed
// with the same seed: the syncs before completed, and nothing after was
// issued. Until the crash both read the same too.
func TestMemFSHoldEquivalence(t *testing.T) {
	for seed := uint64(0); seed < 300; seed++ {
		ops := holdOps(seed, 300)
		held, twin := NewMemFS(), NewMemFS()
		var cut *MemFS // the twin just before the crash's point, once passed
		crashPoint := -1
		for i, op := range ops {
			if op.kind == "hold" && !held.Held() {
				crashPoint = -1
				if end := windowEnd(ops[i:]); end.kind == "crash" {
					crashPoint = end.point
				}
			}
			before := held.HeldPoints()
			if err := op.run(held, true); err != nil {
				t.Fatalf("seed %d op %d %v: %v", seed, i, op, err)
			}
			if held.Held() && before == crashPoint && held.HeldPoints() == before+1 {
				cut = cloneMemFS(twin) // this op made the point the crash falls at
			}
			if op.kind == "crash" && cut != nil {
				twin = cut
			}
			if err := op.run(twin, false); err != nil {
				t.Fatalf("seed %d op %d %v (twin): %v", seed, i, op, err)
			}
			if op.kind == "release" || op.kind == "crash" {
				cut, crashPoint = nil, -1
			}
			if a, b := dumpFiles(held), dumpFiles(twin); a != b {
				t.Fatalf("seed %d after op %d %v:\n held %q\n twin %q", seed, i, op, a, b)
			}
		}
	}
}

// cloneMemFS copies m deeply (it holds no open handles here: every op
// opens and closes its own).
func cloneMemFS(m *MemFS) *MemFS {
	if m.held {
		panic("cloneMemFS of a held MemFS")
	}
	inodes := map[*memInode]*memInode{}
	copyIno := func(ino *memInode) *memInode {
		if c, ok := inodes[ino]; ok {
			return c
		}
		c := *ino
		c.data, c.durable = slices.Clone(ino.data), slices.Clone(ino.durable)
		inodes[ino] = &c
		return &c
	}
	c := &MemFS{files: map[string]*memInode{}, dirs: cloneMap(m.dirs), durableFiles: map[string]*memInode{},
		durableDirs: cloneMap(m.durableDirs), full: m.full, tearNext: m.tearNext, epoch: m.epoch, syncCount: m.syncCount}
	for _, n := range sortedKeys(m.files) {
		c.files[n] = copyIno(m.files[n])
	}
	for _, n := range sortedKeys(m.durableFiles) {
		c.durableFiles[n] = copyIno(m.durableFiles[n])
	}
	return c
}

type holdOp struct {
	kind    string // write, sync, truncate, create, rename, remove, mkdir, syncdir, point, hold, release, crash
	name    string
	to      string
	data    string
	size    int64
	tear    bool
	point   int // crash: the held sync point it falls at
	rngSeed uint64
}

// windowEnd returns the op that ends the window starting at ops[0] (a
// hold): a crash or a release, or a zero op at the end.
func windowEnd(ops []holdOp) holdOp {
	for _, op := range ops {
		if op.kind == "crash" || op.kind == "release" {
			return op
		}
	}
	return holdOp{}
}

// run applies op to m; held says whether m honours hold, release and
// points (the twin does not). Operation errors are part of the outcome
// both MemFSs must share, so they are folded into nothing: only a failure
// of an op on an existing file is returned.
func (op holdOp) run(m *MemFS, held bool) error {
	switch op.kind {
	case "hold":
		if held {
			m.Hold()
		}
	case "release":
		if held {
			m.Release()
		}
	case "point":
		if held && m.Held() {
			m.HoldPoint()
		}
	case "crash":
		if op.tear {
			m.TearNextCrash()
		}
		m.CrashAt(op.point, newRand(op.rngSeed))
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
		case r < 91:
			op = holdOp{kind: "release"}
		case r < 94:
			op = holdOp{kind: "point"}
		default:
			op = holdOp{kind: "crash", tear: rng.IntN(3) == 0, point: rng.IntN(6), rngSeed: rng.Uint64()}
		}
		ops = append(ops, op)
	}
	return ops
}
