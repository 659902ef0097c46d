// Package plant names the bugs the simulator can plant in its members, to
// prove that each of its checks can fail: a check is trusted only once a
// planted bug has made exactly that check fail (sim's tests do it, one bug
// per check, by name).
//
// What belongs here: the set of bugs, as one value a member's storage and
// node are configured with, and nothing else. The bugs themselves are
// written where they would be real bugs (the node, the WAL), each behind its
// field, so that what is tested is the code that runs in production with
// one thing wrong.
//
// The package is internal to the module, so its values can be made only
// here: the fields that carry them (node.Config.Planted,
// wal.Options.Planted) cannot be set by any program outside plumb, and
// deps_test keeps this package out of the server and the command line,
// which reach a planted bug only through the simulator's --plant-bug. It
// imports nothing.
package plant

// Bugs is the set of bugs planted in one member. The zero value plants
// none.
type Bugs struct {
	// LocalReads: linearizable reads are answered from the member's local
	// state, without ReadIndex, so a deposed leader serves stale reads.
	// The linearizable check catches it.
	LocalReads bool
	// LazyFsync: the WAL writes appends without fsync and syncs them only
	// at the member's next tick (and before its key-value state is made
	// durable, so a member always restarts): members acknowledge entries
	// they have not made durable, and a power cut of the whole cluster
	// loses acknowledged writes. The durable check catches it.
	LazyFsync bool
	// StopApplyingAt: once the member has applied this index it applies no
	// more committed entries (0: never stops). Its state falls behind for
	// good. The converge check catches it.
	StopApplyingAt uint64
	// RefuseAfterFailover: a member that has seen the leader change after
	// the first election drops every proposal while it leads, so once the
	// first leader is gone no write is ever accepted. The liveness check
	// catches it.
	RefuseAfterFailover bool
	// WatchSkipAfterCatchUp: the watch hub moves a watcher that has caught
	// up from the history one revision too far as it joins the synced
	// watchers, so the first revision published after that is never
	// given to it. The watch check catches it.
	WatchSkipAfterCatchUp bool
	// FollowerLeaseExpiry: every member, not only the leader, counts lease
	// time from the grants it applies and proposes the revoke of a lease
	// it has not heard renewed; followers never hear keep-alives (the
	// leader alone answers them), so leases kept alive are revoked a TTL
	// after their grant. The lease check catches it.
	FollowerLeaseExpiry bool
	// RevokeLeavesKey: a lease's revoke deletes every key of the lease
	// but the first (in key order), which stays with a lease that is gone;
	// a lock user's key is the only key of its session, so an expired
	// session's lock is never released. The lease check catches it.
	RevokeLeavesKey bool
	// MaxCreateFiltersMod: a range's max_create_revision filter is
	// compared with each key's mod revision instead of its create
	// revision. A lock waiter asks for the newest key created before its
	// own (concurrency's waitDeletes); a predecessor that wrote since it
	// was created (a holder's fenced writes) is filtered out, so the
	// waiter takes the lock while the predecessor still holds it. No read
	// of the linearizability history filters by revision: the lock check
	// catches it.
	MaxCreateFiltersMod bool
	// SkipClusterIDCheck: a member steps peer messages whatever cluster
	// they were sent in. A host of another cluster that took an address
	// this cluster's member left, with the same member ID (the same peer
	// URL and cluster token), takes that member's messages as its own.
	// The peer-identity check catches it.
	SkipClusterIDCheck bool
	// KeepRemovedMember: applying a member's removal takes it out of
	// raft's configuration but leaves it in the membership: member list
	// still shows it, and the strict reconfiguration check still counts
	// it as a started voter. The converge check, which holds every
	// member's membership to the operator's acknowledged changes, catches
	// it.
	KeepRemovedMember bool
	// AuthIgnoresRevision: a request authorized under an older auth
	// revision (etcd's auth_revision) is not refused with etcd's
	// ErrAuthOldRevision but served whenever the current permissions
	// allow it, so clients never learn that the auth state changed under
	// them (plumb checks permissions against the applied state when it
	// applies a write or answers a read, so a revoked permission is
	// refused either way). node's TestAuthStaleRevisionRefused catches it.
	AuthIgnoresRevision bool
	// AuthReadsCheckedAtSubmit: a linearizable read is authorized when
	// the member takes it, against what that member has applied then,
	// and not again when it is answered after its read index: a member
	// that has not applied a revocation yet serves a read issued after
	// the revocation was acknowledged. The auth check catches it.
	AuthReadsCheckedAtSubmit bool
	// LeaseGrantNeedsRoot: granting or revoking a lease needs the root
	// role, not just a user, so an application's user with every key's
	// permission cannot take a lease, a session, or a lock. The auth
	// check catches it (auth-apps.yaml's lease holders and lock users).
	LeaseGrantNeedsRoot bool
}
