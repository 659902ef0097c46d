package node

import "github.com/plumbdb/plumb/node/mvcc"

// Watchers are served by the member's own applied state, as etcd serves
// them: a watcher sees every revision this member applies, in order, from
// its start revision on (the past replayed from the history), and its
// responses come out of Process (Output.Watch). Watchers live in memory: a
// restart has none, and a driver's clients resume from the last revision
// they saw plus one, as clientv3 does.

// Watch starts a watcher; see mvcc.Store.Watch for the request and its
// errors (etcd's).
func (n *Node) Watch(r mvcc.WatchRequest) (mvcc.WatchID, error) {
	if n.stopped() {
		return 0, ErrStopped
	}
	return n.kv.Watch(r)
}

// CancelWatch stops a watcher; it reports whether there was one.
func (n *Node) CancelWatch(id mvcc.WatchID) bool { return n.kv.CancelWatch(id) }

// RequestWatchProgress asks for a progress notification for the given
// watchers (all of them without ids), sent once each has every event up to
// the member's current revision.
func (n *Node) RequestWatchProgress(ids ...mvcc.WatchID) { n.kv.RequestProgress(ids...) }

// DeferWatch hands a watcher back from a driver that could not deliver its
// responses from revision from on (a full stream): it catches up from the
// history later, so a slow client never holds the member's memory.
func (n *Node) DeferWatch(id mvcc.WatchID, from int64) error { return n.kv.Defer(id, from) }

// Watchers returns how many watchers the member holds, and how many of
// them are unsynced (catching up from the history: etcd's slow watchers).
func (n *Node) Watchers() (total, unsynced int) { return n.kv.Watchers() }

// KVOps is what the key-value store executed since the member started
// (mvcc.Store.Ops): etcd's mvcc counts.
func (n *Node) KVOps() mvcc.OpCounts { return n.kv.Ops() }
