package wal

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"path"
	"slices"
)

// MemFS is the simulator's disk: an FS in memory that models durability the
// way a POSIX file system on a disk with a volatile cache does.
//
// Each file has a volatile layer (what reads see) and a durable one (what a
// crash keeps). File.Sync copies the file's volatile layer to its durable
// one. Names work the same way: Create, Rename, Remove and MkdirAll change
// the live namespace at once, and SyncDir(dir) makes the changes to names in
// dir durable. Crash throws the volatile state away; see Crash for what a
// torn write leaves behind.
//
// A MemFS is not safe for concurrent use; the simulator drives it from one
// goroutine, and nothing in it reads a clock or a global random source, so a
// run is a function of its seed.
type MemFS struct {
	files        map[string]*memInode // live names of files
	dirs         map[string]bool      // live directories; the root "." is implicit
	durableFiles map[string]*memInode
	durableDirs  map[string]bool
	full         bool
	tearNext     bool   // the next Crash tears every last unsynced write
	epoch        uint64 // bumped by Crash: handles of an older epoch are dead
	syncCount    int
}

var _ FS = (*MemFS)(nil)

// memInode is one file's content, which survives renames (like an inode).
//
// Invariant: unless truncated is set, durable is a prefix of data (every
// change since the last Sync is an append), so Sync can share data's array
// instead of copying it; a Truncate below the durable size copies first.
type memInode struct {
	data      []byte // the volatile layer: what reads see
	durable   []byte // what survives a crash
	dirty     bool   // data differs from durable
	truncated bool   // truncated since the last Sync: Crash models no torn write
	// lastOff and lastLen locate the last unsynced write in data (lastLen 0:
	// none), the one Crash may keep torn.
	lastOff, lastLen int
}

// NewMemFS returns an empty MemFS whose root directory exists.
func NewMemFS() *MemFS {
	return &MemFS{
		files:        map[string]*memInode{},
		dirs:         map[string]bool{},
		durableFiles: map[string]*memInode{},
		durableDirs:  map[string]bool{},
	}
}

// clean turns a name into its canonical slash-separated form ("." for the
// root), rejecting absolute names and names that climb out of the root.
func clean(op, name string) (string, error) {
	n := path.Clean(name)
	if !fs.ValidPath(n) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return n, nil
}

func (m *MemFS) dirExists(dir string) bool { return dir == "." || m.dirs[dir] }

// Create implements FS.
func (m *MemFS) Create(name string) (File, error) {
	n, err := clean("create", name)
	if err != nil {
		return nil, err
	}
	if !m.dirExists(path.Dir(n)) {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrNotExist}
	}
	if m.dirExists(n) {
		return nil, &fs.PathError{Op: "create", Path: name, Err: errIsDir}
	}
	ino := m.files[n]
	if ino == nil {
		ino = &memInode{}
		m.files[n] = ino
	} else {
		ino.truncate(0)
	}
	return &memFile{fs: m, ino: ino, name: n, epoch: m.epoch}, nil
}

// OpenAppend implements FS.
func (m *MemFS) OpenAppend(name string) (File, error) {
	n, err := clean("open", name)
	if err != nil {
		return nil, err
	}
	ino := m.files[n]
	if ino == nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memFile{fs: m, ino: ino, name: n, epoch: m.epoch}, nil
}

// ReadFile implements FS. It returns a copy.
func (m *MemFS) ReadFile(name string) ([]byte, error) {
	n, err := clean("read", name)
	if err != nil {
		return nil, err
	}
	ino := m.files[n]
	if ino == nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	return slices.Clone(ino.data), nil
}

// ReadDir implements FS.
func (m *MemFS) ReadDir(dir string) ([]string, error) {
	d, err := clean("readdir", dir)
	if err != nil {
		return nil, err
	}
	if !m.dirExists(d) {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	var names []string
	for n := range m.files {
		if path.Dir(n) == d {
			names = append(names, path.Base(n))
		}
	}
	for n := range m.dirs {
		if path.Dir(n) == d {
			names = append(names, path.Base(n))
		}
	}
	slices.Sort(names)
	return names, nil
}

// Remove implements FS.
func (m *MemFS) Remove(name string) error {
	n, err := clean("remove", name)
	if err != nil {
		return err
	}
	if m.files[n] != nil {
		delete(m.files, n)
		return nil
	}
	if !m.dirs[n] {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	for f := range m.files {
		if path.Dir(f) == n {
			return &fs.PathError{Op: "remove", Path: name, Err: errNotEmpty}
		}
	}
	for d := range m.dirs {
		if path.Dir(d) == n {
			return &fs.PathError{Op: "remove", Path: name, Err: errNotEmpty}
		}
	}
	delete(m.dirs, n)
	return nil
}

// Rename implements FS for files (the WAL never renames a directory).
func (m *MemFS) Rename(oldname, newname string) error {
	o, err := clean("rename", oldname)
	if err != nil {
		return err
	}
	n, err := clean("rename", newname)
	if err != nil {
		return err
	}
	ino := m.files[o]
	switch {
	case ino == nil:
		return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
	case !m.dirExists(path.Dir(n)):
		return &fs.PathError{Op: "rename", Path: newname, Err: fs.ErrNotExist}
	case m.dirExists(n):
		return &fs.PathError{Op: "rename", Path: newname, Err: errIsDir}
	}
	delete(m.files, o)
	m.files[n] = ino
	return nil
}

// MkdirAll implements FS.
func (m *MemFS) MkdirAll(dir string) error {
	d, err := clean("mkdir", dir)
	if err != nil {
		return err
	}
	var missing []string
	for ; d != "." && !m.dirs[d]; d = path.Dir(d) {
		if m.files[d] != nil {
			return &fs.PathError{Op: "mkdir", Path: d, Err: errNotDir}
		}
		missing = append(missing, d)
	}
	for _, d := range missing {
		m.dirs[d] = true
	}
	return nil
}

// SyncDir implements FS: the live state of every name directly in dir
// becomes its durable state.
func (m *MemFS) SyncDir(dir string) error {
	d, err := clean("syncdir", dir)
	if err != nil {
		return err
	}
	if !m.dirExists(d) {
		return &fs.PathError{Op: "syncdir", Path: dir, Err: fs.ErrNotExist}
	}
	for n := range m.durableFiles {
		if path.Dir(n) == d && m.files[n] == nil {
			delete(m.durableFiles, n)
		}
	}
	for n, ino := range m.files {
		if path.Dir(n) == d {
			m.durableFiles[n] = ino
		}
	}
	for n := range m.durableDirs {
		if path.Dir(n) == d && !m.dirs[n] {
			delete(m.durableDirs, n)
		}
	}
	for n := range m.dirs {
		if path.Dir(n) == d {
			m.durableDirs[n] = true
		}
	}
	m.syncCount++
	return nil
}

// Crash models losing power: every write not yet synced and every directory
// change not yet made durable by SyncDir is dropped, except that the LAST
// unsynced write of each file may survive torn: rng keeps a random prefix of
// it (from one byte to all of it), as a disk that wrote some sectors of a
// write before power went does. If earlier unsynced writes of the file were
// dropped, the bytes between the durable end and the torn write read as
// zeros (the new size reached the disk, those sectors did not). A file
// truncated since its last Sync just returns to its durable content. Files
// whose directory did not durably exist are lost with it.
//
// Handles opened before the crash are dead: every call on them returns
// ErrCrashed. The MemFS itself is usable at once, like a rebooted machine.
func (m *MemFS) Crash(rng *rand.Rand) {
	m.epoch++
	m.dirs = map[string]bool{}
	for d := range m.durableDirs {
		if m.reachable(d, m.durableDirs) {
			m.dirs[d] = true
		}
	}
	m.files = map[string]*memInode{}
	for n, ino := range m.durableFiles {
		if m.reachable(n, m.durableDirs) {
			m.files[n] = ino
		}
	}
	m.durableDirs = cloneMap(m.dirs)
	m.durableFiles = cloneMap(m.files)
	// Visit inodes in name order: rng must be consumed in the same order on
	// every run with the same seed.
	names := sortedKeys(m.files)
	seen := map[*memInode]bool{}
	tear := m.tearNext
	m.tearNext = false
	for _, n := range names {
		ino := m.files[n]
		if !seen[ino] {
			seen[ino] = true
			ino.crash(rng, tear)
		}
	}
}

// reachable reports whether every directory above name exists in dirs.
func (m *MemFS) reachable(name string, dirs map[string]bool) bool {
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		if !dirs[d] {
			return false
		}
	}
	return true
}

// SetFull makes the disk full (or not): while full, File.Write fails with
// ErrNoSpace and writes nothing, and File.Sync of a file with unsynced
// changes fails with ErrNoSpace and makes nothing durable. Reads, Truncate
// to a smaller size, and directory operations go on working, as they mostly
// do on a real full disk.
func (m *MemFS) SetFull(full bool) { m.full = full }

// TearNextCrash makes the next Crash tear the last unsynced write of every
// file (keep a random prefix of it) rather than choose at random whether
// to: the simulator's torn-write fault.
func (m *MemFS) TearNextCrash() { m.tearNext = true }

// Corrupt flips one random bit (chosen by rng) of the byte at offset in the
// durable content of the file name, as a disk that returns bad data does.
// Reads see the flip at once unless the page cache holds a newer copy of
// that byte (the file was truncated since its last Sync).
func (m *MemFS) Corrupt(name string, offset int64, rng *rand.Rand) error {
	n, err := clean("corrupt", name)
	if err != nil {
		return err
	}
	ino := m.durableFiles[n]
	if ino == nil {
		return &fs.PathError{Op: "corrupt", Path: name, Err: fs.ErrNotExist}
	}
	if offset < 0 || offset >= int64(len(ino.durable)) {
		return &fs.PathError{Op: "corrupt", Path: name, Err: errors.New("offset beyond the durable content")}
	}
	mask := byte(1) << rng.IntN(8)
	// durable may share its array with data: copy before changing it.
	ino.durable = slices.Clone(ino.durable)
	ino.durable[offset] ^= mask
	switch {
	case !ino.dirty:
		ino.data = ino.durable[:len(ino.durable):len(ino.durable)]
	case !ino.truncated:
		ino.data[offset] ^= mask // data's array no longer backs durable
	}
	return nil
}

// Files returns the path of every live file, sorted.
func (m *MemFS) Files() []string { return sortedKeys(m.files) }

// SizeBytes returns the total size of the live files (volatile layer).
func (m *MemFS) SizeBytes() int64 {
	var total int64
	seen := map[*memInode]bool{}
	for _, ino := range m.files {
		if !seen[ino] {
			seen[ino] = true
			total += int64(len(ino.data))
		}
	}
	return total
}

// SyncCount returns how many File.Sync and SyncDir calls have succeeded: a
// simulator can charge latency per sync, and tests count fsyncs with it.
func (m *MemFS) SyncCount() int { return m.syncCount }

var (
	errIsDir    = errors.New("is a directory")
	errNotDir   = errors.New("not a directory")
	errNotEmpty = errors.New("directory not empty")
)

func (ino *memInode) truncate(size int) {
	if size < len(ino.durable) {
		// Appends after this would overwrite bytes durable shares.
		ino.durable = slices.Clone(ino.durable)
	}
	if size <= len(ino.data) {
		ino.data = ino.data[:size]
	} else {
		ino.data = append(ino.data, make([]byte, size-len(ino.data))...)
	}
	ino.dirty = true
	ino.truncated = true
	ino.lastLen = 0
}

func (ino *memInode) crash(rng *rand.Rand, tear bool) {
	result := ino.durable
	tornAtRandom := rng.IntN(2) == 0 // drawn every time, so tear does not shift the stream
	if ino.dirty && !ino.truncated && ino.lastLen > 0 && (tear || tornAtRandom) {
		keep := 1 + rng.IntN(ino.lastLen)
		result = make([]byte, ino.lastOff, ino.lastOff+keep)
		copy(result, ino.durable)
		result = append(result, ino.data[ino.lastOff:ino.lastOff+keep]...)
	}
	ino.durable = result[:len(result):len(result)]
	ino.data = ino.durable
	ino.dirty = false
	ino.truncated = false
	ino.lastLen = 0
}

// memFile is a handle on a memInode.
type memFile struct {
	fs     *MemFS
	ino    *memInode
	name   string
	epoch  uint64
	closed bool
}

func (f *memFile) check(op string) error {
	switch {
	case f.epoch != f.fs.epoch:
		return &fs.PathError{Op: op, Path: f.name, Err: ErrCrashed}
	case f.closed:
		return &fs.PathError{Op: op, Path: f.name, Err: fs.ErrClosed}
	}
	return nil
}

func (f *memFile) Write(p []byte) (int, error) {
	if err := f.check("write"); err != nil {
		return 0, err
	}
	if f.fs.full {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: ErrNoSpace}
	}
	if len(p) == 0 {
		return 0, nil
	}
	ino := f.ino
	ino.lastOff, ino.lastLen = len(ino.data), len(p)
	ino.data = append(ino.data, p...)
	ino.dirty = true
	return len(p), nil
}

func (f *memFile) Sync() error {
	if err := f.check("sync"); err != nil {
		return err
	}
	ino := f.ino
	if ino.dirty && f.fs.full {
		return &fs.PathError{Op: "sync", Path: f.name, Err: ErrNoSpace}
	}
	if ino.truncated {
		ino.durable = slices.Clone(ino.data)
	} else {
		ino.durable = ino.data[:len(ino.data):len(ino.data)]
	}
	ino.dirty = false
	ino.truncated = false
	ino.lastLen = 0
	f.fs.syncCount++
	return nil
}

func (f *memFile) Truncate(size int64) error {
	if err := f.check("truncate"); err != nil {
		return err
	}
	if size < 0 {
		return &fs.PathError{Op: "truncate", Path: f.name, Err: fs.ErrInvalid}
	}
	if size > int64(len(f.ino.data)) && f.fs.full {
		return &fs.PathError{Op: "truncate", Path: f.name, Err: ErrNoSpace}
	}
	f.ino.truncate(int(size))
	return nil
}

func (f *memFile) Size() (int64, error) {
	if err := f.check("stat"); err != nil {
		return 0, err
	}
	return int64(len(f.ino.data)), nil
}

func (f *memFile) Close() error {
	if err := f.check("close"); err != nil {
		return err
	}
	f.closed = true
	return nil
}

func cloneMap[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
