package mvcc

import (
	"errors"
	"fmt"
	"hash/crc32"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/node/backend"
)

// Store is the key-value state of one replica: etcd's multi-version store
// over a backend.Backend, plus an in-memory index from keys to revisions.
//
// Reads (Range, ReadTxn, Hash) see the Backend's committed state. Writes go
// through a Write on a batch the caller opened, update the index AT ONCE,
// and the caller commits the batch BEFORE the next read: a read between the
// two would find index entries whose data is not committed, and panics.
//
// Not safe for concurrent use: one goroutine drives a node.
type Store struct {
	be    backend.Backend
	index *treeIndex

	// rev is the revision of the last transaction that changed something:
	// 1 on a fresh store, as in etcd, so the first put is revision 2.
	rev int64
	// compactRev is the revision of the last compaction, -1 before the
	// first (etcd reports -1 too, in HashKV's compact_revision).
	compactRev int64

	// The raft index and term of the last applied entry.
	appliedIndex, appliedTerm uint64

	// watch holds the watchers (watch.go); in memory only, as etcd's.
	watch *watchHub

	// leasedAtOpen is every live key's lease as Open found them (lease.go).
	leasedAtOpen map[string]int64

	// maxCreateByMod is the simulator's planted bug (see
	// PlantMaxCreateFiltersMod); false everywhere else.
	maxCreateByMod bool

	// ops counts what the store executed (Ops).
	ops OpCounts
	// keys is the number of live keys (Keys); putBytes the key and value
	// bytes of every put executed (PutBytes).
	keys     int64
	putBytes uint64
	// watchEvents counts the events handed to watchers (WatchEvents).
	watchEvents uint64
	// compactedKeys counts the revisions compactions deleted (CompactedKeys).
	compactedKeys uint64
}

// OpCounts counts what a store executed, as etcd's mvcc metrics count
// (etcd_mvcc_range_total, put_total, delete_total, txn_total): every
// range (a txn's compares and range operations too), put and delete
// range, and, as etcd, every transaction of more than one of them (a lone
// Range, Put or DeleteRange is not counted, nor a write txn of one
// operation: etcd reads a write txn's compares in a transaction of their
// own). A member counts what it applies and what it serves,
// replays on restart included; a store rebuilt from a snapshot keeps the
// counts (AdoptWatchers).
type OpCounts struct {
	Ranges, Puts, Deletes, Txns uint64
}

func (c OpCounts) sum() uint64 { return c.Ranges + c.Puts + c.Deletes }

// Ops returns the counts since the store was opened.
func (s *Store) Ops() OpCounts { return s.ops }

// Keys is the number of keys the store holds now (deleted ones not), as
// etcd's etcd_debugging_mvcc_keys_total counts them: a key counts from the
// put that creates it to its deletion.
func (s *Store) Keys() int64 { return s.keys }

// PutBytes is the key and value bytes of every put executed since the
// store was opened (a store that replaces another keeps its count), as
// etcd's etcd_debugging_mvcc_total_put_size_in_bytes.
func (s *Store) PutBytes() uint64 { return s.putBytes }

// WatchEvents is the events handed to watchers since the store was opened
// (a store that replaces another keeps its count), an event once per
// watcher that gets it, as etcd's etcd_debugging_mvcc_pending_events_total
// counts the events its watchers are sent.
func (s *Store) WatchEvents() uint64 { return s.watchEvents }

// CompactedKeys is the stored revisions that compactions deleted since the
// store was opened (a store that replaces another keeps its count), as
// etcd's etcd_debugging_mvcc_db_compaction_keys_total.
func (s *Store) CompactedKeys() uint64 { return s.compactedKeys }

// countTxn counts a transaction that began when the counts were before.
func (s *Store) countTxn(before OpCounts) {
	if s.ops.sum()-before.sum() > 1 {
		s.ops.Txns++
	}
}

// Open returns the Store held in be: it rebuilds the key index from the
// revision-keyed "key" bucket, as etcd does on restart, and restores the
// current and compacted revisions and the consistent index. An empty
// backend gives a fresh store at revision 1.
//
// If be holds a compaction that was scheduled but not finished (etcd can
// leave one behind; plumb compacts within one batch), Open finishes it in a
// batch of its own.
func Open(be backend.Backend) (*Store, error) {
	s := &Store{be: be, index: newTreeIndex(), rev: 1, compactRev: -1}
	m, err := readMeta(be)
	if err != nil {
		return nil, err
	}
	s.compactRev = m.finishedCompact
	s.appliedIndex, s.appliedTerm = m.index, m.term
	if err := be.ForEach(keyBucket, s.restoreRevision); err != nil {
		return nil, fmt.Errorf("mvcc: open: %w", err)
	}
	// Compaction may have removed every revision up to the compaction
	// point; the store is still at that point.
	s.rev = max(s.rev, s.compactRev)
	s.watch = newWatchHub(s.rev)

	if m.scheduledCompact > s.compactRev {
		b := be.Begin()
		if _, err := s.Write(b).Compact(m.scheduledCompact); err != nil {
			b.Rollback()
			return nil, fmt.Errorf("mvcc: open: resume compaction at %d: %w", m.scheduledCompact, err)
		}
		if err := b.Commit(); err != nil {
			return nil, fmt.Errorf("mvcc: open: resume compaction at %d: %w", m.scheduledCompact, err)
		}
	}
	return s, nil
}

// restoreRevision adds one stored revision to the index; they come in
// revision order. A tombstone of a key with no keyIndex is the first stored
// revision of that key: the compaction that kept it removed the rest, and
// it stays out of the index (it is deleted by the next compaction), as in
// etcd.
func (s *Store) restoreRevision(k, v []byte) error {
	rev, tombstone, err := parseRevKey(k)
	if err != nil {
		return err
	}
	kv, err := decodeKV(v, true)
	if err != nil {
		return fmt.Errorf("revision %v: %w", rev, err)
	}
	s.rev = rev.main
	s.noteLeasedAtOpen(kv.Key, kv.Lease, tombstone)
	ki := s.index.lookup(kv.Key)
	wasLive := ki.live()
	defer func() {
		switch isLive := s.index.lookup(kv.Key).live(); {
		case isLive && !wasLive:
			s.keys++
		case !isLive && wasLive:
			s.keys--
		}
	}()
	switch {
	case ki != nil && tombstone:
		// errRevisionNotFound (a second tombstone) is ignored, as in etcd.
		_ = ki.tombstone(rev.main, rev.sub)
	case ki != nil:
		ki.put(rev.main, rev.sub)
	case !tombstone:
		ki = &keyIndex{key: kv.Key}
		ki.restore(revision{main: kv.CreateRevision}, rev, kv.Version)
		s.index.tree.ReplaceOrInsert(ki)
	}
	return nil
}

// Rev returns the current revision: that of the last transaction that
// changed the store.
func (s *Store) Rev() int64 { return s.rev }

// CompactRev returns the revision of the last compaction, or -1.
func (s *Store) CompactRev() int64 { return s.compactRev }

// ConsistentIndex returns the raft index and term of the last applied
// entry, as recorded by SetConsistentIndex (and stored with the writes).
func (s *Store) ConsistentIndex() (index, term uint64) {
	return s.appliedIndex, s.appliedTerm
}

// committed is the view of the committed state at the current revision.
func (s *Store) committed() view {
	return view{s: s, r: s.be, rev: s.rev}
}

// Range executes r on the committed state, with every etcd option (see
// RangeRequest). The response's Header is nil: the node fills it, with the
// current revision Rev.
func (s *Store) Range(r *pb.RangeRequest) (*pb.RangeResponse, error) {
	resp, err := s.committed().executeRange(r) // one range: not a txn etcd counts
	if err != nil {
		return nil, err
	}
	resp.Header = nil
	return resp, nil
}

// ReadTxn executes a read-only transaction (every operation of both
// branches a Range: IsTxnReadOnly) on the committed state, as etcd serves
// them without going through raft. The Header carries the revision only.
func (s *Store) ReadTxn(r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if !IsTxnReadOnly(r) {
		return nil, ErrTxnNotReadOnly
	}
	v := s.committed()
	defer s.countTxn(s.ops)
	path := compareToPath(v, r)
	if err := checkTxnRanges(v, r, path); err != nil {
		return nil, err
	}
	resp := &pb.TxnResponse{Header: &pb.ResponseHeader{Revision: s.rev}, Succeeded: path.succeeded}
	for _, op := range path.ops(r) {
		rr, err := v.executeRange(op.GetRequestRange())
		if err != nil {
			return nil, err
		}
		resp.Responses = append(resp.Responses, &pb.ResponseOp{
			Response: &pb.ResponseOp_ResponseRange{ResponseRange: rr}})
	}
	return resp, nil
}

// Hash is HashByRev at the current revision.
func (s *Store) Hash() (hash uint32, compactRev, rev int64) {
	h, compactRev, rev, err := s.HashByRev(0)
	if err != nil {
		panic(fmt.Sprintf("mvcc: hash at the current revision: %v", err))
	}
	return h, compactRev, rev
}

// crcTable is CRC-32C, etcd's choice for HashKV.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errStop ends a ForEach early.
var errStop = errors.New("stop")

// HashByRev is etcd's HashKV: a CRC-32C over the bucket name and then every
// stored revision (key bytes and value) up to rev (0: the current revision;
// a negative rev hashes nothing but the bucket name, as in etcd),
// in revision order, where the revisions at or below the compaction point
// count only if a compaction at rev would keep them. Replicas with the same
// applied history and compaction points have the same hash, whether or not
// they restarted in between. It returns the store's compaction and current
// revisions; ErrCompacted if rev is at or below the compaction point,
// ErrFutureRev if above the current revision.
func (s *Store) HashByRev(rev int64) (hash uint32, compactRev, currentRev int64, err error) {
	compactRev, currentRev = s.compactRev, s.rev
	switch {
	case rev > 0 && rev <= compactRev:
		return 0, compactRev, currentRev, ErrCompacted
	case rev > currentRev:
		return 0, compactRev, currentRev, ErrFutureRev
	case rev == 0:
		rev = currentRev
	}
	keep := s.index.keep(rev)
	h := crc32.New(crcTable)
	h.Write(keyBucket)
	err = s.be.ForEach(keyBucket, func(k, v []byte) error {
		r, _, err := parseRevKey(k)
		if err != nil {
			return err
		}
		if r.main > rev {
			return errStop
		}
		// Below the compaction point only what a compaction keeps counts,
		// so a replica that compacted and one that has not agree; unless
		// nothing is kept, where etcd hashes everything.
		if r.main <= compactRev && len(keep) > 0 {
			if _, ok := keep[r]; !ok {
				return nil
			}
		}
		h.Write(k)
		h.Write(v)
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return 0, compactRev, currentRev, fmt.Errorf("mvcc: hash: %w", err)
	}
	return h.Sum32(), compactRev, currentRev, nil
}
