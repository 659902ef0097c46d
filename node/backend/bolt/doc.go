// Package bolt is the production backend.Backend: the key-value state machine's
// buckets in one bbolt file (go.etcd.io/bbolt), the way etcd keeps its
// applied state.
//
// What belongs here: Open and the Backend it returns, which maps the
// backend.Backend contract onto bbolt: a Batch is one bbolt write transaction,
// Commit is bbolt's commit (pages written, then the meta page, each fsynced,
// so a Batch is durable when Commit returns), and the Backend's own reads go
// through one cached read-only transaction that every Commit closes. Also the
// space quota (etcd's --quota-backend-bytes) and the logical size counter
// behind Size, kept in a reserved bucket so that Open does not scan the file.
// Snapshot (a consistent copy of the file, for etcdctl snapshot save) and
// Defrag (the file rewritten without its free pages, for etcdctl defrag)
// are the maintenance etcd's backend offers.
//
// Why bbolt: it is what etcd uses, so the file layout, its failure modes and
// its tuning (NoFreelistSync, the map freelist, growth by truncate and fsync)
// are known and tested at scale; it is a B+tree of copy-on-write pages with
// one writer and lock-free readers, which fits a state machine that applies
// one batch at a time from one goroutine; and it is pure Go.
//
// Why it is a separate package: bbolt needs mmap and flock and does not build
// for GOOS=js or wasip1, so the simulator and the browser use backend.Memory,
// and nothing they import may import this package (deps_test.go checks that
// sim does not). The server opens it and hands it to the node as a
// backend.Backend; both implementations pass the same conformance suite
// (node/backend/backendtest).
//
// Imports: node/backend from the project, and bbolt. It touches the file
// system (that is its job) but, being under node/, starts no goroutines and
// reads no clock: bbolt's file lock timeout is a constant handed to bbolt.
package bolt
