package mvcc

import (
	"bytes"

	"github.com/google/btree"
)

// treeIndex is the in-memory index from keys to their revisions: a B-tree of
// keyIndex ordered by key, as in etcd.
//
// Key spans follow etcd's convention: end nil names the single key, end
// empty but not nil every key >= key, otherwise [key, end).
type treeIndex struct {
	tree *btree.BTreeG[*keyIndex]
}

// indexDegree is the B-tree's degree (etcd's).
const indexDegree = 32

func newTreeIndex() *treeIndex {
	return &treeIndex{tree: btree.NewG(indexDegree, func(a, b *keyIndex) bool {
		return bytes.Compare(a.key, b.key) < 0
	})}
}

func (ti *treeIndex) lookup(key []byte) *keyIndex {
	ki, _ := ti.tree.Get(&keyIndex{key: key})
	return ki
}

// get is keyIndex.get for key, false if the key was never written.
func (ti *treeIndex) get(key []byte, atRev int64) (modified, created revision, ver int64, ok bool) {
	ki := ti.lookup(key)
	if ki == nil {
		return revision{}, revision{}, 0, false
	}
	return ki.get(atRev)
}

// visit calls f on every keyIndex in the span, in key order, until f
// returns false.
func (ti *treeIndex) visit(key, end []byte, f func(ki *keyIndex) bool) {
	ti.tree.AscendGreaterOrEqual(&keyIndex{key: key}, func(ki *keyIndex) bool {
		if len(end) > 0 && bytes.Compare(ki.key, end) >= 0 {
			return false
		}
		return f(ki)
	})
}

// revisions returns, in key order, the revisions of the keys of the span
// that exist at atRev, at most limit of them when limit > 0, and how many
// there are in all.
func (ti *treeIndex) revisions(key, end []byte, atRev int64, limit int) (revs []revision, total int) {
	if end == nil {
		rev, _, _, ok := ti.get(key, atRev)
		if !ok {
			return nil, 0
		}
		return []revision{rev}, 1
	}
	if limit > 0 {
		revs = make([]revision, 0, min(limit, ti.tree.Len()))
	}
	ti.visit(key, end, func(ki *keyIndex) bool {
		if rev, _, _, ok := ki.get(atRev); ok {
			if limit <= 0 || len(revs) < limit {
				revs = append(revs, rev)
			}
			total++
		}
		return true
	})
	return revs, total
}

// countRevisions returns how many keys of the span exist at atRev.
func (ti *treeIndex) countRevisions(key, end []byte, atRev int64) int {
	_, total := ti.revisions(key, end, atRev, 1)
	return total
}

// keys returns the keys of the span that exist at atRev, in key order.
func (ti *treeIndex) keys(key, end []byte, atRev int64) [][]byte {
	if end == nil {
		if _, _, _, ok := ti.get(key, atRev); !ok {
			return nil
		}
		return [][]byte{key}
	}
	var keys [][]byte
	ti.visit(key, end, func(ki *keyIndex) bool {
		if _, _, _, ok := ki.get(atRev); ok {
			keys = append(keys, ki.key)
		}
		return true
	})
	return keys
}

// compact compacts every keyIndex at rev, removes those left empty, and
// returns the revisions the compaction keeps.
func (ti *treeIndex) compact(rev int64) map[revision]struct{} {
	available := make(map[revision]struct{})
	var emptied []*keyIndex
	ti.tree.Ascend(func(ki *keyIndex) bool {
		ki.compact(rev, available)
		if ki.isEmpty() {
			emptied = append(emptied, ki)
		}
		return true
	})
	for _, ki := range emptied {
		ti.tree.Delete(ki)
	}
	return available
}

// keep returns the revisions a compaction at rev would keep, tombstones
// excepted (see keyIndex.keep).
func (ti *treeIndex) keep(rev int64) map[revision]struct{} {
	available := make(map[revision]struct{})
	ti.tree.Ascend(func(ki *keyIndex) bool {
		ki.keep(rev, available)
		return true
	})
	return available
}
