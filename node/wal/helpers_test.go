package wal

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

const testDir = "member/wal"

var testMeta = []byte("member=1 cluster=7")

func ent(index, term uint64, data string) *raftpb.Entry {
	return &raftpb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(term), Type: raftpb.EntryType_EntryNormal.Enum(), Data: []byte(data)}
}

func hardState(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
}

// ents makes entries lo..hi at term, with data naming them.
func ents(lo, hi, term uint64) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := lo; i <= hi; i++ {
		out = append(out, ent(i, term, fmt.Sprintf("e%d.t%d", i, term)))
	}
	return out
}

// appendLog is raft's log rule, the model the WAL is checked against: ents
// replace the log from their first index on.
func appendLog(log, ents []*raftpb.Entry) []*raftpb.Entry {
	if len(ents) == 0 {
		return log
	}
	first := ents[0].GetIndex()
	out := make([]*raftpb.Entry, 0, len(log)+len(ents))
	for _, e := range log {
		if e.GetIndex() < first {
			out = append(out, e)
		}
	}
	return append(out, ents...)
}

// after returns the entries of log above index.
func after(log []*raftpb.Entry, index uint64) []*raftpb.Entry {
	var out []*raftpb.Entry
	for _, e := range log {
		if e.GetIndex() > index {
			out = append(out, e)
		}
	}
	return out
}

// diffLogs describes how got differs from want, "" if it does not.
func diffLogs(got, want []*raftpb.Entry) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d entries %s, want %d %s", len(got), span(got), len(want), span(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			return fmt.Sprintf("entry %d: got %v, want %v", i, got[i], want[i])
		}
	}
	return ""
}

func span(log []*raftpb.Entry) string {
	if len(log) == 0 {
		return "[]"
	}
	return fmt.Sprintf("[%d..%d]", log[0].GetIndex(), log[len(log)-1].GetIndex())
}

func mustCreate(t testing.TB, fsys FS, segmentBytes int64) *WAL {
	t.Helper()
	w, err := Create(fsys, testDir, testMeta, Options{SegmentBytes: segmentBytes})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return w
}

func mustOpen(t testing.TB, fsys FS, snap SnapshotMark) (*WAL, *Contents) {
	t.Helper()
	w, c, err := Open(fsys, testDir, snap, Options{SegmentBytes: 512})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return w, c
}

func mustSave(t testing.TB, w *WAL, hs *raftpb.HardState, es []*raftpb.Entry) {
	t.Helper()
	if err := w.Save(hs, es); err != nil {
		t.Fatalf("Save: %v", err)
	}
}

func segmentFiles(t testing.TB, m *MemFS) []string {
	t.Helper()
	var out []string
	for _, f := range m.Files() {
		if strings.HasPrefix(f, testDir+"/") && strings.HasSuffix(f, segmentSuffix) {
			out = append(out, f)
		}
	}
	return out
}

// recordOffsets decodes a segment and returns where each record starts.
func recordOffsets(t testing.TB, buf []byte) []int64 {
	t.Helper()
	var offs []int64
	for off := int64(0); off < int64(len(buf)); {
		rec, f, reason := readRecord(buf, off)
		if f != faultNone {
			t.Fatalf("record at %d: %s", off, reason)
		}
		offs = append(offs, off)
		off = rec.end
	}
	return offs
}

var errInjected = errors.New("injected failure (power lost)")

// faultFS is a MemFS whose mutating operations start failing after budget
// of them, as if power went out at that point: the failing Write still
// reaches the page cache, every other failing operation does nothing.
type faultFS struct {
	*MemFS
	budget int // operations left; negative: unlimited
}

func (f *faultFS) step() error {
	if f.budget < 0 {
		return nil
	}
	if f.budget == 0 {
		return errInjected
	}
	f.budget--
	return nil
}

func (f *faultFS) Create(name string) (File, error) {
	if err := f.step(); err != nil {
		return nil, err
	}
	file, err := f.MemFS.Create(name)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

func (f *faultFS) OpenAppend(name string) (File, error) {
	file, err := f.MemFS.OpenAppend(name)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

func (f *faultFS) Remove(name string) error {
	if err := f.step(); err != nil {
		return err
	}
	return f.MemFS.Remove(name)
}

func (f *faultFS) Rename(o, n string) error {
	if err := f.step(); err != nil {
		return err
	}
	return f.MemFS.Rename(o, n)
}

func (f *faultFS) SyncDir(dir string) error {
	if err := f.step(); err != nil {
		return err
	}
	return f.MemFS.SyncDir(dir)
}

type faultFile struct {
	File
	fs *faultFS
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.fs.step(); err != nil {
		n, _ := f.File.Write(p)
		return n, err
	}
	return f.File.Write(p)
}

func (f *faultFile) Sync() error {
	if err := f.fs.step(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.fs.step(); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }
