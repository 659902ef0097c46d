package node

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/plumbdb/plumb/node/wal"
)

// The data dir layout is etcd's, under the file system's root.
const (
	WALDir        = "member/wal"
	SnapDir       = "member/snap"
	snapshotsKept = 5 // snapshot files kept (etcd's --max-snapshots)
)

// ErrDataDirMismatch: the data dir belongs to another member or cluster.
var ErrDataDirMismatch = errors.New("node: the data dir belongs to another member or cluster")

// ErrNoDataDir: OpenDiskLog was asked to adopt the identity of a log that
// does not exist.
var ErrNoDataDir = errors.New("node: no data dir")

// DiskLog is the LogStore of a member with a disk: raft's log cached in a
// raft.MemoryStorage and made durable by a write-ahead log and snapshot
// files (package wal), through a wal.FS: the OS in production, the
// simulator's MemFS in a simulation. Opening it is the restart path: the
// newest valid snapshot, then the WAL's records after it.
type DiskLog struct {
	*raft.MemoryStorage
	w     *wal.WAL
	snaps *wal.Snapshotter
	torn  *wal.TornTail // what opening the WAL cut off its tail, if anything

	memberID, clusterID uint64 // the identity recorded in the WAL's metadata
}

var _ LogStore = (*DiskLog)(nil)

// OpenDiskLog opens the log in fsys, or creates it. The WAL's metadata
// records the member and cluster IDs; a data dir made for another member or
// cluster is refused, as etcd refuses it.
//
// With memberID and clusterID both 0 it opens an existing log whatever
// identity it records, and IDs reports it: a restarting server takes its
// identity from its data dir, not from its flags, as etcd does.
func OpenDiskLog(fsys wal.FS, memberID, clusterID uint64, opts wal.Options) (*DiskLog, error) {
	adopt := memberID == 0 && clusterID == 0
	meta := make([]byte, 16)
	binary.BigEndian.PutUint64(meta, memberID)
	binary.BigEndian.PutUint64(meta[8:], clusterID)
	l := &DiskLog{MemoryStorage: raft.NewMemoryStorage(), snaps: wal.NewSnapshotter(fsys, SnapDir),
		memberID: memberID, clusterID: clusterID}
	exists, err := wal.Exists(fsys, WALDir)
	if err != nil {
		return nil, fmt.Errorf("node: look for the WAL in %s: %w", WALDir, err)
	}
	if !exists && adopt {
		return nil, fmt.Errorf("node: %w: there is no WAL in %s to take the member's identity from", ErrNoDataDir, WALDir)
	}
	if !exists {
		for _, dir := range []string{WALDir, SnapDir} {
			if err := fsys.MkdirAll(dir); err != nil {
				return nil, fmt.Errorf("node: create %s: %w", dir, err)
			}
		}
		if l.w, err = wal.Create(fsys, WALDir, meta, opts); err != nil {
			return nil, fmt.Errorf("node: create the WAL: %w", err)
		}
		return l, nil
	}
	// The newest snapshot file may be one whose mark never reached the WAL
	// (a crash between the two): take the newest the WAL knows.
	marks, err := wal.SnapshotMarks(fsys, WALDir)
	if err != nil {
		return nil, fmt.Errorf("node: read the WAL's snapshot marks: %w", err)
	}
	snap, err := l.snaps.LoadNewestAvailable(marks)
	if err != nil && !errors.Is(err, wal.ErrNoSnapshot) {
		return nil, fmt.Errorf("node: load the newest snapshot in %s: %w", SnapDir, err)
	}
	var mark wal.SnapshotMark
	if snap != nil {
		mark = wal.SnapshotMark{Index: snap.GetMetadata().GetIndex(), Term: snap.GetMetadata().GetTerm()}
	}
	w, contents, err := wal.Open(fsys, WALDir, mark, opts)
	if err != nil {
		return nil, fmt.Errorf("node: open the WAL: %w", err)
	}
	l.w, l.torn = w, contents.TornTail
	if len(contents.Metadata) != len(meta) {
		w.Close()
		return nil, fmt.Errorf("%w: its WAL's metadata is %d bytes, not %d", ErrDataDirMismatch, len(contents.Metadata), len(meta))
	}
	if adopt {
		meta = contents.Metadata
		l.memberID, l.clusterID = binary.BigEndian.Uint64(meta), binary.BigEndian.Uint64(meta[8:])
	}
	if string(contents.Metadata) != string(meta) {
		w.Close()
		return nil, fmt.Errorf("%w: it was made for member %s of cluster %s, not member %s of cluster %s",
			ErrDataDirMismatch, FormatID(binary.BigEndian.Uint64(contents.Metadata)),
			FormatID(binary.BigEndian.Uint64(contents.Metadata[8:])), FormatID(memberID), FormatID(clusterID))
	}
	if err := l.restore(snap, contents); err != nil {
		w.Close()
		return nil, err
	}
	return l, nil
}

func (l *DiskLog) restore(snap *raftpb.Snapshot, c *wal.Contents) error {
	if snap != nil {
		if err := l.ApplySnapshot(snap); err != nil {
			return fmt.Errorf("node: restore snapshot at %d: %w", snap.GetMetadata().GetIndex(), err)
		}
	}
	if c.HardState != nil {
		if err := l.SetHardState(c.HardState); err != nil {
			return fmt.Errorf("node: restore hard state: %w", err)
		}
	}
	if err := l.Append(c.Entries); err != nil {
		return fmt.Errorf("node: restore %d entries: %w", len(c.Entries), err)
	}
	return nil
}

// Save implements LogStore: a snapshot first (file, then its mark in the
// WAL), then the hard state and entries in one WAL append with one fsync;
// the in-memory cache is updated only once they are durable.
func (l *DiskLog) Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot) error {
	if snap != nil && !raft.IsEmptySnap(snap) {
		if err := l.snaps.Save(snap); err != nil {
			return fmt.Errorf("save snapshot: %w", err)
		}
		mark := wal.SnapshotMark{Index: snap.GetMetadata().GetIndex(), Term: snap.GetMetadata().GetTerm()}
		if err := l.w.SaveSnapshot(mark); err != nil {
			return fmt.Errorf("record snapshot in the WAL: %w", err)
		}
		// A Save retried after a full disk finds the snapshot applied.
		if err := l.ApplySnapshot(snap); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
			return fmt.Errorf("apply snapshot: %w", err)
		}
	}
	if hs != nil && raft.IsEmptyHardState(hs) {
		hs = nil
	}
	if hs != nil || len(ents) > 0 {
		if err := l.w.Save(hs, ents); err != nil {
			return fmt.Errorf("append to the WAL: %w", err)
		}
	}
	if snap != nil && !raft.IsEmptySnap(snap) {
		// A snapshot from the leader comes with the commit index at or past
		// it: make that durable now, as before the WAL kept commit-only hard
		// states pending, so that a restart can use the snapshot's mark.
		if err := l.w.Flush(); err != nil {
			return fmt.Errorf("append to the WAL: %w", err)
		}
	}
	if len(ents) > 0 {
		if err := l.Append(ents); err != nil {
			return fmt.Errorf("append entries: %w", err)
		}
	}
	if hs != nil {
		if err := l.SetHardState(hs); err != nil {
			return fmt.Errorf("set hard state: %w", err)
		}
	}
	return nil
}

// SaveSnapshot implements LogStore: the snapshot file, its mark in the WAL,
// then the log compacted behind it, WAL segments released and old snapshot
// files removed. The cache takes the snapshot only once file and mark are
// durable, so that a SaveSnapshot that failed (a full disk) can be retried
// at the same index.
func (l *DiskLog) SaveSnapshot(index uint64, cs *raftpb.ConfState, keepEntries uint64) error {
	term, err := l.Term(index)
	if err != nil {
		return fmt.Errorf("create snapshot at %d: %w", index, err)
	}
	if cs == nil { // as CreateSnapshot does: the membership stays the last snapshot's
		cur, err := l.Snapshot()
		if err != nil {
			return fmt.Errorf("create snapshot at %d: %w", index, err)
		}
		cs = cur.GetMetadata().GetConfState()
	}
	snap := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: &index, Term: &term, ConfState: cs}}
	if err := l.snaps.Save(snap); err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	if err := l.w.SaveSnapshot(wal.SnapshotMark{Index: index, Term: term}); err != nil {
		return fmt.Errorf("record snapshot in the WAL: %w", err)
	}
	if _, err := l.CreateSnapshot(index, cs, nil); err != nil {
		return fmt.Errorf("create snapshot: %w", err)
	}
	if index > keepEntries {
		compactTo := index - keepEntries
		first, err := l.FirstIndex()
		if err != nil {
			return err
		}
		if compactTo > first {
			if err := l.Compact(compactTo); err != nil {
				return fmt.Errorf("compact log to %d: %w", compactTo, err)
			}
		}
		if err := l.w.ReleaseTo(compactTo); err != nil {
			return fmt.Errorf("release WAL segments: %w", err)
		}
	}
	if err := l.snaps.Retain(snapshotsKept); err != nil {
		return fmt.Errorf("remove old snapshots: %w", err)
	}
	return nil
}

// Repaired describes the torn write that opening the WAL cut off its tail
// (a crash in the middle of a write), or is "" if there was none.
func (l *DiskLog) Repaired() string {
	if l.torn == nil {
		return ""
	}
	return fmt.Sprintf("cut a torn write of %d bytes off %s at offset %d", l.torn.DroppedBytes, l.torn.File, l.torn.Offset)
}

// IDs returns the member and cluster IDs this log belongs to.
func (l *DiskLog) IDs() (memberID, clusterID uint64) { return l.memberID, l.clusterID }

// SyncLazy fsyncs the WAL writes a planted LazyFsync bug left unsynced (see
// package plant); without it there are none.
func (l *DiskLog) SyncLazy() error { return l.w.SyncLazy() }

// Close closes the WAL.
func (l *DiskLog) Close() error { return l.w.Close() }
