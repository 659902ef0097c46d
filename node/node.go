package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/plumbdb/plumb/internal/plant"
	"github.com/plumbdb/plumb/node/backend"
	"github.com/plumbdb/plumb/node/mvcc"
	"github.com/plumbdb/plumb/node/wal"
)

// Limits and defaults. etcd's values where etcd has one.
const (
	DefaultElectionTicks      = 10
	DefaultHeartbeatTicks     = 1
	DefaultMaxTxnOps          = 128         // etcd's --max-txn-ops
	DefaultMaxRequestBytes    = 1536 * 1024 // etcd's --max-request-bytes
	DefaultMaxPendingRequests = 10000       // requests waiting for apply or a read index
	maxSizePerMsgBytes        = 1 << 20     // etcd's raft MaxSizePerMsg
	maxInflightMsgs           = 4096 / 8    // etcd's raft MaxInflightMsgs
	maxCommittedSizePerReady  = 1 << 20     // bounds one apply batch
	maxReadyRounds            = 1 << 16     // a Process that loops longer is a bug
	requestIDCounterBits      = 8           // etcd's idutil layout: 16 bits member,
	requestIDTimeBits         = 40          // 40 bits milliseconds, 8 bits counter
	requestIDSuffixMask       = 1<<(requestIDTimeBits+requestIDCounterBits) - 1
)

// Config configures a Node. ID, ClusterID, Log and Backend are required.
type Config struct {
	ID        uint64
	ClusterID uint64
	// Name and ClientURLs are this member's attributes. Once the member has a
	// leader it publishes them through raft if the replicated ones differ, as
	// etcd does, so every member learns where clients reach it.
	Name       string
	ClientURLs []string
	// InitialMembers bootstraps a new cluster: used only when Log is empty and
	// Join is false. Every member must be given the same list.
	InitialMembers []Member
	// Join starts a member added to a running cluster: an empty Log waits for
	// the leader to send the log instead of bootstrapping.
	Join bool

	Log     LogStore
	Backend backend.Backend

	ElectionTicks  int // default 10: etcd's 1s election timeout at 100ms ticks
	HeartbeatTicks int // default 1
	// RequestTimeoutTicks bounds how long a request waits to be applied or
	// read. Default: 5 election timeouts plus 2, like etcd's 5s + 2x election.
	RequestTimeoutTicks int
	MaxPendingRequests  int
	MaxTxnOps           int
	MaxRequestBytes     int
	// SnapshotCount is etcd's --snapshot-count: applied entries between
	// snapshots (default 10000). SnapshotCatchUpEntries are kept in the log
	// behind a snapshot for followers a little behind (default 5000).
	SnapshotCount          int
	SnapshotCatchUpEntries int
	// QuotaBackendBytes is etcd's --quota-backend-bytes: writes that would
	// take the key-value state past it raise NOSPACE (default 2 GiB).
	QuotaBackendBytes int64
	// StartMillis seeds request IDs (etcd puts the start time in them), so
	// that a restarted member never reuses an ID still in a peer's log.
	StartMillis int64
	// TickMillis is how long one Tick stands for (default 100, etcd's
	// --heartbeat-interval with one heartbeat per tick). Lease TTLs are in
	// seconds; the node counts them in ticks with it.
	TickMillis int64
	// LeaseCheckpointTicks: how often the leader records the remaining
	// TTL of each lease through raft, so that a restart or a new leader
	// does not give it its whole TTL again (default: 5 minutes, etcd's
	// --experimental-lease-checkpoint-interval).
	LeaseCheckpointTicks int64
	// AuthTokenTTLTicks is how long a simple token lives unused (etcd's
	// --auth-token-ttl; default DefaultAuthTokenTTLTicks).
	AuthTokenTTLTicks int64
	// MaxLearners is etcd's --max-learners (default DefaultMaxLearners).
	MaxLearners int
	// SkipReconfigCheck turns off etcd's strict reconfiguration check
	// (--strict-reconfig-check=false): member add and remove no longer
	// refuse changes that leave too few started or reachable voters.
	SkipReconfigCheck bool
	Logger            raft.Logger // nil: raft's messages are dropped
	// ReportWrites fills Output.Proposed and Output.Applied, for drivers that
	// check histories (the simulator); the server leaves it off.
	ReportWrites bool

	// Planted plants bugs for the simulator's tests of its checks (see
	// package plant and planted.go). Only plumb's own packages can set it,
	// and only the simulator does.
	Planted plant.Bugs

	// Stopwatch times the node's work for the driver's metrics (see
	// Stopwatch); nil times nothing.
	Stopwatch Stopwatch
}

func (c *Config) withDefaults() Config {
	out := *c
	if out.ElectionTicks == 0 {
		out.ElectionTicks = DefaultElectionTicks
	}
	if out.HeartbeatTicks == 0 {
		out.HeartbeatTicks = DefaultHeartbeatTicks
	}
	if out.RequestTimeoutTicks == 0 {
		out.RequestTimeoutTicks = 7 * out.ElectionTicks
	}
	if out.MaxPendingRequests == 0 {
		out.MaxPendingRequests = DefaultMaxPendingRequests
	}
	if out.MaxTxnOps == 0 {
		out.MaxTxnOps = DefaultMaxTxnOps
	}
	if out.MaxRequestBytes == 0 {
		out.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if out.QuotaBackendBytes == 0 {
		out.QuotaBackendBytes = DefaultQuotaBackendBytes
	}
	if out.SnapshotCount == 0 {
		out.SnapshotCount = DefaultSnapshotCount
	}
	if out.SnapshotCatchUpEntries == 0 {
		out.SnapshotCatchUpEntries = min(DefaultSnapshotCatchUpEntries, out.SnapshotCount)
	}
	if out.TickMillis == 0 {
		out.TickMillis = 100
	}
	if out.LeaseCheckpointTicks == 0 {
		out.LeaseCheckpointTicks = 5 * 60 * 1000 / out.TickMillis
	}
	if out.Stopwatch == nil {
		out.Stopwatch = noStopwatch{}
	}
	if out.AuthTokenTTLTicks == 0 {
		out.AuthTokenTTLTicks = DefaultAuthTokenTTLTicks
	}
	if out.MaxLearners == 0 {
		out.MaxLearners = DefaultMaxLearners
	}
	if out.Logger == nil {
		out.Logger = discardLogger{}
	}
	return out
}

func (c *Config) validate() error {
	switch {
	case c.ID == 0:
		return errors.New("node: Config.ID must not be 0")
	case c.ClusterID == 0:
		return errors.New("node: Config.ClusterID must not be 0")
	case c.Log == nil || c.Backend == nil:
		return errors.New("node: Config.Log and Config.Backend are required")
	case c.HeartbeatTicks <= 0 || c.ElectionTicks <= c.HeartbeatTicks:
		return fmt.Errorf("node: election ticks (%d) must exceed heartbeat ticks (%d) > 0", c.ElectionTicks, c.HeartbeatTicks)
	case c.RequestTimeoutTicks <= 0, c.MaxPendingRequests <= 0, c.MaxTxnOps <= 0, c.MaxRequestBytes <= 0:
		return errors.New("node: request limits must be positive")
	case c.MaxLearners < 0:
		return fmt.Errorf("node: max learners %d must not be negative", c.MaxLearners)
	case c.SnapshotCount <= 0 || c.SnapshotCatchUpEntries < 0:
		return fmt.Errorf("node: snapshot count %d must be positive", c.SnapshotCount)
	}
	return nil
}

// Envelope is a raft message on the wire between members. The receiver
// checks ClusterID and the message's To before raft sees it.
type Envelope struct {
	ClusterID uint64
	Message   *raftpb.Message
}

// Output is what one Process call hands back to the driver. Everything in it
// is already durable: the driver may send Messages and Replies at once.
type Output struct {
	Messages []Envelope
	Replies  []Reply
	// LeaderChanged is set when this member saw the leader change (Lead is
	// the new one, 0 while there is none).
	LeaderChanged bool
	Lead, Term    uint64
	// Removed is set once this member has applied its own removal; the
	// driver should stop it.
	Removed bool
	// Err is set when storage failed. The node has stopped: every later call
	// is refused and the driver must shut the member down (etcd exits).
	Err error
	// Proposed and Applied are set only with Config.ReportWrites: the
	// client writes this member proposed since the last Process, and those
	// it applied in this one, in order. Together they tell a driver that
	// records histories the fate of a write whose client gave up on it.
	Proposed []ProposedWrite
	Applied  []AppliedWrite
	// Watch holds what the member's watchers (Watch) have to say since the
	// last Process: each revision's events whole, progress notifications
	// and cancellations, in watch ID order (see mvcc.WatchResponse).
	Watch []mvcc.WatchResponse
}

// isClientWrite reports whether a proposal is a client's key-value write
// (a lease's revoke deletes its keys), the kind Output.Proposed and
// Output.Applied report. Output.Applied also reports the revokes the
// leader proposes for expired leases.
func isClientWrite(r *pb.InternalRaftRequest) bool {
	return r.Put != nil || r.DeleteRange != nil || r.Txn != nil || r.LeaseRevoke != nil
}

// ProposalID names one proposal in the whole cluster: the member that
// proposed it and that member's request ID.
type ProposalID struct{ Member, Seq uint64 }

// ProposedWrite pairs a driver's Request.ID with the proposal made for it.
type ProposedWrite struct {
	RequestID uint64
	Proposal  ProposalID
}

// AppliedWrite is a client write applied by this member, and the revision
// it created: 0 if it changed nothing (a delete of absent keys, a txn whose
// compare failed) or failed.
type AppliedWrite struct {
	Proposal ProposalID
	Revision int64
	// For a lease's revoke (a client's, or the leader's when the lease
	// expired): the lease, and the keys its revoke deleted, in key order.
	RevokedLease int64
	Deleted      []string
}

// Status is a snapshot of a member's state, for status APIs and the simulator.
type Status struct {
	ID, Lead, Term  uint64
	State           raft.StateType
	Commit, Applied uint64
	// CommitTerm is the term of the entry at Commit (0 if unknown). A leader
	// whose CommitTerm is not its Term has not yet committed an entry of its
	// own term, so it does not know yet how far the log is committed:
	// entries a crash's restart left uncommitted in its hard state may
	// still be committed ones.
	CommitTerm      uint64
	Revision        int64
	CompactRevision int64
	PendingRequests int
	// DuplicatesDropped counts proposals skipped because they were
	// applied before (see dedupe.go).
	DuplicatesDropped int
	// SnapshotIndex is the newest snapshot's index; Snapshots counts those
	// taken and SnapshotsInstalled those received, since the member started.
	SnapshotIndex      uint64
	Snapshots          int
	SnapshotsInstalled int
	ClusterID          uint64
	LeaderTransferee   uint64
	Removed, Stopped   bool
	IsLearner          bool
	ConsistentIndex    uint64
	// ReadIndexesFailed counts the ReadIndex rounds that failed, their
	// reads with them, because the leader changed while they waited
	// (etcd_server_read_indexes_failed_total). SlowReadIndexes counts
	// the answers to a ReadIndex round already asked again (out of date,
	// ignored) and the rounds whose reads timed out waiting for their
	// index (etcd_server_slow_read_indexes_total). Both as etcd counts.
	ReadIndexesFailed int
	SlowReadIndexes   int
	// Keys is the store's live keys, PutBytes the key and value bytes of
	// the puts it executed (mvcc.Store's Keys and PutBytes).
	Keys     int64
	PutBytes uint64
	// WatchEvents is the events handed to watchers (mvcc.Store's).
	WatchEvents uint64
	// CompactedKeys is the revisions compactions deleted (mvcc.Store's).
	CompactedKeys uint64
}

// Node is one replica: a raft.RawNode, the MVCC state machine and the
// lifecycle of client requests. Like raft.RawNode it is not safe for
// concurrent use and does no I/O of its own: a driver calls Tick, Step and
// Submit from one goroutine, then Process, and acts on the Output.
type Node struct {
	cfg Config
	rn  *raft.RawNode
	log LogStore
	// be is cfg.Backend behind a Deferred: applied batches are visible at
	// once and durable at the next sync (see syncState).
	be      *backend.Deferred
	kv      *mvcc.Store
	members *membership
	// sessions drops duplicate proposals; see dedupe.go.
	sessions proposers
	// duplicates counts proposals skipped as duplicates, for Status.
	duplicates int

	alarms alarms
	// stalled is a Ready that could not be saved for lack of space: it is
	// retried at every Process, and nothing that depends on it leaves.
	stalled *raft.Ready
	// prepared is the Ready Prepare took; Process handles it first.
	// preparedSent: Prepare handed out its messages (a leader's).
	prepared     *raft.Ready
	preparedSent bool
	// savedTerm and savedVote are the hard state's as last saved: a Ready
	// that changes either must be saved before any of its messages leave.
	savedTerm, savedVote uint64

	syncedIndex        uint64            // the applied index the backend last made durable
	syncAfterTick      int64             // when the next timed sync is due
	syncDue            bool              // a timed sync waits for the next Process
	snapIndex          uint64            // index of the newest snapshot
	confState          *raftpb.ConfState // membership as of the applied index, for snapshots
	snapshots          int               // snapshots taken, for Status
	snapshotsInstalled int               // snapshots received from a leader, for Status
	handedOut          uint64            // the last committed entry raft handed out (see maybeSnapshot)

	lead, term uint64
	commit     uint64 // raft's commit index, from the hard states saved
	applied    uint64
	ticks      int64
	nextSuffix uint64 // request ID generator, see nextID
	removed    bool
	err        error

	waiters  waitQueue
	proposed map[uint64]*waiter // proposal ID -> waiter, for writes
	reads    readState
	replies  []Reply // answered outside Process, handed out by the next one
	// Writes proposed and applied since the last Process, when
	// Config.ReportWrites is set.
	proposedWrites []ProposedWrite
	appliedWrites  []AppliedWrite

	// auth is the replicated auth state and this member's simple tokens
	// (auth.go).
	auth authState

	// lessor holds the leases (lease.go); the counts are for LeaseStats.
	lessor     *lessor
	leaseStats LeaseStats // the counts since start (Leases is filled on demand)

	// heardTick: the tick at which a message from each peer last
	// reached this member (see active).
	heardTick map[uint64]int64

	publishAfterTick int64 // when to (re)publish this member's attributes
	leadersSeen      int   // leaders this member has followed or been, since it started
}

// maxUncommittedEntriesBytes bounds the payload of the entries a leader
// holds that are not committed yet (etcd's raft setting, 1 GiB): past it
// raft drops proposals (ErrProposalDropped, a definite failure) instead of
// growing its log without bound while a quorum is away or slow.
const maxUncommittedEntriesBytes = 1 << 30

// uncommittedEntriesBytesMax is the bound New gives raft: always
// maxUncommittedEntriesBytes, but internal tests lower it to see it act.
var uncommittedEntriesBytesMax uint64 = maxUncommittedEntriesBytes

// New opens a replica on cfg.Log and cfg.Backend. With an empty log it
// bootstraps cfg.InitialMembers (or waits for the leader when cfg.Join);
// otherwise it restarts from what the log and backend hold, exactly as after
// a crash: raft replays committed entries, and those the backend already
// applied (its consistent index) are skipped, so none is applied twice.
func New(c Config) (*Node, error) {
	cfg := c.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	be := backend.NewDeferred(cfg.Backend)
	st, err := openState(be)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	kv, sessions := st.kv, st.sessions
	rn, err := raft.NewRawNode(&raft.Config{
		ID:                        cfg.ID,
		ElectionTick:              cfg.ElectionTicks,
		HeartbeatTick:             cfg.HeartbeatTicks,
		Storage:                   cfg.Log,
		MaxSizePerMsg:             maxSizePerMsgBytes,
		MaxCommittedSizePerReady:  maxCommittedSizePerReady,
		MaxInflightMsgs:           maxInflightMsgs,
		MaxUncommittedEntriesSize: uncommittedEntriesBytesMax,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		StepDownOnRemoval:         true,
		Logger:                    cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("node: start raft: %w", err)
	}
	n := &Node{
		cfg:        cfg,
		rn:         rn,
		log:        cfg.Log,
		be:         be,
		kv:         kv,
		members:    st.members,
		sessions:   sessions,
		lessor:     st.lessor,
		alarms:     alarms{raised: st.alarms},
		auth:       st.auth,
		proposed:   map[uint64]*waiter{},
		heardTick:  map[uint64]int64{},
		nextSuffix: uint64(cfg.StartMillis) << requestIDCounterBits & requestIDSuffixMask,
	}
	n.plantStore()
	n.auth.ignoreRevision, n.auth.checkAtSubmit = cfg.Planted.AuthIgnoresRevision, cfg.Planted.AuthReadsCheckedAtSubmit
	// Request IDs must keep growing across restarts, or the session check
	// would drop this member's new proposals; a clock that went back is no
	// excuse. The session the backend holds may be behind the log (entries
	// applied but not yet synced, or committed but not yet applied, when
	// the member stopped): replaying them will record this member's IDs
	// from the log, so new ones start past those too.
	logMax, err := maxOwnRequestID(cfg.Log, cfg.ID)
	if err != nil {
		return nil, err
	}
	n.nextSuffix = max(n.nextSuffix, sessions[cfg.ID]&requestIDSuffixMask, logMax&requestIDSuffixMask)
	n.applied, _ = kv.ConsistentIndex()
	n.syncedIndex = n.applied
	if err := n.recoverSnapshot(); err != nil {
		return nil, err
	}
	if err := n.bootstrapIfEmpty(); err != nil {
		return nil, err
	}
	if n.members.removed[cfg.ID] {
		return nil, fmt.Errorf("node: member %s: %w", FormatID(cfg.ID), ErrIDRemoved)
	}
	return n, nil
}

// recoverSnapshot takes up the log store's newest snapshot. A backend behind
// it means the member crashed between saving a snapshot a leader sent and
// installing it: install it now.
func (n *Node) recoverSnapshot() error {
	snap, err := n.log.Snapshot()
	if err != nil {
		return fmt.Errorf("node: read snapshot: %w", err)
	}
	hs, cs, err := n.log.InitialState()
	if err != nil {
		return fmt.Errorf("node: read hard state: %w", err)
	}
	n.snapIndex, n.confState = snap.GetMetadata().GetIndex(), cs
	n.commit, n.term = max(hs.GetCommit(), n.snapIndex), hs.GetTerm()
	n.savedTerm, n.savedVote = hs.GetTerm(), hs.GetVote()
	if n.applied >= n.snapIndex {
		return nil
	}
	if len(snap.Data) == 0 {
		return fmt.Errorf("node %s: the backend has applied up to %d, behind the snapshot at %d, and that snapshot holds no state: "+
			"the data dir is inconsistent; remove the member and add it back (etcdctl member remove/add)",
			FormatID(n.cfg.ID), n.applied, n.snapIndex)
	}
	return n.installSnapshot(snap)
}

func (n *Node) bootstrapIfEmpty() error {
	last, err := n.log.LastIndex()
	if err != nil {
		return fmt.Errorf("node: read log: %w", err)
	}
	hs, _, err := n.log.InitialState()
	if err != nil {
		return fmt.Errorf("node: read hard state: %w", err)
	}
	if last != 0 || !raft.IsEmptyHardState(hs) || n.cfg.Join {
		return nil
	}
	if n.applied > 0 {
		// The log is gone but the state it produced is not: the WAL lost
		// writes it had made durable. Starting would bring back a state the
		// cluster may never have had, or vote again in a term it voted in.
		return fmt.Errorf("node %s: the key-value state has applied entries up to %d but the raft log is empty: "+
			"the WAL lost writes it had synced (a disk that does not honour fsync?); refusing to start. "+
			"Remove the member and add it back with an empty data dir (etcdctl member remove/add)",
			FormatID(n.cfg.ID), n.applied)
	}
	if len(n.cfg.InitialMembers) == 0 {
		return errors.New("node: an empty log needs initial members to bootstrap (or Join)")
	}
	initial := slices.Clone(n.cfg.InitialMembers)
	slices.SortFunc(initial, func(a, b Member) int { return cmpUint64(a.ID, b.ID) })
	peers := make([]raft.Peer, len(initial))
	self := false
	for i, m := range initial {
		ctx, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("node: encode member: %w", err)
		}
		peers[i] = raft.Peer{ID: m.ID, Context: ctx}
		self = self || m.ID == n.cfg.ID
	}
	if !self {
		return fmt.Errorf("node: member %s is not among the initial members", FormatID(n.cfg.ID))
	}
	if err := n.rn.Bootstrap(peers); err != nil {
		return fmt.Errorf("node: bootstrap: %w", err)
	}
	return nil
}

// ID returns this member's ID.
func (n *Node) ID() uint64 { return n.cfg.ID }

// ClusterID returns the cluster's ID.
func (n *Node) ClusterID() uint64 { return n.cfg.ClusterID }

// Lead returns the leader this member knows, 0 if none.
func (n *Node) Lead() uint64 { return n.lead }

// Tick advances the member's logical clock by one tick: raft's elections and
// heartbeats, request timeouts and attribute publishing are counted in ticks.
func (n *Node) Tick() {
	if n.stopped() {
		return
	}
	n.ticks++
	if err := n.syncLazy(); err != nil {
		n.err = err
		return
	}
	n.rn.Tick()
	n.tickLeases()
	n.expireTokens()
	n.expireWaiters()
	n.maybePublish()
	if n.ticks >= n.syncAfterTick {
		// Process does the I/O, as it does all of it: the simulator times
		// a Process's I/O and can crash a member inside it.
		n.syncAfterTick = n.ticks + int64(n.cfg.ElectionTicks)
		n.syncDue = true
	}
}

// Step hands a peer's message to raft, after checking that it was sent in
// this cluster to this member by a member that was not removed.
func (n *Node) Step(env Envelope) error {
	if n.stopped() {
		return ErrStopped
	}
	m := env.Message
	switch {
	case env.ClusterID != n.cfg.ClusterID && !n.skipsClusterCheck():
		return fmt.Errorf("%w: cluster %s, ours %s", ErrClusterMismatch, FormatID(env.ClusterID), FormatID(n.cfg.ClusterID))
	case m.GetTo() != n.cfg.ID:
		return fmt.Errorf("%w: to %s, we are %s", ErrWrongMember, FormatID(m.GetTo()), FormatID(n.cfg.ID))
	case n.members.removed[m.GetFrom()]:
		return fmt.Errorf("%w: %s", ErrRemovedMember, FormatID(m.GetFrom()))
	}
	n.heardTick[m.GetFrom()] = n.ticks
	if m.GetType() == raftpb.MsgProp && n.refusesProposals() {
		return nil // the planted RefuseAfterFailover: a forwarded proposal is dropped
	}
	if err := n.rn.Step(m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
		return fmt.Errorf("node: step: %w", err)
	}
	return nil
}

// Prepare takes raft's next Ready ahead of Process and returns the
// messages a leader may send while it saves that Ready: its appends and
// heartbeats reach the followers in parallel with its own fsync, as etcd's
// leader does (the Raft thesis, 10.2.1). That is safe because raft counts
// the leader towards a quorum only once its own save is done (at Advance),
// and only for a Ready that changes neither term nor vote; everything else
// in the Ready still waits for Process. Calling Prepare is optional: a
// driver that does sends what it returns at once, then calls Process.
func (n *Node) Prepare() []Envelope {
	if n.stopped() || n.stalled != nil || n.prepared != nil {
		return nil
	}
	n.flushReads()
	if !n.rn.HasReady() {
		return nil
	}
	rd := n.rn.Ready()
	n.prepared, n.preparedSent = &rd, false
	leading := n.lead == n.cfg.ID
	if rd.SoftState != nil {
		leading = rd.SoftState.RaftState == raft.StateLeader
	}
	if hs := rd.HardState; hs != nil && !raft.IsEmptyHardState(hs) && (hs.GetTerm() != n.savedTerm || hs.GetVote() != n.savedVote) {
		leading = false
	}
	if !leading || len(rd.Messages) == 0 {
		return nil
	}
	envs := make([]Envelope, 0, len(rd.Messages))
	for _, m := range rd.Messages {
		m, err := n.withState(m)
		if err != nil {
			n.err = err
			return nil
		}
		envs = append(envs, Envelope{ClusterID: n.cfg.ClusterID, Message: m})
	}
	n.preparedSent = true
	return envs
}

// Process does everything raft has made ready, in raft's order: persist the
// hard state and entries (durable) BEFORE handing out messages (but a
// leader's appends that Prepare already handed out); apply
// committed entries in one backend batch and commit it BEFORE replying; then
// answer the reads whose read index is now applied.
func (n *Node) Process() Output {
	var out Output
	if n.stopped() {
		out.Err = n.err
		out.Removed = n.removed
		out.Replies, n.replies = n.replies, nil // requests refused since the stop
		return out
	}
	for round := 0; ; round++ {
		if round == maxReadyRounds {
			panic(fmt.Sprintf("node %s: raft still has work after %d Ready rounds", FormatID(n.cfg.ID), round))
		}
		// Every round: a read index answered in the last round lets the
		// reads queued behind it ask for the next one at once.
		if n.stalled == nil {
			n.flushReads()
		}
		sentEarly := n.prepared != nil && n.preparedSent
		rd, fresh := n.nextReady()
		if rd == nil {
			break
		}
		if sentEarly {
			rd.Messages = nil // Prepare handed them out (Advance ignores its argument)
		}
		if fresh {
			n.noteState(rd, &out)
		}
		if !n.persist(rd) {
			break
		}
		if rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot) {
			if err := n.installSnapshot(rd.Snapshot); err != nil {
				n.err = err
				break
			}
		}
		for _, m := range rd.Messages {
			m, err := n.withState(m)
			if err != nil {
				n.err = err
				break
			}
			out.Messages = append(out.Messages, Envelope{ClusterID: n.cfg.ClusterID, Message: m})
		}
		if n.err != nil {
			break
		}
		if err := n.apply(rd.CommittedEntries); err != nil {
			n.err = err
			break
		}
		if err := n.maybeSnapshot(); err != nil {
			n.err = err
			break
		}
		n.reads.indexed(rd.ReadStates)
		n.rn.Advance(*rd)
	}
	if n.err == nil && n.stalled == nil {
		n.serveReads()
	}
	if n.err == nil && n.syncDue {
		n.syncDue = false
		if err := n.syncState(); err != nil {
			n.err = err
		}
	}
	out.Replies, n.replies = n.replies, nil
	out.Proposed, n.proposedWrites = n.proposedWrites, nil
	out.Applied, n.appliedWrites = n.appliedWrites, nil
	if n.err == nil {
		out.Watch = n.kv.WatchResponses()
	}
	out.Lead, out.Term = n.lead, n.term
	out.Removed = n.removed
	out.Err = n.err
	if n.stopped() {
		n.failAll()
		out.Replies = append(out.Replies, n.replies...)
		n.replies = nil
	}
	return out
}

func (n *Node) stopped() bool { return n.err != nil || n.removed }

// nextReady returns the Ready to handle: the one a full disk stalled, or a
// new one (fresh) if raft has one.
func (n *Node) nextReady() (rd *raft.Ready, fresh bool) {
	if n.stalled != nil {
		return n.stalled, false
	}
	if n.prepared != nil {
		rd, n.prepared, n.preparedSent = n.prepared, nil, false
		return rd, true
	}
	if !n.rn.HasReady() {
		return nil, false
	}
	r := n.rn.Ready()
	return &r, true
}

// noteState takes in a new Ready's term and leader.
func (n *Node) noteState(rd *raft.Ready, out *Output) {
	if rd.HardState != nil && rd.HardState.GetCommit() > n.commit {
		n.commit = rd.HardState.GetCommit()
	}
	if rd.HardState != nil && rd.HardState.GetTerm() != 0 {
		if rd.HardState.GetTerm() < n.term {
			panic(fmt.Sprintf("node %s: term went back from %d to %d", FormatID(n.cfg.ID), n.term, rd.HardState.GetTerm()))
		}
		n.term = rd.HardState.GetTerm()
	}
	if rd.SoftState != nil && rd.SoftState.Lead != n.lead {
		n.lead = rd.SoftState.Lead
		if n.lead != 0 {
			n.leadersSeen++
		}
		out.LeaderChanged = true
		n.failOnLeaderChange()
		n.noteLeadership()
	}
}

// persist saves a Ready's hard state, entries and snapshot. On a full disk
// it keeps the Ready to retry, raises NOSPACE and reports false; on any
// other failure the node stops.
func (n *Node) persist(rd *raft.Ready) bool {
	err := n.log.Save(rd.HardState, rd.Entries, rd.Snapshot)
	switch {
	case err == nil:
		n.stalled = nil
		if hs := rd.HardState; hs != nil && !raft.IsEmptyHardState(hs) {
			n.savedTerm, n.savedVote = hs.GetTerm(), hs.GetVote()
		}
		return true
	case errors.Is(err, wal.ErrNoSpace):
		n.stalled = rd
		n.raiseDisk()
		return false
	default:
		n.err = fmt.Errorf("node %s: save raft log: %w", FormatID(n.cfg.ID), err)
		return false
	}
}

// Status reports the member's state.
func (n *Node) Status() Status {
	bs := n.rn.BasicStatus()
	ci, _ := n.kv.ConsistentIndex()
	commitTerm, err := n.log.Term(bs.HardState.GetCommit())
	if err != nil {
		commitTerm = 0 // compacted or not yet saved: unknown
	}
	return Status{
		CommitTerm:         commitTerm,
		ID:                 n.cfg.ID,
		ClusterID:          n.cfg.ClusterID,
		Lead:               bs.Lead,
		Term:               bs.HardState.GetTerm(),
		State:              bs.RaftState,
		Commit:             bs.HardState.GetCommit(),
		Applied:            n.applied,
		Revision:           n.kv.Rev(),
		CompactRevision:    n.kv.CompactRev(),
		PendingRequests:    n.waiters.live,
		DuplicatesDropped:  n.duplicates,
		SnapshotIndex:      n.snapIndex,
		Snapshots:          n.snapshots,
		SnapshotsInstalled: n.snapshotsInstalled,
		LeaderTransferee:   bs.LeadTransferee,
		Removed:            n.removed,
		IsLearner:          n.IsLearner(),
		Stopped:            n.stopped(),
		ConsistentIndex:    ci,
		ReadIndexesFailed:  n.reads.failed,
		SlowReadIndexes:    n.reads.slow,
		Keys:               n.kv.Keys(),
		PutBytes:           n.kv.PutBytes(),
		WatchEvents:        n.kv.WatchEvents(),
		CompactedKeys:      n.kv.CompactedKeys(),
	}
}

// Members returns the cluster's members as this member has applied them,
// in ID order.
func (n *Node) Members() []Member { return n.members.sorted() }

// Member returns one member by ID.
func (n *Node) Member(id uint64) (Member, bool) {
	m, ok := n.members.members[id]
	if !ok {
		return Member{}, false
	}
	return cloneMember(*m), true
}

// Read answers a serializable range from this member's applied state at
// once, without raft: what etcd's serializable reads see.
func (n *Node) Read(r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := mvcc.ValidateRange(r); err != nil {
		return nil, err
	}
	resp, err := n.kv.Range(r)
	if resp != nil {
		resp.Header = n.header()
	}
	return resp, err
}

// PeerURL returns the first peer URL the applied membership has for member
// id: where a transport sends that member's messages.
func (n *Node) PeerURL(id uint64) (string, bool) {
	m, ok := n.members.members[id]
	if !ok || len(m.PeerURLs) == 0 {
		return "", false
	}
	return m.PeerURLs[0], true
}

// HashKV returns the hash of the key-value history this member holds (see
// mvcc.Store.Hash), its compact revision and its revision. Members that
// applied the same entries return the same triple.
func (n *Node) HashKV() (hash uint32, compactRev, rev int64) { return n.kv.Hash() }

// TransferLeadership asks raft to move leadership to transferee (operator
// "move leader"); only the leader acts on it.
func (n *Node) TransferLeadership(transferee uint64) {
	if !n.stopped() {
		n.rn.TransferLeader(transferee)
	}
}

// TransferTarget returns where a leader that is about to stop should hand
// leadership (etcd does this on a graceful shutdown): the recently active
// voter whose log matches this member's furthest, the lowest ID among
// equals. It returns 0 when this member does not lead or has no such peer.
func (n *Node) TransferTarget() uint64 {
	st := n.rn.Status()
	if st.RaftState != raft.StateLeader {
		return 0
	}
	ids := make([]uint64, 0, len(st.Progress))
	for id := range st.Progress {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var best, bestMatch uint64
	for _, id := range ids {
		pr := st.Progress[id]
		if id == n.cfg.ID || pr.IsLearner || !pr.RecentActive {
			continue
		}
		if best == 0 || pr.Match > bestMatch {
			best, bestMatch = id, pr.Match
		}
	}
	return best
}

// nextID returns a request ID unique across the cluster's lifetime, laid
// out like etcd's idutil: the member ID's low 16 bits, then a counter that
// starts at the member's start time in milliseconds.
func (n *Node) nextID() uint64 {
	n.nextSuffix = (n.nextSuffix + 1) & requestIDSuffixMask
	return (n.cfg.ID&0xffff)<<(requestIDTimeBits+requestIDCounterBits) | n.nextSuffix
}

// clusterHeader is the header etcd's Cluster service answers with: no
// revision, which membership has nothing to do with.
func (n *Node) clusterHeader() *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: n.cfg.ClusterID, MemberId: n.cfg.ID, RaftTerm: n.term}
}

func (n *Node) header() *pb.ResponseHeader {
	return &pb.ResponseHeader{
		ClusterId: n.cfg.ClusterID,
		MemberId:  n.cfg.ID,
		Revision:  n.kv.Rev(),
		RaftTerm:  n.term,
	}
}

func cmpUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// discardLogger drops raft's log lines but keeps its panics and fatals.
type discardLogger struct{}

func (discardLogger) Debug(...any)          {}
func (discardLogger) Debugf(string, ...any) {}
func (discardLogger) Error(...any)          {}
func (discardLogger) Errorf(string, ...any) {}
func (discardLogger) Info(...any)           {}
func (discardLogger) Infof(string, ...any)  {}
func (discardLogger) Warning(...any)        {}
func (discardLogger) Warningf(string, ...any) {
}
func (discardLogger) Fatal(v ...any)                 { panic(fmt.Sprint(v...)) }
func (discardLogger) Fatalf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }
func (discardLogger) Panic(v ...any)                 { panic(fmt.Sprint(v...)) }
func (discardLogger) Panicf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }
