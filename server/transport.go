package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/plumbdb/plumb/node"
)

// Limits of the peer transport, each a named bound.
const (
	peerQueueMsgs      = 4096     // messages waiting per peer (etcd's streamBufSize)
	inboxMsgs          = 4096     // received messages waiting for the loop (etcd's recvBufSize)
	snapshotChunkBytes = 1 << 20  // a snapshot travels in chunks of this size
	maxPeerFrameBytes  = 64 << 20 // the largest frame on the peer port
	peerBackoffMin     = 50 * time.Millisecond
	peerBackoffMax     = 2 * time.Second
	peerDialTimeout    = 2 * time.Second
	// peerHandshakeTimeout bounds the upgrade of a message stream, from
	// the request to the 101, and how long a snapshot's sender waits for
	// the receiver's go-ahead (100 Continue) before sending its data.
	peerHandshakeTimeout = 2 * time.Second
	// peerWriteTimeout bounds each write to a peer's connection (etcd's
	// ConnWriteTimeout): a peer that takes nothing for this long is dead,
	// and its stream is dropped and dialled again.
	peerWriteTimeout = 5 * time.Second
	// peerHeaderTimeout bounds how long the peer port waits for a
	// request's headers.
	peerHeaderTimeout = 10 * time.Second
	// peerWriteBufferBytes and peerReadBufferBytes size a message
	// stream's buffers: a batch of queued messages goes out in writes of
	// up to this, and is read in reads of up to this.
	peerWriteBufferBytes = 64 << 10
	peerReadBufferBytes  = 64 << 10
	// peerBatchMsgs is the most messages a stream writes between two
	// flushes while its queue stays full, so that no message waits in
	// the buffer behind an endless run of others.
	peerBatchMsgs = 256
	// peerReasonBytes bounds the text a peer sends to say why it ended a
	// stream or refused a request.
	peerReasonBytes = 4 << 10
	// peerLingerTimeout is how long a receiver that ends a stream with a
	// reason waits for its sender to stop sending, so that the reason is
	// read before the connection is reset.
	peerLingerTimeout = 500 * time.Millisecond
	// peerLingerBytes bounds what it reads (and drops) meanwhile.
	peerLingerBytes     = 1 << 20
	snapshotSendTimeout = 10 * time.Minute
	// snapshotStreamsMax bounds the snapshots received at once: only the
	// leader sends a member snapshots, one at a time, so two leave room
	// for one from a deposed leader. More are refused; raft retries.
	snapshotStreamsMax = 2
	// snapshotSlackBytes is allowed over a snapshot's framed state for its
	// header and checksum (see snapshotBytesMax).
	snapshotSlackBytes = 1 << 20
)

// peerReport is what a peer's goroutine tells the loop: a snapshot send
// ended (delivered or not), or a peer could not be reached. raft must hear
// both (ReportSnapshot, ReportUnreachable) to keep replicating.
type peerReport struct {
	to        uint64
	snapshot  bool
	delivered bool
	// removed: the peer refused this member as removed from the cluster
	// (410 Gone): the member must stop (see markRemoved).
	removed bool
}

// transport carries raft messages between members over HTTP on the peer
// URLs: one long-lived message stream per peer (transport_stream.go), and
// one request per snapshot, sent in chunks (transport_snapshot.go). Every
// frame names the cluster, the sender and the receiver (peer_codec.go).
// Sending never blocks the loop: each peer has a bounded queue, and a
// message that does not fit is dropped and the peer reported unreachable
// (raft sends it again); every dial, handshake and write has a deadline.
//
// A message takes as few hand-offs as etcd's rafthttp gives it: the loop
// queues it, the peer's one writer goroutine encodes it straight into the
// connection's buffer (flushed when the queue is empty), and the
// receiver's one reader goroutine decodes it straight off the connection
// into inbox, which the loop reads.
type transport struct {
	self, clusterID uint64
	logger          *slog.Logger
	metrics         *metrics
	inbox           chan node.Envelope
	reports         chan peerReport
	stopped         chan struct{}
	// snapshotBytesMax is the largest snapshot this member accepts, from
	// its backend quota; snapshotSlots holds a token per snapshot being
	// received (at most snapshotStreamsMax).
	snapshotBytesMax uint64
	snapshotSlots    chan struct{}
	// mux is the peer port's HTTP handler: the raft stream and snapshot
	// routes are the transport's; server.go may register more (anything
	// not registered gets 404). server is the peer port's HTTP server
	// (serve), snapshots the client that sends snapshots.
	mux       *http.ServeMux
	server    *http.Server
	snapshots map[string]*http.Client // by peerEndpoint.network
	// tls dials https:// peers (peerTLSConfigs): its certificate, its CAs
	// and its rules on the peer's certificate.
	tls *tls.Config

	mu    sync.Mutex
	peers map[uint64]*peer
	wg    sync.WaitGroup // the peers' goroutines
	// inbound holds the received streams' connections (hijacked from the
	// HTTP server, which no longer closes them) so that stop can close
	// them; handlers counts the peer handlers running, and closing refuses
	// new ones once stop began.
	inbound  map[net.Conn]uint64
	handlers sync.WaitGroup
	closing  bool
	// heartbeatInterval is the leader's heartbeat period: a heartbeat
	// handed to send more than twice that after the previous one to the
	// same peer, in the same term, is counted as a heartbeat send failure
	// (etcd_server_heartbeat_send_failures_total), as etcd counts it.
	heartbeatInterval time.Duration
	// removed holds the members this member's node refused as removed
	// (markRemoved): their requests are answered 410 Gone, which tells
	// them to stop, as etcd's peers tell a removed member.
	removed map[uint64]bool
}

// peer is the sending side towards one member at one address. A member
// update replaces it with a new one at the new address.
type peer struct {
	id     uint64
	url    string
	ep     peerEndpoint
	queue  chan *raftpb.Message
	snaps  chan *raftpb.Message
	cancel context.CancelFunc
	// lastHeartbeat and lastHeartbeatTerm are when send last queued a
	// heartbeat for this peer, and in which term (under transport.mu).
	lastHeartbeat     time.Time
	lastHeartbeatTerm uint64
	// heartbeatWrittenNanos is when the stream last wrote a heartbeat to
	// this peer (UnixNano), zero once its response was timed.
	heartbeatWrittenNanos atomic.Int64
}

func newTransport(self, clusterID uint64, quotaBytes int64, heartbeatInterval time.Duration, peerTLS *tls.Config, logger *slog.Logger, m *metrics) *transport {
	t := &transport{
		heartbeatInterval: heartbeatInterval,
		self:              self,
		clusterID:         clusterID,
		logger:            logger,
		metrics:           m,
		inbox:             make(chan node.Envelope, inboxMsgs),
		reports:           make(chan peerReport, peerQueueMsgs),
		stopped:           make(chan struct{}),
		snapshotBytesMax:  snapshotBytesMax(quotaBytes),
		snapshotSlots:     make(chan struct{}, snapshotStreamsMax),
		mux:               http.NewServeMux(),
		peers:             map[uint64]*peer{},
		inbound:           map[net.Conn]uint64{},
		removed:           map[uint64]bool{},
		tls:               peerTLS,
	}
	t.mux.HandleFunc("POST "+peerStreamPath, t.serveStream)
	t.mux.HandleFunc("POST "+peerSnapshotPath, t.serveSnapshot)
	t.server = &http.Server{Handler: t.mux, ReadHeaderTimeout: peerHeaderTimeout}
	t.snapshots = map[string]*http.Client{
		"tcp":  {Transport: peerHTTPTransport("tcp", peerTLS)},
		"unix": {Transport: peerHTTPTransport("unix", peerTLS)},
	}
	return t
}

// snapshotBytesMax is the largest snapshot a member with a backend quota
// of quotaBytes accepts. A snapshot carries the leader's replicated state,
// which the quota bounds (in key and value bytes), framed record by record
// with its bucket's name and the lengths: that framing adds up to a quarter
// for the smallest records the state holds (one-byte keys, empty values),
// and the quota is checked before a write, so a leader may be a little
// past it. Half the quota over it, and snapshotSlackBytes, cover both; a
// snapshot larger than that could not be the state of a cluster this
// member serves, and is refused before it is received.
func snapshotBytesMax(quotaBytes int64) uint64 {
	q := uint64(max(quotaBytes, 0))
	return q + q/2 + snapshotSlackBytes
}

// serve serves the peer port on l until stop; it returns
// http.ErrServerClosed then.
func (t *transport) serve(l net.Listener) error {
	return t.server.Serve(l)
}

// update makes the peer set match the applied membership: a goroutine pair
// per member other than this one, at its first peer URL. It only starts
// goroutines: the dialling is theirs, so the loop never waits on it.
func (t *transport) update(members []node.Member) {
	t.mu.Lock()
	defer t.mu.Unlock()
	want := map[uint64]string{}
	for _, m := range members {
		if m.ID != t.self && len(m.PeerURLs) > 0 {
			want[m.ID] = m.PeerURLs[0]
		}
	}
	for id, p := range t.peers {
		if u, ok := want[id]; !ok || u != p.url {
			p.cancel()
			delete(t.peers, id)
			t.logger.Info("peer removed", "peer", node.FormatID(id), "url", p.url)
		}
	}
	for id, u := range want {
		if _, ok := t.peers[id]; ok || t.closing {
			continue
		}
		ep, err := parsePeerURL(u)
		if err != nil {
			t.logger.Error("peer has a bad URL; not sending to it", "peer", node.FormatID(id), "url", u, "err", err)
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		p := &peer{id: id, url: u, ep: ep, cancel: cancel,
			queue: make(chan *raftpb.Message, peerQueueMsgs), snaps: make(chan *raftpb.Message, 1)}
		t.peers[id] = p
		t.wg.Add(1)
		go t.runPeer(ctx, p)
		t.logger.Info("peer added", "peer", node.FormatID(id), "url", u)
	}
}

// send queues messages for their peers; it never blocks. It returns what
// raft must be told at once: peers that could not take a message, and
// snapshots that could not even be queued.
func (t *transport) send(envs []node.Envelope) []peerReport {
	var out []peerReport
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, env := range envs {
		m := env.Message
		p, ok := t.peers[m.GetTo()]
		isSnap := m.GetType() == raftpb.MessageType_MsgSnap
		switch {
		case !ok:
			out = append(out, peerReport{to: m.GetTo(), snapshot: isSnap})
		case isSnap:
			select {
			case p.snaps <- m:
			default: // one snapshot at a time; raft asks again
				out = append(out, peerReport{to: m.GetTo(), snapshot: true})
			}
		default:
			if m.GetType() == raftpb.MessageType_MsgHeartbeat {
				t.observeHeartbeat(p, m.GetTerm())
			}
			select {
			case p.queue <- m:
			default:
				t.metrics.peerDropped.Inc()
				t.metrics.peerSentFailures.WithLabelValues(node.FormatID(p.id)).Inc()
				out = append(out, peerReport{to: m.GetTo()})
			}
		}
	}
	return out
}

// observeHeartbeat counts a heartbeat to p, in term, that comes more than
// two heartbeat intervals after the previous one in the same term: the
// leader's loop was late (etcd's contention.TimeoutDetector). The caller
// holds t.mu.
func (t *transport) observeHeartbeat(p *peer, term uint64) {
	now := time.Now()
	if term == p.lastHeartbeatTerm && !p.lastHeartbeat.IsZero() && now.Sub(p.lastHeartbeat) > 2*t.heartbeatInterval {
		t.metrics.heartbeatSendFailures.Inc()
		t.logger.Warn("leader failed to send out heartbeat on time; took too long, leader is overloaded likely from slow disk",
			"to", node.FormatID(p.id), "heartbeat-interval", t.heartbeatInterval, "exceeded-duration", now.Sub(p.lastHeartbeat)-2*t.heartbeatInterval)
	}
	p.lastHeartbeat, p.lastHeartbeatTerm = now, term
}

// heartbeatAnswered times a heartbeat's round trip to peer from: from the
// stream's writing the heartbeat to its response's arrival, which takes
// in the peer's loop turn (a heartbeat is answered once the peer's Ready
// is saved). Only the newest heartbeat is timed, by its first response:
// heartbeats go out every heartbeat interval, far apart from a round trip.
func (t *transport) heartbeatAnswered(from uint64) {
	t.mu.Lock()
	p, ok := t.peers[from]
	t.mu.Unlock()
	if !ok {
		return
	}
	if written := p.heartbeatWrittenNanos.Swap(0); written != 0 {
		t.metrics.peerRTT.WithLabelValues(node.FormatID(from)).Observe(time.Duration(time.Now().UnixNano() - written).Seconds())
	}
}

// stop closes the peer port (its listener and the connections it still
// serves, the received streams' too), ends every peer's goroutines and
// waits for them and for the peer handlers.
func (t *transport) stop() {
	close(t.stopped)
	if err := t.server.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.logger.Warn("closing the peer port", "err", err)
	}
	t.mu.Lock()
	t.closing = true
	for c := range t.inbound {
		c.Close() // its handler's read fails, and the handler ends
	}
	for id, p := range t.peers {
		p.cancel()
		delete(t.peers, id)
	}
	t.mu.Unlock()
	t.wg.Wait()
	t.handlers.Wait()
}

// enter counts a peer handler in, and holds conn (when not nil) for stop
// to close; it reports false once stop began, when the handler must not
// go on. A handler that entered calls leave with the same conn.
func (t *transport) enter(conn net.Conn, from uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return false
	}
	t.handlers.Add(1)
	if conn != nil {
		t.inbound[conn] = from
	}
	return true
}

// markRemoved records that member id was removed from the cluster (the
// node refused its message as from a removed member), and closes the
// streams it has open to this member: it dials again, is answered 410
// Gone, and stops. A member removed while it was down or cut off never
// applies its own removal, and would otherwise run on, refused by all.
func (t *transport) markRemoved(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.removed[id] {
		return
	}
	t.removed[id] = true
	for c, from := range t.inbound {
		if from == id {
			c.Close()
		}
	}
}

// endpoint returns where peer id is reached and the client to reach it
// with, if id is a peer.
func (t *transport) endpoint(id uint64) (peerEndpoint, *http.Client, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.peers[id]
	if !ok {
		return peerEndpoint{}, nil, false
	}
	return p.ep, t.snapshots[p.ep.network], true
}

// isPeer reports whether id is one of this member's peers now.
func (t *transport) isPeer(id uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.peers[id]
	return ok && !t.removed[id]
}

func (t *transport) isRemoved(id uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.removed[id]
}

// leave counts a peer handler out, closing conn (when not nil).
func (t *transport) leave(conn net.Conn) {
	if conn != nil {
		t.mu.Lock()
		delete(t.inbound, conn)
		t.mu.Unlock()
		conn.Close()
	}
	t.handlers.Done()
}

// peerEndpoint is where a peer URL is dialled.
type peerEndpoint struct {
	network string // "tcp", or "unix" for unix:// and unixs://
	addr    string // host:port, or the socket file
	tls     bool   // https:// or unixs://
}

// parsePeerURL is the endpoint of an http://, https://, unix:// or
// unixs:// peer URL.
func parsePeerURL(rawURL string) (peerEndpoint, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return peerEndpoint{}, err
	}
	switch u.Scheme {
	case "http", "https":
		if u.Port() == "" {
			break
		}
		return peerEndpoint{network: "tcp", addr: u.Host, tls: u.Scheme == "https"}, nil
	case "unix", "unixs":
		return peerEndpoint{network: "unix", addr: u.Host, tls: u.Scheme == "unixs"}, nil
	}
	return peerEndpoint{}, fmt.Errorf("want http(s)://host:port or unix(s)://NAME:PORT, got %q", rawURL)
}

// httpURL is the URL of path on the endpoint for an HTTP request; a unix
// socket's is its name as a host (the dialler knows the socket).
func (e peerEndpoint) httpURL(path string) string {
	if e.tls {
		return "https://" + e.addr + path
	}
	return "http://" + e.addr + path
}

// peerHTTPTransport is an HTTP transport to peers at endpoints of network,
// TLS ones dialled with tlsCfg.
func peerHTTPTransport(network string, tlsCfg *tls.Config) *http.Transport {
	d := &net.Dialer{Timeout: peerDialTimeout}
	return &http.Transport{
		Proxy: nil, // peers are reached directly, whatever HTTP_PROXY says
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:       tlsCfg.Clone(),
		TLSHandshakeTimeout:   peerHandshakeTimeout,
		ExpectContinueTimeout: peerHandshakeTimeout,
		DisableKeepAlives:     true, // snapshots and membership fetches are rare; no idle connections to keep
	}
}

// dialTarget is the host:port of an http:// or https:// URL, and whether
// it is dialled with TLS.
func dialTarget(rawURL string) (target string, https bool, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", false, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Port() == "" {
		return "", false, fmt.Errorf("want http://host:port or https://host:port, got %q", rawURL)
	}
	return u.Host, u.Scheme == "https", nil
}

// runPeer runs a peer's two senders, the message stream and the
// snapshots, until the peer is removed or the transport stops.
func (t *transport) runPeer(ctx context.Context, p *peer) {
	defer t.wg.Done()
	var snapshots sync.WaitGroup
	snapshots.Add(1)
	go func() { defer snapshots.Done(); t.runSnapshots(ctx, p) }()
	t.runStream(ctx, p)
	snapshots.Wait()
}

// runStream keeps one message stream open to the peer, reconnecting with
// exponential back-off, and writes the peer's queue into it.
func (t *transport) runStream(ctx context.Context, p *peer) {
	backoff := peerBackoffMin
	active := false
	for ctx.Err() == nil {
		err := t.stream(ctx, p, &active)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errRemovedFromCluster) {
			t.logger.Error("a peer says this member was removed from the cluster", "peer", node.FormatID(p.id), "err", err)
			select { // the loop must hear it: it stops the member
			case t.reports <- peerReport{to: p.id, removed: true}:
			case <-ctx.Done():
			}
			return
		}
		if active {
			t.logger.Warn("peer became inactive", "peer", node.FormatID(p.id), "url", p.url, "err", err)
			t.metrics.peerActive.WithLabelValues(node.FormatID(p.id)).Set(0)
			active = false
			backoff = peerBackoffMin
		}
		t.dropQueued(p)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, peerBackoffMax)
	}
}

// dropQueued empties the queue of a peer that cannot be reached and tells
// raft, which will probe it again.
func (t *transport) dropQueued(p *peer) {
	dropped := 0
	for len(p.queue) > 0 {
		<-p.queue // only this peer's goroutine receives: the read cannot block
		dropped++
	}
	if dropped > 0 {
		t.metrics.peerDropped.Add(float64(dropped))
		t.metrics.peerSentFailures.WithLabelValues(node.FormatID(p.id)).Add(float64(dropped))
		t.report(peerReport{to: p.id})
	}
}

func (t *transport) report(r peerReport) {
	select {
	case t.reports <- r:
	case <-t.stopped:
	default: // the loop is behind on reports; raft learns from the next one
	}
}

// runSnapshots sends the peer's snapshots, one at a time.
func (t *transport) runSnapshots(ctx context.Context, p *peer) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-p.snaps:
			start := time.Now()
			sentBytes, err := t.sendSnapshot(ctx, p, m)
			to := node.FormatID(p.id)
			if err != nil {
				t.metrics.peerSentFailures.WithLabelValues(to).Inc()
				t.metrics.snapSendFailures.WithLabelValues(to).Inc()
				t.logger.Warn("snapshot send failed", "peer", node.FormatID(p.id), "index", m.GetSnapshot().GetMetadata().GetIndex(), "err", err)
			} else {
				t.metrics.peerSentBytes.WithLabelValues(to).Add(float64(sentBytes))
				t.metrics.snapSendSuccess.WithLabelValues(to).Inc()
				t.metrics.snapSendSeconds.WithLabelValues(to).Observe(time.Since(start).Seconds())
				t.logger.Info("snapshot sent", "peer", node.FormatID(p.id), "index", m.GetSnapshot().GetMetadata().GetIndex(),
					"bytes", len(m.GetSnapshot().GetData()), "took", time.Since(start))
			}
			// A snapshot report must not be lost: raft waits for it.
			select {
			case t.reports <- peerReport{to: p.id, snapshot: true, delivered: err == nil}:
			case <-t.stopped:
				return
			}
		}
	}
}
