package server

import (
	"strings"
	"time"

	"github.com/plumbdb/plumb/node/wal"
)

// timedFS is the WAL's file system with every fsync of a file under dir
// timed: etcd's etcd_disk_wal_fsync_duration_seconds measures the WAL's
// fsyncs and nothing else (not the apply that follows a save, nor the
// snapshot files beside the WAL), which is what tells an operator the
// disk is slow.
type timedFS struct {
	wal.FS
	dir     string // slash-separated, relative to the FS root
	observe func(time.Duration)
}

var _ wal.FS = timedFS{}

// timeSyncs wraps fsys so that observe gets the duration of every Sync of
// a file created or opened under dir.
func timeSyncs(fsys wal.FS, dir string, observe func(time.Duration)) wal.FS {
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
	observe func(time.Duration)
}

func (f timedFile) Sync() error {
	start := time.Now()
	err := f.File.Sync()
	f.observe(time.Since(start))
	return err
}
