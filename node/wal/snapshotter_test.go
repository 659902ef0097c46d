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

const snapDir = "member/snap"

func testSnap(index, term uint64) *raftpb.Snapshot {
	return &raftpb.Snapshot{
		Data: []byte(fmt.Sprintf("state at %d", index)),
		Metadata: &raftpb.SnapshotMetadata{
			Index:     proto.Uint64(index),
			Term:      proto.Uint64(term),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
		},
	}
}

func TestSnapshotterSaveLoadRetain(t *testing.T) {
	mem := NewMemFS()
	s := NewSnapshotter(mem, snapDir)
	if _, err := s.Load(); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("Load of nothing: %v", err)
	}
	for _, i := range []uint64{10, 20, 30, 40} {
		if err := s.Save(testSnap(i, i/10)); err != nil {
			t.Fatal(err)
		}
	}
	// Durable on its own: the directory, the files and their names.
	mem.Crash(newRand(1))
	got, err := s.Load()
	if err != nil || !proto.Equal(got, testSnap(40, 4)) {
		t.Fatalf("Load = %v, %v", got, err)
	}
	if want := snapDir + "/0000000000000004-0000000000000028.snap"; !strings.Contains(strings.Join(mem.Files(), " "), want) {
		t.Fatalf("files %v, want %s among them", mem.Files(), want)
	}
	if err := s.Retain(2); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(mem.Files(), " "); got != snapDir+"/0000000000000003-000000000000001e.snap "+snapDir+"/0000000000000004-0000000000000028.snap" {
		t.Fatalf("after Retain(2): %s", got)
	}
	if err := s.Retain(0); err == nil {
		t.Fatal("Retain(0) succeeded")
	}
	if err := s.Save(&raftpb.Snapshot{}); err == nil {
		t.Fatal("Save of an empty snapshot succeeded")
	}
}

func TestSnapshotterSkipsCorrupt(t *testing.T) {
	mem := NewMemFS()
	s := NewSnapshotter(mem, snapDir)
	for _, i := range []uint64{10, 20} {
		if err := s.Save(testSnap(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	newest := path.Join(snapDir, snapName(SnapshotMark{Index: 20, Term: 1}))
	if err := mem.Corrupt(newest, 30, newRand(1)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil || !proto.Equal(got, testSnap(10, 1)) {
		t.Fatalf("Load = %v, %v; want the snapshot at 10", got, err)
	}
	if sk := s.Skipped(); len(sk) != 1 || sk[0].File != newest || sk[0].Err == nil {
		t.Fatalf("Skipped = %v", sk)
	}
	// A file whose name disagrees with its content is skipped too.
	b := must(mem.ReadFile(path.Join(snapDir, snapName(SnapshotMark{Index: 10, Term: 1}))))
	f, _ := mem.Create(path.Join(snapDir, snapName(SnapshotMark{Index: 30, Term: 1})))
	_, _ = f.Write(b)
	if got, err := s.Load(); err != nil || got.GetMetadata().GetIndex() != 10 || len(s.Skipped()) != 2 {
		t.Fatalf("Load = %v, %v, skipped %v", got, err, s.Skipped())
	}
	// Every file bad: ErrNoSnapshot.
	if err := mem.Corrupt(path.Join(snapDir, snapName(SnapshotMark{Index: 10, Term: 1})), 0, newRand(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(); !errors.Is(err, ErrNoSnapshot) || len(s.Skipped()) != 3 {
		t.Fatalf("Load = %v, skipped %v", err, s.Skipped())
	}
}

// TestSnapshotterCrashMidSave: a crash before Save returns leaves the old
// snapshots and no partial file under a snapshot name.
func TestSnapshotterCrashMidSave(t *testing.T) {
	for budget := 0; budget < 6; budget++ {
		ffs := &faultFS{MemFS: NewMemFS(), budget: -1}
		s := NewSnapshotter(ffs, snapDir)
		if err := s.Save(testSnap(10, 1)); err != nil {
			t.Fatal(err)
		}
		ffs.budget = budget
		err := s.Save(testSnap(20, 1))
		ffs.budget = -1
		ffs.Crash(newRand(uint64(budget)))
		got, lerr := NewSnapshotter(ffs, snapDir).Load()
		switch {
		case lerr != nil:
			t.Fatalf("budget %d: Load: %v", budget, lerr)
		case err == nil && got.GetMetadata().GetIndex() != 20:
			t.Fatalf("budget %d: Save returned nil but Load gives %d", budget, got.GetMetadata().GetIndex())
		}
		if err := s.Retain(5); err != nil {
			t.Fatal(err)
		}
		for _, f := range ffs.Files() {
			if strings.HasSuffix(f, tmpSuffix) {
				t.Fatalf("budget %d: Retain left %s", budget, f)
			}
		}
	}
}

// TestRestartRecipe is the restart doc.go describes: the newest snapshot
// file lacks a WAL mark (a crash came between the two saves), so the
// previous one is used.
func TestRestartRecipe(t *testing.T) {
	mem := NewMemFS()
	w := mustCreate(t, mem, 1<<20)
	s := NewSnapshotter(mem, snapDir)
	mustSave(t, w, hardState(1, 1, 20), ents(1, 25, 1))
	if err := s.Save(testSnap(10, 1)); err != nil {
		t.Fatal(err)
	}
	if err := w.SaveSnapshot(SnapshotMark{Index: 10, Term: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(testSnap(20, 1)); err != nil { // and the crash comes before its mark
		t.Fatal(err)
	}
	mem.Crash(newRand(1))

	if _, err := s.Load(); err != nil { // the newest file is the unmarked one ...
		t.Fatal(err)
	}
	if _, _, err := Open(mem, testDir, SnapshotMark{Index: 20, Term: 1}, Options{}); !errors.Is(err, ErrSnapshotNotFound) {
		t.Fatalf("Open from the unmarked snapshot: %v", err) // ... which Open refuses
	}
	marks, err := SnapshotMarks(mem, testDir)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := s.LoadNewestAvailable(marks)
	if err != nil || snap.GetMetadata().GetIndex() != 10 {
		t.Fatalf("LoadNewestAvailable(%v) = %v, %v", marks, snap, err)
	}
	_, c := mustOpen(t, mem, SnapshotMark{Index: 10, Term: 1})
	if d := diffLogs(c.Entries, ents(11, 25, 1)); d != "" {
		t.Fatal(d)
	}
}
