// Package linearizability records what clients saw and checks it for
// linearizability with porcupine.
//
// What belongs here: the history format (Operation, History, and its JSON
// file, which also holds what watchers saw: Watcher, and the compactions
// asked for), the porcupine models, the checks (Check of the operations,
// CheckWatches of the watch streams), and porcupine's HTML visualisation. What does not: running clients, choosing operations, or
// anything that knows how a history was produced. The package imports
// nothing from the project; sim, cmd and the e2e tests import it. It builds
// for GOOS=js: see yield_js.go.
//
// # Simulated and real runs
//
// One format serves both. The simulator records its clients' operations on
// virtual time (package sim). The e2e kill test (e2e/kill_test.go) records a
// real cluster's in the same format, on the test's monotonic clock: etcd's
// Go client putting and reading against real `plumb node serve` processes
// while a follower and then the leader are killed with SIGKILL and
// restarted, then a final read of every key on every member; Check judges
// that history as it judges a simulated one, and a failing one is saved
// with WriteJSON. Times are nanoseconds from the start of the recording;
// only their order matters.
//
// # The model
//
// Check runs two passes (see Check): a revision pass over the whole
// history, and porcupine key by key, described here. Check partitions a history by key and checks each key on its own against
// a register: absent, or present with a value. put sets it; get must read
// it; delete reports 1 and clears it, or reports 0 if it was absent; cas
// writes its new value when its compare holds (the value equals Expect, or,
// with ExpectAbsent, the key is absent) and must report whether it held.
// A history is linearizable when every key's is, which is what makes large
// histories tractable: porcupine's search is exponential in the
// concurrency of one partition, not in the length of the history.
//
// # Unknown outcomes
//
// A client that times out or loses its connection does not know whether its
// operation happened, and a server may apply it long after the client gave
// up. Recording such an operation as failed would report bugs that are not
// there; recording it as ok would hide real ones. So the recorder says
// "unknown", and the check treats it the way porcupine's own etcd example
// and etcd's robustness tests do:
//
//   - An unknown read is dropped, as is any failed operation: neither
//     changed the store, and an unknown read's result was never seen.
//   - An unknown write keeps its call time and returns "at infinity", after
//     every other operation's return, because it may take effect at any
//     point after its call.
//   - Its step forks the model: the key is in either the state the write
//     leaves or the state before it (porcupine's NondeterministicModel, here
//     a set of register states; etcd's model keeps the same kind of set).
//     Later ok operations keep only the states that explain what they saw.
//     A write seen once must then stay seen until it is overwritten or
//     deleted. While the return is at infinity, "never" is also reachable by
//     linearizing the write after everything else; the "not applied" branch
//     keeps the model right if a recorder later narrows the return (etcd
//     does, from the watch event that shows when a write landed), and lets
//     porcupine settle the question early instead of carrying the write
//     along.
//   - Because an unknown operation never returns, its client id is busy for
//     ever: the client takes a fresh id for its next operation (Validate
//     enforces this), as etcd's recorder does.
//
// Writes with unique values (the simulator writes "c<client>-<seq>") keep
// the search small: a read then names the one write it saw.
//
// # Watchers
//
// A watcher (watch.go) is a client watching one key or range: the watches
// it opened one after another (a session each: the member, the revision
// asked from, the created revision, every response as received, why it
// ended). CheckWatches (watch_check.go) judges every watcher's responses,
// over all its sessions, against the store the operations show: the
// revision pass's replay, kept revision by revision (revisionLog), so
// that there is one replay, not two. A watcher must be given every change
// of its range, less its filters, from its start to the last revision it
// observed, once, in revision order, each revision whole in one response,
// with the values, revisions and prev_kv the replay has, never ahead of a
// progress notification or a response header, and nothing the store never
// did; a watch canceled by a compaction asked for by then loses what the
// compaction removed. Each rule is named in the reason for a failure,
// with the watcher, the watch, the response and the revision. Where the
// replay does not know a revision (a write of unknown revision made it)
// nothing is owed there, and the events of that revision are taken as
// given.
package linearizability
