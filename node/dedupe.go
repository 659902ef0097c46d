package node

import (
	"encoding/binary"
	"fmt"
	"strconv"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node/backend"
)

// Duplicate proposals.
//
// raft is idempotent for every message but one: a proposal (MsgProp) that
// reaches the leader twice is appended twice, and a put applied twice can
// undo a later, acknowledged write. TCP never duplicates, which is all etcd
// relies on; plumb's simulated network does, and a store that is proven
// correct must not lean on its transport. So the state machine keeps a
// session per proposing member, as in the Raft paper (section 6.3): each
// proposal carries its proposer's member ID (InternalRaftRequest.ID, a
// field etcd's v3 requests leave unused) and that member's request ID
// (Header.ID), which only grows; the applied state records, per proposer,
// the highest request ID applied, in the same backend batch as the entries;
// and a proposal whose ID is not above it is skipped. Every member makes
// the same decision from the same log and state, across restarts and
// snapshots. Skipping is always safe: a proposal that arrives out of order
// is dropped like a lost message. Its proposer answers its waiter at once
// (answerDropped): the request never applied, or its apply would have
// answered the waiter, and now it never will.

var bucketProposers = []byte("proposers")

// errDuplicateDropped answers a request whose proposal was skipped at apply
// because a later request of the same member applied first. It is
// ErrProposalDropped to clients: nothing happened, and a retry is safe.
var errDuplicateDropped = fmt.Errorf("%w: a later request of this member was applied before it", ErrProposalDropped)

// proposers maps a proposing member's ID to the highest request ID of its
// that was applied.
type proposers map[uint64]uint64

func loadProposers(r backend.Reader) (proposers, error) {
	ps := proposers{}
	err := r.ForEach(bucketProposers, func(k, v []byte) error {
		id, err := strconv.ParseUint(string(k), 16, 64)
		if err != nil || len(v) != 8 {
			return fmt.Errorf("proposer record %q is corrupt", k)
		}
		ps[id] = binary.BigEndian.Uint64(v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load proposers: %w", err)
	}
	return ps, nil
}

// admit reports whether the proposal (proposer, reqID) is applied for the
// first time, and if so records it in b.
func (ps proposers) admit(b backend.Batch, proposer, reqID uint64) bool {
	if proposer == 0 {
		return true // bootstrap and leader entries carry no session
	}
	if reqID <= ps[proposer] {
		return false
	}
	ps[proposer] = reqID
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], reqID)
	b.Put(bucketProposers, []byte(FormatID(proposer)), v[:])
	return true
}

// maxOwnRequestID returns the highest request ID among member id's own
// proposals in the log (0 if none): what the session check will have seen
// from it once the log is replayed.
func maxOwnRequestID(log LogStore, id uint64) (uint64, error) {
	first, err := log.FirstIndex()
	if err != nil {
		return 0, fmt.Errorf("node: read log: %w", err)
	}
	last, err := log.LastIndex()
	if err != nil {
		return 0, fmt.Errorf("node: read log: %w", err)
	}
	var highest uint64
	for lo := first; lo <= last; {
		ents, err := log.Entries(lo, last+1, maxCommittedSizePerReady)
		if err != nil {
			return 0, fmt.Errorf("node: read log entries from %d: %w", lo, err)
		}
		for _, e := range ents {
			if e.GetType() != raftpb.EntryNormal || len(e.Data) == 0 {
				continue
			}
			var r pb.InternalRaftRequest
			if err := proto.Unmarshal(e.Data, &r); err != nil {
				return 0, fmt.Errorf("node: log entry %d does not decode: %w", e.GetIndex(), err)
			}
			if r.ID == id {
				highest = max(highest, r.Header.GetID())
			}
		}
		lo = ents[len(ents)-1].GetIndex() + 1
	}
	return highest, nil
}

// answerDropped answers this member's waiter, if it has one, for a proposal
// that admit skipped. Every member applies the same entries, so the
// proposer sees the skip too. A waiter is answered when its request
// applies, so a waiter still there means this request never applied; and
// since admit only lets a proposer's request IDs grow, it never will: the
// outcome is known, and the client hears it at once instead of timing
// out. The request that applied under this very ID already answered its
// waiter; finding one still waiting is a broken invariant.
func (n *Node) answerDropped(proposer, reqID uint64, replies []Reply) []Reply {
	w, ok := n.waiterFor(proposer, reqID)
	if !ok {
		return replies
	}
	if reqID == n.sessions[proposer] {
		panic(fmt.Sprintf("node %s: request %x applied, and its waiter is still waiting", FormatID(n.cfg.ID), reqID))
	}
	n.finishInto(w, Reply{Err: errDuplicateDropped}, &replies)
	return replies
}
