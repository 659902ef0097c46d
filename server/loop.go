package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/plumbdb/plumb/node"
	"github.com/plumbdb/plumb/node/backend/bolt"
	"github.com/plumbdb/plumb/node/mvcc"
)

// Limits of the loop, each a named bound.
const (
	callQueue       = 8192 // client requests waiting to enter the loop
	maxDrainPerPass = 4096 // inputs taken in before one Process: one fsync covers them all
)

// errRemoved ends a member that applied its own removal.
var errRemoved = errors.New("this member was removed from the cluster")

// call is one client request on its way through the loop. done is
// buffered, so the loop never waits for a caller that gave up.
type call struct {
	req  node.Request
	done chan node.Reply
}

// loop is the one goroutine that drives the node, as the simulator does
// but with the wall clock: it takes in ticks, peer messages and client
// requests, then calls Process once for all of them (so one WAL fsync
// covers every request that arrived meanwhile), sends the messages and
// delivers the replies. Nothing else touches the node.
type loop struct {
	n       *node.Node
	be      *bolt.Backend
	tr      *transport
	logger  *slog.Logger
	metrics *metrics
	// watchEventsTaken counts the events the loop took from the node's
	// watchers to route to their streams (etcd_debugging_mvcc_events_total,
	// etcd's events its watch server received from mvcc).
	watchEventsTaken uint64
	tick             time.Duration
	// auth says who sends each request (auth.go); set before the loop runs.
	auth *authenticator

	calls chan *call
	execs chan func(*node.Node)
	stop  chan struct{}
	done  chan struct{}
	err   error // why the loop ended; read after done is closed

	pending map[uint64]*call
	nextID  uint64
	// watches routes each node watcher's responses to its stream.
	watches map[mvcc.WatchID]*watchRoute
	// watchTerm is the raft term watch response headers carry: the term
	// as of the last Process.
	watchTerm uint64
	members   []node.Member // the membership the transport was last given
	// removedByPeer: a peer refused this member as removed from the
	// cluster; the loop stops (errRemoved) after this pass.
	removedByPeer bool
	// learner: this member is a learner (see learner.go), for the gRPC
	// interceptors, which must not wait for the loop.
	learner atomic.Bool
	// seed is the membership a joining member was given by the cluster:
	// the transport's peers until the node has applied one of its own.
	seed []node.Member
	// installed is how many snapshots from a leader observe has seen.
	installed int
	// compactRev is the compaction revision observe saw last, and
	// compactSeen whether it saw one yet: a compaction the member finds
	// on its disk at start is not one it ran.
	compactRev  int64
	compactSeen bool
	// lead is the leader as of the last Process, for raft's leader-change
	// lines.
	lead uint64
	// ready is closed once this member's attributes (--name and
	// --advertise-client-urls) are in the replicated membership and a
	// leader is known: etcd's "published local member to cluster through
	// raft", after which it is ready to serve client requests.
	ready          chan struct{}
	clientURLs     []string      // --advertise-client-urls, which publishing replicates
	publishTimeout time.Duration // reported, as etcd's publish-timeout
}

func newLoop(n *node.Node, be *bolt.Backend, tr *transport, logger *slog.Logger, m *metrics, tick time.Duration) *loop {
	return &loop{
		n: n, be: be, tr: tr, logger: logger, metrics: m, tick: tick,
		calls:   make(chan *call, callQueue),
		execs:   make(chan func(*node.Node)),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		pending: map[uint64]*call{},
		watches: map[mvcc.WatchID]*watchRoute{},
		ready:   make(chan struct{}),
	}
}

// checkPublished closes l.ready, logging etcd's line, once the member's
// own attributes are in the applied membership and a leader is known.
func (l *loop) checkPublished() {
	select {
	case <-l.ready:
		return
	default:
	}
	if l.n.Lead() == 0 {
		return
	}
	for _, m := range l.n.Members() {
		if m.ID != l.n.ID() || m.Name == "" || !slices.Equal(m.ClientURLs, l.clientURLs) {
			continue
		}
		st := l.n.Status()
		l.logger.Info("published local member to cluster through raft",
			"local-member-id", node.FormatID(m.ID),
			"local-member-attributes", fmt.Sprintf("{Name:%s ClientURLs:[%s]}", m.Name, strings.Join(m.ClientURLs, " ")),
			"cluster-id", node.FormatID(st.ClusterID),
			"publish-timeout", l.publishTimeout.String())
		close(l.ready)
	}
}

// do submits req and waits for its reply, the context, or the loop's end.
// A write whose caller gives up may still be applied: the client sees the
// context's error, which clientv3 treats as an unknown outcome.
func (l *loop) do(ctx context.Context, req node.Request) (rep node.Reply, err error) {
	if req.Creds == (node.Credentials{}) && l.auth != nil {
		req.Creds = l.auth.credentials(ctx)
	}
	if typ := requestType(req); typ != "" {
		start := time.Now()
		defer func() {
			l.metrics.timings.request.WithLabelValues(typ, boolLabel(err == nil)).Observe(time.Since(start).Seconds())
		}()
	}
	c := &call{req: req, done: make(chan node.Reply, 1)}
	select {
	case l.calls <- c:
	case <-ctx.Done():
		return node.Reply{}, ctx.Err()
	case <-l.done:
		return node.Reply{}, node.ErrStopped
	}
	select {
	case rep := <-c.done:
		return rep, rep.Err
	case <-ctx.Done():
		return node.Reply{}, ctx.Err()
	case <-l.done:
		// The loop answers every call it took before it ends (finish);
		// select may still pick this case first.
		select {
		case rep := <-c.done:
			return rep, rep.Err
		default:
			return node.Reply{}, node.ErrStopped // never taken: never handed to the node
		}
	}
}

// exec runs fn on the loop's goroutine, where the node may be read, and
// waits for it.
func (l *loop) exec(ctx context.Context, fn func(*node.Node)) error {
	finished := make(chan struct{})
	wrapped := func(n *node.Node) { fn(n); close(finished) }
	select {
	case l.execs <- wrapped:
	case <-ctx.Done():
		return ctx.Err()
	case <-l.done:
		return node.ErrStopped
	}
	select {
	case <-finished:
		return nil
	case <-l.done:
		return node.ErrStopped
	}
}

func (l *loop) run() {
	defer close(l.done)
	ticker := time.NewTicker(l.tick)
	defer ticker.Stop()
	l.syncPeers()
	for {
		select {
		case <-l.stop:
			// The applied state to the backend, durably, so that the next
			// start need not replay the log (which holds it all anyway).
			if err := l.n.Flush(); err != nil {
				l.logger.Error("could not make the applied state durable before stopping; the next start replays it from the WAL", "err", err)
			}
			l.finish(node.ErrStopped)
			return
		case <-ticker.C:
			l.n.Tick()
			l.syncPeers()
			l.observe()
		case env := <-l.tr.inbox:
			l.step(env)
		case c := <-l.calls:
			l.submit(c)
		case r := <-l.tr.reports:
			l.report(r)
		case fn := <-l.execs:
			fn(l.n)
		}
		l.drain()
		err := l.process()
		if err == nil && l.removedByPeer {
			err = errRemoved
		}
		if err != nil {
			l.err = err
			l.finish(err)
			if errors.Is(err, errRemoved) {
				l.lingerRemoved()
			}
			return
		}
	}
}

// removedLingerTicks: how long a member that applied its own removal
// waits before it stops, in ticks (etcd's stopWithDelay: 10 heartbeats).
// Its last messages are still in the transport's queues: a leader that
// removed itself must get the commit of its removal to the others, or a
// cluster of two left with one would wait for the removed member's vote.
const removedLingerTicks = 10

func (l *loop) lingerRemoved() {
	// Its removal to the backend, so that a restart from this data dir
	// is refused at once (node.New) rather than replaying into it.
	if err := l.n.Flush(); err != nil {
		l.logger.Warn("could not make the applied state durable before stopping", "err", err)
	}
	l.logger.Warn("this member was removed from the cluster; stopping once its last messages are out",
		"after", removedLingerTicks*l.tick)
	select {
	case <-l.stop:
	case <-time.After(removedLingerTicks * l.tick):
	}
}

// drain takes in whatever else is waiting, up to a bound, so that one
// Process (one fsync) serves it all.
func (l *loop) drain() {
	for range maxDrainPerPass {
		select {
		case env := <-l.tr.inbox:
			l.step(env)
		case c := <-l.calls:
			l.submit(c)
		case r := <-l.tr.reports:
			l.report(r)
		default:
			return
		}
	}
}

func (l *loop) step(env node.Envelope) {
	err := l.n.Step(env)
	if err != nil && !errors.Is(err, node.ErrStopped) {
		l.metrics.peerRefused.Inc()
		l.logger.Warn("refused a peer message", "from", node.FormatID(env.Message.GetFrom()), "err", err)
	}
	if errors.Is(err, node.ErrRemovedMember) {
		l.tr.markRemoved(env.Message.GetFrom())
	}
}

func (l *loop) submit(c *call) {
	l.nextID++
	c.req.ID = l.nextID
	l.pending[c.req.ID] = c
	l.n.Submit(c.req)
}

func (l *loop) report(r peerReport) {
	if r.removed {
		l.removedByPeer = true
		return
	}
	if r.snapshot {
		l.n.ReportSnapshot(r.to, r.delivered)
		return
	}
	l.n.ReportUnreachable(r.to)
}

// process runs the node's Ready handling, then acts on its output: the
// messages and replies in it are already durable.
func (l *loop) process() error {
	// A leader's appends go out while it saves them (node.Prepare).
	for _, r := range l.tr.send(l.n.Prepare()) {
		l.report(r)
	}
	out := l.n.Process()
	for _, r := range l.tr.send(out.Messages) {
		l.report(r)
	}
	for _, rep := range out.Replies {
		c, ok := l.pending[rep.ID]
		if !ok {
			continue
		}
		delete(l.pending, rep.ID)
		if rep.Err != nil {
			l.metrics.proposalsFailed.Inc()
		}
		c.done <- rep
	}
	l.watchTerm = out.Term
	l.routeWatch(l.n, out.Watch)
	if out.LeaderChanged {
		l.metrics.leaderChanges.Inc()
		l.metrics.hasLeader.Set(boolGauge(out.Lead != 0))
		l.metrics.isLeader.Set(boolGauge(out.Lead == l.n.ID()))
		if out.Lead != l.lead {
			raftLogger{l.logger}.Info(leaderChange(l.n.ID(), l.lead, out.Lead, out.Term))
			l.lead = out.Lead
		}
	}
	l.checkPublished()
	switch {
	case out.Err != nil:
		return fmt.Errorf("storage failed, the member stops: %w", out.Err)
	case out.Removed:
		return errRemoved
	}
	return nil
}

// finish answers every request still waiting: the member is going away.
func (l *loop) finish(err error) {
	if !errors.Is(err, node.ErrStopped) {
		l.logger.Error("member stopping", "err", err)
	}
	for id, c := range l.pending {
		// A write the node was handed may be in the raft log of a quorum
		// already and commit after this member stops: its outcome is
		// unknown, never a definite failure.
		stopped := node.ErrStopped
		if mayTakeEffect(c.req) {
			stopped = node.ErrStoppedInFlight
		}
		c.done <- node.Reply{ID: id, Err: stopped}
		delete(l.pending, id)
	}
}

// mayTakeEffect reports whether a request handed to the node may change
// the cluster even if no reply comes: everything but reads (a keep-alive
// renews its lease: it may have).
func mayTakeEffect(req node.Request) bool {
	switch {
	case req.Range != nil, req.MemberList != nil, req.LeaseTimeToLive != nil, req.LeaseLeases != nil:
		return false
	case req.Txn != nil:
		return !mvcc.IsTxnReadOnly(req.Txn)
	}
	return true
}

// syncPeers hands the transport the applied membership when it changed
// (a member update moves a peer to its new address).
func (l *loop) syncPeers() {
	l.learner.Store(l.n.IsLearner())
	ms := l.n.Members()
	if len(ms) == 0 {
		ms = l.seed
	}
	if sameMembers(ms, l.members) {
		return
	}
	l.knownPeers(ms)
	l.members = ms
	l.tr.update(ms)
}

// knownPeers sets etcd_network_known_peers as etcd keeps it: 1 for each
// member the transport knows (the member itself included), 0 once removed.
func (l *loop) knownPeers(ms []node.Member) {
	self := node.FormatID(l.n.ID())
	for _, m := range l.members {
		if !slices.ContainsFunc(ms, func(n node.Member) bool { return n.ID == m.ID }) {
			l.metrics.knownPeers.WithLabelValues(self, node.FormatID(m.ID)).Set(0)
		}
	}
	for _, m := range ms {
		l.metrics.knownPeers.WithLabelValues(self, node.FormatID(m.ID)).Set(1)
	}
}

func sameMembers(a, b []node.Member) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || !slices.Equal(a[i].PeerURLs, b[i].PeerURLs) {
			return false
		}
	}
	return true
}

// observe updates the gauges once a tick.
func (l *loop) observe() {
	st := l.n.Status()
	l.metrics.hasLeader.Set(boolGauge(st.Lead != 0))
	l.metrics.isLeader.Set(boolGauge(st.State == raft.StateLeader))
	l.metrics.appliedIndex.Set(float64(st.Applied))
	l.metrics.committedIndex.Set(float64(st.Commit))
	l.metrics.pending.Set(float64(st.PendingRequests))
	l.metrics.term.Set(float64(st.Term))
	l.metrics.snapshots.Set(float64(st.SnapshotIndex))
	if st.SnapshotsInstalled > l.installed {
		l.metrics.snapshotsInstalled.Add(float64(st.SnapshotsInstalled - l.installed))
		l.installed = st.SnapshotsInstalled
		l.logger.Info("installed a snapshot from the leader", "index", st.SnapshotIndex, "applied", st.Applied)
	}
	l.metrics.isLearner.Set(boolGauge(st.IsLearner))
	if l.compactSeen && st.CompactRevision > l.compactRev {
		l.metrics.compactionLast.Set(float64(time.Now().Unix())) // to the tick of its apply
	}
	l.compactRev, l.compactSeen = st.CompactRevision, true
	total, inUse := l.be.DiskBytes()
	l.metrics.dbSize.Set(float64(total))
	l.metrics.dbInUse.Set(float64(inUse))
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
