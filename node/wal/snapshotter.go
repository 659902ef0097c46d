package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

const (
	snapSuffix = ".snap"
	// snapMagic opens every snapshot file.
	snapMagic       = "plumbsnp"
	snapVersion     = 1
	snapHeaderBytes = 24
)

// Snapshotter keeps raft snapshots (raftpb.Snapshot, whose Data is the
// caller's bytes) in a directory, one file each, named %016x-%016x.snap
// (term, index) like etcd's. A file is a 24-byte header (magic "plumbsnp",
// version, CRC32C of the body, body length) and the snapshot's protobuf
// encoding as the body.
//
// Like a WAL, a Snapshotter is not safe for concurrent use.
type Snapshotter struct {
	fsys     FS
	dir      string
	dirReady bool // dir and its entry in its parent are durable
	skipped  []SkippedSnapshot
}

// SkippedSnapshot is a snapshot file a Load passed over, and why.
type SkippedSnapshot struct {
	File string
	Err  error
}

// NewSnapshotter returns a Snapshotter of the snapshots in dir, which Save
// creates if need be.
func NewSnapshotter(fsys FS, dir string) *Snapshotter {
	return &Snapshotter{fsys: fsys, dir: path.Clean(dir)}
}

func snapName(m SnapshotMark) string {
	return fmt.Sprintf("%016x-%016x%s", m.Term, m.Index, snapSuffix)
}

func parseSnapName(name string) (SnapshotMark, bool) {
	base, found := strings.CutSuffix(name, snapSuffix)
	if !found || len(base) != 33 || base[16] != '-' {
		return SnapshotMark{}, false
	}
	term, err1 := strconv.ParseUint(base[:16], 16, 64)
	index, err2 := strconv.ParseUint(base[17:], 16, 64)
	return SnapshotMark{Index: index, Term: term}, err1 == nil && err2 == nil
}

// Save writes snap durably: to a temporary name, fsynced, renamed into
// place, and the directory fsynced, so a crash leaves the whole snapshot
// or none of it.
func (s *Snapshotter) Save(snap *raftpb.Snapshot) error {
	m := SnapshotMark{Index: snap.GetMetadata().GetIndex(), Term: snap.GetMetadata().GetTerm()}
	if m.Index == 0 {
		return errors.New("snap: Save: empty snapshot (index 0)")
	}
	body, err := proto.Marshal(snap)
	if err != nil {
		return fmt.Errorf("snap: marshal: %w", err)
	}
	if err := s.ensureDir(); err != nil {
		return err
	}
	buf := make([]byte, snapHeaderBytes, snapHeaderBytes+len(body))
	copy(buf, snapMagic)
	binary.LittleEndian.PutUint32(buf[8:], snapVersion)
	binary.LittleEndian.PutUint32(buf[12:], crc32.Checksum(body, crcTable))
	binary.LittleEndian.PutUint64(buf[16:], uint64(len(body)))
	buf = append(buf, body...)

	final := path.Join(s.dir, snapName(m))
	tmp := final + tmpSuffix
	f, err := s.fsys.Create(tmp)
	if err != nil {
		return fmt.Errorf("snap: create %s: %w", tmp, err)
	}
	err = writeAndSync(f, buf)
	err = errors.Join(err, f.Close())
	if err == nil {
		err = s.fsys.Rename(tmp, final)
	}
	if err != nil {
		return fmt.Errorf("snap: save %s: %w", final, errors.Join(err, s.fsys.Remove(tmp)))
	}
	if err := s.fsys.SyncDir(s.dir); err != nil {
		return fmt.Errorf("snap: sync directory %s: %w", s.dir, err)
	}
	return nil
}

func (s *Snapshotter) ensureDir() error {
	if s.dirReady {
		return nil
	}
	if err := s.fsys.MkdirAll(s.dir); err != nil {
		return fmt.Errorf("snap: create %s: %w", s.dir, err)
	}
	if err := syncParents(s.fsys, s.dir); err != nil {
		return err
	}
	s.dirReady = true
	return nil
}

// names returns the snapshot files in dir, newest (highest index) first.
func (s *Snapshotter) names() ([]string, []SnapshotMark, error) {
	all, err := s.fsys.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("snap: list %s: %w", s.dir, err)
	}
	type named struct {
		name string
		m    SnapshotMark
	}
	var found []named
	for _, n := range all {
		if m, ok := parseSnapName(n); ok {
			found = append(found, named{n, m})
		}
	}
	slices.SortFunc(found, func(a, b named) int {
		if a.m.Index != b.m.Index {
			return cmpUint64(b.m.Index, a.m.Index)
		}
		return cmpUint64(b.m.Term, a.m.Term)
	})
	names := make([]string, len(found))
	marks := make([]SnapshotMark, len(found))
	for i, f := range found {
		names[i], marks[i] = f.name, f.m
	}
	return names, marks, nil
}

// Load returns the newest valid snapshot, passing over (and listing in
// Skipped) files that fail their checks; ErrNoSnapshot if there is none.
func (s *Snapshotter) Load() (*raftpb.Snapshot, error) {
	return s.load(func(SnapshotMark) bool { return true })
}

// LoadNewestAvailable is Load restricted to snapshots whose mark is in
// marks (SnapshotMarks of the WAL): the ones Open accepts.
func (s *Snapshotter) LoadNewestAvailable(marks []SnapshotMark) (*raftpb.Snapshot, error) {
	return s.load(func(m SnapshotMark) bool { return slices.Contains(marks, m) })
}

func (s *Snapshotter) load(want func(SnapshotMark) bool) (*raftpb.Snapshot, error) {
	s.skipped = nil
	names, marks, err := s.names()
	if err != nil {
		return nil, err
	}
	for i, n := range names {
		if !want(marks[i]) {
			continue
		}
		file := path.Join(s.dir, n)
		snap, err := s.read(file, marks[i])
		if err != nil {
			s.skipped = append(s.skipped, SkippedSnapshot{File: file, Err: err})
			continue
		}
		return snap, nil
	}
	return nil, ErrNoSnapshot
}

// Skipped returns the files the last Load or LoadNewestAvailable passed
// over because they failed their checks, newest first.
func (s *Snapshotter) Skipped() []SkippedSnapshot { return slices.Clone(s.skipped) }

// read reads and checks one snapshot file, which its name says is at m.
func (s *Snapshotter) read(file string, m SnapshotMark) (*raftpb.Snapshot, error) {
	b, err := s.fsys.ReadFile(file)
	if err != nil {
		return nil, err
	}
	switch {
	case len(b) < snapHeaderBytes || string(b[:8]) != snapMagic:
		return nil, errors.New("not a plumb snapshot file")
	case binary.LittleEndian.Uint32(b[8:]) != snapVersion:
		return nil, fmt.Errorf("snapshot format version %d, this plumb reads %d", binary.LittleEndian.Uint32(b[8:]), snapVersion)
	case binary.LittleEndian.Uint64(b[16:]) != uint64(len(b)-snapHeaderBytes):
		return nil, fmt.Errorf("snapshot body is %d bytes, its header says %d", len(b)-snapHeaderBytes, binary.LittleEndian.Uint64(b[16:]))
	}
	body := b[snapHeaderBytes:]
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(b[12:]) {
		return nil, errors.New("snapshot checksum mismatch")
	}
	snap := &raftpb.Snapshot{}
	if err := proto.Unmarshal(body, snap); err != nil {
		return nil, fmt.Errorf("snapshot does not decode: %w", err)
	}
	if got := (SnapshotMark{Index: snap.GetMetadata().GetIndex(), Term: snap.GetMetadata().GetTerm()}); got != m {
		return nil, fmt.Errorf("snapshot is at index %d, term %d, its name says index %d, term %d", got.Index, got.Term, m.Index, m.Term)
	}
	return snap, nil
}

// Retain removes every snapshot file but the newest keep (by name; Save
// has just written the newest), and temporary files a crash left.
func (s *Snapshotter) Retain(keep int) error {
	if keep < 1 {
		return fmt.Errorf("snap: Retain(%d): keep at least one snapshot", keep)
	}
	names, _, err := s.names()
	if err != nil {
		return err
	}
	removed := false
	for _, n := range names[min(keep, len(names)):] {
		if err := s.fsys.Remove(path.Join(s.dir, n)); err != nil {
			return fmt.Errorf("snap: remove %s: %w", n, err)
		}
		removed = true
	}
	if removed {
		if err := s.fsys.SyncDir(s.dir); err != nil {
			return fmt.Errorf("snap: sync directory %s: %w", s.dir, err)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return removeTmp(s.fsys, s.dir, snapSuffix+tmpSuffix)
}
