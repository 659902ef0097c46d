package wal

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// TestRoundTrip saves hard states and entries, with raft truncations,
// across many small segments, and reads back exactly the final log, also
// after reopening and appending more.
func TestRoundTrip(t *testing.T) {
	rng := newRand(1)
	mem := NewMemFS()
	w := mustCreate(t, mem, 512)
	var log []*raftpb.Entry
	var hs *raftpb.HardState
	var last, commit, term uint64 = 0, 0, 1
	check := func(stage string) {
		t.Helper()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		var c *Contents
		w, c = mustOpen(t, mem, SnapshotMark{})
		if d := diffLogs(c.Entries, log); d != "" {
			t.Fatalf("%s: log: %s", stage, d)
		}
		if !proto.Equal(c.HardState, hs) {
			t.Fatalf("%s: hard state %v, want %v", stage, c.HardState, hs)
		}
		if string(c.Metadata) != string(testMeta) || c.TornTail != nil {
			t.Fatalf("%s: metadata %q, torn %v", stage, c.Metadata, c.TornTail)
		}
	}
	for round := 0; round < 3; round++ {
		for i := 0; i < 150; i++ {
			lo := last + 1
			if last > commit && rng.IntN(5) == 0 { // a new leader overwrites the uncommitted tail
				lo = commit + 1 + rng.Uint64N(last-commit)
				term++
			}
			batch := make([]*raftpb.Entry, 1+rng.IntN(4))
			for j := range batch {
				batch[j] = ent(lo+uint64(j), term, strings.Repeat("x", rng.IntN(300)))
			}
			last = lo + uint64(len(batch)) - 1
			commit += rng.Uint64N(last - commit + 1)
			hs = hardState(term, 1, commit)
			mustSave(t, w, hs, batch)
			log = appendLog(log, batch)
		}
		check(fmt.Sprintf("round %d", round))
	}
	if n := len(segmentFiles(t, mem)); n < 20 {
		t.Fatalf("only %d segments: the test should roll many", n)
	}
}

// TestTruncation covers raft overwriting a suffix: inside the last
// segment, across segment boundaries, and down to the start of a segment.
func TestTruncation(t *testing.T) {
	tests := []struct {
		name  string
		saves [][]*raftpb.Entry
	}{
		{"append only", [][]*raftpb.Entry{ents(1, 5, 1), ents(6, 9, 1)}},
		{"replace last", [][]*raftpb.Entry{ents(1, 5, 1), ents(5, 5, 2)}},
		{"replace suffix and extend", [][]*raftpb.Entry{ents(1, 5, 1), ents(3, 8, 2)}},
		{"replace across segments", [][]*raftpb.Entry{ents(1, 10, 1), ents(11, 20, 1), ents(21, 30, 1), ents(4, 6, 3)}},
		{"replace everything", [][]*raftpb.Entry{ents(1, 10, 1), ents(11, 20, 1), ents(1, 2, 4)}},
		{"repeated overwrites", [][]*raftpb.Entry{ents(1, 10, 1), ents(8, 12, 2), ents(9, 9, 3), ents(10, 15, 4)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := NewMemFS()
			w := mustCreate(t, mem, 200) // a few entries per segment
			var log []*raftpb.Entry
			for _, s := range tt.saves {
				mustSave(t, w, nil, s)
				log = appendLog(log, s)
			}
			_, c := mustOpen(t, mem, SnapshotMark{})
			if d := diffLogs(c.Entries, log); d != "" {
				t.Fatal(d)
			}
		})
	}
}

// TestSaveSyncsOnce: one fsync per Save that writes, none for one that
// does not, and a new segment's creation is made durable.
func TestSaveSyncsOnce(t *testing.T) {
	mem := NewMemFS()
	w := mustCreate(t, mem, 1<<20)
	syncs := func() int { return mem.SyncCount() }
	before := syncs()
	mustSave(t, w, hardState(1, 1, 0), ents(1, 50, 1))
	if got := syncs() - before; got != 1 {
		t.Fatalf("Save of 50 entries and a hard state: %d syncs, want 1", got)
	}
	before = syncs()
	mustSave(t, w, nil, nil)
	mustSave(t, w, &raftpb.HardState{}, nil)
	mustSave(t, w, hardState(1, 1, 0), nil) // the one saved last
	if got := syncs() - before; got != 0 {
		t.Fatalf("Saves with nothing new: %d syncs, want 0", got)
	}
	// A new commit index alone is kept, not synced (raft.MustSync); the next
	// batch that syncs carries it, and Flush writes it on its own.
	before = syncs()
	mustSave(t, w, hardState(1, 1, 3), nil)
	if got := syncs() - before; got != 0 {
		t.Fatalf("Save of a new commit index alone: %d syncs, want 0", got)
	}
	mustSave(t, w, nil, ents(51, 51, 1))
	if got := syncs() - before; got != 1 {
		t.Fatalf("Save of an entry after a pending commit index: %d syncs, want 1", got)
	}
	mustSave(t, w, hardState(1, 1, 4), nil)
	before = syncs()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil { // nothing pending any more
		t.Fatal(err)
	}
	if got := syncs() - before; got != 1 {
		t.Fatalf("Flush of a pending commit index, twice: %d syncs, want 1", got)
	}
	before = syncs()
	mustSave(t, w, hardState(2, 1, 4), nil)
	if got := syncs() - before; got != 1 {
		t.Fatalf("Save of a new term: %d syncs, want 1", got)
	}

	// A roll: the new segment's file and directory are synced.
	mem2 := NewMemFS()
	w2 := mustCreate(t, mem2, 64)
	mustSave(t, w2, nil, ents(1, 1, 1))
	before = mem2.SyncCount()
	mustSave(t, w2, nil, ents(2, 2, 1))
	if got := mem2.SyncCount() - before; got != 3 {
		t.Fatalf("Save that rolls: %d syncs, want 3 (new segment, directory, batch)", got)
	}
	if got := len(segmentFiles(t, mem2)); got != 2 {
		t.Fatalf("%d segments, want 2", got)
	}
}

// TestSegmentNames: %016x-%016x.wal, consecutive sequence numbers, and the
// index each segment's first entry was expected to have.
func TestSegmentNames(t *testing.T) {
	mem := NewMemFS()
	w := mustCreate(t, mem, 64)
	mustSave(t, w, nil, ents(1, 3, 1))
	mustSave(t, w, nil, ents(4, 4, 1))
	mustSave(t, w, nil, ents(3, 5, 2)) // overwrite: the next name still follows the last index
	mustSave(t, w, nil, ents(6, 6, 2))
	want := []string{
		testDir + "/0000000000000000-0000000000000001.wal",
		testDir + "/0000000000000001-0000000000000004.wal",
		testDir + "/0000000000000002-0000000000000005.wal",
		testDir + "/0000000000000003-0000000000000006.wal",
	}
	if got := segmentFiles(t, mem); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("segments\n%v\nwant\n%v", got, want)
	}
}

func TestReleaseTo(t *testing.T) {
	mem := NewMemFS()
	w := mustCreate(t, mem, 64) // one Save per segment
	// Segments (by first index): 1:[1-10] 2:[11-20] 3:[21-30] 4:[31-40].
	for lo := uint64(1); lo <= 31; lo += 10 {
		mustSave(t, w, hardState(1, 1, lo+9), ents(lo, lo+9, 1))
	}
	names := func() []uint64 {
		var idx []uint64
		for _, f := range segmentFiles(t, mem) {
			_, i, _ := parseSegmentName(path.Base(f))
			idx = append(idx, i)
		}
		return idx
	}
	if got := fmt.Sprint(names()); got != "[1 11 21 31]" {
		t.Fatalf("segments start at %s", got)
	}
	steps := []struct {
		index uint64
		want  string
	}{
		{0, "[1 11 21 31]"},
		{9, "[1 11 21 31]"}, // entry 10 is still needed
		{10, "[11 21 31]"},  // segment 1 holds only entries <= 10
		{25, "[21 31]"},     // segment 21 holds 26..30
		{30, "[31]"},        //
		{1000, "[31]"},      // the last segment always stays
	}
	for _, s := range steps {
		if err := w.ReleaseTo(s.index); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(names()); got != s.want {
			t.Fatalf("after ReleaseTo(%d): segments start at %s, want %s", s.index, got, s.want)
		}
	}
	// The released WAL still opens from a snapshot at 30, with the
	// metadata and hard state the released segments held.
	if err := w.SaveSnapshot(SnapshotMark{Index: 30, Term: 1}); err != nil {
		t.Fatal(err)
	}
	_, c := mustOpen(t, mem, SnapshotMark{Index: 30, Term: 1})
	if d := diffLogs(c.Entries, ents(31, 40, 1)); d != "" {
		t.Fatal(d)
	}
	if c.HardState.GetCommit() != 40 || string(c.Metadata) != string(testMeta) {
		t.Fatalf("hard state %v, metadata %q", c.HardState, c.Metadata)
	}
	// From the start, entries 1..30 are gone: Open says so.
	if _, _, err := Open(mem, testDir, SnapshotMark{}, Options{}); !errors.Is(err, ErrSnapshotNotFound) {
		t.Fatalf("Open from the start after release: %v, want ErrSnapshotNotFound", err)
	}
}

// TestReleaseKeepsSnapshotMark: each segment carries the newest mark, so a
// mark recorded in a released segment still validates.
func TestReleaseKeepsSnapshotMark(t *testing.T) {
	mem := NewMemFS()
	w := mustCreate(t, mem, 64)
	mustSave(t, w, hardState(1, 1, 10), ents(1, 10, 1))
	if err := w.SaveSnapshot(SnapshotMark{Index: 10, Term: 1}); err != nil {
		t.Fatal(err)
	}
	mustSave(t, w, hardState(1, 1, 12), ents(11, 12, 1)) // rolls: the new segment carries mark 10
	if err := w.ReleaseTo(10); err != nil {
		t.Fatal(err)
	}
	if got := len(segmentFiles(t, mem)); got != 1 {
		t.Fatalf("%d segments after release, want 1", got)
	}
	_, c := mustOpen(t, mem, SnapshotMark{Index: 10, Term: 1})
	if d := diffLogs(c.Entries, ents(11, 12, 1)); d != "" {
		t.Fatal(d)
	}
	marks, err := SnapshotMarks(mem, testDir)
	if err != nil || fmt.Sprint(marks) != "[{10 1}]" {
		t.Fatalf("SnapshotMarks = %v, %v", marks, err)
	}
}

func TestSnapshotValidation(t *testing.T) {
	mem := NewMemFS()
	w := mustCreate(t, mem, 1<<20)
	mustSave(t, w, hardState(2, 1, 8), append(ents(1, 5, 1), ents(6, 10, 2)...))
	if err := w.SaveSnapshot(SnapshotMark{Index: 5, Term: 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.SaveSnapshot(SnapshotMark{Index: 10, Term: 2}); err != nil { // above commit 8
		t.Fatal(err)
	}
	tests := []struct {
		snap SnapshotMark
		want error
		ents []*raftpb.Entry
	}{
		{SnapshotMark{}, nil, append(ents(1, 5, 1), ents(6, 10, 2)...)},
		{SnapshotMark{Index: 5, Term: 1}, nil, ents(6, 10, 2)},
		{SnapshotMark{Index: 10, Term: 2}, nil, nil},
		{SnapshotMark{Index: 5, Term: 2}, ErrSnapshotMismatch, nil},
		{SnapshotMark{Index: 7, Term: 2}, ErrSnapshotNotFound, nil},
	}
	for _, tt := range tests {
		_, c, err := Open(mem, testDir, tt.snap, Options{})
		if !errors.Is(err, tt.want) {
			t.Fatalf("Open(%v): %v, want %v", tt.snap, err, tt.want)
		}
		if err == nil {
			if d := diffLogs(c.Entries, tt.ents); d != "" {
				t.Fatalf("Open(%v): %s", tt.snap, d)
			}
			if c.Snapshot != tt.snap {
				t.Fatalf("Open(%v): Contents.Snapshot %v", tt.snap, c.Snapshot)
			}
		}
	}
	// Only marks at or below the commit index are offered for a restart.
	marks, err := SnapshotMarks(mem, testDir)
	if err != nil || fmt.Sprint(marks) != "[{5 1}]" {
		t.Fatalf("SnapshotMarks = %v, %v; want [{5 1}]", marks, err)
	}
}

// TestInstalledSnapshotResetsLog: a follower whose log conflicts with a
// snapshot it installs drops its stale tail, as raft does, so a restart
// does not bring back entries raft had already thrown away.
func TestInstalledSnapshotResetsLog(t *testing.T) {
	tests := []struct {
		name  string
		mark  SnapshotMark
		after []*raftpb.Entry // saved after the mark
		want  []*raftpb.Entry // the log after the mark
	}{
		{"matching term keeps the log", SnapshotMark{Index: 15, Term: 1}, nil, ents(16, 20, 1)},
		{"conflicting term drops the tail", SnapshotMark{Index: 15, Term: 3}, nil, nil},
		{"conflicting term, then new entries", SnapshotMark{Index: 15, Term: 3}, ents(16, 17, 3), ents(16, 17, 3)},
		{"beyond the log", SnapshotMark{Index: 40, Term: 3}, ents(41, 42, 3), ents(41, 42, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := NewMemFS()
			w := mustCreate(t, mem, 1<<20)
			mustSave(t, w, hardState(1, 0, 10), ents(1, 20, 1))
			if err := w.SaveSnapshot(tt.mark); err != nil {
				t.Fatal(err)
			}
			mustSave(t, w, hardState(3, 0, tt.mark.Index), tt.after)
			_, c := mustOpen(t, mem, tt.mark)
			if d := diffLogs(c.Entries, tt.want); d != "" {
				t.Fatal(d)
			}
		})
	}
}

func TestSaveRejectsBrokenInvariants(t *testing.T) {
	tests := []struct {
		name string
		ents []*raftpb.Entry
	}{
		{"gap after the last index", ents(7, 8, 1)},
		{"gap inside the batch", []*raftpb.Entry{ent(6, 1, ""), ent(8, 1, "")}},
		{"index zero", []*raftpb.Entry{ent(0, 1, "")}},
		{"replaces a committed entry", ents(3, 4, 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := mustCreate(t, NewMemFS(), 1<<20)
			mustSave(t, w, hardState(1, 1, 3), ents(1, 5, 1))
			defer func() {
				if recover() == nil {
					t.Fatal("Save did not panic")
				}
			}()
			_ = w.Save(nil, tt.ents)
		})
	}
}

func TestCreateAndExists(t *testing.T) {
	mem := NewMemFS()
	if ok, err := Exists(mem, testDir); ok || err != nil {
		t.Fatalf("Exists before Create = %v, %v", ok, err)
	}
	if _, _, err := Open(mem, testDir, SnapshotMark{}, Options{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open before Create: %v, want ErrNotFound", err)
	}
	w := mustCreate(t, mem, 0)
	if ok, err := Exists(mem, testDir); !ok || err != nil {
		t.Fatalf("Exists after Create = %v, %v", ok, err)
	}
	if _, err := Create(mem, testDir, nil, Options{}); !errors.Is(err, ErrExist) {
		t.Fatalf("second Create: %v, want ErrExist", err)
	}
	if _, err := Create(mem, "other", nil, Options{SegmentBytes: -1}); err == nil {
		t.Fatal("Create with negative SegmentBytes succeeded")
	}
	// Create is durable on its own: the directory and segment survive a crash.
	mem.Crash(newRand(1))
	if _, c := mustOpen(t, mem, SnapshotMark{}); string(c.Metadata) != string(testMeta) || c.HardState != nil {
		t.Fatalf("after crash: metadata %q, hard state %v", c.Metadata, c.HardState)
	}
	if err := w.Save(nil, ents(1, 1, 1)); !errors.Is(err, ErrCrashed) {
		t.Fatalf("Save on the crashed WAL: %v, want ErrCrashed", err)
	}
	if err := w.Close(); !errors.Is(err, ErrCrashed) {
		t.Fatalf("Close on the crashed WAL: %v", err)
	}
	if err := w.Save(nil, ents(1, 1, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Save after Close: %v, want ErrClosed", err)
	}
}

// TestDiskFull: a write that fails for lack of space writes nothing and
// leaves the WAL usable once space is back.
func TestDiskFull(t *testing.T) {
	mem := NewMemFS()
	w := mustCreate(t, mem, 1<<20)
	mustSave(t, w, hardState(1, 1, 1), ents(1, 3, 1))
	mem.SetFull(true)
	if err := w.Save(hardState(1, 1, 2), ents(4, 5, 1)); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Save on a full disk: %v, want ErrNoSpace", err)
	}
	if err := w.SaveSnapshot(SnapshotMark{Index: 1, Term: 1}); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("SaveSnapshot on a full disk: %v, want ErrNoSpace", err)
	}
	mem.SetFull(false)
	mustSave(t, w, hardState(1, 1, 2), ents(4, 5, 1))
	mem.Crash(newRand(2))
	_, c := mustOpen(t, mem, SnapshotMark{})
	if d := diffLogs(c.Entries, ents(1, 5, 1)); d != "" || c.HardState.GetCommit() != 2 {
		t.Fatalf("log %s, hard state %v", d, c.HardState)
	}
}

// TestFailedSyncStopsWrites: after an fsync error the WAL refuses writes.
func TestFailedSyncStopsWrites(t *testing.T) {
	ffs := &faultFS{MemFS: NewMemFS(), budget: -1}
	w := mustCreate(t, ffs, 1<<20)
	ffs.budget = 1 // the write goes through, the fsync fails
	if err := w.Save(nil, ents(1, 1, 1)); !errors.Is(err, errInjected) {
		t.Fatalf("Save: %v, want the injected error", err)
	}
	ffs.budget = -1
	if err := w.Save(nil, ents(1, 1, 1)); !errors.Is(err, errInjected) {
		t.Fatalf("Save after a failed fsync: %v, want the fsync's error again", err)
	}
}

func TestRecordTooLarge(t *testing.T) {
	w := mustCreate(t, NewMemFS(), 1<<20)
	big := ent(1, 1, strings.Repeat("x", MaxRecordBytes))
	if err := w.Save(nil, []*raftpb.Entry{big}); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("Save of a huge entry: %v, want ErrRecordTooLarge", err)
	}
	mustSave(t, w, nil, ents(1, 1, 1)) // still usable
}

// TestOlderSnapshotMark: a member restarted from an older snapshot (its
// newest file was corrupt) snapshots again below the newest mark.
func TestOlderSnapshotMark(t *testing.T) {
	mem := NewMemFS()
	w := mustCreate(t, mem, 1<<20)
	mustSave(t, w, hardState(1, 1, 20), ents(1, 25, 1))
	for _, i := range []uint64{10, 20} {
		if err := w.SaveSnapshot(SnapshotMark{Index: i, Term: 1}); err != nil {
			t.Fatal(err)
		}
	}
	w, c := mustOpen(t, mem, SnapshotMark{Index: 10, Term: 1}) // the file at 20 was bad
	if d := diffLogs(c.Entries, ents(11, 25, 1)); d != "" {
		t.Fatal(d)
	}
	if err := w.SaveSnapshot(SnapshotMark{Index: 15, Term: 1}); err != nil {
		t.Fatal(err)
	}
	_, c = mustOpen(t, mem, SnapshotMark{Index: 15, Term: 1})
	if d := diffLogs(c.Entries, ents(16, 25, 1)); d != "" {
		t.Fatal(d)
	}
}
