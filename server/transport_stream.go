package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node"
)

// The peer port's routes and headers. A message stream is an HTTP/1.1
// POST that upgrades its connection to peerProtocol: after the 101 the
// sender writes frames, nothing else, and the receiver writes nothing
// until it ends the stream, when it may write why (up to peerReasonBytes
// of text) before it closes the connection.
const (
	peerStreamPath      = "/raft/stream"
	peerSnapshotPath    = "/raft/snapshot"
	peerProtocol        = "plumb-raft/1"
	headerClusterID     = "Plumb-Cluster-Id"
	headerFrom          = "Plumb-From"
	headerTo            = "Plumb-To"
	headerSnapshotBytes = "Plumb-Snapshot-Bytes"
)

// errStopping ends what a member that is stopping receives.
var errStopping = errors.New("member is stopping")

// setRoute names the cluster, sender and receiver of a request to peer to.
func (t *transport) setRoute(h http.Header, to uint64) {
	h.Set(headerClusterID, node.FormatID(t.clusterID))
	h.Set(headerFrom, node.FormatID(t.self))
	h.Set(headerTo, node.FormatID(to))
}

// checkRoute refuses a request from another cluster or for another
// member, before anything it carries is read, and returns the sender it
// names. cluster is the cluster it names, for the log (zero if unreadable).
func (t *transport) checkRoute(h http.Header) (cluster, from uint64, err error) {
	var ids [3]uint64
	for i, name := range [...]string{headerClusterID, headerFrom, headerTo} {
		if ids[i], err = strconv.ParseUint(h.Get(name), 16, 64); err != nil {
			return 0, 0, fmt.Errorf("%w: the request's %s header is %q, want a member or cluster ID in hex",
				errBadRoute, name, h.Get(name))
		}
	}
	cluster, from, to := ids[0], ids[1], ids[2]
	if cluster != t.clusterID {
		return cluster, from, fmt.Errorf("%w: the request is from cluster %s, this member %s is in cluster %s",
			node.ErrClusterMismatch, node.FormatID(cluster), node.FormatID(t.self), node.FormatID(t.clusterID))
	}
	if to != t.self {
		return cluster, from, fmt.Errorf("%w: the request is for member %s, this is member %s",
			node.ErrWrongMember, node.FormatID(to), node.FormatID(t.self))
	}
	return cluster, from, nil
}

// errBadRoute is a request whose route headers cannot be read.
var errBadRoute = errors.New("bad peer request")

// errRemovedFromCluster: a peer answered that this member was removed
// from the cluster (410 Gone, as etcd's peers answer).
var errRemovedFromCluster = errors.New("the member has been permanently removed from the cluster")

// refuseRequest answers a request that checkRoute refused: 412 and the
// reason, counted and logged as a refused peer message. It closes the
// connection, so that a body the sender wrote anyway is not read.
func (t *transport) refuseRequest(w http.ResponseWriter, cluster, from uint64, err error) {
	t.metrics.peerRefused.Inc()
	t.logger.Warn("refused a peer message", "from", node.FormatID(from), "cluster", node.FormatID(cluster), "err", err)
	code := http.StatusPreconditionFailed
	if errors.Is(err, errBadRoute) {
		code = http.StatusBadRequest
	}
	peerError(w, code, err)
}

// peerError answers a peer request with code and err's text, closing the
// connection after it.
func peerError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Connection", "close")
	http.Error(w, err.Error(), code)
}

// check refuses a frame from another cluster, for another member, or
// from another sender than from (the one its request named), and decodes
// its message. A sender whose frame says one thing and whose message
// another is refused too.
func (t *transport) check(f *frame, from uint64) (*raftpb.Message, error) {
	if f.ClusterID != t.clusterID {
		return nil, fmt.Errorf("%w: the frame is from cluster %s, this member %s is in cluster %s",
			node.ErrClusterMismatch, node.FormatID(f.ClusterID), node.FormatID(t.self), node.FormatID(t.clusterID))
	}
	if f.To != t.self {
		return nil, fmt.Errorf("%w: the frame is for member %s, this is member %s", node.ErrWrongMember, node.FormatID(f.To), node.FormatID(t.self))
	}
	if f.From != from {
		return nil, fmt.Errorf("a frame from %s arrived on a request from %s", node.FormatID(f.From), node.FormatID(from))
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

// refuse counts and logs a frame that check refused, and returns err.
func (t *transport) refuse(f *frame, err error) error {
	t.metrics.peerRefused.Inc()
	t.logger.Warn("refused a peer message", "from", node.FormatID(f.From), "cluster", node.FormatID(f.ClusterID), "err", err)
	return err
}

// serveStream receives a message stream: it checks the route, takes the
// connection over (101), and then, in this one goroutine, reads frames
// straight off the connection, checks each and hands its message to the
// loop's inbox. A message the inbox has no room for is dropped, as a lossy
// network would drop it; raft sends it again.
func (t *transport) serveStream(w http.ResponseWriter, r *http.Request) {
	cluster, from, err := t.checkRoute(r.Header)
	if err != nil {
		t.refuseRequest(w, cluster, from, err)
		return
	}
	if t.isRemoved(from) {
		t.metrics.peerRefused.Inc()
		peerError(w, http.StatusGone, fmt.Errorf("%w: member %s was removed from cluster %s",
			errRemovedFromCluster, node.FormatID(from), node.FormatID(t.clusterID)))
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), peerProtocol) {
		peerError(w, http.StatusUpgradeRequired, fmt.Errorf("a message stream upgrades to %s", peerProtocol))
		return
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		peerError(w, http.StatusInternalServerError, fmt.Errorf("cannot take the connection over: %w", err))
		return
	}
	if !t.enter(conn, from) {
		conn.Close()
		return
	}
	defer t.leave(conn)
	// The HTTP server's deadlines are for requests; a stream has only
	// the write deadline of each write.
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return
	}
	dw := deadlineWriter{conn}
	if _, err := io.WriteString(dw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+peerProtocol+"\r\n\r\n"); err != nil {
		return
	}
	err = t.receiveStream(bufio.NewReaderSize(rw.Reader, peerReadBufferBytes), from)
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return // the sender ended the stream, or stop closed it
	}
	endStream(conn, err)
}

// receiveStream reads frames from r into the inbox until r fails or a
// frame is refused.
func (t *transport) receiveStream(r *bufio.Reader, from uint64) error {
	fr := frameReader{r: r}
	var f frame
	sender := node.FormatID(from)
	received, failures := t.metrics.peerRecvBytes.WithLabelValues(sender), t.metrics.peerRecvFailures.WithLabelValues(sender)
	for {
		if err := fr.next(&f); err != nil {
			return err
		}
		received.Add(float64(fr.frameBytes))
		m, err := t.check(&f, from)
		if err != nil {
			failures.Inc()
			return t.refuse(&f, err)
		}
		if m.GetType() == raftpb.MessageType_MsgHeartbeatResp {
			t.heartbeatAnswered(from)
		}
		select {
		case t.inbox <- node.Envelope{ClusterID: f.ClusterID, Message: m}:
		case <-t.stopped:
			return errStopping
		default: // the loop is behind: drop, as a lossy network would; raft resends
			t.metrics.peerDropped.Inc()
			failures.Inc()
		}
	}
}

// endStream tells a stream's sender why it ends, then closes its
// sending side and reads what the sender still sends for up to
// peerLingerTimeout, so that the connection is not reset (which could
// lose the reason) while the sender has frames on the way.
func endStream(conn net.Conn, reason error) {
	text := reason.Error()
	if len(text) > peerReasonBytes {
		text = text[:peerReasonBytes]
	}
	if _, err := io.WriteString(deadlineWriter{conn}, text); err != nil {
		return
	}
	// A TCP connection sends FIN; a TLS one, close_notify: either way
	// the sender reads the reason to its end.
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() != nil {
			return
		}
	}
	if conn.SetReadDeadline(time.Now().Add(peerLingerTimeout)) != nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(conn, peerLingerBytes)) // drained, not read: any error ends it
}

// deadlineWriter writes to a connection with a deadline of
// peerWriteTimeout on each write (as etcd's timeout connections do), so
// that a peer that stopped reading fails the write instead of blocking it.
type deadlineWriter struct{ conn net.Conn }

func (w deadlineWriter) Write(b []byte) (int, error) {
	if err := w.conn.SetWriteDeadline(time.Now().Add(peerWriteTimeout)); err != nil {
		return 0, err
	}
	return w.conn.Write(b)
}

// stream opens a message stream to the peer and writes its queue into it
// until the stream or ctx fails. It sets *active, and the gauge and log
// that go with it, once the peer accepted the stream.
//
// One goroutine does the sending: it encodes each message straight into
// the connection's buffer and flushes only when the queue is empty (or
// after peerBatchMsgs): under load messages go out in batches, when idle
// each goes out at once. A second goroutine only waits for the peer to
// end the stream, to learn why and to close the connection.
func (t *transport) stream(ctx context.Context, p *peer, active *bool) error {
	conn, br, err := t.openStream(ctx, p)
	if err != nil {
		return err
	}
	stopClose := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopClose()
	ended := make(chan error, 1)
	go func() { ended <- streamEnd(br) }()
	endSeen := false
	defer func() {
		conn.Close()
		if !endSeen {
			<-ended // the connection is closed: the wait is short
		}
	}()
	if !*active {
		*active = true
		t.metrics.peerActive.WithLabelValues(node.FormatID(p.id)).Set(1)
		t.logger.Info("peer became active", "peer", node.FormatID(p.id), "url", p.url)
	}
	bw := bufio.NewWriterSize(deadlineWriter{conn}, peerWriteBufferBytes)
	for {
		var m *raftpb.Message
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-ended:
			endSeen = true
			t.report(peerReport{to: p.id})
			return err
		case m = <-p.queue:
		}
		batchBytes, err := t.writeMessage(bw, p, m)
		for n := 1; err == nil && n < peerBatchMsgs && len(p.queue) > 0; n++ {
			var written int
			written, err = t.writeMessage(bw, p, <-p.queue) // only this goroutine receives: it cannot block
			batchBytes += written
		}
		if err == nil {
			err = bw.Flush()
		}
		if err == nil {
			t.metrics.peerSentBytes.WithLabelValues(node.FormatID(p.id)).Add(float64(batchBytes))
		}
		if err != nil {
			t.metrics.peerSentFailures.WithLabelValues(node.FormatID(p.id)).Inc()
			t.report(peerReport{to: p.id})
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("write to the stream: %w", err)
		}
	}
}

// writeMessage encodes m, framed for p, into bw's free space (no copy when
// it fits) and writes it, returning the frame's bytes. A heartbeat's
// writing is noted, to time its round trip (heartbeatAnswered).
func (t *transport) writeMessage(bw *bufio.Writer, p *peer, m *raftpb.Message) (int, error) {
	size := proto.Size(m)
	buf := appendFrameHeader(bw.AvailableBuffer(), &frame{ClusterID: t.clusterID, From: t.self, To: p.id}, size)
	buf, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(buf, m)
	if err != nil {
		return 0, fmt.Errorf("encode message to %s: %w", node.FormatID(p.id), err)
	}
	if m.GetType() == raftpb.MessageType_MsgHeartbeat {
		p.heartbeatWrittenNanos.Store(time.Now().UnixNano())
	}
	return bw.Write(buf)
}

// openStream dials the peer and upgrades the connection to a message
// stream. It returns the connection, with no deadline left on it, and its
// reader, which holds whatever the peer sent after the 101.
func (t *transport) openStream(ctx context.Context, p *peer) (net.Conn, *bufio.Reader, error) {
	conn, err := t.dial(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	// A peer that is removed (or a transport that stops) while the
	// handshake waits must not wait out peerHandshakeTimeout.
	closeOnCancel := context.AfterFunc(ctx, func() { conn.Close() })
	br, err := t.upgrade(conn, p)
	if !closeOnCancel() && err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = conn.SetDeadline(time.Time{})
	}
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, br, nil
}

// dial connects to the peer, with a TLS handshake (within
// peerHandshakeTimeout) to an https:// peer: a peer whose certificate the
// member does not trust, or that does not take the member's, is never
// sent a byte of a request.
func (t *transport) dial(ctx context.Context, p *peer) (net.Conn, error) {
	conn, err := (&net.Dialer{Timeout: peerDialTimeout}).DialContext(ctx, p.ep.network, p.ep.addr)
	if err != nil || !p.ep.tls {
		return conn, err
	}
	cfg := t.tls.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(p.ep.addr)
	}
	tc := tls.Client(conn, cfg)
	hctx, cancel := context.WithTimeout(ctx, peerHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", p.url, err)
	}
	return tc, nil
}

// upgrade asks the peer, on conn, for a message stream, within
// peerHandshakeTimeout; an answer other than 101 is an error that carries
// the peer's reason.
func (t *transport) upgrade(conn net.Conn, p *peer) (*bufio.Reader, error) {
	if err := conn.SetDeadline(time.Now().Add(peerHandshakeTimeout)); err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+p.ep.addr+peerStreamPath, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", peerProtocol)
	t.setRoute(req.Header, p.id)
	if err := req.Write(conn); err != nil {
		return nil, fmt.Errorf("send the stream request: %w", err)
	}
	br := bufio.NewReaderSize(conn, peerReasonBytes)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf("read the stream's answer: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusGone {
		return nil, fmt.Errorf("%w: %w", errRemovedFromCluster, peerRefusal(resp))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, peerRefusal(resp)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), peerProtocol) {
		return nil, fmt.Errorf("the peer upgraded the stream to %q, want %s", resp.Header.Get("Upgrade"), peerProtocol)
	}
	return br, nil
}

// peerRefusal is the error for a peer's answer other than success: its
// status and (the first peerReasonBytes of) its reason.
func peerRefusal(resp *http.Response) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, peerReasonBytes))
	if err != nil {
		return fmt.Errorf("the peer answered %s (its reason was cut off: %w)", resp.Status, err)
	}
	return fmt.Errorf("the peer answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
}

// streamEnd waits for the peer to end a stream and returns why: the
// reason it wrote, or how the connection failed.
func streamEnd(br *bufio.Reader) error {
	reason, err := io.ReadAll(io.LimitReader(br, peerReasonBytes))
	switch {
	case len(reason) > 0:
		return fmt.Errorf("the peer ended the stream: %s", reason)
	case err != nil:
		return fmt.Errorf("the stream broke: %w", err)
	}
	return errors.New("the peer closed the stream")
}
