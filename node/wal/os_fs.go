package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// The modes of the files and directories OSFS creates: the log holds every
// key and value, so only the member's user may read it (etcd uses the same).
const (
	osFileMode = 0o600
	osDirMode  = 0o700
)

// osFS is the production FS: real files under root. It is the only code in
// plumb's node tree, with node/backend/bolt, that touches the OS.
type osFS struct {
	root string
}

var _ FS = osFS{}

// OSFS returns an FS of the real files under root (a directory that need not
// exist yet: MkdirAll creates it).
func OSFS(root string) FS { return osFS{root: root} }

func (o osFS) path(name string) string {
	return filepath.Join(o.root, filepath.FromSlash(name))
}

func (o osFS) Create(name string) (File, error) {
	f, err := os.OpenFile(o.path(name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, osFileMode)
	if err != nil {
		return nil, osErr(err)
	}
	return osFile{f}, nil
}

func (o osFS) OpenAppend(name string) (File, error) {
	f, err := os.OpenFile(o.path(name), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, osErr(err)
	}
	return osFile{f}, nil
}

func (o osFS) ReadFile(name string) ([]byte, error) {
	b, err := os.ReadFile(o.path(name))
	return b, osErr(err)
}

func (o osFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(o.path(dir))
	if err != nil {
		return nil, osErr(err)
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name() // os.ReadDir sorts by name
	}
	return names, nil
}

func (o osFS) Remove(name string) error { return osErr(os.Remove(o.path(name))) }

func (o osFS) Rename(oldname, newname string) error {
	return osErr(os.Rename(o.path(oldname), o.path(newname)))
}

func (o osFS) MkdirAll(dir string) error { return osErr(os.MkdirAll(o.path(dir), osDirMode)) }

// SyncDir fsyncs the directory itself, which is what makes a new, renamed or
// removed name in it durable on Linux (a file's own fsync does not).
func (o osFS) SyncDir(dir string) error {
	d, err := os.Open(o.path(dir))
	if err != nil {
		return osErr(err)
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return osErr(serr)
	}
	return osErr(cerr)
}

type osFile struct {
	f *os.File
}

func (f osFile) Write(p []byte) (int, error) {
	n, err := f.f.Write(p)
	return n, osErr(err)
}

// Sync is fsync. (fdatasync would save a little on Linux, but every WAL
// append changes the file's size, so the metadata must be flushed anyway.)
func (f osFile) Sync() error               { return osErr(f.f.Sync()) }
func (f osFile) Truncate(size int64) error { return osErr(f.f.Truncate(size)) }
func (f osFile) Close() error              { return osErr(f.f.Close()) }

func (f osFile) Size() (int64, error) {
	st, err := f.f.Stat()
	if err != nil {
		return 0, osErr(err)
	}
	return st.Size(), nil
}

// osErr makes a full disk recognizable as ErrNoSpace, keeping the OS error
// (a *PathError, which still matches fs.ErrNotExist and the like).
func osErr(err error) error {
	if err != nil && errors.Is(err, syscall.ENOSPC) && !errors.Is(err, ErrNoSpace) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}
