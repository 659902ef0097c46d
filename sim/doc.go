// Package sim is plumb's simulated world: a deterministic discrete-event
// simulation of a cluster of real plumb members (package node) on a
// simulated network, with simulated clients, an operator and faults from a
// scenario file (package faults), whose client history is checked for
// linearizability (package linearizability).
//
// What belongs here:
//   - the event queue, ordered by (virtual time, sequence number);
//   - the network: members and clients reach each other by address (an IP
//     and port in a URL string); every member-to-member link has latency,
//     loss, duplication, reordering and directional cuts (partitions);
//     client links have latency only;
//   - members: a node.Node and its storage: an in-memory file system
//     (wal.MemFS) holding the WAL and snapshots, and a memory backend. A
//     crash drops the node (its memory) and every unsynced write (the one
//     in progress may survive torn); a restart builds a new node from the
//     same disk through node.OpenDiskLog and node.New, the path the
//     production server takes. Disk I/O takes time: a member whose Ready
//     fsynced is busy until the I/O completes, its outputs wait, and a crash
//     in between falls during one of its syncs: those before it completed,
//     nothing after it was issued (disk.go); a leader's appends, which node.Prepare hands out before
//     the save, leave at once. Disk faults slow, fill or corrupt a
//     member's disk. An IP change restarts the member on a new address;
//     until the operator runs member update, the others send to the old
//     address, where nobody listens. A message that cannot leave (nobody
//     listens, or a partition cuts the link) is not sent, and its sender is
//     told the peer is unreachable (and a snapshot failed), as the server's
//     transport tells raft of a broken connection;
//   - clients: each runs one operation at a time with a timeout, sticks to
//     one endpoint and fails over to the next on a timeout or an
//     "unavailable" error, as clientv3 does when a connection breaks. They
//     put, get, delete, compare-and-swap, run txns of several puts and
//     deletes, read ranges and prefixes and delete them, some reads
//     serializable. Every operation is recorded with its call and return
//     times and every revision its reply carried; a timeout or "leader
//     changed" is an unknown outcome, never a guessed one;
//   - watchers (watcher.go): applications that watch a key or a prefix,
//     with prev_kv and filters on some, on one member at a time; their
//     calls and the members' answers cross client links, each watch's
//     answers in order as on one gRPC stream. A watch ends when its member
//     crashes, has no leader at the check etcd makes every election
//     timeout for clients that require one (so a watcher cut off with a
//     minority moves on), is compacted past it, or the watcher cancels it;
//     the watcher then watches on a member the seed picks, from the last
//     revision it saw plus one (from the compaction revision after a
//     compaction), as clientv3 and its users do. They ask for progress
//     now and then. Every watch is recorded in the history
//     (linearizability.Watcher);
//   - the compactor (compact.go): etcd's revision-mode auto compaction,
//     run on the leader, recorded in the history;
//   - apps (app.go): the other applications that call the client API,
//     each kind in a file of its own behind one interface, with request
//     IDs and timers of their own. Lease holders (lease.go) are granted
//     leases, keep them alive as clientv3 does (session.go), put keys with
//     them and let some expire or revoke them; lock users (lock.go) take
//     one lock with etcd's concurrency.Mutex recipe on a session lease,
//     waiting on a watch of the key before theirs, make fenced writes (a
//     cas on their own key) and release it, and some stall until their
//     session expires under them; with an auth section, the operator's
//     admin (auth.go) sets authentication up and revokes and grants the
//     users' permissions, and the auth check holds the clients' answers to
//     the acknowledged changes. Their puts, txns, reads and deletes are
//     in the history as the clients' are; their leases, and which writes
//     carried which lease, in a lease record (linearizability.Leases),
//     their attempts on the lock in a lock record (linearizability.Locks);
//   - lease forwarding (forward.go): a member that is not the leader
//     forwards a keep-alive (or time-to-live) to the leader it knows over
//     the network between members, retrying every 50 ms up to etcd's
//     request timeout, as plumb's server does, so a partition between the
//     two keeps it from the leader;
//   - revokes in the history (revoke.go): every revoke a member applied,
//     an app's or the leader's of an expired lease, is put in the history
//     after the run as a txn deleting exactly the keys the member reported
//     it deleted, at its revision, so that every revision is still
//     created by some write in the history;
//   - the write ledger: members report (node.Config.ReportWrites) which
//     proposal each request became and the revision each applied proposal
//     created, which resolves the unknown writes for the check;
//   - the operator, who runs member update after an IP change, retrying,
//     and makes the membership changes of the scenario (member.go): member
//     add (a voter or a learner, the new member started once the add is
//     acknowledged from an empty disk with node.Config.Join, at a fresh
//     address, and given the membership the add returned as its peers'
//     addresses until it has applied one, as the server's transport is),
//     member promote, member remove (the removed member's host stopped for
//     good) and member replace (remove, wipe, add back at the same address
//     under a new ID, start), each through the client API as a client's
//     request, forwarded to the leader by the member it reaches, retried on
//     another member after a timeout, no leader or a refused connection;
//     and the IP-reuse fault, which puts a new member, or the one member of
//     another cluster with the same member ID, at an address a removed or
//     moved member left. Clients and watchers are told a new member's
//     endpoint; lease holders and lock users keep the endpoints they
//     started with;
//   - the trace: every event, hashed (SHA-256) into the run's trace hash and
//     optionally written as JSON lines;
//   - the settle phase after the scenario: the network heals, crashed
//     members restart (never a removed one), and the run ends once the
//     operator's changes are done, every member has applied the same index
//     with the same hash and holds the membership the operator's changes
//     left, and the leader has committed an entry of its own term (until
//     then, after a crash, it may not know how far the log was committed),
//     or after the settle time;
//   - the checks after a run, each named in the Result: linearizable (the
//     revision pass and porcupine, package linearizability), converge
//     (every member at the same applied index, hash and revision, with
//     the membership the operator's acknowledged changes left, and no
//     write applied at two revisions), liveness (a write acknowledged
//     within the bound after the last fault), one-leader (no term had two
//     leaders, as every member saw its leader change), peer-identity (no
//     host stepped a peer message sent in another cluster or to another
//     member), durable (the history followed by the final reads of every
//     caught-up member, those added during the run included and removed
//     ones not, is still linearizable), watch (every watcher's stream agrees with the
//     history's revisions: linearizability.CheckWatches), lease (no lease
//     expires while acknowledged keep-alives allowed it, revokes delete
//     exactly their lease's keys, nothing is written with a lease after
//     its revoke, stopped leases are gone by the end:
//     linearizability.CheckLeases) and lock (no fenced write succeeds
//     while another key owns the lock: linearizability.CheckLocks);
//   - the planted bugs (Bugs, internal/plant), at least one per check but
//     the lock check, which the tests use to prove each check fails on
//     what it is named for (two lease bugs, one a lock's key left behind;
//     skip-cluster-check for peer-identity, keep-removed-member for the
//     membership part of converge; one-leader is proven failing by sim's
//     unit tests;
//     no node bug in reach makes two lock holders: the lock check's rule
//     is proven failing by package linearizability's tests).
//
// The determinism contract: a Run is a pure function of the scenario, the
// seed and the code. Nothing here starts a goroutine, uses a channel,
// reads the wall clock, uses global randomness or lets map order reach an
// output. All randomness comes from named streams (network, clients,
// faults, clock, disk, watchers, leases, locks, raft) derived from the one
// seed; raft's election timeouts come from crypto/rand.Reader, which Run
// points at the raft stream for its duration (so one process runs one
// simulation at a time: parallel seeds need worker processes). The same
// seed gives the same trace hash twice, in another process, and under
// GOOS=js (the tests prove all three).
//
// Imports: node/..., faults and linearizability from the project; never
// server or node/backend/bolt (they do not build for wasm), os or net.
package sim
