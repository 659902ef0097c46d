package mvcc

import (
	"bytes"
	"errors"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/plumbdb/plumb/node/backend"
)

// Write applies committed requests to a Store through b, a batch the caller
// (the node) opened and will commit. Each Put, DeleteRange and Txn call is
// one etcd transaction: it gets the next revision if it changes anything,
// its changes get sub-revisions 0, 1, ..., and its reads see its own earlier
// writes. The Store's index and revision move AT ONCE; the caller commits b
// right after (if Commit fails the node must panic, as etcd does: the index
// already holds the writes). Rolling back a batch a Write changed leaves the
// Store ahead of its backend: discard the Store and Open it again.
//
// Each transaction's events are collected for the watch hub and published
// by Store.Committed, which the caller calls once b is committed; a failed
// request's are dropped, and a rolled-back batch's are never published (the
// reopened Store takes the watchers over with AdoptWatchers).
//
// A request that fails returns an error and changes nothing.
type Write struct {
	s *Store
	b backend.Batch

	leaseExists func(id int64) bool // nil: leases are not checked
	// leaseTracker hears of each committed change to a key's lease
	// (TrackLeases); leaseChanges holds the transaction's until it ends.
	leaseTracker func(LeaseChange)
	leaseChanges []LeaseChange

	// The transaction in progress.
	beginRev int64       // the store's revision when it began
	changes  int64       // changes so far: the next sub-revision
	undo     []undoEntry // how to take the changes back, oldest first
	// staged is how many events the watch hub had staged when the
	// transaction began: abort drops the transaction's own.
	staged int
}

// undoEntry takes back one change: a put, or a tombstone when tombstone.
type undoEntry struct {
	key          []byte
	rev          revision
	tombstone    bool
	prevModified revision // the keyIndex's modified before the change
	newKey       bool     // the change created the keyIndex
	created      bool     // the put made the key live (Store.keys)
}

// Write returns a Write into b.
func (s *Store) Write(b backend.Batch) *Write {
	return &Write{s: s, b: b}
}

// CheckLeases makes the Write check, as etcd does when it applies a request,
// that every put with a lease names one that exists: a top-level Put, and
// the puts of the branches a Txn takes (which only the Txn's compares
// decide). A missing lease fails the request with ErrLeaseNotFound before
// anything is written. A lease may expire between the proposal and the
// apply, so this check belongs to the apply path. Without CheckLeases,
// leases are stored as given.
func (w *Write) CheckLeases(exists func(id int64) bool) *Write {
	w.leaseExists = exists
	return w
}

func (w *Write) checkLease(id int64) error {
	if id != 0 && w.leaseExists != nil && !w.leaseExists(id) {
		return ErrLeaseNotFound
	}
	return nil
}

func (w *Write) begin() {
	w.beginRev = w.s.rev
	w.changes = 0
	w.undo = w.undo[:0]
	w.leaseChanges = w.leaseChanges[:0]
	w.staged = len(w.s.watch.staged)
}

func (w *Write) end() {
	if w.changes > 0 {
		w.s.rev++
	}
	for _, c := range w.leaseChanges {
		w.leaseTracker(c)
	}
	clear(w.leaseChanges)
	w.leaseChanges = w.leaseChanges[:0]
	w.changes = 0
	w.undo = w.undo[:0]
}

// abort takes back the transaction's changes, newest first, from the index
// and the batch (a change's revision key is new, so deleting it restores the
// batch).
func (w *Write) abort() {
	for i := len(w.undo) - 1; i >= 0; i-- {
		u := w.undo[i]
		w.b.Delete(keyBucket, revKey(u.rev, u.tombstone))
		ki := w.s.index.lookup(u.key)
		if u.tombstone {
			ki.generations = ki.generations[:len(ki.generations)-1]
			w.s.keys++
		}
		if u.created {
			w.s.keys--
		}
		ki.unput(u.prevModified)
		if u.newKey {
			w.s.index.tree.Delete(ki)
		}
	}
	w.changes = 0
	w.undo = w.undo[:0]
	clear(w.leaseChanges)
	w.leaseChanges = w.leaseChanges[:0]
	h := w.s.watch
	clear(h.staged[w.staged:])
	h.staged = h.staged[:w.staged]
}

// view reads through the batch at the revision the transaction would
// commit: its earlier writes are visible.
func (w *Write) view() view {
	rev := w.beginRev
	if w.changes > 0 {
		rev++
	}
	return view{s: w.s, r: w.b, rev: rev}
}

// Put stores a key (etcd's Put: prev_kv, ignore_value, ignore_lease;
// ErrKeyNotFound if a value or lease is to be kept from a missing key;
// ErrLeaseNotFound for a missing lease, checked first, when CheckLeases was
// given). The Header carries the revision only.
func (w *Write) Put(r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := w.checkLease(r.GetLease()); err != nil {
		return nil, err
	}
	w.begin()
	resp, err := w.put(r)
	if err != nil {
		w.abort()
		return nil, err
	}
	w.end()
	return resp, nil
}

// DeleteRange deletes the keys of a span (with prev_kv). Deleting nothing
// does not change the revision. The Header carries the revision only.
func (w *Write) DeleteRange(r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	w.begin()
	resp, err := w.deleteRange(r)
	if err != nil {
		w.abort()
		return nil, err
	}
	w.end()
	return resp, nil
}

// Txn executes a transaction as etcd does: every compare (nested ones too)
// on the state before the transaction, then the puts' ignore_value and
// ignore_lease (and leases, see CheckLeases) and the ranges' revisions are
// checked, then the operations
// of the chosen branches run in order, each seeing the earlier ones' writes,
// all under one revision. Nested responses carry their revisions as etcd's
// do (a nested TxnResponse has an empty Header).
//
// The request is expected to have passed ValidateTxn. One failure remains
// possible after writes began: a put with ignore_value or ignore_lease of a
// key this transaction deleted with a range ValidateTxn does not catch
// (range_end "\x00"). etcd panics the member there; plumb takes the
// transaction's changes back and returns ErrKeyNotFound.
func (w *Write) Txn(r *pb.TxnRequest) (*pb.TxnResponse, error) {
	w.begin()
	before := w.view()
	path := compareToPath(before, r)
	// etcd reads the compares in a read transaction of their own: the
	// write transaction counts from here.
	defer w.s.countTxn(w.s.ops)
	if !IsTxnReadOnly(r) {
		if err := checkTxnPuts(before, r, path, w.checkLease); err != nil {
			return nil, err
		}
	}
	if err := checkTxnRanges(before, r, path); err != nil {
		return nil, err
	}
	resp, err := w.txn(r, path)
	if err != nil {
		w.abort()
		return nil, err
	}
	resp.Header.Revision = w.view().rev
	w.end()
	return resp, nil
}

func (w *Write) txn(r *pb.TxnRequest, path *txnPath) (*pb.TxnResponse, error) {
	ops := path.ops(r)
	resp := &pb.TxnResponse{
		Header:    &pb.ResponseHeader{},
		Succeeded: path.succeeded,
		Responses: make([]*pb.ResponseOp, len(ops)),
	}
	child := 0
	for i, op := range ops {
		out := &pb.ResponseOp{}
		switch req := op.GetRequest().(type) {
		case *pb.RequestOp_RequestRange:
			rr, err := w.view().executeRange(req.RequestRange)
			if err != nil {
				return nil, fmt.Errorf("txn range: %w", err)
			}
			out.Response = &pb.ResponseOp_ResponseRange{ResponseRange: rr}
		case *pb.RequestOp_RequestPut:
			pr, err := w.put(req.RequestPut)
			if err != nil {
				return nil, fmt.Errorf("txn put: %w", err)
			}
			out.Response = &pb.ResponseOp_ResponsePut{ResponsePut: pr}
		case *pb.RequestOp_RequestDeleteRange:
			dr, err := w.deleteRange(req.RequestDeleteRange)
			if err != nil {
				return nil, fmt.Errorf("txn delete: %w", err)
			}
			out.Response = &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: dr}
		case *pb.RequestOp_RequestTxn:
			if req.RequestTxn == nil {
				break
			}
			tr, err := w.txn(req.RequestTxn, path.children[child])
			if err != nil {
				return nil, err
			}
			child++
			out.Response = &pb.ResponseOp_ResponseTxn{ResponseTxn: tr}
		}
		resp.Responses[i] = out
	}
	return resp, nil
}

func (w *Write) put(p *pb.PutRequest) (*pb.PutResponse, error) {
	w.s.ops.Puts++
	key, value, lease := p.GetKey(), p.GetValue(), p.GetLease()
	var prev *mvccpb.KeyValue
	if p.GetIgnoreValue() || p.GetIgnoreLease() || p.GetPrevKv() {
		rr, err := w.view().rangeKeys(key, nil, rangeOptions{})
		if err != nil {
			return nil, err
		}
		if len(rr.kvs) > 0 {
			prev = rr.kvs[0]
		}
	}
	if (p.GetIgnoreValue() || p.GetIgnoreLease()) && prev == nil {
		return nil, ErrKeyNotFound
	}
	if p.GetIgnoreValue() {
		value = prev.Value
	}
	if p.GetIgnoreLease() {
		lease = prev.Lease
	}
	resp := &pb.PutResponse{Header: &pb.ResponseHeader{}}
	if p.GetPrevKv() {
		resp.PrevKv = prev
	}
	w.s.putBytes += uint64(len(key) + len(value)) // as etcd: the value written (a previous one for IgnoreValue)
	w.putKV(key, value, lease)
	resp.Header.Revision = w.beginRev + 1
	return resp, nil
}

// putKV writes the next version of key. Its generation's creation revision
// carries over, or this revision creates one.
func (w *Write) putKV(key, value []byte, lease int64) {
	rev := revision{main: w.beginRev + 1, sub: w.changes}
	u := undoEntry{key: key, rev: rev}
	if ki := w.s.index.lookup(key); !ki.live() {
		u.created = true
		w.s.keys++
	}
	kv := mvccpb.KeyValue{Key: key, Value: value, CreateRevision: rev.main, ModRevision: rev.main, Version: 1, Lease: lease}
	if ki := w.s.index.lookup(key); ki != nil {
		u.prevModified = ki.modified
		if _, created, ver, ok := ki.get(rev.main); ok {
			kv.CreateRevision, kv.Version = created.main, ver+1
		}
		ki.put(rev.main, rev.sub)
	} else {
		ki := &keyIndex{key: bytes.Clone(key)}
		ki.put(rev.main, rev.sub)
		w.s.index.tree.ReplaceOrInsert(ki)
		u.newKey = true
	}
	var k [markedRevKeyLen]byte
	w.b.Put(keyBucket, appendRevKey(k[:0], rev, false), appendKV(make([]byte, 0, marshalledKVSize(key, value)), &kv))
	w.undo = append(w.undo, u)
	w.changes++
	w.s.watch.stage(mvccpb.PUT, &kv)
	w.noteLease(kv.Key, lease)
}

func (w *Write) deleteRange(dr *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	w.s.ops.Deletes++
	key, end := dr.GetKey(), spanEnd(dr.GetRangeEnd())
	resp := &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{}}
	if dr.GetPrevKv() {
		rr, err := w.view().rangeKeys(key, end, rangeOptions{})
		if err != nil {
			return nil, err
		}
		resp.PrevKvs = rr.kvs
	}
	keys := w.s.index.keys(key, end, w.view().rev)
	for _, k := range keys {
		w.tombstone(k)
	}
	resp.Deleted = int64(len(keys))
	// Deleting nothing in a transaction that changed nothing yet leaves the
	// revision where it was.
	resp.Header.Revision = w.view().rev
	return resp, nil
}

// tombstone writes the deletion of an existing key.
func (w *Write) tombstone(key []byte) {
	rev := revision{main: w.beginRev + 1, sub: w.changes}
	ki := w.s.index.lookup(key)
	u := undoEntry{key: ki.key, rev: rev, tombstone: true, prevModified: ki.modified}
	if err := ki.tombstone(rev.main, rev.sub); err != nil {
		panic(fmt.Sprintf("mvcc: tombstone of existing key %q: %v", key, err))
	}
	w.b.Put(keyBucket, revKey(rev, true), appendKV(nil, &mvccpb.KeyValue{Key: key}))
	w.s.keys--
	w.undo = append(w.undo, u)
	w.changes++
	w.s.watch.stage(mvccpb.DELETE, &mvccpb.KeyValue{Key: key, ModRevision: rev.main})
	w.noteLease(ki.key, 0)
}

// Compact discards history: for each key it keeps the newest revision at or
// below rev (a tombstone exactly at rev included, as in etcd, until the next
// compaction) and drops the older ones from the index and the backend, and
// Range below rev fails with ErrCompacted from then on. ErrCompacted if rev
// is not above the last compaction, ErrFutureRev if above the current
// revision. Unlike etcd, which compacts the backend in the background,
// everything happens in the batch, so replicas never differ by a
// compaction in progress. The Header carries the current revision.
func (w *Write) Compact(rev int64) (*pb.CompactionResponse, error) {
	c, err := w.CompactIndex(rev)
	if err != nil {
		return nil, err
	}
	return c.Finish(), nil
}

// Compaction is a compaction whose index part is done (CompactIndex) and
// whose backend part is not (Finish). The two are separate steps only so
// that a driver can time them apart, as etcd's metrics do; both must run
// in the same batch.
type Compaction struct {
	w    *Write
	rev  int64
	keep map[revision]struct{}
}

// CompactIndex is Compact's first step: it checks rev, records it and
// compacts the key index.
func (w *Write) CompactIndex(rev int64) (Compaction, error) {
	s := w.s
	if rev <= s.compactRev {
		return Compaction{}, ErrCompacted
	}
	if rev > s.rev {
		return Compaction{}, ErrFutureRev
	}
	s.compactRev = rev
	writeCompactRev(w.b, scheduledCompactKey, rev)
	return Compaction{w: w, rev: rev, keep: s.index.compact(rev)}, nil
}

// Finish is Compact's second step: the revisions the index let go are
// deleted from the backend.
func (c Compaction) Finish() *pb.CompactionResponse {
	w, s, rev, keep := c.w, c.w.s, c.rev, c.keep
	// Every stored revision at or below rev that is not kept goes, including
	// tombstones left out of the index when it was rebuilt by Open.
	var doomed [][]byte
	err := w.b.ForEach(keyBucket, func(k, _ []byte) error {
		r, _, err := parseRevKey(k)
		if err != nil {
			return err
		}
		if r.main > rev {
			return errStop
		}
		if _, ok := keep[r]; !ok {
			doomed = append(doomed, bytes.Clone(k))
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		panic(fmt.Sprintf("mvcc: compact at %d: %v", rev, err))
	}
	for _, k := range doomed {
		w.b.Delete(keyBucket, k)
	}
	s.compactedKeys += uint64(len(doomed))
	writeCompactRev(w.b, finishedCompactKey, rev)
	return &pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: s.rev}}
}

// SetConsistentIndex records the raft index and term of the last applied
// entry in the batch, so they commit atomically with its writes and a
// restart replays the log from there. Index 0 is not stored (etcd's rule:
// 0 means unknown). The applied index and term never go back: SetConsistentIndex
// panics if asked to.
func (w *Write) SetConsistentIndex(index, term uint64) {
	s := w.s
	if index < s.appliedIndex || term < s.appliedTerm {
		panic(fmt.Sprintf("mvcc: consistent index going back from %d/%d to %d/%d",
			s.appliedIndex, s.appliedTerm, index, term))
	}
	if index == 0 {
		return
	}
	writeUint64(w.b, consistentIndexKey, index)
	if term > 0 {
		writeUint64(w.b, termKey, term)
	}
	s.appliedIndex, s.appliedTerm = index, term
}
