package bolt

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/plumbdb/plumb/node/backend"
)

// batch is a backend.Batch over one bbolt write transaction, whose own reads
// see its writes and whose ForEach is in key order.
type batch struct {
	be *Backend
	tx *bbolt.Tx
	// deltaBytes is what the batch adds to Size (negative if it frees).
	deltaBytes int64
	// writes counts the Puts and the Deletes of present keys.
	writes int
	// err is the first write bbolt refused (an empty or too long key or
	// bucket name, a value too large); Commit returns it and writes nothing.
	err       error
	iterating int // ForEach calls in progress
	finished  bool
}

var _ backend.Batch = (*batch)(nil)

func (b *batch) mustBeOpen() {
	if b.finished {
		panic("bolt: batch used after Commit or Rollback")
	}
}

func (b *batch) mustBeWritable() {
	b.mustBeOpen()
	if b.iterating > 0 {
		panic("bolt: batch written inside its own ForEach")
	}
}

// bucket returns the batch's view of a bucket, creating it if create is set,
// or nil.
func (b *batch) bucket(name []byte, create bool) *bbolt.Bucket {
	if bytes.Equal(name, metaBucket) {
		if create {
			panic(fmt.Sprintf("bolt: bucket %q is reserved for the backend", name))
		}
		return nil
	}
	bk := b.tx.Bucket(name)
	if bk == nil && create {
		var err error
		if bk, err = b.tx.CreateBucket(name); err != nil {
			b.fail(fmt.Errorf("create bucket %q: %w", name, err))
			return nil
		}
	}
	return bk
}

func (b *batch) fail(err error) {
	if b.err == nil {
		b.err = fmt.Errorf("bolt: %s: %w", b.be.path, err)
	}
}

// Get implements backend.Reader on the batch's view. The value is valid until
// the batch finishes.
func (b *batch) Get(bucket, key []byte) ([]byte, bool) {
	b.mustBeOpen()
	bk := b.bucket(bucket, false)
	if bk == nil {
		return nil, false
	}
	v := bk.Get(key)
	return v, v != nil
}

// ForEach implements backend.Reader on the batch's view. Keys and values are
// valid until the batch finishes.
func (b *batch) ForEach(bucket []byte, fn func(key, value []byte) error) error {
	b.mustBeOpen()
	bk := b.bucket(bucket, false)
	if bk == nil {
		return nil
	}
	b.iterating++
	defer func() { b.iterating-- }()
	return forEach(bk, fn)
}

// Put implements backend.Batch. bbolt copies the key; the value is copied
// into the Backend's arena, since bbolt keeps the slice it is given until
// the commit writes it out.
func (b *batch) Put(bucket, key, value []byte) {
	b.mustBeWritable()
	if b.err != nil {
		return
	}
	bk := b.bucket(bucket, true)
	if bk == nil {
		return
	}
	var old []byte
	if k, v := bk.Cursor().Seek(key); k == nil {
		// An append past the last key, as revisions are: split full pages
		// unevenly, or sequential keys leave every page half empty.
		bk.FillPercent = appendFillPercent
	} else if bytes.Equal(k, key) {
		old = v
	}
	if err := bk.Put(key, b.be.arena.copy(value)); err != nil {
		b.fail(fmt.Errorf("put %d-byte key %.32q in bucket %q: %w", len(key), key, bucket, err))
		return
	}
	b.writes++
	b.deltaBytes += int64(len(key) + len(value))
	if old != nil {
		b.deltaBytes -= int64(len(key) + len(old))
	}
}

// Delete implements backend.Batch.
func (b *batch) Delete(bucket, key []byte) {
	b.mustBeWritable()
	if b.err != nil {
		return
	}
	bk := b.bucket(bucket, false)
	if bk == nil {
		return
	}
	old := bk.Get(key)
	if old == nil {
		return
	}
	if err := bk.Delete(key); err != nil {
		b.fail(fmt.Errorf("delete %.32q from bucket %q: %w", key, bucket, err))
		return
	}
	b.writes++
	b.deltaBytes -= int64(len(key) + len(old))
}

// Commit implements backend.Batch: bbolt writes the batch's pages and then
// its meta page, fsyncing each, so the batch is durable on return. It fails
// with nothing written if a Put was refused, with ErrQuota if the batch
// would take the database past the quota, and otherwise only on an I/O
// error, after which the Backend refuses every later Commit. A batch that
// wrote nothing is rolled back instead: there is nothing to make durable,
// and bbolt would still write a meta page and fsync twice.
func (b *batch) Commit() error {
	b.mustBeWritable()
	be := b.be
	if be.iterating > 0 {
		panic("bolt: " + be.path + ": Commit inside a ForEach of the Backend")
	}
	defer b.finish()
	switch {
	case b.err != nil:
		b.rollback()
		return b.err
	case be.failed != nil:
		b.rollback()
		return fmt.Errorf("bolt: %s: an earlier commit failed; reopen the backend: %w", be.path, be.failed)
	case b.writes == 0:
		b.rollback()
		return nil
	case b.deltaBytes > 0 && b.tx.Size()+b.deltaBytes > be.quotaBytes:
		// b.tx.Size() is still the committed high-water mark: pages are
		// allocated only when the commit spills.
		b.rollback()
		return ErrQuota
	}
	sizeBytes := be.sizeBytes + b.deltaBytes
	if b.deltaBytes != 0 {
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], uint64(sizeBytes))
		if err := b.tx.Bucket(metaBucket).Put(sizeKey, be.arena.copy(buf[:])); err != nil {
			b.rollback()
			return fmt.Errorf("bolt: %s: record the size: %w", be.path, err)
		}
	}
	// A commit that grows the file past the mapping remaps it, which waits
	// for every read transaction: ours must end first.
	be.closeReadTx()
	if err := b.tx.Commit(); err != nil { // bbolt has rolled back
		be.failed = err
		return fmt.Errorf("bolt: commit to %s: %w", be.path, err)
	}
	be.sizeBytes = sizeBytes
	return nil
}

// Rollback implements backend.Batch.
func (b *batch) Rollback() {
	if b.finished {
		return
	}
	if b.iterating > 0 {
		panic("bolt: batch rolled back inside its own ForEach")
	}
	b.rollback()
	b.finish()
}

func (b *batch) rollback() {
	if err := b.tx.Rollback(); err != nil {
		// bbolt refuses only a transaction that is already closed.
		panic(fmt.Sprintf("bolt: %s: rollback: %v", b.be.path, err))
	}
}

func (b *batch) finish() {
	b.finished = true
	b.tx = nil
	if b.be.open == b {
		b.be.open = nil
	}
	// bbolt has written out or dropped every value it was given.
	b.be.arena.reset()
}

const (
	// appendFillPercent is how full bbolt fills the pages it splits in a
	// bucket that a batch appends to, as etcd sets it for its key bucket
	// (bbolt's default, 0.5, suits random inserts).
	appendFillPercent = 0.9
	// arenaChunkBytes is the size of the arena's chunks. Values larger than
	// a quarter of it get their own allocation.
	arenaChunkBytes = 64 << 10
	// arenaSpareChunksMax bounds the chunks kept between batches (1 MiB).
	arenaSpareChunksMax = 16
)

// arena holds copies of a batch's values until bbolt has written them: one
// allocation per chunk rather than one per Put, and the chunks are reused by
// the next batch.
type arena struct {
	cur   []byte
	used  [][]byte // full chunks of the current batch
	spare [][]byte
}

// copy returns a copy of v, never nil (bbolt reads a nil value as absent).
func (a *arena) copy(v []byte) []byte {
	n := len(v)
	if n > arenaChunkBytes/4 {
		return bytes.Clone(v)
	}
	if cap(a.cur)-len(a.cur) < n || a.cur == nil {
		if a.cur != nil {
			a.used = append(a.used, a.cur)
		}
		if k := len(a.spare); k > 0 {
			a.cur, a.spare = a.spare[k-1][:0], a.spare[:k-1]
		} else {
			a.cur = make([]byte, 0, arenaChunkBytes)
		}
	}
	off := len(a.cur)
	a.cur = append(a.cur, v...)
	return a.cur[off:len(a.cur):len(a.cur)]
}

// reset makes every chunk free for the next batch.
func (a *arena) reset() {
	if a.cur != nil {
		a.used = append(a.used, a.cur)
		a.cur = nil
	}
	for i, c := range a.used {
		if len(a.spare) < arenaSpareChunksMax {
			a.spare = append(a.spare, c[:0])
		}
		a.used[i] = nil
	}
	a.used = a.used[:0]
}
