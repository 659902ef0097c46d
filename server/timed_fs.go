package server

import (
	"strings"
	"time"

	"github.com/plumbdb/plumb/node/backend"
	"github.com/plumbdb/plumb/node/wal"
)

// timedFS is the WAL's file system with every fsync and write of a file
// under dir timed: etcd's etcd_disk_wal_fsync_duration_seconds measures
// the WAL's fsyncs and nothing else (not the apply that follows a save,
// nor the snapshot files beside the WAL), which is what tells an operator
// the disk is slow; etcd_disk_wal_write_duration_seconds and
// etcd_disk_wal_write_bytes_total its writes.
type timedFS struct {
	wal.FS
	dir     string // slash-separated, relative to the FS root
	observe walObserver
}

// walObserver is told how long each fsync took, and each write with the
// bytes it wrote.
type walObserver struct {
	sync  func(time.Duration)
	write func(time.Duration, int)
}

var _ wal.FS = timedFS{}

// timeSyncs wraps fsys so that observe gets the duration of every Sync
// and Write of a file created or opened under dir.
func timeSyncs(fsys wal.FS, dir string, observe walObserver) wal.FS {
	return timedFS{FS: fsys, dir: strings.TrimSuffix(dir, "/"), observe: observe}
}

func (t timedFS) Create(name string) (wal.File, error) {
	f, err := t.FS.Create(name)
	return t.wrap(name, f, err)
}

func (t timedFS) OpenAppend(name string) (wal.File, error) {
	f, err := t.FS.OpenAppend(name)
	return t.wrap(name, f, err)
}

func (t timedFS) wrap(name string, f wal.File, err error) (wal.File, error) {
	if err != nil || !strings.HasPrefix(name, t.dir+"/") {
		return f, err
	}
	return timedFile{File: f, observe: t.observe}, nil
}

type timedFile struct {
	wal.File
	observe walObserver
}

func (f timedFile) Sync() error {
	start := time.Now()
	err := f.File.Sync()
	f.observe.sync(time.Since(start))
	return err
}

func (f timedFile) Write(p []byte) (int, error) {
	start := time.Now()
	n, err := f.File.Write(p)
	if f.observe.write != nil {
		f.observe.write(time.Since(start), n)
	}
	return n, err
}

// timedBackend is the member's bbolt backend with each batch's commit
// timed, for etcd's etcd_disk_backend_commit_duration_seconds: the time a
// commit of applied entries takes to reach the disk.
type timedBackend struct {
	backend.Backend
	observe func(time.Duration)
}

func (b timedBackend) Begin() backend.Batch {
	return timedBatch{Batch: b.Backend.Begin(), observe: b.observe}
}

type timedBatch struct {
	backend.Batch
	observe func(time.Duration)
}

func (b timedBatch) Commit() error {
	start := time.Now()
	err := b.Batch.Commit()
	b.observe(time.Since(start))
	return err
}
