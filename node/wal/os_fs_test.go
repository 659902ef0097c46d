package wal

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func TestOSFSConformance(t *testing.T) { testFSConformance(t, OSFS(t.TempDir())) }

// TestOSFSCrashWithoutClose is the crash test on real files: a WAL is
// written, dropped without Close as a killed process would, its last write
// torn by truncating the last segment at a random byte inside it, and
// reopened. Every Save that returned before the torn one must be there,
// and the torn one at most in part.
func TestOSFSCrashWithoutClose(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		rng := newRand(seed)
		root := t.TempDir()
		fsys := OSFS(root)
		opts := Options{SegmentBytes: 2048}
		w, err := Create(fsys, testDir, testMeta, opts)
		if err != nil {
			t.Fatal(err)
		}
		var state durableState
		sim := &raftSim{}
		for i := 0; i < 60; i++ {
			op := sim.next(rng, state)
			if op.kind != "save" {
				continue // snapshots and releases are covered on MemFS
			}
			if err := op.apply(w); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			state = state.applied(op, len(op.ents), true)
		}
		// The torn Save: it writes, then the "crash" cuts its bytes short.
		var torn walOp
		for torn.ents == nil {
			torn = sim.next(rng, state)
		}
		if err := torn.apply(w); err != nil {
			t.Fatal(err)
		}
		from, to := w.batchStart, w.size
		cut := from + rng.Int64N(to-from)
		seg := filepath.Join(root, filepath.FromSlash(w.tailName()))
		if err := os.Truncate(seg, cut); err != nil {
			t.Fatal(err)
		}
		w = nil // no Close: the process is gone

		w, c, err := Open(OSFS(root), testDir, SnapshotMark{}, opts)
		if err != nil {
			t.Fatalf("seed %d: Open: %v", seed, err)
		}
		got, ok := match(c, SnapshotMark{}, state.candidates(&torn))
		if !ok {
			t.Fatalf("seed %d: Open returned %s, %v; synced %s, %v", seed, span(c.Entries), c.HardState, span(state.log), state.hs)
		}
		if cut > from && c.TornTail == nil && len(c.Entries) == len(state.log) {
			t.Fatalf("seed %d: cut at %d inside a record, but nothing was repaired", seed, cut)
		}
		// The repaired WAL takes more writes, and they read back.
		state = got
		more := sim.next(rng, state)
		for more.ents == nil {
			more = sim.next(rng, state)
		}
		if err := more.apply(w); err != nil {
			t.Fatal(err)
		}
		state = state.applied(more, len(more.ents), true)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		_, c, err = Open(OSFS(root), testDir, SnapshotMark{}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := match(c, SnapshotMark{}, []durableState{state}); !ok || c.TornTail != nil {
			t.Fatalf("seed %d: after repair and more writes: %s, torn %v", seed, span(c.Entries), c.TornTail)
		}
	}
}

// TestOSFSNoSpaceIsErrNoSpace: the OS's ENOSPC is recognizable as
// ErrNoSpace (checked on the wrapping, as a real full disk is not at hand).
func TestOSFSNoSpaceIsErrNoSpace(t *testing.T) {
	err := osErr(&os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC})
	if !errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "write x") {
		t.Fatalf("osErr(ENOSPC) = %v", err)
	}
	if _, err := OSFS(t.TempDir()).ReadFile("missing"); err == nil || errors.Is(err, ErrNoSpace) {
		t.Fatalf("a missing file is not ErrNoSpace: %v", err)
	}
}

// BenchmarkSave measures Save with OSFS on this machine's disk, one fsync
// per Save: a single 4 KiB entry, and a Ready-sized batch of 100 entries
// of 256 bytes. Compare with BenchmarkFsyncFloor.
func BenchmarkSave(b *testing.B) {
	cases := []struct {
		name           string
		entries, bytes int
	}{
		{"1x4KiB", 1, 4096},
		{"100x256B", 100, 256},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			w, err := Create(OSFS(b.TempDir()), "wal", nil, Options{})
			if err != nil {
				b.Fatal(err)
			}
			data := make([]byte, bc.bytes)
			batch := make([]*raftpb.Entry, bc.entries)
			var index uint64
			b.SetBytes(int64(bc.entries * bc.bytes))
			for b.Loop() {
				commit := index
				for j := range batch {
					index++
					batch[j] = ent(index, 1, "")
					batch[j].Data = data
				}
				if err := w.Save(hardState(1, 1, commit), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "saves/s")
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkFsyncFloor is the disk's floor: a 4 KiB append and fsync on a
// plain file, no WAL.
func BenchmarkFsyncFloor(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "floor"))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "syncs/s")
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}
