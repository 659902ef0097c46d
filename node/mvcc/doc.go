// Package mvcc is the key-value state machine of one replica: etcd's
// multi-version store, with the same revisions, generations, compaction,
// range, put, delete and transaction semantics as etcd v3.7, over a
// backend.Backend.
//
// What belongs here: the revision-keyed storage schema (the "key" and "meta"
// buckets, laid out as etcd lays them out), the in-memory key index rebuilt
// from it on Open, request execution (Range, Put, DeleteRange, Txn, Compact),
// the key-value hash that replicas compare, etcd's request validation
// rules for transactions, the watch hub (watch.go), and what leases need of
// the key-value state (lease.go): the lease each live key holds, found
// again on Open (Leased), each committed change to it reported to the
// node's lessor (Write.TrackLeases), a put's lease checked at apply
// (Write.CheckLeases), and a revoke's deletes in one revision
// (Write.Revoke). The leases themselves and their time are the node's.
//
// The watch hub is etcd's watchable store, driven by calls: Watch,
// CancelWatch, RequestProgress and Defer in; WatchResponses out. A Write
// collects the events of each transaction it applies (a failed one's are
// dropped), and Committed, called by the node after the batch's backend
// Commit, publishes them to the synced watchers; a rolled-back batch's
// events are never published. Watchers behind (a start in the past, a slow
// watcher past WatchLimits.PendingEvents, one its driver handed back with
// Defer) catch up from the revision-keyed history, a bounded chunk per
// WatchResponses call, and one whose next revision was compacted is
// canceled with the compaction revision. Each watcher is given every event
// of its span and filters from its start revision on, in order, each
// revision whole in one response, none twice, none skipped, none not yet
// committed; a progress response is never ahead of its events. Watchers
// live in memory only, as etcd's: a reopened Store has none unless it
// adopts another's (AdoptWatchers). The store counts the ranges, puts,
// delete ranges and transactions it executes as etcd's mvcc metrics count
// them (Ops), for the server's etcd_mvcc_*_total, and keeps etcd's
// debugging counts: its live keys (Keys) and the bytes put (PutBytes).
//
// What does not: raft, proposals, leases and their expiry, headers (cluster, member,
// term), authentication and anything that blocks. The node drives a Store
// from one goroutine: it opens a backend.Batch, applies committed entries
// through a Write, records the applied raft index with SetConsistentIndex in
// the same batch, commits it, and calls Committed.
//
// Imports: node/backend only from the project, plus etcd's API types
// (etcdserverpb, mvccpb), google/btree and protobuf's wire package. No
// goroutines, clocks, randomness, files or network; map iteration never
// reaches an output.
package mvcc
