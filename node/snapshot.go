package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node/backend"
	"github.com/plumbdb/plumb/node/mvcc"
	"github.com/plumbdb/plumb/node/wal"
)

// Snapshots, as etcd does them.
//
// Every Config.SnapshotCount applied entries the member records a raft
// snapshot at its applied index and compacts raft's log behind it, keeping
// Config.SnapshotCatchUpEntries entries for followers that are only a little
// behind. That local snapshot holds no key-value data: the backend is
// durable on its own and knows its applied index.
//
// A follower too far behind for the log gets a snapshot message. raft
// builds it from the local snapshot; the node attaches a dump of the whole
// replicated state (every bucket of it) as it is now, at an applied index at
// or after the snapshot's, like etcd's merged snapshot. The follower saves
// the snapshot (data included) durably FIRST, then replaces its backend
// with the dump: if it crashes in between, it restores the backend from the
// saved snapshot when it starts again.

const (
	DefaultSnapshotCount          = 10000 // etcd's --snapshot-count
	DefaultSnapshotCatchUpEntries = 5000  // etcd's: entries kept behind a snapshot
	maxStateDumpBytes             = 1 << 34
)

var stateMagic = []byte("plumb-state-1\n")

var errBadState = errors.New("node: snapshot state is corrupt")

// stateBuckets lists every backend bucket that is replicated state.
func stateBuckets() [][]byte {
	return append(mvcc.Buckets(), bucketMembers, bucketMembersRemoved, bucketProposers, bucketConfRejected, bucketLease, bucketAlarm, bucketAuth, bucketAuthUsers, bucketAuthRoles)
}

// encodeState dumps every key of every state bucket of r: magic, then
// (bucket, key, value) records with uvarint lengths, then a CRC32C of all
// that precedes it.
func encodeState(r backend.Reader) ([]byte, error) {
	out := slices.Clone(stateMagic)
	for _, bucket := range stateBuckets() {
		err := r.ForEach(bucket, func(k, v []byte) error {
			for _, part := range [][]byte{bucket, k, v} {
				out = binary.AppendUvarint(out, uint64(len(part)))
				out = append(out, part...)
			}
			if len(out) > maxStateDumpBytes {
				return fmt.Errorf("node: the state is larger than %d bytes", maxStateDumpBytes)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, crcTable)), nil
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// restoreState replaces every state bucket of be with the dump, in one
// atomic batch, after checking it whole.
func restoreState(be backend.Backend, data []byte) error {
	if len(data) < len(stateMagic)+4 || string(data[:len(stateMagic)]) != string(stateMagic) {
		return fmt.Errorf("%w: no state header", errBadState)
	}
	body, sum := data[:len(data)-4], binary.BigEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return fmt.Errorf("%w: checksum mismatch", errBadState)
	}
	b := be.Begin()
	for _, bucket := range stateBuckets() {
		var keys [][]byte
		if err := b.ForEach(bucket, func(k, _ []byte) error { keys = append(keys, slices.Clone(k)); return nil }); err != nil {
			b.Rollback()
			return err
		}
		for _, k := range keys {
			b.Delete(bucket, k)
		}
	}
	rest := body[len(stateMagic):]
	for len(rest) > 0 {
		var parts [3][]byte
		for i := range parts {
			n, w := binary.Uvarint(rest)
			if w <= 0 || uint64(len(rest)-w) < n {
				b.Rollback()
				return fmt.Errorf("%w: truncated record", errBadState)
			}
			parts[i], rest = rest[w:w+int(n)], rest[w+int(n):]
		}
		b.Put(parts[0], parts[1], parts[2])
	}
	return b.Commit()
}

// maybeSnapshot records a snapshot and compacts the log once enough entries
// have been applied since the last one. On a full disk it raises NOSPACE
// and leaves the snapshot for a later round.
func (n *Node) maybeSnapshot() error {
	count := uint64(n.cfg.SnapshotCount)
	if n.applied < n.snapIndex+count {
		return nil
	}
	// The snapshot is at raft's applied index (as it will be once this
	// round's Ready is advanced), never past it. They differ after a
	// restart from a snapshot older than the backend's state: raft applies
	// from its snapshot again, replaying entries the backend already holds,
	// and a log compacted past its applied index would have lost entries
	// raft has yet to hand out (it panics). n.confState is the membership
	// at that same index: replayed conf changes update it too.
	index := min(n.applied, max(n.rn.BasicStatus().Applied, n.handedOut))
	if index < n.snapIndex+count {
		return nil
	}
	keep := uint64(n.cfg.SnapshotCatchUpEntries)
	// The log is compacted behind the snapshot: the entries it drops must
	// be applied durably first, or a crash could not replay them.
	if err := n.syncState(); err != nil {
		return err
	}
	err := n.log.SaveSnapshot(index, n.confState, keep)
	if errors.Is(err, wal.ErrNoSpace) {
		// A full disk stalls the snapshot as it stalls the log (persist):
		// nothing was compacted, so nothing is lost, and the next round
		// tries again; NOSPACE refuses the writes that would fill it more.
		n.raiseDisk()
		return nil
	}
	if err != nil {
		return fmt.Errorf("node %s: snapshot at %d: %w", FormatID(n.cfg.ID), index, err)
	}
	n.snapIndex = index
	n.snapshots++
	return nil
}

// installSnapshot replaces the state with a snapshot a leader sent, which
// the log store has already saved. The dump's applied index may be past the
// snapshot's: the entries in between are replayed without being applied.
func (n *Node) installSnapshot(snap *raftpb.Snapshot) (err error) {
	mark := n.cfg.Stopwatch.Start(Work{Kind: WorkSnapshotInstall})
	defer func() { n.cfg.Stopwatch.Stop(Work{Kind: WorkSnapshotInstall}, mark, err == nil) }()
	idx := snap.GetMetadata().GetIndex()
	if len(snap.Data) == 0 {
		return fmt.Errorf("node %s: snapshot at %d arrived without state", FormatID(n.cfg.ID), idx)
	}
	// Straight to the durable backend in one batch: the dump replaces the
	// whole state, and an overlay would hold a second copy of it.
	err = n.be.WriteThrough(func(be backend.Backend) error { return restoreState(be, snap.Data) })
	if err != nil {
		return fmt.Errorf("node %s: install snapshot at %d: %w", FormatID(n.cfg.ID), idx, err)
	}
	if err := n.reload(); err != nil {
		return err
	}
	n.syncedIndex = n.applied
	if n.applied < idx {
		panic(fmt.Sprintf("node %s: installed a snapshot at %d whose state is only applied to %d", FormatID(n.cfg.ID), idx, n.applied))
	}
	n.snapIndex = idx
	n.confState = snap.GetMetadata().GetConfState()
	n.snapshotsInstalled++
	return nil
}

// appliedState is the in-memory view of the backend's replicated state.
type appliedState struct {
	kv       *mvcc.Store
	members  *membership
	sessions proposers
	lessor   *lessor
	alarms   []*pb.AlarmMember
	auth     authState
}

// openState builds the in-memory views of the backend: the key index,
// membership, proposer sessions and leases, for New and for reload.
func openState(be backend.Backend) (appliedState, error) {
	var st appliedState
	var err error
	if st.kv, err = mvcc.Open(be); err != nil {
		return st, fmt.Errorf("open key-value state: %w", err)
	}
	if st.members, err = loadMembership(be); err != nil {
		return st, err
	}
	if st.sessions, err = loadProposers(be); err != nil {
		return st, err
	}
	if st.lessor, err = loadLessor(be, st.kv.Leased()); err != nil {
		return st, err
	}
	if st.alarms, err = loadAlarms(be); err != nil {
		return st, err
	}
	if st.auth, err = loadAuth(be); err != nil {
		return st, err
	}
	return st, nil
}

// reload rebuilds the in-memory views of the backend (openState) after a
// snapshot install; the watchers move to the new key-value state.
func (n *Node) reload() error {
	st, err := openState(n.be)
	if err != nil {
		return fmt.Errorf("node %s: %w", FormatID(n.cfg.ID), err)
	}
	kv := st.kv
	if n.kv != nil {
		kv.AdoptWatchers(n.kv) // they catch up from the history the snapshot brought
	}
	n.kv, n.members, n.sessions, n.lessor, n.alarms.raised = kv, st.members, st.sessions, st.lessor, st.alarms
	if n.auth.tokens != nil {
		st.auth.tokens = n.auth.tokens // each member's own, as etcd's simple tokens
	}
	n.auth = st.auth
	n.auth.ignoreRevision, n.auth.checkAtSubmit = n.cfg.Planted.AuthIgnoresRevision, n.cfg.Planted.AuthReadsCheckedAtSubmit
	n.plantStore()
	n.noteLeadership() // a follower's: no lease time to count
	n.applied, _ = kv.ConsistentIndex()
	return nil
}

// withState returns the message to send: a snapshot message gets a dump of
// the state as it is now, and the metadata of that state: the applied
// index, its term and the membership as of it (etcd's
// createMergedSnapshotMessage). raft hands out its stored snapshot, whose
// metadata may predate the state; in particular a member added since then
// is not in its ConfState, and raft on that member refuses to restore a
// snapshot that does not list it, so it could never catch up. Other
// messages go as they are.
func (n *Node) withState(m *raftpb.Message) (*raftpb.Message, error) {
	if m.GetType() != raftpb.MessageType_MsgSnap {
		return m, nil
	}
	data, err := encodeState(n.be)
	if err != nil {
		return nil, fmt.Errorf("node %s: dump state for a snapshot: %w", FormatID(n.cfg.ID), err)
	}
	// raft's message points at the log store's own snapshot: copy, never
	// change it.
	out := proto.CloneOf(m)
	out.Snapshot.Data = data
	if meta := out.Snapshot.GetMetadata(); n.applied > meta.GetIndex() {
		term, err := n.log.Term(n.applied)
		if err != nil {
			return nil, fmt.Errorf("node %s: the term of applied index %d, for a snapshot: %w", FormatID(n.cfg.ID), n.applied, err)
		}
		out.Snapshot.Metadata = &raftpb.SnapshotMetadata{
			Index:     proto.Uint64(n.applied),
			Term:      proto.Uint64(term),
			ConfState: proto.CloneOf(n.confState),
		}
	}
	return out, nil
}

// ReportSnapshot tells raft whether a snapshot message reached member to,
// so that it resends one that was lost rather than wait for ever.
func (n *Node) ReportSnapshot(to uint64, delivered bool) {
	if n.stopped() {
		return
	}
	status := raft.SnapshotFinish
	if !delivered {
		status = raft.SnapshotFailure
	}
	n.rn.ReportSnapshot(to, status)
}

// ReportUnreachable tells raft that a message to member to could not be
// sent, so it probes instead of streaming.
func (n *Node) ReportUnreachable(to uint64) {
	if !n.stopped() {
		n.rn.ReportUnreachable(to)
	}
}
