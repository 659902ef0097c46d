// Package faults is the vocabulary of failures that plumb's simulator can
// inject, and the scenario file format that schedules them: Parse and Load
// read a YAML scenario, check every field, fill in every default, and return
// a Scenario whose faults are sorted by time.
//
// The package imports nothing from the project (only the standard library
// and gopkg.in/yaml.v3), so anything may import it: the simulator, the
// command line, and the WebAssembly build of the browser visualiser. It
// builds for GOOS=js. It only describes faults; the simulator (package sim)
// decides how each one is carried out.
//
// # A scenario file
//
//	name: partition
//	description: the leader is cut off from the majority, then healed
//	cluster: {members: 3, heartbeat_interval: 100ms, election_timeout: 1s, snapshot_count: 100, auto_compaction_retention: 500, auto_compaction_interval: 2s}
//	network: {latency: 1ms..10ms, loss: 0.01, duplicate: 0, reorder: 0}
//	workload: {clients: 8, rate: 10/s, keys: 16, ops: {put: 4, get: 4, delete: 1, cas: 1}, timeout: 1s}
//	watchers: {count: 4, prefix: 0.5, prev_kv: 0.5, filter: 0.25, replay: 0.5, progress_every: 1s, cancel_every: 10s}
//	leases: {holders: 3, ttl: 5s, keys: 4, put_every: 500ms, life: 5s, expire: 0.4, revoke: 0.4}
//	locks: {users: 3, ttl: 5s, writes: 3, write_every: 100ms, every: 1s, stall: 0.2}
//	duration: 30s
//	faults:
//	  - {at: 5s, partition: {isolate: leader}}
//	  - {at: 6s, partition: {groups: [[n1, n2], [n3]], for: 3s}}
//	  - {at: 7s, partition: {one_way: {from: [n1], to: [n2, n3]}}}
//	  - {at: 8s, disk: {member: n3, corrupt: wal}}
//	  - {at: 9s, disk: {member: n2, torn: true}}
//	  - {at: 10s, disk: {member: n1, corrupt: snapshot}}
//	  - {at: 12s, heal: all}
//	  - {at: 13s, disk: {member: leader, full: true, for: 5s}}
//	  - {at: 15s, kill: leader, restart_after: 2s}
//	  - {at: 18s, restart: n2}
//	  - {at: 20s, change_ip: n2, member_update_after: 1s}
//	  - {at: 22s, network: {loss: 0.2, latency: 50ms..200ms, for: 5s}}
//	  - {at: 23s, disk: {member: follower, latency: 5ms..50ms, for: 5s}}
//	  - {at: 25s, kill: all, restart_after: 2s}
//	expect: {linearizable: true, liveness_within: 5s, converge: true, durable: true, watch: true, lease: true, lock: true}
//
// Only name and duration are required; the smallest scenario is
//
//	name: baseline
//	duration: 10s
//
// Mappings and lists may be written in flow style ({...}, [...]) or block
// style (indented lines); both mean the same.
//
// # Values
//
//   - A duration is a Go duration: 300us, 100ms, 1.5s, 2m, 1m30s. A bare 0
//     is allowed; any other bare number is an error, because its unit would
//     be a guess. No duration may be negative.
//   - A latency range is two durations, min..max (1ms..10ms), or one
//     duration (5ms) for a fixed latency. min <= max <= 1m.
//   - A probability is a number in [0,1): 0, 0.01, 0.5. 1 is not allowed: a
//     link that drops every message is a partition; write one.
//   - A rate is operations per second, written 10/s or as a plain number
//     (10, 2.5).
//   - A member is leader (whoever leads when the fault fires), follower (a
//     follower picked by the simulator's seeded fault stream, so the same
//     seed picks the same one), or n1, n2, ..., a member by its 1-based
//     index: the initial members, then those member_add faults add. A name
//     no member has (yet) is an error, and so is follower in a 1-member
//     cluster. A kill also takes all, every member at once;
//     all anywhere else is an error.
//
// # Top-level fields
//
//	name         required. The scenario's name: a-z, 0-9 and -, at most 64
//	             bytes. It appears in summaries and reproduction commands.
//	description  optional. Free text, at most 4096 bytes.
//	cluster      optional. The cluster's shape; see below.
//	network      optional. The base network; see below.
//	workload     optional. The simulated clients; see below.
//	watchers     optional. The simulated watchers; see below.
//	leases       optional. The simulated lease holders; see below.
//	locks        optional. The simulated lock users; see below.
//	auth         optional. Authentication, and the users' permission
//	             changes; see below.
//	duration     required. How much virtual time the run lasts; > 0, <= 1h.
//	faults       optional. The timeline; see below. Default: no faults.
//	expect       optional. The checks the run must pass; see below.
//
// # cluster
//
//	members             default 3. How many members; 1..7.
//	heartbeat_interval  default 100ms (etcd's). 1ms..1s. One raft tick.
//	election_timeout    default 1s (etcd's). At least 5 heartbeat intervals
//	                    (etcd's rule), at most 50s (etcd's limit), and a
//	                    whole multiple of heartbeat_interval, because raft
//	                    counts both in ticks.
//	snapshot_count      default 10000 (etcd's --snapshot-count). How many
//	                    applied entries a member takes between snapshots,
//	                    after each of which it compacts its log; 1..10000000.
//	                    Set it low (e.g. 100) to exercise snapshots: a
//	                    follower that falls further behind than the
//	                    compacted log can only catch up from one.
//	auto_compaction_retention
//	                    default 0 (never). etcd's --auto-compaction-retention
//	                    in revision mode: every auto_compaction_interval the
//	                    leader compacts the key-value history to its
//	                    revision minus this many revisions, as etcd's
//	                    compactor does on the leader; 0..1000000000. A
//	                    watcher whose next revision is compacted away is
//	                    canceled and must start again from the compaction.
//	auto_compaction_interval
//	                    default 1s (etcd's revision mode uses 5 minutes,
//	                    longer than a simulated run); 1ms..1h.
//
// # network
//
// The base network applies to every link, member to member and client to
// member. A network fault overrides it for a while; heal: all restores it.
//
//	latency    default 1ms..10ms. Each message's delay, drawn from the range.
//	loss       default 0. Probability a message is dropped.
//	duplicate  default 0. Probability a message is delivered twice.
//	reorder    default 0. Probability a message is held back by an extra
//	           delay of up to 10x the latency's max, so later ones
//	           overtake it.
//
// # workload
//
//	clients  default 8. How many simulated clients; 0..1000. 0 runs no
//	         clients, for scenarios that only watch the cluster.
//	rate     default 10/s. Operations per second, per client; up to
//	         10000/s, and above 0 when there are clients.
//	keys     default 16. How many distinct keys the clients use;
//	         1..100000. Few keys make conflicts, and so bugs, likely.
//	ops      default {put: 4, get: 4, delete: 1, cas: 1, txn: 1, range: 1,
//	         delete_range: 1}. Relative weights of the operations a client
//	         picks; each 0..1000000, at least one above 0. Weights left
//	         out of an ops mapping are 0, not their defaults: ops: {put: 1}
//	         means only puts.
//	           put, get, delete  one key
//	           cas           a txn that compares the key's value (or its
//	                         absence) and puts a new one
//	           txn           2 to 4 puts and deletes on distinct keys, at
//	                         one revision
//	           range         a read of 2 to 5 consecutive keys, or of
//	                         every key with a prefix, at one revision
//	           delete_range  a delete of 2 to 3 consecutive keys, or of
//	                         every key with a prefix, at one revision
//	serializable  default 0.2. The share of reads (get and range) that
//	         are serializable: served from the member's own state, which
//	         may be stale; 0..1.
//	timeout  default 1s. Per-operation client timeout; > 0, <= 1h. An
//	         operation that times out has an unknown outcome.
//
// A scenario whose clients, rate and duration would start more than half
// of OperationsMax operations (clients x rate x duration) is refused: a
// run never records more than its checker can take.
//
// # watchers
//
// Watchers are applications that watch the workload's keys, each on one
// member at a time, picked by the simulator's seeded watcher stream. Each
// watches one key, or a prefix of the keys (a key's name but its last
// digit, such as key-01 for key-010..key-019, or key- for every key),
// with or without prev_kv and with or without a filter (no_put or
// no_delete). When its watch ends (its member crashed, or went without a
// leader for an election timeout, as etcd cancels the watches of clients
// that require a leader; its next revision was compacted; or it cancelled
// the watch itself) it watches again on a member the seed picks, from the
// last revision it saw plus one, as clientv3 does; after a compaction,
// from the compaction revision, as a clientv3 user must. The section
// absent means no watchers; written, even empty ({}), its fields default
// as below.
//
//	count           default 4. How many watchers; 0..100.
//	prefix          default 0.5. The share watching a prefix rather than
//	                one key; 0..1 (as are the other shares).
//	prev_kv         default 0.5. The share asking for prev_kv.
//	filter          default 0.25. The share with a filter, half of them
//	                no_put and half no_delete.
//	replay          default 0.5. The share whose first watch replays the
//	                history from revision 1; the others start at the
//	                member's next revision.
//	progress_every  default 1s. The mean time between a watcher's progress
//	                requests (exponentially distributed); 0 never asks.
//	                0..1h.
//	cancel_every    default 0 (never). The mean time between a watcher
//	                cancelling its own watch and watching again from where
//	                it was. 0..1h.
//
// Watch traffic crosses the simulated network as the clients' requests
// do: a watch request and each response take a client link's latency, and
// one watch's responses arrive in order, as on one gRPC stream.
//
// # leases
//
// Lease holders are applications that hold etcd leases as clientv3 users
// do. Each is granted a lease (the cluster picks its ID), keeps it alive
// as clientv3's keep-alive loop does (a keep-alive once the last answer is
// TTL/3 old, again every 500ms while none comes, and the lease given up
// once none has come for a TTL), and puts keys with it in a key space of
// its own (lease/h<holder>/<lease>/<key>), recorded in the history as
// ordinary puts. At the end of a life drawn for each lease it stops
// keeping it alive, so that it expires, or revokes it; or it keeps it to
// the end. It puts with a lease it stopped keeping alive until a put finds
// it gone, then is granted another. Keep-alives reach one member; one that
// does not lead forwards them to the leader over the network between
// members, as plumb's server does. The section absent means no lease
// holders; written, even empty ({}), its fields default as below.
//
//	holders    default 3. How many; 0..100.
//	ttl        default 5s, or etcd's minimum for the cluster when that is
//	           more. The TTL each lease asks for: whole seconds, at least
//	           etcd's minimum (one and a half election timeouts, rounded
//	           up to a second: 2s at etcd's default 1s), at most 1h.
//	keys       default 4. How many keys a holder puts with each lease;
//	           1..100.
//	put_every  default 500ms. The mean time between a holder's puts
//	           (exponentially distributed); 1ms..1h.
//	life       default 5s. The mean time a holder keeps a lease before it
//	           stops keeping it alive or revokes it (exponentially
//	           distributed); 1ms..1h.
//	expire     default 0.4. The share of leases whose holder stops keeping
//	           them alive at the end of their life.
//	revoke     default 0.4. The share of leases whose holder revokes them
//	           at the end of their life; expire + revoke <= 1, the rest
//	           are kept alive to the end.
//
// # locks
//
// Lock users take one lock, etcd's concurrency.Mutex on the prefix lock/,
// on a session of their own (a lease kept alive as a lease holder's is):
// a txn puts the user's key, lock/<lease ID in hex>, with the session's
// lease if it has no create revision yet; the user waits until every key
// under the prefix created before its own is deleted, watching the last
// one before it as concurrency's waitDeletes does; then, in the critical
// section, it makes fenced writes (a cas on its own key, from the value it
// last wrote to the next, so that a user whose session expired under it is
// refused), and releases the lock by deleting its key. The section absent
// means no lock users; written, even empty ({}), its fields default as
// below.
//
//	users        default 3. How many; 0..100.
//	ttl          as leases' ttl: the session's TTL.
//	writes       default 3. Fenced writes per hold of the lock; 1..100.
//	write_every  default 100ms. The pause before each fenced write;
//	             1ms..1h.
//	every        default 1s. The mean time between a user's release and
//	             its next attempt (exponentially distributed); 1ms..1h.
//	stall        default 0.2. The share of holds in which the user stalls
//	             inside the critical section, as a process paused by GC
//	             or a VM migration: its session is not kept alive and its
//	             next fenced write comes after the session has expired.
//
// A scenario whose clients, lease holders and lock users would start more
// than half of OperationsMax operations is refused, as for the workload.
//
// # auth
//
// Turns on etcd's authentication: the operator adds root and the users
// u1, u2, ..., each with a role of its own that may read and write every
// key, and enables authentication; workload client i acts as user i mod
// users. Every toggle_every the operator revokes one user's permission or
// grants it back, through raft (a user's revoke, its grant, then the next
// user's). The watchers, lease holders and lock users act as the user
// "app", whose role may read and write every key and never changes.
//
//	users         default 2. How many users the clients act as; 1..16.
//	toggle_every  default 1s. From one change's acknowledgement to the
//	              next change; 10ms..1h.
//
// # expect
//
//	linearizable     default true. The clients' history must be
//	                 linearizable.
//	liveness_within  default 0 (not checked). After the last fault's effect
//	                 ends (see below), the cluster must serve writes again
//	                 within this long. 0..1h.
//	converge         default true. Once healed, all members must hold the
//	                 same key-value state.
//	durable          default true. Every acknowledged write must be present
//	                 after the cluster recovers, whatever crashes and disk
//	                 faults came before.
//	watch            default true. Every watcher's events must agree with
//	                 the history's revisions: in order, none twice, none
//	                 missing, each revision whole in one response, values,
//	                 revisions and prev_kv right, filters honoured,
//	                 progress never ahead of the events. Judged only in a
//	                 scenario with watchers.
//	lease            default true. No lease expires while its holder's
//	                 acknowledged keep-alives allowed it, a revoke deletes
//	                 exactly its lease's keys, no write with a lease
//	                 succeeds after its revoke, and a lease its holder
//	                 stopped keeping alive is gone by the end when it had
//	                 time to expire (linearizability.CheckLeases). Judged
//	                 only in a scenario with lease holders or lock users.
//	lock             default true. Every fenced write that succeeded was
//	                 made while its writer's key owned the lock: never two
//	                 holders (linearizability.CheckLocks). Judged only in a
//	                 scenario with lock users.
//	auth             default true. No linearizable operation of a user
//	                 wholly between a revoke's acknowledgement and the next
//	                 grant's first attempt succeeds, and none wholly
//	                 between a grant's acknowledgement and the next
//	                 revoke's first attempt is refused with permission
//	                 denied (sim's auth.go). Judged only with an auth
//	                 section.
//
// # faults
//
// faults is a list. Each fault is a mapping with at, exactly one kind key
// (partition, heal, kill, restart, change_ip, network, disk, member_add,
// member_promote, member_remove, member_replace or ip_reuse), and the
// options of that kind. at is required: the virtual time the fault fires,
// from 0 up to but not including duration.
//
// Faults fire in order of at; faults with the same at fire in file order.
// A fault's effect may last (for, restart_after, member_update_after), and
// must end by duration. The latest end of any fault, or the latest at when
// nothing lasts longer, is where liveness_within is measured from
// (Scenario.LastFaultEnd).
//
//	partition: {isolate: M}
//	    Cut member M off from every other member, both directions.
//	partition: {groups: [[M, ...], [M, ...], ...]}
//	    Split members into groups; no message crosses from one group to
//	    another. Members not named form one more group. No group may be
//	    empty, no member may be named twice, and one group that names
//	    every member is an error (it cuts nothing). If leader or follower
//	    turns out, when the fault fires, to be a member named elsewhere in
//	    the partition, the simulator fails the run.
//	partition: {one_way: {from: [M, ...], to: [M, ...]}}
//	    Drop messages from each member in from to each member in to; the
//	    reverse direction still works. Both lists are non-empty, and no
//	    member is on both sides.
//	partition: {..., for: D}
//	    Optional on any partition: heal this cut by itself after D.
//	    Without it the cut lasts until heal: all.
//	heal: all
//	    Remove every partition and restore the base network. all is the
//	    only kind of heal.
//	kill: M
//	    Crash member M: it loses its memory and its unsynced disk writes
//	    (after a torn disk fault, the last of them is torn instead).
//	kill: all
//	    Crash every member at once, as a power cut would.
//	kill: M, restart_after: D
//	kill: all, restart_after: D
//	    Option: restart it (or every member, for all) D later. Without it
//	    a killed member stays down until a restart fault names it.
//	restart: nN
//	    Restart killed member nN from its disk. Only a named member, since
//	    the leader and the followers are alive by definition.
//	change_ip: M
//	    Give member M a new address. Messages sent to the old one are lost,
//	    or reach whoever holds that address next.
//	change_ip: M, member_update_after: D
//	    Option: D later an operator runs member update with the new
//	    address. Without it nobody does.
//	network: {latency: R, loss: P, duplicate: P, reorder: P, for: D}
//	    Override any of the base network's fields for every link; at least
//	    one of latency, loss, duplicate, reorder. Option for: restore the
//	    base network after D; without it, until heal: all.
//	disk: {member: M, latency: R, for: D}
//	    Every fsync on member M's disk takes a time drawn from latency
//	    range R (limits as for the network's latency).
//	disk: {member: M, full: true, for: D}
//	    M's disk is full: its writes and fsyncs fail with ENOSPC. full:
//	    false is an error: it would change nothing.
//	disk: {member: M, corrupt: wal}
//	disk: {member: M, corrupt: snapshot}
//	    Flip a bit in one of M's durable files: for wal, a record in the
//	    middle of a WAL segment that is not the last; for snapshot, the
//	    newest snapshot file. M notices when it next reads that file.
//	disk: {member: M, torn: true}
//	    M's next crash tears its last unsynced write (keeps a random
//	    prefix of it) instead of losing it whole. torn: false is an error.
//	member_add: voter
//	member_add: learner
//	    The operator adds a member at a fresh address (etcdctl member add,
//	    with --learner for a learner) and, once the add is acknowledged,
//	    starts it with an empty disk and initial-cluster-state existing; it
//	    catches up from the leader. The new member is named n<k+1> when k
//	    names exist before it (the initial members and those added
//	    earlier), and later faults may name it.
//	member_promote: nN
//	    The operator promotes learner nN (etcdctl member promote), retried
//	    while the leader answers that it is not in sync yet, and while nN's
//	    add is not yet acknowledged. Only a named member.
//	member_remove: M
//	    The operator removes member M (leader, follower or nN; etcdctl
//	    member remove), and once that is acknowledged stops its host for
//	    good: it never runs again, and no check counts it. Removing the
//	    leader works: it steps down once the removal commits.
//	member_replace: M
//	    The seeds' procedure for a failed member: remove M, stop it, wipe its
//	    data dir, add it back at the same peer URL (so under a new ID, salted
//	    with the time of the add, as etcd's) and start it. M keeps its name.
//	ip_reuse: {address_of: nN, by: new_member}
//	ip_reuse: {address_of: nN, by: other_cluster}
//	    An address member nN left (its own, once it was removed; the one it
//	    had before its last change_ip otherwise) is taken by a new member the
//	    operator adds there (named as a member_add's would be), or by the one
//	    member of another cluster started with the same cluster token, which
//	    has the member ID the address gave the bootstrap member that had it:
//	    only the cluster ID tells them apart. It listens on the peer port
//	    only. address_of may also be removed or moved: whichever member was
//	    last removed, or last changed IP, when the fault fires. The old
//	    members' messages that reach the address must be refused (cluster
//	    and member IDs); the run counts them (rejected_cluster,
//	    rejected_member).
//
// A disk fault has member, which is leader, follower or nN (not all), and
// exactly one of latency, full, corrupt and torn. for is an option of
// latency and full only: the effect ends after D (fsyncs are fast again,
// space comes back); without it, the effect lasts to the end of the run.
// corrupt and torn happen once and take no for. heal: all restores the
// network only; it does not undo disk faults.
//
// A membership fault is carried out by the operator through the client API
// as a client's request is (the member it talks to forwards member add,
// remove and promote to the leader), one request at a time, retried on
// another member after a timeout, no leader or a refused connection, and
// again 500ms after any failure (the strict reconfiguration check refuses
// changes while voters are unreachable) for up to a minute; its effect
// lasts as long as that takes, and the run is not over until it is done.
// Names are checked against time: a member named before the member_add
// that names it is an error, the cluster may never hold more than 7
// members (counting each add, each remove and each ip_reuse by new_member
// as done), member_remove of the only member is an error, and follower is
// an error while the cluster has one member.
//
// # Errors
//
// Parse is strict: a file it accepts means what it says. It stops at the
// first problem and returns an *Error that names the file, the line and
// what is wrong, on one line:
//
//	scenarios/x.yaml:7: fault 2: unknown field "restart_afterr" (known: at, kill, restart_after)
//	scenarios/x.yaml:3: cluster.election_timeout: "1x": not a duration (use e.g. 100ms, 1s)
//	scenarios/x.yaml:9: fault 4 at 40s is after the end of the scenario (duration 30s)
//	scenarios/x.yaml:8: fault 1: partition.isolate: unknown member "n5" (the cluster has 3 members: n1..n3)
//	scenarios/x.yaml:11: fault 5: disk.for: corrupt has no for: a flipped bit stays flipped (only latency and full last)
//	scenarios/x.yaml:12: fault at 8s: n4 does not exist yet (by then n1..n3; a member_add names the next one)
//
// Faults are numbered from 1 in file order. Errors include: YAML syntax
// errors, unknown fields (the message lists the known ones), duplicate
// fields, a value of the wrong type, a missing name, duration or at, any
// value outside its limits, an option of another kind of fault
// (restart_after on a heal), a fault with no kind or two, all as the
// target of anything but a kill, a disk fault without a member or with
// none or two of latency, full, corrupt and torn, a for on corrupt or
// torn, full: false or torn: false, and an effect that would end after
// duration. YAML aliases (*name) are rejected, and so are files over 1 MiB,
// files that are not UTF-8, and files with more than one YAML document or
// more than 1000 faults.
package faults
