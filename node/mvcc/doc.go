// Package mvcc is the key-value state machine of one replica: etcd's
// multi-version store, with the same revisions, generations, compaction,
// range, put, delete and transaction semantics as etcd v3.7, over a
// backend.Backend.
//
// What belongs here: the revision-keyed storage schema (the "key" and "meta"
// buckets, laid out as etcd lays them out), the in-memory key index rebuilt
// from it on Open, request execution (Range, Put, DeleteRange, Txn, Compact),
// the key-value hash that replicas compare, and etcd's request validation
// rules for transactions. The watch hub and the lease table will live here
// too.
//
// What does not: raft, proposals, lease expiry, headers (cluster, member,
// term), authentication and anything that blocks. The node drives a Store
// from one goroutine: it opens a backend.Batch, applies committed entries
// through a Write, records the applied raft index with SetConsistentIndex in
// the same batch, and commits it.
//
// Imports: node/backend only from the project, plus etcd's API types
// (etcdserverpb, mvccpb), google/btree and protobuf's wire package. No
// goroutines, clocks, randomness, files or network; map iteration never
// reaches an output.
package mvcc
