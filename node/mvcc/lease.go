package mvcc

import (
	"slices"
	"strings"
)

// Leases are the node's (node/lease.go); the store only keeps, for every
// live key, the lease it was last put with (mvccpb.KeyValue.Lease), and
// tells whoever tracks leases which keys gained or lost one. Two things
// come from here: the keys each lease holds when a member starts (Leased),
// and, while it applies, each committed change to a key's lease
// (TrackLeases). A lease's revoke deletes its keys with Revoke, in one
// revision.

// Leased returns, for every live key that holds a lease, that lease, as
// the store was opened (Open reads it from the stored revisions). Writes
// since then are not in it: call it right after Open.
func (s *Store) Leased() map[string]int64 { return s.leasedAtOpen }

// noteLeasedAtOpen folds one stored revision into leasedAtOpen; they come
// in revision order, so the last one of each key wins.
func (s *Store) noteLeasedAtOpen(key []byte, lease int64, tombstone bool) {
	if tombstone || lease == 0 {
		if s.leasedAtOpen != nil {
			delete(s.leasedAtOpen, string(key))
		}
		return
	}
	if s.leasedAtOpen == nil {
		s.leasedAtOpen = make(map[string]int64)
	}
	s.leasedAtOpen[string(key)] = lease
}

// LeaseChange is one committed change to the lease a key holds: Lease is
// the key's lease after the change, 0 when it was deleted or put without
// one.
type LeaseChange struct {
	Key   []byte
	Lease int64
}

// TrackLeases makes the Write call fn, at the end of every request that
// succeeds, with each of its changes in order: a put's key and lease, a
// delete's key and 0. A request that fails reports nothing. Key may be
// the request's own memory: fn copies what it keeps.
func (w *Write) TrackLeases(fn func(LeaseChange)) *Write {
	w.leaseTracker = fn
	return w
}

func (w *Write) noteLease(key []byte, lease int64) {
	if w.leaseTracker != nil {
		w.leaseChanges = append(w.leaseChanges, LeaseChange{Key: key, Lease: lease})
	}
}

// Revoke deletes keys (those that exist; in key order) in one transaction,
// as a lease's revoke does: one new revision for all of them, or none if
// none exists. It returns the store's revision after it.
func (w *Write) Revoke(keys []string) int64 {
	keys = slices.Clone(keys)
	slices.SortFunc(keys, strings.Compare)
	w.begin()
	for _, k := range keys {
		key := []byte(k)
		if _, _, _, ok := w.s.index.get(key, w.view().rev); ok {
			w.tombstone(key)
		}
	}
	w.end()
	return w.s.rev
}
