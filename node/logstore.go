package node

import (
	"fmt"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// LogStore keeps raft's hard state, log and snapshot. raft reads it through
// the embedded raft.Storage; the node writes it through Save.
type LogStore interface {
	raft.Storage
	// Save makes a Ready's hard state, entries and snapshot durable: when it
	// returns nil, a crash loses none of them. Entries may replace a suffix
	// of the log (raft truncates a follower's conflicting tail). Any of the
	// three may be empty. The node calls Save BEFORE it sends the messages
	// of the same Ready, as raft requires.
	Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot) error
	// SaveSnapshot records a snapshot of the applied state at index, whose
	// membership is cs, and compacts the log behind it, keeping up to
	// keepEntries entries before index for followers a little behind.
	SaveSnapshot(index uint64, cs *raftpb.ConfState, keepEntries uint64) error
}

// MemoryLog is a LogStore held in memory. The simulator keeps the object
// across a simulated crash, so everything saved survives, as if synced.
type MemoryLog struct {
	*raft.MemoryStorage
}

var _ LogStore = (*MemoryLog)(nil)

// NewMemoryLog returns an empty MemoryLog.
func NewMemoryLog() *MemoryLog { return &MemoryLog{raft.NewMemoryStorage()} }

// Save implements LogStore.
func (l *MemoryLog) Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot) error {
	if snap != nil && !raft.IsEmptySnap(snap) {
		if err := l.ApplySnapshot(snap); err != nil {
			return fmt.Errorf("apply snapshot: %w", err)
		}
	}
	if len(ents) > 0 {
		if err := l.Append(ents); err != nil {
			return fmt.Errorf("append entries: %w", err)
		}
	}
	if hs != nil && !raft.IsEmptyHardState(hs) {
		if err := l.SetHardState(hs); err != nil {
			return fmt.Errorf("set hard state: %w", err)
		}
	}
	return nil
}

// SaveSnapshot implements LogStore.
func (l *MemoryLog) SaveSnapshot(index uint64, cs *raftpb.ConfState, keepEntries uint64) error {
	if _, err := l.CreateSnapshot(index, cs, nil); err != nil {
		return fmt.Errorf("create snapshot: %w", err)
	}
	if index <= keepEntries {
		return nil
	}
	first, err := l.FirstIndex()
	if err != nil {
		return err
	}
	if compactTo := index - keepEntries; compactTo > first {
		if err := l.Compact(compactTo); err != nil {
			return fmt.Errorf("compact log to %d: %w", compactTo, err)
		}
	}
	return nil
}
