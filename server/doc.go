// Package server is the production runtime around package node: the
// driver that runs the very node the simulator proves, on real TCP, real
// disks and the wall clock.
//
// One goroutine (loop.go) owns the node, as the simulator's event loop
// does: it feeds it ticks every --heartbeat-interval, peer messages and
// client requests, and calls Process once for everything that arrived
// meanwhile, so one WAL fsync serves every request of that pass. When
// messages leave: a leader's appends and heartbeats are sent BEFORE its
// save, as soon as node.Prepare hands them out, and travel while Process
// fsyncs them (as etcd's leader does; raft counts the leader's own write
// towards the quorum only once the save is done, and a Ready that changes
// term or vote gets nothing from Prepare and is saved first, whole).
// Everything else, a follower's acknowledgements and votes included, is
// sent only after Process returns, when what it vouches for is durable;
// replies then go back to the waiting gRPC handlers. Nothing else touches
// the node: other goroutines reach it through the loop (loop.do,
// loop.exec).
//
// Storage is etcd's layout under --data-dir: member/wal (node.DiskLog over
// node/wal's OS file system) and member/snap/db (bbolt). A data dir that
// holds a WAL is a restart, and the member's identity is the WAL's; a new
// member derives its ID and the cluster's from --initial-cluster and
// --initial-cluster-token, as etcd does (bootstrap.go); a member joining a
// running cluster (--initial-cluster-state existing) asks the members
// --initial-cluster names for the cluster's ID and membership on their peer
// port (GET /members, as etcd) and finds itself in it by its peer URLs
// (join.go). Member add, remove and promote are forwarded to the leader
// like keep-alives, but retried only while certainly not proposed. A
// learner's gRPC calls are refused by interceptors (learner.go) except
// etcd's exceptions. A member that applied its own removal lingers 10
// heartbeats, so its last messages leave, then stops.
//
// The peer port (transport.go) serves HTTP, as etcd's rafthttp does: per
// peer, one long-lived message stream (transport_stream.go: a POST that
// upgrades its connection, after which one goroutine writes frames
// straight to the connection, flushing when its queue is empty, and one
// goroutine on the other side reads them straight into the loop's inbox,
// so a message takes no more hand-offs than in etcd) and one request per
// snapshot, in chunks (transport_snapshot.go). Every frame names the
// cluster, the sender and the receiver (peer_codec.go). Queues are bounded;
// a message that does not fit is dropped and raft told the peer is
// unreachable; every dial, handshake and write has a deadline, so a dead
// peer never holds the loop. The client port speaks etcd's v3 gRPC API (KV,
// Cluster, Maintenance, Auth, Watch, Lease, and etcd's Lock and Election)
// with etcd's error codes, and on the same port HTTP /health, /version,
// /metrics (Prometheus) and etcd's JSON gateway under /v3/, split by cmux
// (or HTTP alone on --listen-client-http-urls, leaving the client URLs to
// gRPC, as etcd 3.7 splits them). The gateway (gateway.go) is etcd's own
// generated grpc-gateway handlers with etcd's marshaler options and
// websocket proxy; its calls reach the client gRPC server over an
// in-memory connection, as Lock's do (below), so they pass the same
// interceptors, and its refusals are logged and counted. Maintenance's Snapshot streams a
// consistent copy of the bbolt file and its sha256, as etcd's does, for
// etcdctl snapshot save; Restore (restore.go) builds a data dir for a new
// cluster from such a file, as etcdutl snapshot restore does; Defragment
// rewrites the bbolt file without its free pages, on the loop. With
// --auto-compaction-retention the leader compacts on etcd's schedule
// (compactor.go: one goroutine, the wall clock, compactions through the
// loop like a client's).
// Authentication (auth.go, api_auth.go): the server learns who sends a
// request (a token in the metadata, a JWT it verifies, or with
// --client-cert-auth the certificate's common name) and hands the node
// those Credentials with the request; it hashes new passwords with bcrypt
// before they enter raft and checks logins against the node's hash, a
// bounded number at a time; interceptors make Maintenance's calls need root
// or a user as etcd's do, and the watch streams re-check a watcher's read
// permission whenever they deliver.
// Configuration (settings.go) takes etcd's flag names, PLUMB_* and ETCD_*
// environment variables and etcd's YAML config file; every flag of etcd
// 3.7 is known (those plumb lacks are ignored or refused with why), and
// --feature-gates takes etcd 3.7's gates (features.go). Client URLs may be
// http://, https:// or unix://.
//
// TLS (tls.go), on both sides etcd serves it: https:// client URLs and
// https:// peer URLs, each side with its certificate pair (re-read when the
// files change), its CAs and its rules on the other side's certificate
// (allowed CN or hostname, revocation list, and on the peer side etcd's
// check that the certificate names the address it comes from). The rules
// are checked in the handshake (tlsListener), so a refused client or peer
// never has a request read; refusals are logged as etcd's "rejected
// connection" and counted by listener and reason. The transport dials
// https:// peers for streams, snapshots and GET /members with the peer
// side's dial config; peer URLs may be unix:// and unixs:// sockets too
// (peerEndpoint), as etcd's.
//
// Watch streams (api_watch.go) are served by the node's watchers: the
// loop creates and cancels them (exec) and, after each Process, hands
// every Output.Watch response to the stream that owns the watcher, in a
// bounded send queue. The loop never waits for a client: a watcher whose
// stream is full goes back to the node (DeferWatch, from the revision after
// the last one queued) and catches up from the history later. A stream's
// end cancels its watchers.
//
// Leases (api_lease.go): grant and revoke go through raft; keep-alive and
// time-to-live only the leader answers, since it alone counts lease time. A
// member that is not the leader forwards them, as etcd does, to the
// leader's peer URL (forward.go: POST /plumb/forward), retrying until
// etcd's request timeout. The forwarding member resolved the client's
// identity (token, JWT, certificate common name), as etcd authorizes on
// the member a client reaches, and the leader acts as that user: it
// believes only members of its cluster on its peer port. A forwarded
// request is never forwarded again. etcd's answers for a lease that is
// gone (keep-alive TTL 0, time-to-live TTL -1) are kept. The Lock and
// Election services call the member's own client for their caller
// (selfclient.go), with the caller's identity on each call.
//
// Metrics (metrics.go) have etcd 3.7's names, types, labels and buckets.
// The loop sets raft's gauges once a tick; lease, watcher and revision
// counts are read from the loop at each scrape; the WAL's writes and
// fsyncs and the backend's commits are timed by wrappers around the file
// system and the backend (timed_fs.go); gRPC's are counted by interceptors
// (metrics_grpc.go and etcd's go-grpc-middleware provider); peer traffic
// is counted by the transport (transport*.go), which also times the
// leader's heartbeats' round trips (etcd's prober's histogram) and counts
// heartbeats handed out late. Besides the
// client port, --listen-metrics-urls serves /metrics and /health alone.
//
// Logs (log.go) are slog records written in etcd's zap layout (JSON with
// "level", "ts", "msg", or etcd's console layout) to --log-outputs. The
// lines tooling waits for are etcd's: raft's leader changes (the loop logs
// them as raft's node would; a RawNode does not), "published local member
// to cluster through raft" once the member's attributes are applied and a
// leader is known, then "ready to serve client requests" and "serving
// client traffic ..." for each client URL.
//
// Lock and Election (api_lock.go, api_election.go) are built as etcd
// builds them, over clientv3's concurrency recipes and a client of the
// member's own services (selfclient.go: an in-memory connection to the
// client gRPC server), so they take the keys etcdctl lock and elect take.
// Their messages are declared here, wire-compatible with etcd's
// v3lock.proto and v3election.proto, whose Go types are in etcd's server
// module.
//
// Imports: node/... from the project; never sim, faults or
// linearizability (deps_test.go at the root enforces it).
package server
