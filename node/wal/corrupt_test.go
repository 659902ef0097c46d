package wal

import (
	"errors"
	"fmt"
	"path"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// corruptFixture is a WAL on a MemFS with three segments; the last holds
// two batches, the final one Save(final hs, entries 18..20).
type corruptFixture struct {
	mem              *MemFS
	log              []*raftpb.Entry
	hs, hsBeforeLast *raftpb.HardState
	segs             []string
	lastBatch        int64 // offset of the final batch in the last segment
}

func newCorruptFixture(t *testing.T) corruptFixture {
	t.Helper()
	mem := NewMemFS()
	w := mustCreate(t, mem, 380)
	fx := corruptFixture{mem: mem}
	saves := []struct {
		hs   *raftpb.HardState
		ents []*raftpb.Entry
	}{
		{hardState(1, 1, 0), ents(1, 6, 1)},
		{hardState(1, 1, 3), ents(7, 10, 1)}, // segment 2
		{hardState(2, 2, 8), ents(11, 14, 2)},
		{nil, ents(15, 17, 2)},                 // segment 3 ...
		{hardState(2, 2, 12), ents(18, 20, 2)}, // ... and its final batch
	}
	for _, s := range saves {
		fx.hsBeforeLast = fx.hs
		mustSave(t, w, s.hs, s.ents)
		fx.log = appendLog(fx.log, s.ents)
		if s.hs != nil {
			fx.hs = s.hs
		}
	}
	fx.lastBatch = w.batchStart
	fx.segs = segmentFiles(t, mem)
	if len(fx.segs) != 3 {
		t.Fatalf("fixture has %d segments, want 3", len(fx.segs))
	}
	return fx
}

// entryRecords returns the offsets of the entry records of a segment.
func entryRecords(t *testing.T, buf []byte) []int64 {
	var out []int64
	for _, off := range recordOffsets(t, buf) {
		if rec, _, _ := readRecord(buf, off); rec.typ == recordEntry {
			out = append(out, off)
		}
	}
	return out
}

func TestCorruptNonLastSegment(t *testing.T) {
	for seg := 0; seg < 2; seg++ {
		fx := newCorruptFixture(t)
		buf, _ := fx.mem.ReadFile(fx.segs[seg])
		recs := entryRecords(t, buf)
		bad := recs[len(recs)/2]
		if err := fx.mem.Corrupt(fx.segs[seg], bad+30, newRand(uint64(seg))); err != nil {
			t.Fatal(err)
		}
		_, _, err := Open(fx.mem, testDir, SnapshotMark{}, Options{})
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.File != fx.segs[seg] || ce.Offset != bad {
			t.Fatalf("segment %d: Open: %v; want a CorruptError in %s at %d", seg, err, fx.segs[seg], bad)
		}
		t.Logf("%v", err)
	}
}

func TestCorruptLastRecordIsRepaired(t *testing.T) {
	fx := newCorruptFixture(t)
	last := fx.segs[2]
	buf, _ := fx.mem.ReadFile(last)
	offs := recordOffsets(t, buf)
	lastRec := offs[len(offs)-1] // the final batch's hard state
	lastEntry := offs[len(offs)-2]
	if err := fx.mem.Corrupt(last, lastEntry+25, newRand(3)); err != nil {
		t.Fatal(err)
	}
	w, c, err := Open(fx.mem, testDir, SnapshotMark{}, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	// Entry 20 and the hard state after it are cut off; 18 and 19 stay.
	if d := diffLogs(c.Entries, fx.log[:len(fx.log)-1]); d != "" {
		t.Fatal(d)
	}
	if !proto.Equal(c.HardState, fx.hsBeforeLast) {
		t.Fatalf("hard state %v, want %v", c.HardState, fx.hsBeforeLast)
	}
	if c.TornTail == nil || c.TornTail.File != last || c.TornTail.Offset != lastEntry ||
		c.TornTail.DroppedBytes != int64(len(buf))-lastEntry {
		t.Fatalf("TornTail %+v, want %s cut at %d (hard state at %d)", c.TornTail, last, lastEntry, lastRec)
	}
	// The cut is durable, and the WAL appends after it.
	mustSave(t, w, hardState(3, 3, 14), ents(20, 21, 3))
	fx.mem.Crash(newRand(4))
	_, c = mustOpen(t, fx.mem, SnapshotMark{})
	want := appendLog(fx.log, ents(20, 21, 3))
	if d := diffLogs(c.Entries, want); d != "" || c.TornTail != nil {
		t.Fatalf("after appending: %s, torn %v", d, c.TornTail)
	}
}

func TestCorruptEarlierBatchOfLastSegment(t *testing.T) {
	fx := newCorruptFixture(t)
	last := fx.segs[2]
	buf, _ := fx.mem.ReadFile(last)
	bad := entryRecords(t, buf)[1] // entry 16, in the batch before the final one
	if err := fx.mem.Corrupt(last, bad+3, newRand(5)); err != nil {
		t.Fatal(err)
	}
	_, _, err := Open(fx.mem, testDir, SnapshotMark{}, Options{})
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.File != last || ce.Offset != bad {
		t.Fatalf("Open: %v; want a CorruptError in %s at %d", err, last, bad)
	}
}

// TestBitFlipSweep flips a bit in every byte of every segment, one at a
// time, and checks that Open never returns anything but the truth: either a
// CorruptError for that file, or (only for a flip in the final batch) the
// log with a suffix of that batch cut off.
func TestBitFlipSweep(t *testing.T) {
	fx := newCorruptFixture(t)
	rng := newRand(6)
	outcomes := map[string]int{}
	for si, seg := range fx.segs {
		size := int64(len(must(fx.mem.ReadFile(seg))))
		for off := int64(0); off < size; off++ {
			fx := newCorruptFixture(t)
			if err := fx.mem.Corrupt(seg, off, rng); err != nil {
				t.Fatal(err)
			}
			_, c, err := Open(fx.mem, testDir, SnapshotMark{}, Options{})
			var ce *CorruptError
			switch {
			case errors.As(err, &ce):
				if ce.File != seg {
					t.Fatalf("flip in %s at %d: CorruptError names %s", seg, off, ce.File)
				}
				outcomes["corrupt"]++
			case err != nil:
				t.Fatalf("flip in %s at %d: %v", seg, off, err)
			case si != len(fx.segs)-1 || off < fx.lastBatch:
				t.Fatalf("flip in %s at %d (final batch at %d): Open succeeded", seg, off, fx.lastBatch)
			default:
				// A suffix of the final batch (entries 18-20, hard state) is gone.
				cut := len(fx.log) - len(c.Entries)
				if cut < 0 || cut > 3 || diffLogs(c.Entries, fx.log[:len(fx.log)-cut]) != "" || c.TornTail == nil {
					t.Fatalf("flip in %s at %d: log %s, torn %v", seg, off, span(c.Entries), c.TornTail)
				}
				if !proto.Equal(c.HardState, fx.hsBeforeLast) {
					t.Fatalf("flip in %s at %d: hard state %v, want %v", seg, off, c.HardState, fx.hsBeforeLast)
				}
				outcomes[fmt.Sprintf("cut %d entries", cut)]++
			}
		}
	}
	t.Logf("outcomes: %v", outcomes)
	if outcomes["corrupt"] == 0 || outcomes["cut 3 entries"] == 0 || outcomes["cut 0 entries"] == 0 {
		t.Fatalf("the sweep missed a kind of outcome: %v", outcomes)
	}
}

func TestMissingOrForeignSegment(t *testing.T) {
	fx := newCorruptFixture(t)
	if err := fx.mem.Remove(fx.segs[1]); err != nil {
		t.Fatal(err)
	}
	var ce *CorruptError
	if _, _, err := Open(fx.mem, testDir, SnapshotMark{}, Options{}); !errors.As(err, &ce) || ce.File != fx.segs[2] {
		t.Fatalf("Open with a segment missing: %v", err)
	}

	// A segment of another member's WAL, renamed into place.
	fx = newCorruptFixture(t)
	other := NewMemFS()
	w, err := Create(other, testDir, []byte("member=2"), Options{SegmentBytes: 380})
	if err != nil {
		t.Fatal(err)
	}
	mustSave(t, w, hardState(1, 1, 0), ents(1, 6, 1))
	mustSave(t, w, hardState(1, 1, 3), ents(7, 10, 1))
	foreign := segmentFiles(t, other)[1]
	f, _ := fx.mem.Create(fx.segs[1])
	if _, err := f.Write(must(other.ReadFile(foreign))); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(fx.mem, testDir, SnapshotMark{}, Options{}); !errors.As(err, &ce) || ce.File != fx.segs[1] {
		t.Fatalf("Open with a foreign segment: %v", err)
	}
	// A segment renamed: its header disagrees with its name.
	fx = newCorruptFixture(t)
	renamed := path.Join(testDir, segmentName(3, 1000))
	if err := fx.mem.Rename(fx.segs[2], renamed); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(fx.mem, testDir, SnapshotMark{}, Options{}); !errors.As(err, &ce) || ce.File != renamed {
		t.Fatalf("Open with a renamed segment: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
