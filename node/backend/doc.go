// Package backend is the storage under the key-value state machine: named
// buckets of byte keys and values, read directly or written in batches that
// commit atomically.
//
// What belongs here: the Backend, Batch and Reader interfaces, which node/mvcc
// consumes; Memory, the in-memory implementation that the simulator and the
// browser use; and Deferred, the wrapper the node puts over either, whose
// batches are visible at Commit and durable at Sync (etcd's batched backend
// commits: the raft log holds every entry durably already). The bbolt implementation lives in node/backend/bolt (it
// needs mmap and does not build for GOOS=js), and both are checked by the
// conformance suite in node/backend/backendtest.
//
// Imports: nothing from the project. Like everything under node/, this package
// starts no goroutines, reads no clock and touches no files: a Memory is a
// plain value the simulator owns, and its committed batches are the simulated
// durable state, so it survives a simulated crash of the node that used it.
package backend
