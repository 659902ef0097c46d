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
// Hold and Release model I/O in flight: between them every Sync and SyncDir
// is provisional, seen by reads at once but durable only at Release. A
// crash in between falls inside one of them: the syncs before it completed,
// the one in progress did not, and nothing written after that one was
// called was ever issued, since a program writes again only once its fsync
// returns (see CrashAt).
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

	// The hold (see Hold). While held, Sync and SyncDir change the durable
	// image as usual, first recording in points the whole disk as it was
	// when they were called (as HoldPoint does for another device's sync).
	// CrashAt puts one back; Release forgets them.
	held   bool
	points []memPoint
}

// memPoint is the disk as it was when a held sync was called: live and
// durable names, and the state of every file they hold. Data slices are
// shared, not copied: bytes below a slice's length are never changed in
// place (see memInode).
type memPoint struct {
	files, durableFiles map[string]*memInode
	dirs, durableDirs   map[string]bool
	inodes              []memInodeState
}

// memInodeState is an inode's fields at a point.
type memInodeState struct {
	ino              *memInode
	data, durable    []byte
	dirty, truncated bool
	lastOff, lastLen int
}

func (st memInodeState) restore() {
	ino := st.ino
	ino.data, ino.durable = st.data, st.durable
	ino.dirty, ino.truncated = st.dirty, st.truncated
	ino.lastOff, ino.lastLen = st.lastOff, st.lastLen
}

var _ FS = (*MemFS)(nil)

// memInode is one file's content, which survives renames (like an inode).
//
// Invariant: unless truncated is set, durable is a prefix of data (every
// change since the last Sync is an append), so Sync can share data's array
// instead of copying it. No byte below a slice's length is ever changed in
// place: a Truncate that shrinks and Corrupt copy first, so that durable
// and the slices a hold's points keep stay as they were.
type memInode struct {
	data      []byte // the volatile layer: what reads see
	durable   []byte // what survives a crash
	dirty     bool   // data differs from durable
	truncated bool   // truncated since the last Sync: Crash models no torn write
	// lastOff and lastLen locate the last write in data since the last
	// truncate or crash (lastLen 0: none). When the inode is dirty and not
	// truncated, it came after the last Sync, and Crash may keep it torn.
	lastOff, lastLen int
}

func (ino *memInode) state() memInodeState {
	return memInodeState{ino: ino, data: ino.data, durable: ino.durable, dirty: ino.dirty,
		truncated: ino.truncated, lastOff: ino.lastOff, lastLen: ino.lastLen}
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
	if m.held {
		m.point()
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
// While held (see Hold), Crash is CrashAt(0, rng): the power goes during
// the first held sync.
//
// Handles opened before the crash are dead: every call on them returns
// ErrCrashed. The MemFS itself is usable at once, like a rebooted machine.
func (m *MemFS) Crash(rng *rand.Rand) { m.CrashAt(0, rng) }

// CrashAt is Crash with the power going during the held sync point (see
// Hold and HoldPoint; points are numbered from 0 in the order they were
// called): the syncs before it completed, it did not, and nothing written
// after it was called was ever issued, so the disk is as it was at that
// moment, and then crashes as Crash says. The only write that can be torn
// is one issued before that point and not yet synced: the one in progress.
// A point past the last (or no hold) means every held sync completed.
// CrashAt ends the hold.
func (m *MemFS) CrashAt(point int, rng *rand.Rand) {
	if m.held && point >= 0 && point < len(m.points) {
		p := &m.points[point]
		m.files, m.dirs, m.durableFiles, m.durableDirs = p.files, p.dirs, p.durableFiles, p.durableDirs
		for _, st := range p.inodes {
			st.restore()
		}
	}
	m.Release()
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

// Hold makes every Sync and SyncDir from now on provisional, as a disk
// whose fsyncs are still in flight: reads see the data as usual, and
// SyncCount counts them, but whether they complete is decided at Release
// (all of them) or at a crash (those before the crash's point: see
// CrashAt). Each successful held Sync or SyncDir is a point, numbered from
// 0 in call order, as is each HoldPoint.
//
// Holds do not nest: Hold while held does nothing, so the mark stays at
// the first Hold and one Release completes every sync since then.
func (m *MemFS) Hold() { m.held = true }

// HoldPoint records a point where another device's sync was called while
// held (the simulator's key-value backend commits between the WAL's
// syncs), and returns its number: a crash at or before it finds the disk
// as it was then. It panics when not held.
func (m *MemFS) HoldPoint() int {
	if !m.held {
		panic("wal: MemFS.HoldPoint while not held")
	}
	return m.point()
}

// HeldPoints returns how many points the hold has recorded.
func (m *MemFS) HeldPoints() int { return len(m.points) }

// point records the disk as it is now, and returns the point's number.
func (m *MemFS) point() int {
	p := memPoint{files: cloneMap(m.files), dirs: cloneMap(m.dirs),
		durableFiles: cloneMap(m.durableFiles), durableDirs: cloneMap(m.durableDirs)}
	add := func(ino *memInode) {
		for _, st := range p.inodes {
			if st.ino == ino {
				return
			}
		}
		p.inodes = append(p.inodes, ino.state())
	}
	for _, ino := range m.files {
		add(ino)
	}
	for _, ino := range m.durableFiles {
		add(ino)
	}
	m.points = append(m.points, p)
	return len(m.points) - 1
}

// Release completes the held syncs: the durable image stays what they made
// it when they were called. Release when not held does nothing.
func (m *MemFS) Release() {
	clear(m.points) // drop the references, keep the room
	m.points = m.points[:0]
	m.held = false
}

// Held reports whether syncs are being held (between Hold and Release or
// Crash).
func (m *MemFS) Held() bool { return m.held }

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

// Full reports whether the disk is full (SetFull).
func (m *MemFS) Full() bool { return m.full }

// TearNextCrash makes the next Crash tear the last unsynced write of every
// file (keep a random prefix of it) rather than choose at random whether
// to: the simulator's torn-write fault.
func (m *MemFS) TearNextCrash() { m.tearNext = true }

// Corrupt flips one random bit (chosen by rng) of the byte at offset in the
// durable content of the file name, as a disk that returns bad data does.
// Reads see the flip at once unless the page cache holds a newer copy of
// that byte (the file was truncated since its last Sync). While held, name
// and offset are looked up in the durable image with the held syncs
// counted, and the flip also reaches the file's content at every point
// the hold recorded, where that covers offset, so it survives a crash at
// any of them.
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
	// The bad byte is on the disk whether or not the held syncs complete:
	// the inode's state at every point gets the flip too. Every flip
	// copies first, so no state sees another's.
	for i := range m.points {
		for j := range m.points[i].inodes {
			if st := &m.points[i].inodes[j]; st.ino == ino {
				st.flip(int(offset), mask)
			}
		}
	}
	st := ino.state()
	st.flip(int(offset), mask)
	st.restore()
	return nil
}

// flip flips mask into the byte at offset of the durable content, and of
// what reads see unless the page cache holds a newer copy (the inode was
// truncated since it was synced).
func (st *memInodeState) flip(offset int, mask byte) {
	if offset >= len(st.durable) {
		return
	}
	st.durable = slices.Clone(st.durable)
	st.durable[offset] ^= mask
	switch {
	case !st.dirty:
		st.data = st.durable[:len(st.durable):len(st.durable)]
	case !st.truncated:
		st.data = slices.Clone(st.data)
		st.data[offset] ^= mask
	}
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

// SyncCount returns how many File.Sync and SyncDir calls have succeeded,
// held ones included: a simulator can charge latency per sync, and tests
// count fsyncs with it.
func (m *MemFS) SyncCount() int { return m.syncCount }

var (
	errIsDir    = errors.New("is a directory")
	errNotDir   = errors.New("not a directory")
	errNotEmpty = errors.New("directory not empty")
)

func (ino *memInode) truncate(size int) {
	if size < len(ino.data) {
		// Appends after this would overwrite bytes that durable or a
		// hold's points may share: a new array.
		ino.data = slices.Clone(ino.data[:size])
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
	if f.fs.held {
		f.fs.point()
	}
	if ino.truncated {
		ino.durable = slices.Clone(ino.data)
	} else {
		ino.durable = ino.data[:len(ino.data):len(ino.data)]
	}
	ino.dirty = false
	ino.truncated = false
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
