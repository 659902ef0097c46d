package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node"
)

// Limits of the peer transport, each a named bound.
const (
	peerQueueMsgs       = 4096     // messages waiting per peer (etcd's streamBufSize)
	inboxMsgs           = 4096     // received messages waiting for the loop (etcd's recvBufSize)
	snapshotChunkBytes  = 1 << 20  // a snapshot travels in chunks of this size
	maxPeerFrameBytes   = 64 << 20 // the largest frame on the peer port
	peerBackoffMin      = 50 * time.Millisecond
	peerBackoffMax      = 2 * time.Second
	peerDialTimeout     = 2 * time.Second
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
}

// transport carries raft messages between members over gRPC streams on the
// peer URLs: one long-lived client stream per peer for ordinary messages,
// and one stream per snapshot, sent in chunks. Sending never blocks the
// loop: each peer has a bounded queue, and a message that does not fit is
// dropped and the peer reported unreachable (raft sends it again).
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

	mu    sync.Mutex
	peers map[uint64]*peer
	wg    sync.WaitGroup
}

// peer is the sending side towards one member at one address. A member
// update replaces it with a new one at the new address.
type peer struct {
	id     uint64
	url    string
	target string // host:port
	queue  chan *raftpb.Message
	snaps  chan *raftpb.Message
	cancel context.CancelFunc
}

func newTransport(self, clusterID uint64, quotaBytes int64, logger *slog.Logger, m *metrics) *transport {
	return &transport{
		self:             self,
		clusterID:        clusterID,
		logger:           logger,
		metrics:          m,
		inbox:            make(chan node.Envelope, inboxMsgs),
		reports:          make(chan peerReport, peerQueueMsgs),
		stopped:          make(chan struct{}),
		snapshotBytesMax: snapshotBytesMax(quotaBytes),
		snapshotSlots:    make(chan struct{}, snapshotStreamsMax),
		peers:            map[uint64]*peer{},
	}
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

// update makes the peer set match the applied membership: a goroutine pair
// per member other than this one, at its first peer URL.
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
		if _, ok := t.peers[id]; ok {
			continue
		}
		target, err := dialTarget(u)
		if err != nil {
			t.logger.Error("peer has a bad URL; not sending to it", "peer", node.FormatID(id), "url", u, "err", err)
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		p := &peer{id: id, url: u, target: target, cancel: cancel,
			queue: make(chan *raftpb.Message, peerQueueMsgs), snaps: make(chan *raftpb.Message, 1)}
		conn, err := t.dial(p)
		if err != nil {
			cancel()
			t.logger.Error("peer: cannot set up a connection", "peer", node.FormatID(id), "url", u, "err", err)
			continue
		}
		t.peers[id] = p
		t.wg.Add(1)
		go t.runPeer(ctx, p, conn)
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
			select {
			case p.queue <- m:
			default:
				t.metrics.peerDropped.Inc()
				out = append(out, peerReport{to: m.GetTo()})
			}
		}
	}
	return out
}

// stop ends every peer's goroutines and waits for them.
func (t *transport) stop() {
	close(t.stopped)
	t.mu.Lock()
	for id, p := range t.peers {
		p.cancel()
		delete(t.peers, id)
	}
	t.mu.Unlock()
	t.wg.Wait()
}

func dialTarget(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" || u.Port() == "" {
		return "", fmt.Errorf("want http://host:port, got %q", rawURL)
	}
	return u.Host, nil
}

func (t *transport) dial(p *peer) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///"+p.target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(frameCodec{}), grpc.MaxCallSendMsgSize(maxPeerFrameBytes)),
	)
}

// runPeer runs a peer's two senders over its one connection (gRPC
// multiplexes their streams) and closes it once both have ended.
func (t *transport) runPeer(ctx context.Context, p *peer, conn *grpc.ClientConn) {
	defer t.wg.Done()
	defer conn.Close()
	var snapshots sync.WaitGroup
	snapshots.Add(1)
	go func() { defer snapshots.Done(); t.runSnapshots(ctx, conn, p) }()
	t.runStream(ctx, conn, p)
	snapshots.Wait()
}

// runStream keeps one message stream open to the peer, reconnecting with
// exponential back-off, and pumps the peer's queue into it.
func (t *transport) runStream(ctx context.Context, conn *grpc.ClientConn, p *peer) {
	backoff := peerBackoffMin
	active := false
	for ctx.Err() == nil {
		err := t.pump(ctx, conn, p, &active)
		if ctx.Err() != nil {
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

// pump opens a stream and sends the peer's messages until the stream or
// the context fails.
func (t *transport) pump(ctx context.Context, conn *grpc.ClientConn, p *peer, active *bool) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := conn.NewStream(sctx, &peerServiceDesc.Streams[0], peerMessagesMethod)
	if err != nil {
		return err
	}
	for {
		var m *raftpb.Message
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m = <-p.queue:
		}
		body, err := proto.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode message: %w", err)
		}
		if err := stream.SendMsg(&frame{ClusterID: t.clusterID, From: t.self, To: p.id, Body: body}); err != nil {
			if errors.Is(err, io.EOF) { // the peer ended the stream: learn why
				err = stream.RecvMsg(&frame{})
			}
			t.report(peerReport{to: p.id})
			return err
		}
		if !*active {
			*active = true
			t.metrics.peerActive.WithLabelValues(node.FormatID(p.id)).Set(1)
			t.logger.Info("peer became active", "peer", node.FormatID(p.id), "url", p.url)
		}
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
func (t *transport) runSnapshots(ctx context.Context, conn *grpc.ClientConn, p *peer) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-p.snaps:
			start := time.Now()
			err := t.sendSnapshot(ctx, conn, p, m)
			if err != nil {
				t.logger.Warn("snapshot send failed", "peer", node.FormatID(p.id), "index", m.GetSnapshot().GetMetadata().GetIndex(), "err", err)
			} else {
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

func (t *transport) sendSnapshot(ctx context.Context, conn *grpc.ClientConn, p *peer, m *raftpb.Message) error {
	ctx, cancel := context.WithTimeout(ctx, snapshotSendTimeout)
	defer cancel()
	data := m.GetSnapshot().GetData()
	head := proto.CloneOf(m)
	head.Snapshot.Data = nil
	body, err := proto.Marshal(head)
	if err != nil {
		return fmt.Errorf("encode snapshot message: %w", err)
	}
	stream, err := conn.NewStream(ctx, &peerServiceDesc.Streams[1], peerSnapshotMethod)
	if err != nil {
		return err
	}
	first := &frame{ClusterID: t.clusterID, From: t.self, To: p.id, DataBytes: uint64(len(data)), Body: body}
	if err := stream.SendMsg(first); err != nil {
		return snapshotStreamErr(stream, err)
	}
	for off := 0; off < len(data); off += snapshotChunkBytes {
		chunk := data[off:min(off+snapshotChunkBytes, len(data))]
		if err := stream.SendMsg(&frame{ClusterID: t.clusterID, From: t.self, To: p.id, Body: chunk}); err != nil {
			return snapshotStreamErr(stream, err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	return stream.RecvMsg(&frame{}) // the receiver acknowledges once raft has it
}

func snapshotStreamErr(stream grpc.ClientStream, err error) error {
	if errors.Is(err, io.EOF) {
		return stream.RecvMsg(&frame{})
	}
	return err
}

// The peer service, declared by hand: two client streams of frames, in
// the frame codec.
const (
	peerServiceName    = "plumb.peer.v1.Raft"
	peerMessagesMethod = "/" + peerServiceName + "/Messages"
	peerSnapshotMethod = "/" + peerServiceName + "/Snapshot"
)

type peerHandler interface {
	messages(grpc.ServerStream) error
	snapshot(grpc.ServerStream) error
}

var peerServiceDesc = grpc.ServiceDesc{
	ServiceName: peerServiceName,
	HandlerType: (*peerHandler)(nil),
	Streams: []grpc.StreamDesc{
		{StreamName: "Messages", ClientStreams: true,
			Handler: func(srv any, s grpc.ServerStream) error { return srv.(peerHandler).messages(s) }},
		{StreamName: "Snapshot", ClientStreams: true,
			Handler: func(srv any, s grpc.ServerStream) error { return srv.(peerHandler).snapshot(s) }},
	},
	Metadata: "plumb/server/transport.go",
}

// newPeerServer returns the gRPC server of the peer port.
func (t *transport) newPeerServer() *grpc.Server {
	s := grpc.NewServer(grpc.ForceServerCodec(frameCodec{}), grpc.MaxRecvMsgSize(maxPeerFrameBytes))
	s.RegisterService(&peerServiceDesc, t)
	return s
}

// check refuses a frame from another cluster or for another member, and
// decodes its message. A sender whose frame says one thing and whose
// message another is refused too.
func (t *transport) check(f *frame) (*raftpb.Message, error) {
	if f.ClusterID != t.clusterID {
		return nil, fmt.Errorf("%w: the frame is from cluster %s, this member %s is in cluster %s",
			node.ErrClusterMismatch, node.FormatID(f.ClusterID), node.FormatID(t.self), node.FormatID(t.clusterID))
	}
	if f.To != t.self {
		return nil, fmt.Errorf("%w: the frame is for member %s, this is member %s", node.ErrWrongMember, node.FormatID(f.To), node.FormatID(t.self))
	}
	m := &raftpb.Message{}
	if err := proto.Unmarshal(f.Body, m); err != nil {
		return nil, fmt.Errorf("decode message from %s: %w", node.FormatID(f.From), err)
	}
	if m.GetFrom() != f.From || m.GetTo() != f.To {
		return nil, fmt.Errorf("message from %s to %s arrived in a frame from %s to %s",
			node.FormatID(m.GetFrom()), node.FormatID(m.GetTo()), node.FormatID(f.From), node.FormatID(f.To))
	}
	return m, nil
}

func (t *transport) refuse(f *frame, err error) error {
	t.metrics.peerRefused.Inc()
	t.logger.Warn("refused a peer message", "from", node.FormatID(f.From), "cluster", node.FormatID(f.ClusterID), "err", err)
	return status.Error(codes.FailedPrecondition, err.Error())
}

func (t *transport) messages(s grpc.ServerStream) error {
	for {
		f := &frame{}
		if err := s.RecvMsg(f); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		m, err := t.check(f)
		if err != nil {
			return t.refuse(f, err)
		}
		select {
		case t.inbox <- node.Envelope{ClusterID: f.ClusterID, Message: m}:
		case <-t.stopped:
			return status.Error(codes.Unavailable, "member is stopping")
		default: // the loop is behind: drop, as a lossy network would; raft resends
			t.metrics.peerDropped.Inc()
		}
	}
}

func (t *transport) snapshot(s grpc.ServerStream) error {
	head := &frame{}
	if err := s.RecvMsg(head); err != nil {
		return err
	}
	m, err := t.check(head)
	if err != nil {
		return t.refuse(head, err)
	}
	if m.GetType() != raftpb.MessageType_MsgSnap || m.GetSnapshot() == nil {
		return status.Error(codes.InvalidArgument, "the snapshot stream carries a message that is not a snapshot")
	}
	if head.DataBytes > t.snapshotBytesMax {
		return status.Errorf(codes.ResourceExhausted,
			"snapshot of %d bytes is over this member's limit of %d (from its backend quota, --quota-backend-bytes)", head.DataBytes, t.snapshotBytesMax)
	}
	select {
	case t.snapshotSlots <- struct{}{}:
		t.metrics.snapshotsReceiving.Inc()
		defer func() { <-t.snapshotSlots; t.metrics.snapshotsReceiving.Dec() }()
	default:
		return status.Errorf(codes.ResourceExhausted,
			"this member is already receiving %d snapshots, the most it takes at once; send it again later", snapshotStreamsMax)
	}
	data, err := receiveSnapshotData(s, head)
	if err != nil {
		return err
	}
	m.Snapshot.Data = data
	select {
	case t.inbox <- node.Envelope{ClusterID: head.ClusterID, Message: m}:
	case <-t.stopped:
		return status.Error(codes.Unavailable, "member is stopping")
	case <-s.Context().Done():
		return s.Context().Err()
	}
	return s.SendMsg(&frame{ClusterID: t.clusterID, From: t.self, To: head.From})
}

// receiveSnapshotData reads a snapshot's chunks until it has the bytes its
// head announced. The buffer grows with the data that arrived, never
// ahead of it: an announced size is only a claim.
func receiveSnapshotData(s grpc.ServerStream, head *frame) ([]byte, error) {
	var data []byte
	for uint64(len(data)) < head.DataBytes {
		chunk := &frame{}
		if err := s.RecvMsg(chunk); err != nil {
			return nil, fmt.Errorf("snapshot from %s cut off at %d of %d bytes: %w", node.FormatID(head.From), len(data), head.DataBytes, err)
		}
		if uint64(len(data)+len(chunk.Body)) > head.DataBytes {
			return nil, status.Error(codes.InvalidArgument, "snapshot data longer than announced")
		}
		data = appendChunk(data, chunk.Body, head.DataBytes)
	}
	return data, nil
}

// appendChunk appends chunk to data, doubling data's capacity when it is
// short, but never past announcedBytes. The caller has checked that
// len(data)+len(chunk) <= announcedBytes.
func appendChunk(data, chunk []byte, announcedBytes uint64) []byte {
	need := len(data) + len(chunk)
	if need > cap(data) {
		grown := make([]byte, len(data), min(uint64(max(2*cap(data), need)), announcedBytes))
		copy(grown, data)
		data = grown
	}
	return append(data, chunk...)
}
