package mvcc

import (
	"errors"
	"fmt"
)

// errRevisionNotFound: a tombstone on a key whose current generation is
// already empty (the key is deleted already).
var errRevisionNotFound = errors.New("mvcc: revision not found")

// keyIndex holds every stored revision of one key, grouped in generations as
// etcd's key index does. A generation runs from a put that creates the key
// to the tombstone that deletes it; the last generation is the current one
// and is empty while the key is deleted. A keyIndex always has at least one
// generation.
//
// For example put(1.0); put(2.0); tombstone(3.0); put(4.0); tombstone(5.0)
// on "foo" gives
//
//	generations: {1.0, 2.0, 3.0(t)}, {4.0, 5.0(t)}, {}
//
// compact(n) removes the revisions at or below n except the newest one of
// each generation that is still alive at n; generations left with nothing
// are removed, and a keyIndex left with only an empty generation is removed
// from the index:
//
//	compact(2): {2.0, 3.0(t)}, {4.0, 5.0(t)}, {}
//	compact(4): {4.0, 5.0(t)}, {}
//	compact(5): {5.0(t)}, {}
//	compact(6): {}
type keyIndex struct {
	key         []byte
	modified    revision // the last change, put or tombstone
	generations []generation
}

// generation is one life of a key.
type generation struct {
	// ver is the key's version at the generation's last put: the number of
	// puts since creation, including those compacted away.
	ver     int64
	created revision // the put that created the key
	revs    []revision
}

func (g *generation) isEmpty() bool { return g == nil || len(g.revs) == 0 }

// findRevisionIndex returns the position of the last revision with
// main <= atRev, or -1.
func (g *generation) findRevisionIndex(atRev int64) int {
	lo, hi := 0, len(g.revs) // invariant: revs[:lo] <= atRev < revs[hi:]
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if g.revs[mid].main <= atRev {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1
}

// live reports whether the key exists now: ki is not nil and its current
// generation has a put not yet tombstoned.
func (ki *keyIndex) live() bool {
	return ki != nil && len(ki.generations) > 0 && !ki.generations[len(ki.generations)-1].isEmpty()
}

func (ki *keyIndex) isEmpty() bool {
	return len(ki.generations) == 1 && ki.generations[0].isEmpty()
}

// put appends a revision to the current generation. Revisions only grow.
func (ki *keyIndex) put(main, sub int64) {
	rev := revision{main: main, sub: sub}
	if !rev.greaterThan(ki.modified) {
		panic(fmt.Sprintf("mvcc: put of %q at revision %v, not after its last change %v", ki.key, rev, ki.modified))
	}
	if len(ki.generations) == 0 {
		ki.generations = append(ki.generations, generation{})
	}
	g := &ki.generations[len(ki.generations)-1]
	if len(g.revs) == 0 {
		g.created = rev
	}
	g.revs = append(g.revs, rev)
	g.ver++
	ki.modified = rev
}

// restore starts a keyIndex rebuilt from the backend, whose oldest stored
// revision of the key is the put at modified (older ones were compacted).
func (ki *keyIndex) restore(created, modified revision, ver int64) {
	if len(ki.generations) != 0 {
		panic(fmt.Sprintf("mvcc: restore of %q over %d generations", ki.key, len(ki.generations)))
	}
	ki.modified = modified
	ki.generations = append(ki.generations, generation{created: created, ver: ver, revs: []revision{modified}})
}

// tombstone ends the current generation with a deletion at (main, sub) and
// starts an empty one.
func (ki *keyIndex) tombstone(main, sub int64) error {
	if ki.isEmpty() {
		panic(fmt.Sprintf("mvcc: tombstone on empty keyIndex %q", ki.key))
	}
	if ki.generations[len(ki.generations)-1].isEmpty() {
		return errRevisionNotFound
	}
	ki.put(main, sub)
	ki.generations = append(ki.generations, generation{})
	return nil
}

// unput undoes the last put (of a put or a tombstone, whose empty generation
// the caller removed first), restoring modified to prev.
func (ki *keyIndex) unput(prev revision) {
	g := &ki.generations[len(ki.generations)-1]
	g.revs = g.revs[:len(g.revs)-1]
	g.ver--
	if len(g.revs) == 0 {
		*g = generation{}
	}
	ki.modified = prev
}

// get returns the revision of the key visible at atRev, the revision that
// created its generation, and its version then; ok is false if the key does
// not exist at atRev.
func (ki *keyIndex) get(atRev int64) (modified, created revision, ver int64, ok bool) {
	if ki.isEmpty() {
		panic(fmt.Sprintf("mvcc: get on empty keyIndex %q", ki.key))
	}
	g := ki.findGeneration(atRev)
	if g.isEmpty() {
		return revision{}, revision{}, 0, false
	}
	if n := g.findRevisionIndex(atRev); n != -1 {
		return g.revs[n], g.created, g.ver - int64(len(g.revs)-n-1), true
	}
	return revision{}, revision{}, 0, false
}

// findGeneration returns the generation alive at rev, or nil if the key does
// not exist at rev (before its first put, or between a tombstone and the
// next put).
func (ki *keyIndex) findGeneration(rev int64) *generation {
	last := len(ki.generations) - 1
	for i := last; i >= 0; i-- {
		g := &ki.generations[i]
		if len(g.revs) == 0 {
			continue
		}
		if i != last {
			if tomb := g.revs[len(g.revs)-1].main; tomb <= rev {
				return nil
			}
		}
		if g.revs[0].main <= rev {
			return g
		}
	}
	return nil
}

// compact drops the revisions that a compaction at atRev removes, adding the
// one it keeps (if any) to available.
func (ki *keyIndex) compact(atRev int64, available map[revision]struct{}) {
	if ki.isEmpty() {
		panic(fmt.Sprintf("mvcc: compact on empty keyIndex %q", ki.key))
	}
	genIdx, revIdx := ki.doCompact(atRev, available)
	if g := &ki.generations[genIdx]; !g.isEmpty() && revIdx != -1 {
		g.revs = g.revs[revIdx:]
	}
	ki.generations = ki.generations[genIdx:]
}

// keep adds to available the revision a compaction at atRev would keep,
// unless it is a tombstone: etcd's hash skips those, and plumb's hash must
// equal etcd's.
func (ki *keyIndex) keep(atRev int64, available map[revision]struct{}) {
	if ki.isEmpty() {
		return
	}
	genIdx, revIdx := ki.doCompact(atRev, available)
	g := &ki.generations[genIdx]
	if !g.isEmpty() && revIdx == len(g.revs)-1 && genIdx != len(ki.generations)-1 {
		delete(available, g.revs[revIdx])
	}
}

// doCompact finds the generation that holds the key's newest revision at or
// below atRev (or the first one after atRev), and in it that revision,
// which it adds to available.
//
// That is the first generation whose tombstone is after atRev, or at atRev
// with no newer generation begun at atRev too. etcd compares main revisions
// only and stops at a tombstone at atRev even when a put of the same
// transaction (a later sub-revision: a txn that deletes [k, "\x00") and
// puts k) began a new generation; the compaction then keeps the tombstone
// and deletes the put that is the key's current value, and the next read of
// the key finds the index pointing at nothing.
func (ki *keyIndex) doCompact(atRev int64, available map[revision]struct{}) (genIdx, revIdx int) {
	for genIdx < len(ki.generations)-1 {
		g := &ki.generations[genIdx]
		tomb := g.revs[len(g.revs)-1].main
		next := &ki.generations[genIdx+1]
		reborn := !next.isEmpty() && next.revs[0].main == atRev
		if tomb > atRev || (tomb == atRev && !reborn) {
			break
		}
		genIdx++
	}
	g := &ki.generations[genIdx]
	revIdx = g.findRevisionIndex(atRev)
	if revIdx != -1 {
		available[g.revs[revIdx]] = struct{}{}
	}
	return genIdx, revIdx
}
