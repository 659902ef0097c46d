package mvcc

import (
	"encoding/binary"
	"fmt"

	"github.com/plumbdb/plumb/node/backend"
)

// The backend layout is etcd's (server/storage/schema), so the two can be
// compared byte for byte and the key-value hash is computed the same way.
var (
	// keyBucket maps a revision key to the marshalled mvccpb.KeyValue that
	// revision wrote (a tombstone's holds the key only).
	keyBucket = []byte("key")
	// metaBucket holds the compaction points and the consistent index.
	metaBucket = []byte("meta")

	scheduledCompactKey = []byte("scheduledCompactRev")
	finishedCompactKey  = []byte("finishedCompactRev")
	consistentIndexKey  = []byte("consistent_index")
	termKey             = []byte("term")
)

// Buckets names the backend buckets that hold the store's state, for
// whoever copies that state whole (a snapshot sent to a lagging member).
func Buckets() [][]byte { return [][]byte{keyBucket, metaBucket} }

// meta is what Open reads from the meta bucket.
type meta struct {
	finishedCompact, scheduledCompact int64 // -1 when absent
	index, term                       uint64
}

func readMeta(r backend.Reader) (meta, error) {
	m := meta{finishedCompact: -1, scheduledCompact: -1}
	var err error
	if m.finishedCompact, err = readCompactRev(r, finishedCompactKey); err != nil {
		return m, err
	}
	if m.scheduledCompact, err = readCompactRev(r, scheduledCompactKey); err != nil {
		return m, err
	}
	if m.index, err = readUint64(r, consistentIndexKey); err != nil {
		return m, err
	}
	if m.index != 0 {
		if m.term, err = readUint64(r, termKey); err != nil {
			return m, err
		}
	}
	return m, nil
}

// A compaction point is stored as a revision key with sub 0, as etcd does.
func readCompactRev(r backend.Reader, name []byte) (int64, error) {
	v, ok := r.Get(metaBucket, name)
	if !ok {
		return -1, nil
	}
	rev, _, err := parseRevKey(v)
	if err != nil {
		return 0, fmt.Errorf("mvcc: meta %s: %w", name, err)
	}
	return rev.main, nil
}

func readUint64(r backend.Reader, name []byte) (uint64, error) {
	v, ok := r.Get(metaBucket, name)
	if !ok {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("mvcc: meta %s has %d bytes, want 8", name, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func writeCompactRev(b backend.Batch, name []byte, rev int64) {
	b.Put(metaBucket, name, revKey(revision{main: rev}, false))
}

func writeUint64(b backend.Batch, name []byte, v uint64) {
	b.Put(metaBucket, name, binary.BigEndian.AppendUint64(nil, v))
}

// ResetConsistentIndex forgets the raft index and term the state was
// applied up to, for a state copied from a snapshot that is to start a new
// cluster's log from its index 1 (as etcdutl snapshot restore resets it).
// The revisions and the compaction points stay.
func ResetConsistentIndex(b backend.Batch) {
	b.Delete(metaBucket, consistentIndexKey)
	b.Delete(metaBucket, termKey)
}
