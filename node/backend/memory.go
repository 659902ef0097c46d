package backend

import (
	"bytes"
	"slices"
	"strings"
)

// Memory is the in-memory Backend for the simulator and the browser.
//
// Its committed batches are the "durable" state: the simulator keeps the
// object when it crashes the node that used it, and the restarted node opens
// the same Memory. Close only discards an open batch (whose writes were never
// durable); the committed state stays, and the Memory may be used again.
//
// Get is a map lookup. Keys of each bucket are also kept in ascending order,
// maintained at Commit (appending, in the common case of keys that grow, as
// revision keys do), so ForEach never sorts the committed state.
//
// Hold, Release and Crash model commits still in flight when power goes:
// between Hold and Release every Commit is provisional, visible to reads at
// once; a crash keeps those that completed before it and undoes the rest
// (CrashAt).
//
// Memory is not safe for concurrent use, like everything under node/.
type Memory struct {
	buckets   map[string]*memBucket
	sizeBytes int64
	open      *memBatch
	// spare holds the last finished batch's per-bucket maps, cleared, for
	// the next batch: the simulator commits one small batch per applied
	// entry, and making these maps anew was a tenth of its time.
	spare map[string]*memPending

	commitCount int
	// While held, apply logs every change it makes to the committed state
	// in undo, oldest first, and Commit counts itself in heldCommits and
	// records its point (from points, or its own count) and where its
	// changes start in undo.
	held         bool
	heldCommits  int
	undo         []memUndo
	points       SyncPoints
	commitPoints []int
	commitMarks  []int
}

// SyncPoints numbers the syncs of every device a step holds, in the order
// they were called, so that a crash can keep exactly those that completed
// before it, across devices. The simulator's disk (wal.MemFS) is one.
type SyncPoints interface {
	// HoldPoint records that a sync is called now and returns its number.
	HoldPoint() int
}

// memUndo is one change a held Commit made: the key's state before it.
type memUndo struct {
	bucket, key string
	old         memItem // the previous value, if existed
	existed     bool
}

var _ Backend = (*Memory)(nil)

// NewMemory returns an empty Memory.
func NewMemory() *Memory {
	return &Memory{buckets: make(map[string]*memBucket)}
}

type memItem struct {
	key, value []byte
}

type memBucket struct {
	items map[string]memItem
	keys  []string // every key of items, ascending
}

// Get implements Reader on the committed state.
func (m *Memory) Get(bucket, key []byte) ([]byte, bool) {
	bk := m.buckets[string(bucket)]
	if bk == nil {
		return nil, false
	}
	it, ok := bk.items[string(key)]
	return it.value, ok
}

// ForEach implements Reader on the committed state.
func (m *Memory) ForEach(bucket []byte, fn func(key, value []byte) error) error {
	bk := m.buckets[string(bucket)]
	if bk == nil {
		return nil
	}
	for _, k := range bk.keys {
		it := bk.items[k]
		if err := fn(it.key, it.value); err != nil {
			return err
		}
	}
	return nil
}

// Begin implements Backend.
func (m *Memory) Begin() Batch {
	if m.open != nil {
		panic("backend: Begin while another batch is open")
	}
	pending := m.spare
	m.spare = nil
	if pending == nil {
		pending = make(map[string]*memPending)
	}
	m.open = &memBatch{m: m, pending: pending}
	return m.open
}

// Size implements Backend: the bytes of every committed key and value.
func (m *Memory) Size() int64 { return m.sizeBytes }

// Close implements Backend. It rolls back an open batch and keeps the
// committed state, which a later user of this Memory finds again. It
// neither ends a hold nor undoes held commits: Crash does.
func (m *Memory) Close() error {
	if m.open != nil {
		m.open.Rollback()
	}
	return nil
}

// Hold makes every Commit from now on provisional: visible to reads at once,
// and undone by a crash before Release unless it completed before the
// crash's point (see CrashAt): the held commits are points 0, 1, ... in
// order. Holds do not nest: Hold while held does nothing, so the mark
// stays at the first Hold and one Release completes every commit since
// then.
func (m *Memory) Hold() { m.held = true }

// HoldWith is Hold with each held commit numbered by points instead, which
// numbers other devices' syncs too: a crash at a point then keeps the
// commits called before it, whatever device was syncing there.
func (m *Memory) HoldWith(points SyncPoints) {
	if !m.held {
		m.points = points
	}
	m.held = true
}

// Release completes the held commits: they are as durable as any. Release
// when not held does nothing.
func (m *Memory) Release() {
	clear(m.undo) // drop the references, keep the room
	m.undo = m.undo[:0]
	m.commitPoints, m.commitMarks = m.commitPoints[:0], m.commitMarks[:0]
	m.heldCommits = 0
	m.points = nil
	m.held = false
}

// Held reports whether commits are being held (between Hold and Release or
// Crash).
func (m *Memory) Held() bool { return m.held }

// CommitCount returns how many batches have been committed, held ones and
// ones that wrote nothing included: the simulator tells from it whether a
// step did backend I/O.
func (m *Memory) CommitCount() int { return m.commitCount }

// Crash models a power cut during the first held commit: CrashAt(0).
func (m *Memory) Crash() bool { return m.CrashAt(0) }

// CrashAt models a power cut at held sync point (see Hold and HoldWith):
// an open batch is discarded, and the commits made since Hold at that
// point or after it are undone; those before it completed. It ends the
// hold. It returns whether any commit was undone (any Commit, even one
// that wrote nothing); discarding an open batch does not count, since its
// writes were never committed.
func (m *Memory) CrashAt(point int) bool {
	if m.open != nil {
		m.open.Rollback()
	}
	first := len(m.commitPoints) // the first commit to undo
	for i, p := range m.commitPoints {
		if p >= point {
			first = i
			break
		}
	}
	undone := first < len(m.commitPoints)
	if undone {
		m.revert(m.undo[m.commitMarks[first]:])
	}
	m.Release()
	return undone
}

// HeldCommits returns how many commits the hold has made.
func (m *Memory) HeldCommits() int { return m.heldCommits }

// revert puts back the committed state of every key the undo log names. A
// key's first entry holds its state from before the first change undone,
// so later entries for it are skipped; the sorted keys of each bucket
// touched are then fixed in one pass, as apply does.
func (m *Memory) revert(undo []memUndo) {
	type fix struct {
		bk      *memBucket
		added   []string
		deleted bool
		done    map[string]bool // keys already put back
	}
	var order []string // buckets in the order first touched
	fixes := map[string]*fix{}
	for _, u := range undo {
		f := fixes[u.bucket]
		if f == nil {
			bk := m.buckets[u.bucket]
			if bk == nil {
				bk = &memBucket{items: make(map[string]memItem)}
				m.buckets[u.bucket] = bk
			}
			f = &fix{bk: bk, done: map[string]bool{}}
			fixes[u.bucket] = f
			order = append(order, u.bucket)
		}
		if f.done[u.key] {
			continue
		}
		f.done[u.key] = true
		cur, present := f.bk.items[u.key]
		if present {
			m.sizeBytes -= int64(len(cur.key) + len(cur.value))
		}
		switch {
		case u.existed:
			f.bk.items[u.key] = u.old
			m.sizeBytes += int64(len(u.old.key) + len(u.old.value))
			if !present {
				f.added = append(f.added, u.key)
			}
		case present:
			delete(f.bk.items, u.key)
			f.deleted = true
		}
	}
	for _, name := range order {
		f := fixes[name]
		m.fixKeys(name, f.bk, f.added, f.deleted)
	}
}

// memPending holds one bucket's uncommitted writes: a key maps to its new
// value, or to a deletion.
type memPending struct {
	ops map[string]memOp
}

type memOp struct {
	key, value []byte
	deleted    bool
}

type memBatch struct {
	m        *Memory
	pending  map[string]*memPending
	finished bool
}

func (b *memBatch) mustBeOpen() {
	if b.finished {
		panic("backend: batch used after Commit or Rollback")
	}
}

func (b *memBatch) Get(bucket, key []byte) ([]byte, bool) {
	b.mustBeOpen()
	if p := b.pending[string(bucket)]; p != nil {
		if op, ok := p.ops[string(key)]; ok {
			if op.deleted {
				return nil, false
			}
			return op.value, true
		}
	}
	return b.m.Get(bucket, key)
}

// ForEach merges the committed keys with the batch's own writes.
func (b *memBatch) ForEach(bucket []byte, fn func(key, value []byte) error) error {
	b.mustBeOpen()
	p := b.pending[string(bucket)]
	if p == nil {
		return b.m.ForEach(bucket, fn)
	}
	var committed []string
	var items map[string]memItem
	if bk := b.m.buckets[string(bucket)]; bk != nil {
		committed, items = bk.keys, bk.items
	}
	own := make([]string, 0, len(p.ops))
	for k := range p.ops {
		own = append(own, k)
	}
	slices.Sort(own)
	i, j := 0, 0
	for i < len(committed) || j < len(own) {
		var c int
		switch {
		case i == len(committed):
			c = 1
		case j == len(own):
			c = -1
		default:
			c = strings.Compare(committed[i], own[j])
		}
		if c < 0 {
			it := items[committed[i]]
			i++
			if err := fn(it.key, it.value); err != nil {
				return err
			}
			continue
		}
		if c == 0 {
			i++ // the batch's write shadows the committed value
		}
		op := p.ops[own[j]]
		j++
		if op.deleted {
			continue
		}
		if err := fn(op.key, op.value); err != nil {
			return err
		}
	}
	return nil
}

func (b *memBatch) pendingOf(bucket []byte) *memPending {
	p := b.pending[string(bucket)]
	if p == nil {
		p = &memPending{ops: make(map[string]memOp)}
		b.pending[string(bucket)] = p
	}
	return p
}

func (b *memBatch) Put(bucket, key, value []byte) {
	b.mustBeOpen()
	// One allocation holds both copies, so the caller may reuse its buffers.
	buf := make([]byte, len(key)+len(value))
	copy(buf, key)
	copy(buf[len(key):], value)
	k, v := buf[:len(key):len(key)], buf[len(key):]
	b.pendingOf(bucket).ops[string(key)] = memOp{key: k, value: v}
}

func (b *memBatch) Delete(bucket, key []byte) {
	b.mustBeOpen()
	b.pendingOf(bucket).ops[string(key)] = memOp{key: bytes.Clone(key), deleted: true}
}

// Commit applies every write at once. It cannot fail: the Memory is the
// simulated disk, and committing to it is the durable step.
//
// While the Memory is held, the commit is provisional (see Hold).
func (b *memBatch) Commit() error {
	b.mustBeOpen()
	if m := b.m; m.held {
		point := m.heldCommits
		if m.points != nil {
			point = m.points.HoldPoint()
		}
		m.commitPoints = append(m.commitPoints, point)
		m.commitMarks = append(m.commitMarks, len(m.undo))
		m.heldCommits++
	}
	for name, p := range b.pending {
		if len(p.ops) > 0 {
			b.m.apply(name, p)
		}
	}
	b.m.commitCount++
	b.finish()
	return nil
}

func (b *memBatch) Rollback() {
	if b.finished {
		return
	}
	b.finish()
}

func (b *memBatch) finish() {
	b.finished = true
	for _, p := range b.pending {
		clear(p.ops) // keeps the map's room for the next batch
	}
	if b.m.spare == nil {
		b.m.spare = b.pending
	}
	b.pending = nil
	if b.m.open == b {
		b.m.open = nil
	}
}

// apply writes one bucket's pending operations into the committed state and
// keeps its keys sorted (see fixKeys). While held, it logs each change in
// m.undo first.
func (m *Memory) apply(name string, p *memPending) {
	bk := m.buckets[name]
	if bk == nil {
		bk = &memBucket{items: make(map[string]memItem)}
		m.buckets[name] = bk
	}
	var added []string
	deleted := false
	for k, op := range p.ops {
		old, existed := bk.items[k]
		if m.held && (existed || !op.deleted) {
			m.undo = append(m.undo, memUndo{bucket: name, key: k, old: old, existed: existed})
		}
		if existed {
			m.sizeBytes -= int64(len(old.key) + len(old.value))
		}
		if op.deleted {
			if existed {
				delete(bk.items, k)
				deleted = true
			}
			continue
		}
		bk.items[k] = memItem{key: op.key, value: op.value}
		m.sizeBytes += int64(len(op.key) + len(op.value))
		if !existed {
			added = append(added, k)
		}
	}
	m.fixKeys(name, bk, added, deleted)
}

// fixKeys brings bk.keys in line with bk.items after keys were added (in
// any order; each was absent from bk.keys) and, if deleted, removed:
// deletions are filtered out in one pass, new keys are appended when they
// all sort after the existing ones (the case of revision keys) and merged
// otherwise. An empty bucket is dropped.
func (m *Memory) fixKeys(name string, bk *memBucket, added []string, deleted bool) {
	if deleted {
		bk.keys = slices.DeleteFunc(bk.keys, func(k string) bool {
			_, ok := bk.items[k]
			return !ok
		})
	}
	if len(added) > 0 {
		slices.Sort(added)
		if n := len(bk.keys); n == 0 || bk.keys[n-1] < added[0] {
			bk.keys = append(bk.keys, added...)
		} else {
			bk.keys = mergeSorted(bk.keys, added)
		}
	}
	if len(bk.items) == 0 {
		delete(m.buckets, name)
	}
}

// mergeSorted merges two ascending slices without common elements.
func mergeSorted(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i] < b[j] {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}
