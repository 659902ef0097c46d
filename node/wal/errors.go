package wal

import (
	"errors"
	"fmt"
)

// CorruptError says that a file of the WAL holds a record that is not what
// was written, somewhere a torn write cannot explain: in a segment other
// than the last, in a segment's prologue, or followed by data written after
// it. The member's log cannot be trusted, so it must not start from it.
type CorruptError struct {
	File   string // path of the segment, relative to the FS root
	Offset int64  // byte offset of the bad record in File
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: corrupt record in %s at offset %d: %s; "+
		"this member's log cannot be trusted, so it must not start from it: "+
		"restore the member from a peer: remove it and add it back "+
		"(etcdctl member remove/add), then start it with an empty data directory",
		e.File, e.Offset, e.Reason)
}

var (
	// ErrExist is returned by Create when dir already holds a WAL.
	ErrExist = errors.New("wal: a WAL already exists in the directory")
	// ErrNotFound is returned by Open and SnapshotMarks when dir holds no
	// WAL segment.
	ErrNotFound = errors.New("wal: no WAL in the directory")
	// ErrSnapshotNotFound is returned by Open when the snapshot the caller
	// loaded was never recorded in the WAL (SaveSnapshot), or the WAL no
	// longer holds the entries that follow it.
	ErrSnapshotNotFound = errors.New("wal: snapshot not found in the WAL")
	// ErrSnapshotMismatch is returned by Open when the WAL recorded a
	// snapshot at the caller's index but with another term.
	ErrSnapshotMismatch = errors.New("wal: snapshot term does not match the WAL")
	// ErrRecordTooLarge is returned by Save for an entry or hard state
	// whose encoding exceeds MaxRecordBytes.
	ErrRecordTooLarge = errors.New("wal: record too large")
	// ErrClosed is returned by every method of a closed WAL.
	ErrClosed = errors.New("wal: closed")
	// ErrNoSnapshot is returned by the Snapshotter when no valid snapshot
	// file is there.
	ErrNoSnapshot = errors.New("snap: no available snapshot")
)
