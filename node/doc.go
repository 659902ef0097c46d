// Package node is one plumb replica: a raft.RawNode, the MVCC key-value
// state machine (node/mvcc) and the lifecycle of client requests, built as
// a functional core in the way raft.RawNode is.
//
// A driver (the production server, or the simulator) calls a Node from one
// goroutine: Tick, Step (a peer's Envelope) and Submit (a client Request)
// feed it; Process persists, applies and hands back an Output: messages to
// send and replies to deliver, all already durable. Before Process, Prepare
// may hand out a leader's appends, which raft lets travel while the leader
// saves them (its own write counts towards the quorum only once done). The node has no I/O,
// goroutines, wall clock or randomness of its own; its storage is handed in
// (a LogStore for raft's log, a backend.Backend for the key-value state),
// and time is counted in ticks. That is what lets the simulator run the very
// code production runs, deterministically. For metrics, a driver may hand in
// a Stopwatch: the node marks where an apply, a range, a compaction or a
// snapshot install starts and ends, and the driver reads its own clock
// there; the marks never reach the node's state or outputs.
//
// Requests and responses are etcd's own messages (etcdserverpb), and errors
// carry etcd's messages. A write is answered once it is applied (its entry
// durable in the raft log of a quorum). Linearizable reads wait for a raft
// ReadIndex (batched per Process) to be applied; serializable ones read local
// state. A request lost to a leader change fails with ErrLeaderChanged and
// one that waits too long with ErrTimeout: for a write both mean the outcome
// is unknown, and OutcomeUnknown says so. Status counts the ReadIndex
// rounds that failed with a leader change and the slow ones (an answer out
// of date, or reads timed out), as etcd's read loop counts them.
//
// Storage: raft's log goes through a LogStore, DiskLog in production and in
// the simulator (a raft.MemoryStorage cache made durable by node/wal's WAL
// and snapshot files, over a wal.FS: the OS, or the simulator's MemFS), and
// the key-value state through a backend.Backend whose batches also record
// the applied index. The node puts a backend.Deferred over it: applied
// batches are visible at once and made durable every 1000 entries, every
// election timeout, before the log is compacted behind a snapshot, and at
// Flush; a reply waits for the raft log's fsync, not the backend's, and a
// crash replays from the backend's durable applied index. New is the one
// restart path: the newest snapshot the
// WAL knows, the WAL after it, the backend at its applied index; entries
// the backend already holds are replayed without being applied. Every
// Config.SnapshotCount entries the member snapshots and compacts its log; a
// follower too far behind gets the whole state in a snapshot message
// (snapshot.go). Proposals carry a per-member session so that a duplicated
// proposal applies once (dedupe.go). Alarms are replicated state, as in
// etcd (alarm.go): an AlarmRequest goes through raft and every member
// applies it; the member whose state reaches Config.QuotaBackendBytes
// proposes NOSPACE for itself, and while it is raised every member refuses
// puts, lease grants and transactions that put, when submitted and again
// when applied. A full disk stalls the member without losing anything and
// raises a NOSPACE of its own, in memory (it can write nothing to its log). Watchers (watch.go) are
// served from the member's applied state, as etcd serves them: each
// committed batch's events go to them after the backend commit, through
// Output.Watch. Leases (lease.go) are replicated state counted down by the
// leader alone, in ticks (Config.TickMillis): it proposes the revoke of a
// lease that runs out, acknowledges keep-alives only once a ReadIndex
// confirms it still leads, checkpoints remaining TTLs through raft, and a
// new leader gives every lease its remaining TTL plus an election timeout;
// leases are in the backend and the snapshot. A backend copied from a
// backup (etcdctl snapshot save) starts a new cluster once PrepareRestore
// has dropped the old membership and applied index (restore.go).
// Authentication (auth.go) is etcd's: users, roles and key-range
// permissions are replicated state in etcd's buckets; each change bumps the
// auth revision; Submit resolves a request's Credentials (a simple token,
// or an identity the driver verified) into the user and revision it is
// authorized under, writes are checked again when applied and reads when
// answered, and a request authorized under an older revision is refused.
// The node keeps simple tokens (learnt at apply, expired in ticks) but never
// sees a password in clear: the driver hashes and checks them. With Config.ReportWrites the Output also says which
// proposal each request became and the revision each applied one created,
// for drivers that check histories; Config.Planted carries the bugs the
// simulator plants to prove its checks (package plant).
//
// Membership (member IDs, peer and client URLs) is replicated state: raft
// conf changes carry the member, and applying one updates the backend in the
// same batch as the consistent index. IDs are derived like etcd's, from the
// peer URLs and the cluster token (at bootstrap) or the time of the add.
// Member add (a voter or a learner), promote and remove are etcd's, with
// its rules (reconfig.go): checked against the membership when submitted
// and again, deterministically, when applied; and against the live cluster
// (reachable and started voters, a learner's progress) by the leader, which
// alone answers them. A learner serves serializable reads only. A member
// added to a running cluster starts with Config.Join and an empty log.
// Every peer message is checked for the cluster ID, its recipient and a
// removed sender before raft sees it.
//
// Imports: node/backend, node/mvcc and node/wal from the project; raft, etcd's API
// types and protobuf from outside. Never sim, server, faults,
// linearizability, grpc, net or os (deps_test.go at the root enforces it;
// etcdserverpb's generated service stubs bring grpc in transitively, but no
// code here calls it).
package node
