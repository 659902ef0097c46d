package backend

import (
	"slices"
	"strings"
)

// Deferred is a Backend over another whose batches become visible at
// Commit and durable at Sync: committed batches collect in memory (the
// overlay), reads see them on top of the underlying Backend, and Sync
// writes them all to it in one batch, one durable commit. This is etcd's
// design (its backend commits every 100ms, reads see the uncommitted
// buffer): a durable commit per applied entry costs bbolt two fsyncs, and
// the raft log already holds every entry durably, so after a crash the
// member replays the entries the overlay lost, from the applied index the
// underlying Backend recorded.
//
// The caller must Sync before anything that relies on the applied state
// being durable, above all before it compacts the raft log (the entries
// after the durable applied index must stay replayable).
//
// A crash loses the overlay whole, never part of a batch: the underlying
// Backend is always at some Sync, which holds a prefix of the batches
// committed. Deferred, like every Backend, is not safe for concurrent use.
type Deferred struct {
	under     Backend
	overlay   map[string]*memPending // bucket -> writes committed since the last Sync
	ops       int                    // writes in the overlay
	sizeBytes int64
	open      *deferredBatch
}

var _ Backend = (*Deferred)(nil)

// NewDeferred returns a Deferred over under, which it owns from now on:
// nothing else may write to under.
func NewDeferred(under Backend) *Deferred {
	return &Deferred{under: under, overlay: map[string]*memPending{}, sizeBytes: under.Size()}
}

// Get implements Reader: the overlay's value, or the underlying one.
func (d *Deferred) Get(bucket, key []byte) ([]byte, bool) {
	if p := d.overlay[string(bucket)]; p != nil {
		if op, ok := p.ops[string(key)]; ok {
			return op.value, !op.deleted
		}
	}
	return d.under.Get(bucket, key)
}

// ForEach implements Reader: the overlay merged over the underlying
// Backend, in key order.
func (d *Deferred) ForEach(bucket []byte, fn func(key, value []byte) error) error {
	return mergeForEach(d.overlay[string(bucket)], func(f func(k, v []byte) error) error {
		return d.under.ForEach(bucket, f)
	}, fn)
}

// mergeForEach calls fn for every key of below (a ForEach) with the writes
// of p on top, in key order: p's value shadows below's, p's deletion hides
// it.
func mergeForEach(p *memPending, below func(func(k, v []byte) error) error, fn func(key, value []byte) error) error {
	if p == nil || len(p.ops) == 0 {
		return below(fn)
	}
	own := make([]string, 0, len(p.ops))
	for k := range p.ops {
		own = append(own, k)
	}
	slices.Sort(own)
	j := 0
	emit := func(k string) error {
		op := p.ops[k]
		if op.deleted {
			return nil
		}
		return fn(op.key, op.value)
	}
	err := below(func(k, v []byte) error {
		for j < len(own) && strings.Compare(own[j], string(k)) < 0 {
			if err := emit(own[j]); err != nil {
				return err
			}
			j++
		}
		if j < len(own) && own[j] == string(k) {
			j++
			return emit(string(k))
		}
		return fn(k, v)
	})
	if err != nil {
		return err
	}
	for ; j < len(own); j++ {
		if err := emit(own[j]); err != nil {
			return err
		}
	}
	return nil
}

// Begin implements Backend.
func (d *Deferred) Begin() Batch {
	if d.open != nil {
		panic("backend: Begin while another batch is open")
	}
	d.open = &deferredBatch{d: d, pending: map[string]*memPending{}}
	return d.open
}

// Size implements Backend: the underlying Backend's bytes as of the last
// Sync, plus what the overlay adds or frees.
func (d *Deferred) Size() int64 { return d.sizeBytes }

// Dirty reports whether batches were committed since the last Sync.
func (d *Deferred) Dirty() bool { return d.ops > 0 }

// Sync makes every committed batch durable: the overlay goes to the
// underlying Backend in one batch, in bucket and key order. On an error the
// overlay stays (reads are unchanged) and nothing more is durable.
func (d *Deferred) Sync() error {
	if d.ops == 0 {
		return nil
	}
	b := d.under.Begin()
	names := make([]string, 0, len(d.overlay))
	for name := range d.overlay {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := d.overlay[name]
		keys := make([]string, 0, len(p.ops))
		for k := range p.ops {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if op := p.ops[k]; op.deleted {
				b.Delete([]byte(name), op.key)
			} else {
				b.Put([]byte(name), op.key, op.value)
			}
		}
	}
	if err := b.Commit(); err != nil {
		return err
	}
	clear(d.overlay)
	d.ops = 0
	d.sizeBytes = d.under.Size()
	return nil
}

// WriteThrough syncs the overlay, then lets fn write to the underlying
// Backend directly: for a write that replaces the state wholesale (a
// snapshot from the leader), which then goes to disk once, in fn's own
// batch, rather than through an overlay as large as the whole state.
func (d *Deferred) WriteThrough(fn func(Backend) error) error {
	if d.open != nil {
		panic("backend: WriteThrough while a batch is open")
	}
	if err := d.Sync(); err != nil {
		return err
	}
	err := fn(d.under)
	d.sizeBytes = d.under.Size()
	return err
}

// Close implements Backend: it discards an open batch, syncs, and closes
// the underlying Backend.
func (d *Deferred) Close() error {
	if d.open != nil {
		d.open.Rollback()
	}
	if err := d.Sync(); err != nil {
		return err
	}
	return d.under.Close()
}

// deferredBatch is a Deferred's batch: its writes, in memory until Commit
// moves them into the overlay.
type deferredBatch struct {
	d        *Deferred
	pending  map[string]*memPending
	finished bool
}

func (b *deferredBatch) mustBeOpen() {
	if b.finished {
		panic("backend: batch used after Commit or Rollback")
	}
}

func (b *deferredBatch) Get(bucket, key []byte) ([]byte, bool) {
	b.mustBeOpen()
	if p := b.pending[string(bucket)]; p != nil {
		if op, ok := p.ops[string(key)]; ok {
			return op.value, !op.deleted
		}
	}
	return b.d.Get(bucket, key)
}

func (b *deferredBatch) ForEach(bucket []byte, fn func(key, value []byte) error) error {
	b.mustBeOpen()
	return mergeForEach(b.pending[string(bucket)], func(f func(k, v []byte) error) error {
		return b.d.ForEach(bucket, f)
	}, fn)
}

func (b *deferredBatch) record(bucket, key []byte, op memOp) {
	b.mustBeOpen()
	p := b.pending[string(bucket)]
	if p == nil {
		p = &memPending{ops: map[string]memOp{}}
		b.pending[string(bucket)] = p
	}
	p.ops[string(key)] = op
}

func (b *deferredBatch) Put(bucket, key, value []byte) {
	b.record(bucket, key, memOp{key: slices.Clone(key), value: append([]byte{}, value...)})
}

func (b *deferredBatch) Delete(bucket, key []byte) {
	b.record(bucket, key, memOp{key: slices.Clone(key), deleted: true})
}

// Commit moves the batch's writes into the overlay, where every read sees
// them; they are durable at the next Sync. It never fails.
func (b *deferredBatch) Commit() error {
	b.mustBeOpen()
	d := b.d
	for name, p := range b.pending {
		o := d.overlay[name]
		if o == nil {
			o = &memPending{ops: make(map[string]memOp, len(p.ops))}
			d.overlay[name] = o
		}
		for k, op := range p.ops {
			if old, ok := d.Get([]byte(name), op.key); ok {
				d.sizeBytes -= int64(len(op.key) + len(old))
			}
			if !op.deleted {
				d.sizeBytes += int64(len(op.key) + len(op.value))
			}
			if _, seen := o.ops[k]; !seen {
				d.ops++
			}
			o.ops[k] = op
		}
	}
	b.finish()
	return nil
}

func (b *deferredBatch) Rollback() {
	if !b.finished {
		b.finish()
	}
}

func (b *deferredBatch) finish() {
	b.finished = true
	b.pending = nil
	if b.d.open == b {
		b.d.open = nil
	}
}
