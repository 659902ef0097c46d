package node

import (
	"fmt"
	"slices"

	"github.com/plumbdb/plumb/node/backend"
	"github.com/plumbdb/plumb/node/mvcc"
)

// PrepareRestore readies a backend copied from a snapshot (etcdctl
// snapshot save's file) to be the state of a new cluster, as etcdutl
// snapshot restore does: the keys with their revisions and compaction
// point, and the leases, stay; the old cluster's membership, its alarms,
// the proposers' sessions, the refused conf changes and the applied index
// go. New then
// bootstraps the new cluster's members on it (Config.InitialMembers) as on
// an empty backend, and the entries of its fresh log apply from index 1.
// Buckets this package does not know (etcd's own, in a snapshot of etcd)
// are left as they are: nothing reads them.
func PrepareRestore(be backend.Backend) error {
	b := be.Begin()
	defer b.Rollback()
	for _, bucket := range [][]byte{bucketMembers, bucketMembersRemoved, bucketProposers, bucketConfRejected, bucketAlarm} {
		var keys [][]byte
		if err := b.ForEach(bucket, func(k, _ []byte) error { keys = append(keys, slices.Clone(k)); return nil }); err != nil {
			return fmt.Errorf("node: restore: read bucket %s: %w", bucket, err)
		}
		for _, k := range keys {
			b.Delete(bucket, k)
		}
	}
	mvcc.ResetConsistentIndex(b)
	if err := b.Commit(); err != nil {
		return fmt.Errorf("node: restore: %w", err)
	}
	return nil
}
