package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/faults"
	"github.com/plumbdb/plumb/linearizability"
	"github.com/plumbdb/plumb/node"
	"github.com/plumbdb/plumb/node/backend"
	"github.com/plumbdb/plumb/node/wal"
)

const (
	// walSegmentBytes is small so that runs roll and release segments.
	walSegmentBytes = 256 << 10
	clusterToken    = "plumb-sim"
	peerPort        = 2380
	clientPort      = 2379
)

// member is one simulated host running a plumb member. Its disk (the raft
// log and the backend) outlives crashes; its node does not.
type member struct {
	idx  int
	name string
	id   uint64
	ip   string
	node *node.Node // nil while crashed
	inc  uint32     // incarnation: bumped at every crash, so stale ticks are dropped
	disk *wal.MemFS // the WAL and snapshot files; loses unsynced writes in a crash
	log  *node.DiskLog
	be   *backend.Memory // the key-value state: each committed batch is durable
	lead uint64          // the leader this member knows
	// moved: the member changed address and no member update has told the
	// cluster yet; convergence failures name it.
	moved  bool
	update *updateJob // the operator's member update for it, if any

	// Membership (member.go). state says whether the cluster counts it;
	// join marks a member added to the running cluster (it starts with
	// node.Config.Join); formerIP is the address it left at its last IP
	// change; foreign marks the one member of another cluster, which an
	// ip_reuse fault starts at an address this cluster's members used.
	state    memberState
	learner  bool
	join     bool
	formerIP string
	foreign  bool
	// seed is the membership the cluster gave a joining member (member
	// add's answer): its peers' addresses until it has applied a
	// membership of its own, as the server's transport uses it.
	seed []*pb.Member

	// streams are the watches this incarnation serves, in the order
	// they were created; ticks counts its ticks, for the leader check
	// watches get every election timeout.
	streams []*watchStream
	ticks   int
	// lockWatches are the lock users' watches this incarnation serves.
	lockWatches []*lockWatch

	// Disk I/O in flight (see disk.go).
	ioUntil          int64       // when the I/O in flight completes; 0 if none
	held             node.Output // outputs waiting for that I/O
	diskLatency      *faults.Range
	diskFaultID      uint64 // the disk latency or full fault in force
	tornArmed        bool   // the next crash tears the last write
	killPending      bool   // a torn kill waits for the next write
	killRestartAfter int64
}

func (m *member) alive() bool { return m.node != nil }

// memberState is what the cluster, as the operator knows it, makes of a
// simulated host.
type memberState uint8

const (
	// stateMember: a member of the cluster, running or down.
	stateMember memberState = iota
	// statePending: named by the scenario, but the operator's member add
	// (or the add back of a replace) has not been acknowledged yet; its
	// host runs nothing.
	statePending
	// stateRemoved: the operator's member remove was acknowledged and the
	// host stopped; it never runs again and no check counts it.
	stateRemoved
)

// counts reports whether m is a member of the simulated cluster: not
// removed, not waiting to be added, not another cluster's.
func (m *member) counts() bool { return m.state == stateMember && !m.foreign }

func (m *member) peerURL() string   { return fmt.Sprintf("http://%s:%d", m.ip, peerPort) }
func (m *member) clientURL() string { return fmt.Sprintf("http://%s:%d", m.ip, clientPort) }

// world is one simulated run: a cluster, its network, clients and clock.
type world struct {
	sc   *faults.Scenario
	opts Options
	now  int64
	q    eventQueue

	net       *network
	rngClient *rand.Rand
	rngFault  *rand.Rand
	rngClock  *rand.Rand
	rngDisk   *rand.Rand
	rngWatch  *rand.Rand

	// members are every host of the run, in the order they were created;
	// named are this cluster's by name (n1 is named[0]): the initial
	// members, then one per member the operator added (a foreign host
	// of another cluster has no name the scenario can use).
	members   []*member
	named     []*member
	clusterID uint64
	byAddr    map[string]int // peer and client URL -> member index
	nextIP    int

	clients []*client
	apps    []app // lease holders, lock users, the members' forwarding (app.go)
	// auth is the admin of authentication, and authOps the clients'
	// operations as the auth check judges them (auth.go); nil and empty
	// without an auth section.
	auth    *authAdmin
	authOps []authOp
	// appRefusals counts the watchers', lease holders' and lock users'
	// requests refused for want of permission (appUser's never changes),
	// and appRefused describes the first.
	appRefusals int
	appRefused  string
	// appCalls holds when each app request in flight was sent, with
	// authentication on: one sent before the enable was acknowledged may
	// be applied after it without a user (ErrUserEmpty), as in etcd.
	appCalls map[uint64]int64
	fwd      *forwarder
	leaseRec *leaseRecord
	locks    linearizability.Locks // the lock users' record
	nextHist int                   // next porcupine client ID
	history  linearizability.History
	// watchers are the watching applications; watchEvents counts the
	// events they recorded, and compactions what the compactor asked for.
	watchers    []*watcher
	watchEvents int
	compactions []linearizability.Compaction
	trace       *tracer
	stats       stats
	nextCutID   uint64

	electionTicks int
	tickNs        int64
	endNs         int64
	settled       bool // the members converged after the scenario ended
	settleEndNs   int64
	settleNote    string
	final         []finalRead // every caught-up member's reads of every key once the run is over
	resolved      map[int]linearizability.Resolution
	lin           linearizability.Result // the history's check, which the durable check builds on
	finalNote     string
	durableResult *linearizability.Result // the failed durable check, for its report
	writes        writeLedger
	ops           *operator // the operator's membership changes (member.go)
	// leaders holds, for each term, the member some member saw lead it
	// (the first seen); twoLeaders describes the first term seen with
	// two. misdelivered describes the first peer message a host stepped
	// that was not for it (another cluster's, or another member's).
	leaders      map[uint64]uint64
	twoLeaders   string
	misdelivered string
}

// writeLedger is what the members said of the clients' writes: which
// proposal each request became, and the revision each proposal created
// when it was applied. It resolves writes whose clients gave up on them,
// as etcd's robustness tests resolve theirs from the members' logs.
type writeLedger struct {
	proposals map[uint64][]node.ProposalID // request ID -> its proposals
	applied   map[node.ProposalID]int64    // proposal -> the revision it created (0: none)
	appliedBy map[node.ProposalID]string   // proposal -> the first member that applied it
	unknown   []unknownWrite               // writes recorded with an unknown outcome
	// maybe holds proposals applied in a step whose I/O a crash cut: the
	// apply may or may not have reached the disk, so until a member applies
	// it for good their fate is not known.
	maybe map[node.ProposalID]bool
	// conflict names a proposal two members applied at different
	// revisions: their states diverged.
	conflict string
}

type unknownWrite struct {
	index     int    // in the history
	requestID uint64 // the request the client sent
}

func newWriteLedger() writeLedger {
	return writeLedger{
		proposals: make(map[uint64][]node.ProposalID),
		applied:   make(map[node.ProposalID]int64),
		appliedBy: make(map[node.ProposalID]string),
		maybe:     make(map[node.ProposalID]bool),
	}
}

// noteProposed takes in the proposals a Process reported.
func (l *writeLedger) noteProposed(ps []node.ProposedWrite) {
	for _, p := range ps {
		l.proposals[p.RequestID] = append(l.proposals[p.RequestID], p.Proposal)
	}
}

// noteApplied takes in the applies m reported, once their step's I/O
// completed.
func (l *writeLedger) noteApplied(m *member, as []node.AppliedWrite) {
	for _, a := range as {
		rev, seen := l.applied[a.Proposal]
		switch {
		case !seen:
			l.applied[a.Proposal], l.appliedBy[a.Proposal] = a.Revision, m.name
		case rev != a.Revision && l.conflict == "":
			l.conflict = fmt.Sprintf("proposal %s/%d was applied at revision %d on %s but at %d on %s",
				node.FormatID(a.Proposal.Member), a.Proposal.Seq, rev, l.appliedBy[a.Proposal], a.Revision, m.name)
		}
	}
}

// cut takes in the applies of a step whose I/O a crash cut.
func (l *writeLedger) cut(applied []node.AppliedWrite) {
	for _, a := range applied {
		l.maybe[a.Proposal] = true
	}
}

// resolutions resolves every unknown write the ledger knows the fate of: a
// write one of whose proposals was applied (in a step whose I/O completed)
// took effect at the revision it created; one none of whose proposals was
// applied by the end of a run whose members converged never took effect
// before the end, which the check cannot tell from never, unless a crash
// cut the I/O of a step that applied it: that one stays unknown.
func (l *writeLedger) resolutions(settled bool) map[int]linearizability.Resolution {
	res := make(map[int]linearizability.Resolution)
	for _, u := range l.unknown {
		found, maybe := false, false
		for _, p := range l.proposals[u.requestID] {
			if rev, ok := l.applied[p]; ok {
				res[u.index], found = linearizability.Resolution{Revision: rev}, true
				break
			}
			maybe = maybe || l.maybe[p]
		}
		if !found && !maybe && settled {
			res[u.index] = linearizability.Resolution{}
		}
	}
	return res
}

// stats are the run's counters, reported in the Result.
type stats struct {
	events        int
	elections     int
	elected       int64   // when a member last became the leader
	okWrites      []int64 // return times of successful writes, in order
	crashes       int
	refusedStarts int // members whose disk failed its checks at start
	tornRepaired  int // starts whose WAL cut a torn write off its tail
	rejectedMsgs  int
	// rejected counts the peer messages Step refused, by reason: another
	// cluster's, another member's, a removed member's.
	rejectedCluster, rejectedMember, rejectedRemoved int
	// Snapshots taken and installed, summed over every member and
	// incarnation (a node's own counters start again at each restart).
	snapshots, snapshotsInstalled int
}

// countSnapshots adds a node's snapshot counters to the run's.
func (st *stats) countSnapshots(m *member) {
	s := m.node.Status()
	st.snapshots += s.Snapshots
	st.snapshotsInstalled += s.SnapshotsInstalled
}

func newWorld(sc *faults.Scenario, opts Options) *world {
	w := &world{
		sc:            sc,
		opts:          opts,
		byAddr:        map[string]int{},
		rngClient:     rand.New(newStream(opts.Seed, streamClients)),
		rngFault:      rand.New(newStream(opts.Seed, streamFaults)),
		rngClock:      rand.New(newStream(opts.Seed, streamClock)),
		rngDisk:       rand.New(newStream(opts.Seed, streamDisk)),
		rngWatch:      rand.New(newStream(opts.Seed, streamWatchers)),
		trace:         newTracer(opts.Trace),
		electionTicks: int(sc.Cluster.ElectionTimeout / sc.Cluster.HeartbeatInterval),
		tickNs:        int64(sc.Cluster.HeartbeatInterval),
		endNs:         int64(sc.Duration),
		writes:        newWriteLedger(),
		leaseRec:      newLeaseRecord(),
		leaders:       map[uint64]uint64{},
	}
	w.net = newNetwork(sc.Network, sc.Cluster.Members, rand.New(newStream(opts.Seed, streamNetwork)))
	var ids []uint64
	var initial []node.Member
	for i := range sc.Cluster.Members {
		m := &member{idx: i, name: fmt.Sprintf("n%d", i+1), disk: wal.NewMemFS(), be: backend.NewMemory()}
		m.ip = w.allocIP()
		m.id = node.MemberID([]string{m.peerURL()}, clusterToken, "")
		w.members = append(w.members, m)
		w.named = append(w.named, m)
		ids = append(ids, m.id)
		initial = append(initial, node.Member{ID: m.id, Name: m.name, PeerURLs: []string{m.peerURL()}})
		w.bindAddrs(m)
	}
	w.clusterID = node.ClusterID(ids)
	for _, m := range w.members {
		w.start(m, initial)
	}
	return w
}

// allocIP hands out the next free simulated address. Addresses are only
// strings inside the simulation; nothing is ever sent to them.
func (w *world) allocIP() string {
	w.nextIP++
	return fmt.Sprintf("10.0.%d.%d", w.nextIP/250, w.nextIP%250+1)
}

func (w *world) bindAddrs(m *member) {
	w.byAddr[m.peerURL()] = m.idx
	w.byAddr[m.clientURL()] = m.idx
}

// start builds a member's node from its disk, the path a production
// restart takes: the newest snapshot, the WAL after it, the backend. A disk
// that fails its checks (a corrupt record) keeps the member down.
func (w *world) start(m *member, initial []node.Member) {
	if m.state != stateMember {
		w.record(TraceEvent{Kind: "start", Node: m.name, Detail: "not started: not a member"})
		return
	}
	clusterID := w.clusterID
	if m.foreign {
		clusterID = node.ClusterID([]uint64{m.id})
	}
	log, err := node.OpenDiskLog(m.disk, m.id, clusterID,
		wal.Options{SegmentBytes: walSegmentBytes, Planted: planted(w.opts.PlantBug, m.idx)})
	if err != nil {
		w.stats.refusedStarts++
		w.record(TraceEvent{Kind: "refused", Node: m.name, Detail: err.Error()})
		return
	}
	m.log = log
	if repaired := log.Repaired(); repaired != "" {
		w.stats.tornRepaired++
		w.record(TraceEvent{Kind: "repaired", Node: m.name, Detail: repaired})
	}
	n, err := node.New(node.Config{
		ID:             m.id,
		ClusterID:      clusterID,
		Name:           m.name,
		ClientURLs:     []string{m.clientURL()},
		InitialMembers: initial,
		Join:           m.join,
		Log:            log,
		Backend:        m.be,
		ElectionTicks:  w.electionTicks,
		HeartbeatTicks: 1,
		TickMillis:     w.sc.Cluster.HeartbeatInterval.Milliseconds(), // one tick is one heartbeat interval
		SnapshotCount:  w.sc.Cluster.SnapshotCount,
		StartMillis:    w.now / 1e6,
		ReportWrites:   true,
		Planted:        planted(w.opts.PlantBug, m.idx),
	})
	if err != nil {
		if !errors.Is(err, node.ErrIDRemoved) {
			// A member that applied its own removal before the operator
			// stopped it refuses to start, as it should: not a disk fault.
			w.stats.refusedStarts++
		}
		w.record(TraceEvent{Kind: "refused", Node: m.name, Detail: err.Error()})
		return
	}
	m.node, m.lead = n, 0
	m.inc++
	// Members' clocks tick out of phase, as real machines' do.
	w.schedule(&event{at: w.now + 1 + w.rngClock.Int64N(w.tickNs), kind: evTick, index: m.idx, inc: m.inc})
	w.record(TraceEvent{Kind: "start", Node: m.name, Detail: m.ip})
}

func (w *world) crash(m *member, why string) {
	if !m.alive() {
		w.record(TraceEvent{Kind: "crash", Node: m.name, Detail: "already down"})
		return
	}
	w.stats.countSnapshots(m)
	w.closeStreams(m, "member crashed: "+why)
	w.endLockWatches(m)
	m.node, m.log, m.lead = nil, nil, 0
	m.inc, m.ticks = m.inc+1, 0
	w.crashStorage(m)
	w.stats.crashes++
	w.record(TraceEvent{Kind: "crash", Node: m.name, Detail: why})
}

func (w *world) restart(m *member) {
	if m.alive() {
		w.record(TraceEvent{Kind: "restart", Node: m.name, Detail: "already running"})
		return
	}
	w.start(m, nil)
	w.drive(m)
}

func (w *world) schedule(e *event) {
	ev := w.q.alloc()
	*ev = *e
	w.q.push(ev)
}

func (w *world) record(ev TraceEvent) {
	ev.At = w.now
	w.trace.record(ev)
}

// send puts a raft message on the network, addressed by the peer URL the
// sender's applied membership has for the recipient: after an IP change that
// the operator has not yet reported, that address is stale.
//
// A message that cannot leave, because nobody listens at the address (no
// member holds it, or its member is down) or a partition cuts the link, is
// not sent, and the sender is told the peer is unreachable (and that a
// snapshot failed), as the server's transport tells raft when a peer's
// connection breaks: raft then probes that peer instead of streaming to
// it. A message lost at random goes unnoticed, as on a real network.
func (w *world) send(from *member, env node.Envelope) {
	to := env.Message.GetTo()
	addr, ok := from.node.PeerURL(to)
	if !ok {
		addr, ok = seedURL(from, to)
	}
	toName := w.nameOf(to)
	msgType := msgTypeName(env.Message.GetType())
	isSnap := env.Message.GetType() == raftpb.MessageType_MsgSnap
	if !ok {
		w.record(TraceEvent{Kind: "drop", Node: from.name, Peer: toName, Msg: msgType, Detail: "no address"})
		w.reportUnreachable(from, to, isSnap)
		return
	}
	dst, bound := w.byAddr[addr]
	toIdx := dst
	if !bound {
		toIdx = from.idx // nobody holds the address: no cut applies
	}
	// Drawn for every message whatever its fate, so that one message's
	// fate never shifts another's.
	delays, copies := w.net.peerFate(from.idx, toIdx)
	if why := w.unreachable(from, addr, dst, bound); why != "" {
		w.record(TraceEvent{Kind: "send", Node: from.name, Peer: toName, Msg: msgType,
			Term: env.Message.GetTerm(), Index: env.Message.GetIndex(), Detail: "unreachable: " + why})
		w.reportUnreachable(from, to, isSnap)
		return
	}
	w.record(TraceEvent{Kind: "send", Node: from.name, Peer: toName, Msg: msgType,
		Term: env.Message.GetTerm(), Index: env.Message.GetIndex(), Detail: copiesDetail[copies]})
	if copies == 0 && isSnap {
		// A stream that fails tells its sender, as etcd's transport does.
		from.node.ReportSnapshot(to, false)
	}
	for c := range copies {
		e := env
		if c == 1 {
			// raft may modify a message it steps; a duplicate must be its own.
			e.Message = proto.CloneOf(env.Message)
		}
		w.schedule(&event{at: w.now + delays[c], kind: evDeliver, addr: addr, env: e, from: from.idx})
	}
}

// deliver hands a message to whoever holds the address now. A member that
// moved away no longer receives its old address's traffic; a member that
// holds a reused address rejects traffic meant for another (Step checks the
// cluster and member IDs).
func (w *world) deliver(e *event) {
	msgType := msgTypeName(e.env.Message.GetType())
	fromName := w.members[e.from].name
	idx, ok := w.byAddr[e.addr]
	if !ok || !w.members[idx].alive() {
		w.record(TraceEvent{Kind: "lost", Node: fromName, Msg: msgType, Detail: e.addr})
		w.reportSnapshot(e, false)
		return
	}
	m := w.members[idx]
	if w.busy(m) {
		w.deferInput(m, e)
		return
	}
	err, crashed := w.step(m, e)
	if crashed {
		return
	}
	if err != nil {
		w.countRejected(err)
		w.record(TraceEvent{Kind: "reject", Node: m.name, Peer: fromName, Msg: msgType, Detail: err.Error()})
		w.reportSnapshot(e, false)
		return
	}
	w.reportSnapshot(e, true)
	w.record(TraceEvent{Kind: "deliver", Node: m.name, Peer: fromName, Msg: msgType,
		Term: e.env.Message.GetTerm(), Index: e.env.Message.GetIndex()})
	w.drive(m)
}

// reportSnapshot tells a snapshot's sender whether it arrived, if the
// sender still runs (raft waits for this before it sends another).
func (w *world) reportSnapshot(e *event, delivered bool) {
	if e.env.Message.GetType() != raftpb.MessageType_MsgSnap {
		return
	}
	if sender := w.members[e.from]; sender.alive() {
		sender.node.ReportSnapshot(e.env.Message.GetTo(), delivered)
		w.drive(sender)
	}
}

func (w *world) tick(e *event) {
	m := w.members[e.index]
	if !m.alive() || m.inc != e.inc {
		return
	}
	if w.busy(m) {
		w.deferInput(m, e)
		return
	}
	m.node.Tick()
	w.drive(m)
	if m.alive() {
		w.monitorLeader(m)
	}
	w.schedule(&event{at: w.now + w.tickNs, kind: evTick, index: m.idx, inc: m.inc})
}

func (w *world) nameOf(id uint64) string {
	if id == 0 {
		return ""
	}
	for _, m := range w.members {
		if m.id == id {
			return m.name
		}
	}
	return node.FormatID(id)
}

// leader returns the live member that leads at the highest term, if any.
func (w *world) leader() (*member, bool) {
	var best *member
	var bestTerm uint64
	for _, m := range w.members {
		if !m.alive() || m.foreign {
			continue
		}
		st := m.node.Status()
		if st.State == raft.StateLeader && (best == nil || st.Term > bestTerm) {
			best, bestTerm = m, st.Term
		}
	}
	return best, best != nil
}

// resolve turns a scenario target into a member at the moment a fault fires.
func (w *world) resolve(t faults.Target) (*member, string) {
	switch {
	case t.Member > 0:
		return w.named[t.Member-1], ""
	case t.Leader:
		if m, ok := w.leader(); ok {
			return m, ""
		}
		for _, m := range w.named {
			if m.alive() && m.counts() {
				return m, "no leader; chose the first live member"
			}
		}
		return w.named[0], "no member is running"
	}
	lead, _ := w.leader()
	var followers []*member
	for _, m := range w.named {
		if m.alive() && m.counts() && m != lead {
			followers = append(followers, m)
		}
	}
	if len(followers) == 0 {
		return w.named[w.rngFault.IntN(len(w.named))], "no live follower; chose any member"
	}
	return followers[w.rngFault.IntN(len(followers))], ""
}

// endpoints returns every member's client URL as clients know them.
func (w *world) endpoints() []string {
	out := make([]string, len(w.members))
	for i, m := range w.members {
		out[i] = m.clientURL()
	}
	return out
}

// memberNames lists names in index order, for messages.
func (w *world) memberNames(ms []*member) []string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.name
	}
	slices.Sort(names)
	return names
}

// copiesDetail names how many copies of a message the network delivers.
var copiesDetail = [3]string{"lost", "", "duplicated"}

// msgTypeNames caches raft message type names: protobuf's String() goes
// through reflection, too slow for every message of a run.
var msgTypeNames = func() map[raftpb.MessageType]string {
	m := map[raftpb.MessageType]string{}
	for v, name := range raftpb.MessageType_name {
		m[raftpb.MessageType(v)] = name
	}
	return m
}()

func msgTypeName(t raftpb.MessageType) string {
	if name, ok := msgTypeNames[t]; ok {
		return name
	}
	return t.String()
}
