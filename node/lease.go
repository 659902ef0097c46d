package node

import (
	"cmp"
	"container/heap"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node/backend"
	"github.com/plumbdb/plumb/node/mvcc"
)

// Leases, as etcd's lessor keeps them, with time counted in ticks.
//
// A lease is replicated state: its grant, its revoke and its checkpoints
// (the remaining TTL, recorded now and then) go through raft and are kept in
// the backend's "lease" bucket, in etcd's layout, with the keys it holds
// (each key records its lease in the key-value store). Its clock is not:
// only the leader (the primary) counts down each lease's time, from its own
// ticks. When a lease runs out, the leader proposes its revoke, which
// deletes its keys in one revision when it applies on every member; a
// leader that has lost its quorum can propose but never commit one. A
// member that becomes leader gives every lease its remaining TTL (its
// whole TTL, or the last checkpoint's) plus an election timeout, as etcd
// does, so a change of leader never expires a lease whose holder kept it
// alive: the old leader acknowledged its last keep-alive at most an
// election timeout before the new one could be elected.
//
// Keep-alives and time-to-live are the leader's alone. A keep-alive is
// answered only once a ReadIndex round has confirmed that this member is
// still the leader, after the request arrived: a deposed leader that does
// not know it yet can never acknowledge one. A keep-alive of a lease with a
// checkpointed remaining TTL clears it through raft before it is
// acknowledged, so a new leader never starts that lease from the old,
// shorter, remaining TTL.

// MaxLeaseTTL is the longest TTL a lease may be granted (etcd's, in seconds).
const MaxLeaseTTL = 9000000000

const (
	// leaseRevokeRetrySeconds: a revoke proposed for an expired lease that
	// has not applied after this long is proposed again (etcd's
	// expiredLeaseRetryInterval).
	leaseRevokeRetrySeconds = 3
	// leaseRevokesPerSecond bounds the revokes a leader proposes (etcd's
	// leaseRevokeRate); the rest wait for the next tick.
	leaseRevokesPerSecond = 1000
	// maxLeaseCheckpointBatch is etcd's maxLeaseCheckpointBatchSize.
	maxLeaseCheckpointBatch = 1000
)

// bucketLease holds every lease: an 8-byte big-endian ID -> etcd's
// leasepb.Lease (ID, TTL, RemainingTTL), so the bucket reads as etcd's.
var bucketLease = []byte("lease")

type lease struct {
	id  int64
	ttl int64 // granted, in seconds
	// remaining is the last checkpoint's remaining TTL in seconds, 0 when
	// none (or cleared by a keep-alive): the TTL a new leader starts from.
	remaining int64
	keys      map[string]struct{}
	// On the primary only: the tick it expires at, and whether its revoke
	// was proposed (it is then expired: keep-alives fail).
	expiry  int64
	revoked bool
	// On the primary only, for this term: how many periodic checkpoints of
	// the lease it proposed that have not applied yet, and whether a
	// keep-alive's clear of its checkpoint is in flight. A keep-alive that
	// renewed the lease while a periodic checkpoint was in flight would be
	// undone by it (the checkpoint, applied after, records the remaining
	// TTL from before the renewal, which a new leader would start from);
	// a periodic checkpoint proposed after a clear, before the renewal,
	// would do the same. See answerLease and checkpointLeases.
	checkpoints int
	clearing    bool
}

// startTTL is what a new leader counts down from.
func (l *lease) startTTL() int64 {
	if l.remaining > 0 {
		return l.remaining
	}
	return l.ttl
}

type lessor struct {
	leases   map[int64]*lease
	keyLease map[string]int64 // every live key that holds a lease
	// primary: this member is the leader and counts the leases' time.
	primary  bool
	expiries expiryHeap
	// nextCheckpoint is the tick of the primary's next round of checkpoints.
	nextCheckpoint int64
}

// loadLessor reads the leases in r and the keys they hold (leased: every
// leased key, from mvcc.Store.Leased).
func loadLessor(r backend.Reader, leased map[string]int64) (*lessor, error) {
	ls := &lessor{leases: map[int64]*lease{}, keyLease: map[string]int64{}}
	err := r.ForEach(bucketLease, func(k, v []byte) error {
		l, err := decodeLease(v)
		if err != nil {
			return fmt.Errorf("lease %x: %w", k, err)
		}
		ls.leases[l.id] = l
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load leases: %w", err)
	}
	for k, id := range leased {
		l, ok := ls.leases[id]
		if !ok {
			// etcd keeps such a key too: its lease is gone, nothing will
			// delete it but a client.
			continue
		}
		l.keys[k] = struct{}{}
		ls.keyLease[k] = id
	}
	return ls, nil
}

func leaseKey(id int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(id)) }

func encodeLease(l *lease) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(l.id))
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(l.ttl))
	if l.remaining != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(l.remaining))
	}
	return b
}

func decodeLease(b []byte) (*lease, error) {
	l := &lease{keys: map[string]struct{}{}}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.VarintType || num < 1 || num > 3 {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		switch num {
		case 1:
			l.id = int64(v)
		case 2:
			l.ttl = int64(v)
		case 3:
			l.remaining = int64(v)
		}
	}
	return l, nil
}

func (ls *lessor) exists(id int64) bool {
	_, ok := ls.leases[id]
	return ok
}

// track follows a committed change to a key's lease (mvcc.Write.TrackLeases).
func (ls *lessor) track(c mvcc.LeaseChange) {
	old := ls.keyLease[string(c.Key)]
	if old == c.Lease {
		return
	}
	k := string(c.Key)
	if l, ok := ls.leases[old]; ok {
		delete(l.keys, k)
	}
	if c.Lease == 0 {
		delete(ls.keyLease, k)
		return
	}
	ls.keyLease[k] = c.Lease
	if l, ok := ls.leases[c.Lease]; ok {
		l.keys[k] = struct{}{}
	}
}

func (ls *lessor) sortedIDs() []int64 {
	return slices.Sorted(maps.Keys(ls.leases))
}

// expiryHeap orders the primary's leases by expiry tick, then ID. Entries
// go stale when a lease is renewed or revoked; they are skipped when they
// come up (an entry counts only while it matches its lease's expiry).
type expiryHeap []expiryEntry

type expiryEntry struct {
	tick int64
	id   int64
}

func (h expiryHeap) Len() int { return len(h) }
func (h expiryHeap) Less(i, j int) bool {
	return cmp.Or(cmp.Compare(h[i].tick, h[j].tick), cmp.Compare(h[i].id, h[j].id)) < 0
}
func (h expiryHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)   { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// ticksFor converts seconds of lease time to ticks, rounding up.
func (n *Node) ticksFor(seconds int64) int64 {
	if seconds > math.MaxInt64/1000 {
		return math.MaxInt64 / 2
	}
	return (seconds*1000 + n.cfg.TickMillis - 1) / n.cfg.TickMillis
}

// minLeaseTTL is etcd's: one and a half election timeouts, in whole
// seconds, rounded up. A shorter lease could expire during an election.
func (n *Node) minLeaseTTL() int64 {
	ms := int64(3*n.cfg.ElectionTicks/2) * n.cfg.TickMillis
	return (ms + 999) / 1000
}

// setExpiry starts (or restarts) a lease's countdown on the primary. It
// counts from the next tick: a grant or keep-alive is applied between two
// ticks, and counted from the last one the lease would run out up to a
// tick before its TTL had passed.
func (n *Node) setExpiry(l *lease, seconds int64) {
	l.expiry = n.ticks + 1 + n.ticksFor(seconds)
	l.revoked = false
	heap.Push(&n.lessor.expiries, expiryEntry{tick: l.expiry, id: l.id})
}

// noteLeadership makes the lessor primary when this member became the
// leader (every lease restarts from its remaining TTL plus an election
// timeout) and takes that away when it no longer is.
func (n *Node) noteLeadership() {
	ls := n.lessor
	leading := n.lead == n.cfg.ID
	switch {
	case leading && !ls.primary:
		ls.primary = true
		ls.expiries = ls.expiries[:0]
		ls.nextCheckpoint = n.ticks + n.cfg.LeaseCheckpointTicks
		extend := int64(n.cfg.ElectionTicks)
		for _, id := range ls.sortedIDs() {
			l := ls.leases[id]
			l.expiry, l.revoked = n.ticks+n.ticksFor(l.startTTL())+extend, false
			l.checkpoints, l.clearing = 0, false
			heap.Push(&ls.expiries, expiryEntry{tick: l.expiry, id: l.id})
		}
	case !leading && ls.primary:
		ls.primary = false
		ls.expiries = nil
		for _, l := range ls.leases {
			l.expiry, l.revoked, l.checkpoints, l.clearing = 0, false, 0, false
		}
	}
}

// tickLeases is the primary's work at each tick: propose the revoke of
// every lease that ran out (a bounded number per tick) and, every
// Config.LeaseCheckpointTicks, checkpoint the remaining TTLs. It waits
// while committed entries are not applied yet (one may revoke or grant
// what it would act on).
func (n *Node) tickLeases() {
	ls := n.lessor
	counting := ls.primary && n.lead == n.cfg.ID || n.followerCountsLeases()
	if !counting || n.applied < n.commit {
		return
	}
	budget := max(1, leaseRevokesPerSecond*n.cfg.TickMillis/1000)
	for len(ls.expiries) > 0 && budget > 0 {
		e := ls.expiries[0]
		if e.tick > n.ticks {
			break
		}
		heap.Pop(&ls.expiries)
		l, ok := ls.leases[e.id]
		if !ok || l.expiry != e.tick {
			continue // revoked, or renewed since
		}
		budget--
		l.revoked = true
		n.proposeInternal(&pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: l.id}})
		// If the revoke does not apply (dropped, or lost to a leader
		// change), it is proposed again.
		l.expiry = n.ticks + n.ticksFor(leaseRevokeRetrySeconds)
		heap.Push(&ls.expiries, expiryEntry{tick: l.expiry, id: l.id})
	}
	if ls.primary && n.ticks >= ls.nextCheckpoint {
		ls.nextCheckpoint = n.ticks + n.cfg.LeaseCheckpointTicks
		n.checkpointLeases()
	}
}

// checkpointLeases records the remaining TTL of every lease that has used
// some of it, in batches of maxLeaseCheckpointBatch, but a lease whose
// keep-alive is clearing its checkpoint (its countdown is about to restart).
func (n *Node) checkpointLeases() {
	var cps []*pb.LeaseCheckpoint
	propose := func() {
		if n.proposeInternal(&pb.InternalRaftRequest{LeaseCheckpoint: &pb.LeaseCheckpointRequest{Checkpoints: cps}}) {
			for _, cp := range cps {
				n.lessor.leases[cp.ID].checkpoints++
			}
		}
		cps = nil
	}
	for _, id := range n.lessor.sortedIDs() {
		l := n.lessor.leases[id]
		if l.revoked || l.clearing {
			continue
		}
		left := (l.expiry - n.ticks) * n.cfg.TickMillis / 1000
		if left <= 0 || left >= l.ttl {
			continue
		}
		cps = append(cps, &pb.LeaseCheckpoint{ID: id, Remaining_TTL: left})
		if len(cps) == maxLeaseCheckpointBatch {
			propose()
		}
	}
	if len(cps) > 0 {
		propose()
	}
}

// proposeInternal proposes what the member itself decided (a lease's
// revoke or checkpoint), with nobody waiting, and reports whether raft took
// it. A proposal that raft drops is made again when the lessor next
// decides it.
func (n *Node) proposeInternal(r *pb.InternalRaftRequest) bool {
	if n.lead == 0 || n.refusesProposals() {
		return false
	}
	r.ID, r.Header = n.cfg.ID, &pb.RequestHeader{ID: n.nextID()}
	authHeader(r.Header, internalAuth)
	data, err := proto.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("node %s: encode %v: %v", FormatID(n.cfg.ID), r, err))
	}
	return n.rn.Propose(data) == nil
}

// submitLease takes a client's lease request.
func (n *Node) submitLease(req Request) {
	switch {
	case req.LeaseGrant != nil:
		g := req.LeaseGrant
		if g.TTL > MaxLeaseTTL {
			n.fail(req, ErrLeaseTTLTooLarge)
			return
		}
		if err := n.spaceFor(leaseGrantBytes); err != nil {
			n.fail(req, err)
			return
		}
		grant := &pb.LeaseGrantRequest{TTL: g.TTL, ID: g.ID}
		for grant.ID == 0 || (g.ID == 0 && n.lessor.exists(grant.ID)) {
			// etcd's generated ID: a request ID, positive.
			grant.ID = int64(n.nextID() & math.MaxInt64)
		}
		n.propose(req, &pb.InternalRaftRequest{LeaseGrant: grant})
	case req.LeaseRevoke != nil:
		n.propose(req, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: req.LeaseRevoke.ID}})
	case req.LeaseKeepAlive != nil, req.LeaseTimeToLive != nil:
		if n.lead != n.cfg.ID {
			n.fail(req, ErrNotLeader)
			return
		}
		n.read(req, false) // answered once a ReadIndex confirms the leadership
	default: // LeaseLeases
		n.read(req, false)
	}
}

// leaseGrantBytes is what a lease costs in the backend, for the quota
// (etcd's leaseOverhead: its ID and TTLs).
const leaseGrantBytes = 64

// answerLease answers a lease read once its ReadIndex is applied.
func (n *Node) answerLease(req Request) {
	ls := n.lessor
	leading := ls.primary && n.lead == n.cfg.ID
	switch {
	case req.LeaseLeases != nil:
		resp := &pb.LeaseLeasesResponse{Header: n.header()}
		for _, id := range ls.sortedIDs() {
			resp.Leases = append(resp.Leases, &pb.LeaseStatus{ID: id})
		}
		n.replies = append(n.replies, Reply{ID: req.ID, LeaseLeases: resp})
	case !leading:
		n.fail(req, ErrNotLeader)
	case req.LeaseTimeToLive != nil:
		l, ok := ls.leases[req.LeaseTimeToLive.ID]
		if !ok || l.revoked {
			n.fail(req, ErrLeaseNotFound)
			return
		}
		resp := &pb.LeaseTimeToLiveResponse{
			Header:     n.header(),
			ID:         l.id,
			TTL:        n.remainingSeconds(l),
			GrantedTTL: l.ttl,
		}
		if req.LeaseTimeToLive.Keys {
			for _, k := range slices.Sorted(maps.Keys(l.keys)) {
				resp.Keys = append(resp.Keys, []byte(k))
			}
		}
		n.replies = append(n.replies, Reply{ID: req.ID, LeaseTimeToLive: resp})
	default: // LeaseKeepAlive
		l, ok := ls.leases[req.LeaseKeepAlive.ID]
		if !ok || l.revoked {
			n.fail(req, ErrLeaseNotFound)
			return
		}
		if l.remaining > 0 || l.checkpoints > 0 {
			// Clear the checkpoint first (see the top of this file): one
			// applied, or one in flight that would apply after the renewal.
			l.clearing = true
			n.propose(req, &pb.InternalRaftRequest{LeaseCheckpoint: &pb.LeaseCheckpointRequest{
				Checkpoints: []*pb.LeaseCheckpoint{{ID: l.id, Remaining_TTL: 0}},
			}})
			return
		}
		n.replies = append(n.replies, Reply{ID: req.ID, LeaseKeepAlive: n.renew(l)})
	}
}

// renew restarts a lease's countdown on the primary.
func (n *Node) renew(l *lease) *pb.LeaseKeepAliveResponse {
	n.setExpiry(l, l.ttl)
	n.leaseStats.Renewals++
	return &pb.LeaseKeepAliveResponse{Header: n.header(), ID: l.id, TTL: l.ttl}
}

// applyLeaseGrant grants a lease at apply.
func (n *Node) applyLeaseGrant(b backend.Batch, g *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	ls := n.lessor
	switch {
	case g.ID == 0:
		return nil, ErrLeaseNotFound // never proposed: submitLease picks an ID
	case ls.exists(g.ID):
		return nil, ErrLeaseExists
	case g.TTL > MaxLeaseTTL:
		return nil, ErrLeaseTTLTooLarge
	}
	l := &lease{id: g.ID, ttl: max(g.TTL, n.minLeaseTTL()), keys: map[string]struct{}{}}
	ls.leases[l.id] = l
	b.Put(bucketLease, leaseKey(l.id), encodeLease(l))
	if ls.primary || n.followerCountsLeases() {
		n.setExpiry(l, l.ttl)
	}
	n.leaseStats.Granted++
	n.countGrantTTL(l.ttl)
	return &pb.LeaseGrantResponse{ID: l.id, TTL: l.ttl}, nil
}

// applyLeaseRevoke revokes a lease at apply: its keys are deleted in one
// revision, then the lease. It returns the keys it deleted.
func (n *Node) applyLeaseRevoke(w *mvcc.Write, b backend.Batch, id int64) ([]string, error) {
	ls := n.lessor
	l, ok := ls.leases[id]
	if !ok {
		return nil, ErrLeaseNotFound
	}
	keys := n.revokedKeys(slices.SortedFunc(maps.Keys(l.keys), strings.Compare))
	w.Revoke(keys)
	delete(ls.leases, id)
	b.Delete(bucketLease, leaseKey(id))
	n.leaseStats.Revoked++
	if l.revoked { // this member proposed it: the lease ran out
		n.leaseStats.Expired++
	}
	return keys, nil
}

// applyLeaseCheckpoint records remaining TTLs at apply.
func (n *Node) applyLeaseCheckpoint(b backend.Batch, c *pb.LeaseCheckpointRequest) {
	for _, cp := range c.Checkpoints {
		l, ok := n.lessor.leases[cp.ID]
		if !ok {
			continue
		}
		l.remaining = cp.Remaining_TTL
		b.Put(bucketLease, leaseKey(l.id), encodeLease(l))
		if cp.Remaining_TTL == 0 {
			l.clearing = false
		} else if l.checkpoints > 0 {
			l.checkpoints--
		}
	}
}

// LeaseTTLBuckets is how many powers of two LeaseStats.TTLs counts grants
// by (etcd's lease TTL histogram: 1 second to 2^23 seconds, about three
// months).
const LeaseTTLBuckets = 24

// LeaseStats counts this member's leases and lease events since it
// started, for metrics. Every member counts the grants it applies, as
// etcd's members do.
type LeaseStats struct {
	Leases                     int
	Granted, Revoked, Renewals int
	// Expired counts the revokes applied that this member proposed because
	// the lease ran out (etcd's etcd_debugging_server_lease_expired_total,
	// counted by the leader that revoked it).
	Expired int
	// TTLs[i] counts the grants applied with a TTL of at most 2^i seconds
	// and more than 2^(i-1) (TTLs[0]: at most 1); TTLOver those above
	// 2^(LeaseTTLBuckets-1); TTLSum adds up every TTL granted.
	TTLs    [LeaseTTLBuckets]uint64
	TTLOver uint64
	TTLSum  int64
}

// LeaseStats reports the member's leases.
func (n *Node) LeaseStats() LeaseStats {
	st := n.leaseStats
	st.Leases = len(n.lessor.leases)
	return st
}

// countGrantTTL counts a granted TTL in LeaseStats' buckets.
func (n *Node) countGrantTTL(ttl int64) {
	st := &n.leaseStats
	st.TTLSum += ttl
	for i := range LeaseTTLBuckets {
		if ttl <= int64(1)<<i {
			st.TTLs[i]++
			return
		}
	}
	st.TTLOver++
}

// keepAliveAfterCheckpoint answers a keep-alive whose lease's checkpoint
// was cleared (answerLease): renewed if this member still leads.
func (n *Node) keepAliveAfterCheckpoint(req Request) Reply {
	l, ok := n.lessor.leases[req.LeaseKeepAlive.GetID()]
	switch {
	case req.LeaseKeepAlive == nil:
		panic(fmt.Sprintf("node %s: a lease checkpoint answers a request that is not a keep-alive", FormatID(n.cfg.ID)))
	case !n.lessor.primary || n.lead != n.cfg.ID:
		return Reply{Err: ErrNotLeader}
	case !ok || l.revoked:
		return Reply{Err: ErrLeaseNotFound}
	}
	return Reply{LeaseKeepAlive: n.renew(l)}
}

// remainingSeconds is a lease's time to live in whole seconds, truncated as
// etcd's (its remaining duration's Seconds(), which is below the TTL as soon
// as any time passed since the renewal: etcd answers 59 for a 60-second
// lease just renewed). The lease runs out at the tick expiry, which comes
// expiry-ticks-1 whole ticks and a fraction of one from now.
func (n *Node) remainingSeconds(l *lease) int64 {
	ms := (l.expiry - n.ticks - 1) * n.cfg.TickMillis
	return max(0, (ms-1)/1000)
}
