package wal

import "errors"

// FS is every file operation the WAL and the Snapshotter need, so that the
// same code writes real files in production (OSFS) and the simulator's disk
// (MemFS). Paths are slash-separated and relative to the FS root.
//
// The durability contract is the one POSIX file systems give: bytes written
// to a File survive a crash only once File.Sync has returned nil, and a
// Create, Rename or Remove survives a crash only once SyncDir of the
// directory holding the name has returned nil.
type FS interface {
	// Create creates the named file, or truncates it if it exists, and
	// opens it for writing. Its parent directory must exist.
	Create(name string) (File, error)
	// OpenAppend opens an existing file for appending.
	OpenAppend(name string) (File, error)
	// ReadFile returns the whole content of the named file.
	ReadFile(name string) ([]byte, error)
	// ReadDir returns the names of the entries in dir (files and
	// directories, not paths), sorted.
	ReadDir(dir string) ([]string, error)
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// Rename renames a file, atomically replacing newname if it exists.
	Rename(oldname, newname string) error
	// MkdirAll creates dir and any missing parents.
	MkdirAll(dir string) error
	// SyncDir makes the creates, renames and removes of names in dir
	// durable.
	SyncDir(dir string) error
}

// File is an open file. Every Write appends at the end of the file, even
// after a Truncate (the OS file is opened with O_APPEND).
type File interface {
	Write(p []byte) (int, error)
	// Sync makes the file's content durable (fsync).
	Sync() error
	// Truncate changes the file's size; like a write, it is durable once
	// Sync returns.
	Truncate(size int64) error
	// Size returns the file's current size, including unsynced writes.
	Size() (int64, error)
	Close() error
}

// ErrNoSpace is returned (wrapped) by writes and syncs when the disk is
// full: MemFS returns it when SetFull(true) was called, and OSFS wraps
// syscall.ENOSPC with it, so callers test errors.Is(err, ErrNoSpace) on
// either and raise etcd's NOSPACE alarm.
var ErrNoSpace = errors.New("no space left on device")

// ErrCrashed is returned by every call on a MemFS File opened before the
// last MemFS.Crash: the process that held it is gone.
var ErrCrashed = errors.New("file handle invalidated by a crash")
