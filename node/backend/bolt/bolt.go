package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/plumbdb/plumb/node/backend"
)

const (
	// DefaultQuotaBytes is etcd's default --quota-backend-bytes.
	DefaultQuotaBytes = 2 << 30
	// DefaultInitialMmapBytes is the mapping Open starts with. It is address
	// space, not memory; a database that outgrows it is remapped at a Commit.
	DefaultInitialMmapBytes = 256 << 20

	// lockTimeout bounds how long Open waits for another process's lock on
	// the file before failing.
	lockTimeout = time.Second
	// readBucketsMax bounds the bucket handles cached for the read
	// transaction, which callers may probe with any bucket name.
	readBucketsMax = 64
)

// ErrQuota is returned by Commit when the batch would take the database past
// Options.QuotaBytes. It carries etcd's message for NOSPACE.
var ErrQuota = errors.New("etcdserver: mvcc: database space exceeded")

// The reserved bucket holds the Backend's own records. Callers never see it:
// it reads as empty, and writing to it panics.
var (
	metaBucket = []byte("plumb.backend")
	// sizeKey holds Size, the committed bytes of keys and values, as an
	// 8-byte big-endian number, updated in every batch that changes it.
	sizeKey = []byte("size_bytes")
)

// Options configures Open. The zero value gives the defaults.
type Options struct {
	// QuotaBytes is etcd's --quota-backend-bytes: a Commit whose batch adds
	// bytes fails with ErrQuota, rolled back, if the database would exceed it.
	// 0 means DefaultQuotaBytes.
	//
	// Like etcd's quota it is an estimate, made before the commit: the file's
	// size in use (bbolt's high-water mark, etcd's DbSize) plus the bytes the
	// batch adds to keys and values. Page overhead is not counted, so the file
	// may end a little past the quota, after which every batch that adds bytes
	// fails. A batch that adds none (deletions, compaction, overwrites with
	// values no longer than before) always commits, so an operator can free
	// space (compact, then defragment) as with etcd's NOSPACE alarm.
	QuotaBytes int64
	// InitialMmapBytes is the size of the first memory mapping of the file
	// (bbolt's InitialMmapSize). 0 means DefaultInitialMmapBytes.
	InitialMmapBytes int
}

func (o Options) withDefaults() (Options, error) {
	if o.QuotaBytes < 0 {
		return o, fmt.Errorf("bolt: QuotaBytes is %d; want 0 (the default) or more", o.QuotaBytes)
	}
	if o.InitialMmapBytes < 0 {
		return o, fmt.Errorf("bolt: InitialMmapBytes is %d; want 0 (the default) or more", o.InitialMmapBytes)
	}
	if o.QuotaBytes == 0 {
		o.QuotaBytes = DefaultQuotaBytes
	}
	if o.InitialMmapBytes == 0 {
		o.InitialMmapBytes = DefaultInitialMmapBytes
	}
	return o, nil
}

// Backend is a backend.Backend in a bbolt file.
//
// Reads on the Backend go through one read-only transaction, opened at the
// first read and kept until the next Begin (or, for reads made while a batch
// is open, the next Commit): bbolt must remap the file when a commit grows it
// past the mapping, which waits for every read transaction to end, so a read
// transaction is never held across a Commit.
//
// Slices returned by the Backend's Get and ForEach point into bbolt's mapping
// of the file. They stay valid until the next Commit or Close, not longer (a
// Commit may remap the file); the caller must copy what it keeps longer and
// must never write to them. Slices returned by a Batch's reads stay valid
// until that batch is committed or rolled back.
//
// Size is what backend.Backend asks for and Memory reports, the committed
// bytes of keys and values, kept in the reserved bucket "plumb.backend" (which
// reads as empty and panics on writes) so that Open does not scan the file.
// The file's size, which etcd reports as DbSize, is DiskBytes.
//
// Keys and bucket names must be non-empty and at most bbolt.MaxKeySize (32
// KiB) long; a Put that breaks this makes the batch's Commit fail, with
// nothing written.
//
// A Backend is not safe for concurrent use, like everything under node/: its
// driver calls it from one goroutine.
type Backend struct {
	db         *bbolt.DB // nil once closed
	bopts      *bbolt.Options
	path       string
	quotaBytes int64
	sizeBytes  int64 // committed keys plus values, as stored under sizeKey

	rtx       *bbolt.Tx // the read transaction, or nil
	rbuckets  map[string]readBucket
	iterating int // ForEach calls in progress over rtx

	open  *batch
	arena arena
	// failed is the error of a commit that bbolt could not finish. The file
	// and bbolt's view of it may disagree after a failed write or fsync, so
	// every later Commit fails: the node must restart and reopen.
	failed error
}

var _ backend.Backend = (*Backend)(nil)

// Open opens the bbolt file at path, creating it (mode 0600) if it does not
// exist. It fails, naming path, if another process holds the file (after
// waiting a second for its lock) or if the file is not a bbolt database.
//
// bbolt is set up as etcd sets it up: the freelist is not written at each
// commit (NoFreelistSync: Open rebuilds it by scanning), it is kept as a map,
// and growing the file is fsynced.
func Open(path string, opts Options) (*Backend, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, os.ErrNotExist)
	bopts := &bbolt.Options{
		Timeout:         lockTimeout,
		NoFreelistSync:  true,
		FreelistType:    bbolt.FreelistMapType,
		NoGrowSync:      false,
		InitialMmapSize: opts.InitialMmapBytes,
	}
	db, err := bbolt.Open(path, 0o600, bopts)
	if err != nil {
		return nil, openError(path, err)
	}
	be := &Backend{
		db:         db,
		bopts:      bopts,
		path:       path,
		quotaBytes: opts.QuotaBytes,
		rbuckets:   make(map[string]readBucket),
	}
	if err := be.loadSize(); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	if created {
		// The file's directory entry must be as durable as its first commit.
		if err := syncDir(filepath.Dir(path)); err != nil {
			return nil, errors.Join(err, db.Close())
		}
	}
	return be, nil
}

func openError(path string, err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("bolt: open %s: locked by another process (gave up after %v): %w", path, lockTimeout, err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
		return fmt.Errorf("bolt: open %s: not a bbolt database, or a damaged one: %w", path, err)
	}
	return fmt.Errorf("bolt: open %s: %w", path, err)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("bolt: sync directory %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("bolt: sync directory %s: %w", dir, err)
	}
	return nil
}

// loadSize reads the size record. A file without one (new, or written by
// something else) is scanned once and given one.
func (be *Backend) loadSize() error {
	tx, err := be.db.Begin(true)
	if err != nil {
		return fmt.Errorf("bolt: open %s: %w", be.path, err)
	}
	if mb := tx.Bucket(metaBucket); mb != nil {
		v := mb.Get(sizeKey)
		err := tx.Rollback()
		if len(v) != 8 || int64(binary.BigEndian.Uint64(v)) < 0 {
			return fmt.Errorf("bolt: open %s: bucket %q: bad %q record %x", be.path, metaBucket, sizeKey, v)
		}
		be.sizeBytes = int64(binary.BigEndian.Uint64(v))
		return err
	}
	size, err := scanSize(tx)
	if err == nil {
		err = putSize(tx, size)
	}
	if err == nil {
		err = tx.Commit()
	} else {
		err = errors.Join(err, tx.Rollback())
	}
	if err != nil {
		return fmt.Errorf("bolt: open %s: record the size: %w", be.path, err)
	}
	be.sizeBytes = size
	return nil
}

// scanSize adds up the keys and values of every top-level bucket but the
// reserved one.
func scanSize(tx *bbolt.Tx) (int64, error) {
	var size int64
	err := tx.ForEach(func(name []byte, bk *bbolt.Bucket) error {
		if bytes.Equal(name, metaBucket) {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			if v != nil { // nil is a nested bucket, which the Backend never makes
				size += int64(len(k) + len(v))
			}
			return nil
		})
	})
	return size, err
}

func putSize(tx *bbolt.Tx, size int64) error {
	mb, err := tx.CreateBucketIfNotExists(metaBucket)
	if err != nil {
		return err
	}
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, uint64(size))
	return mb.Put(sizeKey, v)
}

func (be *Backend) mustBeOpen() {
	if be.db == nil {
		panic("bolt: " + be.path + ": used after Close")
	}
}

// readTx returns the read transaction, opening it if needed.
func (be *Backend) readTx() *bbolt.Tx {
	if be.rtx == nil {
		be.mustBeOpen()
		tx, err := be.db.Begin(false)
		if err != nil {
			// Only a closed database, or one whose remap failed (after which
			// Commit fails too), refuses a read transaction.
			panic(fmt.Sprintf("bolt: %s: read transaction: %v", be.path, err))
		}
		be.rtx = tx
	}
	return be.rtx
}

// closeReadTx ends the read transaction, if any.
func (be *Backend) closeReadTx() {
	if be.rtx == nil {
		return
	}
	if be.iterating > 0 {
		panic("bolt: " + be.path + ": Commit or Close inside a ForEach of the Backend")
	}
	err := be.rtx.Rollback()
	be.rtx = nil
	clear(be.rbuckets)
	if err != nil {
		panic(fmt.Sprintf("bolt: %s: end read transaction: %v", be.path, err))
	}
}

// readBucket is a committed bucket with a cursor for Get, which reuses its
// stack from one seek to the next (bbolt's Bucket.Get makes a new cursor
// each time).
type readBucket struct {
	bk     *bbolt.Bucket // nil if there is no such bucket
	cursor *bbolt.Cursor
}

// readBucket returns the committed bucket.
func (be *Backend) readBucket(name []byte) readBucket {
	tx := be.readTx()
	if rb, ok := be.rbuckets[string(name)]; ok {
		return rb
	}
	var rb readBucket
	if !bytes.Equal(name, metaBucket) {
		if rb.bk = tx.Bucket(name); rb.bk != nil {
			rb.cursor = rb.bk.Cursor()
		}
	}
	if len(be.rbuckets) < readBucketsMax {
		be.rbuckets[string(name)] = rb
	}
	return rb
}

// Get implements backend.Reader on the committed state. The value is valid
// until the next Commit or Close.
func (be *Backend) Get(bucket, key []byte) ([]byte, bool) {
	rb := be.readBucket(bucket)
	if rb.bk == nil {
		return nil, false
	}
	k, v := rb.cursor.Seek(key)
	if v == nil || !bytes.Equal(k, key) { // nil v: a nested bucket
		return nil, false
	}
	return v, true
}

// ForEach implements backend.Reader on the committed state. Keys and values
// are valid until the next Commit or Close. fn may open a batch, but
// committing it inside fn panics.
func (be *Backend) ForEach(bucket []byte, fn func(key, value []byte) error) error {
	rb := be.readBucket(bucket)
	if rb.bk == nil {
		return nil
	}
	be.iterating++
	defer func() { be.iterating-- }()
	return forEach(rb.bk, fn)
}

func forEach(bk *bbolt.Bucket, fn func(key, value []byte) error) error {
	return bk.ForEach(func(k, v []byte) error {
		if v == nil { // a nested bucket, which the Backend never makes
			return nil
		}
		return fn(k, v)
	})
}

// Begin implements backend.Backend: the batch is one bbolt write transaction.
func (be *Backend) Begin() backend.Batch {
	be.mustBeOpen()
	if be.open != nil {
		panic("bolt: " + be.path + ": Begin while another batch is open")
	}
	if be.iterating == 0 {
		// Not needed until Commit, but ending it now lets this batch reuse
		// the pages the last commit freed.
		be.closeReadTx()
	}
	tx, err := be.db.Begin(true)
	if err != nil {
		// bbolt refuses a write transaction only to a closed or read-only
		// database, which an open Backend never is.
		panic(fmt.Sprintf("bolt: %s: begin: %v", be.path, err))
	}
	be.open = &batch{be: be, tx: tx}
	return be.open
}

// Size implements backend.Backend: the committed bytes of keys and values.
// The file's own size is DiskBytes.
func (be *Backend) Size() int64 { return be.sizeBytes }

// DiskBytes returns the committed size of the database file in use (bbolt's
// high-water mark, which etcd reports as Status.DbSize and checks its quota
// against) and how much of it is not free pages (etcd's DbSizeInUse). The
// file on disk may be longer: bbolt grows it ahead of use.
func (be *Backend) DiskBytes() (total, inUse int64) {
	total = be.readTx().Size()
	free := int64(be.db.Stats().FreePageN) * int64(be.db.Info().PageSize)
	return total, total - free
}

// Close implements backend.Backend: it rolls back an open batch and closes
// the file. Closing a closed Backend does nothing.
func (be *Backend) Close() error {
	if be.db == nil {
		return nil
	}
	if be.iterating > 0 {
		panic("bolt: " + be.path + ": Close inside a ForEach of the Backend")
	}
	if be.open != nil {
		be.open.Rollback()
	}
	be.closeReadTx()
	err := be.db.Close()
	be.db = nil
	if err != nil {
		return fmt.Errorf("bolt: close %s: %w", be.path, err)
	}
	return nil
}
