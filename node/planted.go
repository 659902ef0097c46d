package node

import "go.etcd.io/raft/v3/raftpb"

// The bugs package plant names, each written where it would be a real bug
// (see plant.Bugs). Config.Planted is the zero value outside the
// simulator's tests of its checks, and then none of this does anything.

// lazySyncer is a log store whose WAL the planted LazyFsync may have left
// unsynced (DiskLog).
type lazySyncer interface{ SyncLazy() error }

// syncLazy fsyncs what the planted LazyFsync left unsynced: at every tick,
// and before the key-value state is made durable, so that the backend is
// never ahead of the log and the member always restarts.
func (n *Node) syncLazy() error {
	if !n.cfg.Planted.LazyFsync {
		return nil
	}
	if l, ok := n.log.(lazySyncer); ok {
		return l.SyncLazy()
	}
	return nil
}

// applicable drops the committed entries the planted StopApplyingAt keeps
// this member from applying: raft goes on (it takes them as applied), the
// state machine does not.
func (n *Node) applicable(ents []*raftpb.Entry) []*raftpb.Entry {
	at := n.cfg.Planted.StopApplyingAt
	if at == 0 {
		return ents
	}
	for i, e := range ents {
		if e.GetIndex() > at {
			return ents[:i]
		}
	}
	return ents
}

// plantStore plants the key-value store's bugs (WatchSkipAfterCatchUp in
// its watch hub, MaxCreateFiltersMod in its range filters) wherever the
// node opens the store: New, and reload after a snapshot install.
func (n *Node) plantStore() {
	if n.cfg.Planted.WatchSkipAfterCatchUp {
		n.kv.PlantWatchSkipAfterCatchUp()
	}
	if n.cfg.Planted.MaxCreateFiltersMod {
		n.kv.PlantMaxCreateFiltersMod()
	}
}

// followerCountsLeases reports whether the planted FollowerLeaseExpiry
// makes this member, though it is not the lessor's primary, count lease
// time from the grants it applies and propose the revoke of the leases
// that run out.
func (n *Node) followerCountsLeases() bool {
	return n.cfg.Planted.FollowerLeaseExpiry && !n.lessor.primary
}

// revokedKeys returns the keys a revoke deletes: all of them, or with the
// planted RevokeLeavesKey all but the first.
func (n *Node) revokedKeys(keys []string) []string {
	if n.cfg.Planted.RevokeLeavesKey && len(keys) > 0 {
		return keys[1:]
	}
	return keys
}

// refusesProposals reports whether the planted RefuseAfterFailover makes
// this leader drop proposals: it has seen a leader after the first one.
func (n *Node) refusesProposals() bool {
	return n.cfg.Planted.RefuseAfterFailover && n.leadersSeen > 1 && n.lead == n.cfg.ID
}

// skipsClusterCheck reports whether the planted SkipClusterIDCheck makes
// Step take a peer message from another cluster.
func (n *Node) skipsClusterCheck() bool { return n.cfg.Planted.SkipClusterIDCheck }

// keepsRemovedMember reports whether the planted KeepRemovedMember leaves
// a removed member in the membership (raft no longer counts it).
func (n *Node) keepsRemovedMember() bool { return n.cfg.Planted.KeepRemovedMember }
