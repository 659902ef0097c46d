package mvcc

import (
	"encoding/binary"
	"fmt"
)

// revision names one change: main is the revision of the transaction that
// made it, sub its position among that transaction's changes.
type revision struct {
	main, sub int64
}

func (a revision) greaterThan(b revision) bool {
	if a.main != b.main {
		return a.main > b.main
	}
	return a.sub > b.sub
}

// A revision's backend key is etcd's: main in 8 big-endian bytes, '_', sub in
// 8 big-endian bytes, so byte order is revision order; a deletion (tombstone)
// has a trailing 't'.
const (
	revKeyLen       = 8 + 1 + 8
	markedRevKeyLen = revKeyLen + 1
	markTombstone   = 't'
)

func appendRevKey(dst []byte, r revision, tombstone bool) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.main))
	dst = append(dst, '_')
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.sub))
	if tombstone {
		dst = append(dst, markTombstone)
	}
	return dst
}

func revKey(r revision, tombstone bool) []byte {
	return appendRevKey(make([]byte, 0, markedRevKeyLen), r, tombstone)
}

func parseRevKey(k []byte) (r revision, tombstone bool, err error) {
	switch {
	case len(k) == markedRevKeyLen && k[revKeyLen] == markTombstone:
		tombstone = true
	case len(k) != revKeyLen:
		return revision{}, false, fmt.Errorf("mvcc: revision key %x has length %d", k, len(k))
	}
	if k[8] != '_' {
		return revision{}, false, fmt.Errorf("mvcc: revision key %x has no separator", k)
	}
	r.main = int64(binary.BigEndian.Uint64(k[:8]))
	r.sub = int64(binary.BigEndian.Uint64(k[9:revKeyLen]))
	return r, tombstone, nil
}
