package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node"
)

// streamRequest sends the member at cfg's peer port a message stream
// request naming cluster, sender strangerID and receiver to, and returns
// the connection and the member's answer.
func streamRequest(t *testing.T, cfg Config, cluster, to uint64) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	target, _, err := dialTarget(cfg.ListenPeerURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+target+peerStreamPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", peerProtocol)
	req.Header.Set(headerClusterID, node.FormatID(cluster))
	req.Header.Set(headerFrom, node.FormatID(strangerID))
	req.Header.Set(headerTo, node.FormatID(to))
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	return conn, br, resp
}

// TestPeerRefusesStrangers: a stream from another cluster (a member of
// another cluster on a reused address) or for another member is refused
// before raft sees any of it, whether its request or one of its frames
// says so; the sender is told why, and the refusal is counted.
func TestPeerRefusesStrangers(t *testing.T) {
	cfg := oneMember(t, t.TempDir())
	s := startT(t, cfg)
	defer s.Stop()
	refused := 0
	for _, tc := range []struct {
		name        string
		cluster, to uint64
		want        string
	}{
		{"another cluster", s.ClusterID() + 1, s.ID(), "from cluster"},
		{"another member", s.ClusterID(), s.ID() + 1, "is for member"},
	} {
		_, _, resp := streamRequest(t, cfg, tc.cluster, tc.to)
		reason, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusPreconditionFailed || !strings.Contains(string(reason), tc.want) {
			t.Errorf("a request from %s was answered %s %q, want 412 naming %q", tc.name, resp.Status, reason, tc.want)
		}
		refused++
		if got := testutil.ToFloat64(s.metrics.peerRefused); got != float64(refused) {
			t.Errorf("a request from %s: %v refusals counted, want %d", tc.name, got, refused)
		}

		conn, br, resp := streamRequest(t, cfg, s.ClusterID(), s.ID())
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("a stream from a member of the cluster was answered %s, want 101", resp.Status)
		}
		body, _ := proto.Marshal(&raftpb.Message{From: proto.Uint64(strangerID), To: proto.Uint64(tc.to), Type: raftpb.MessageType_MsgHeartbeat.Enum()})
		if _, err := conn.Write(appendFrame(nil, &frame{ClusterID: tc.cluster, From: strangerID, To: tc.to, Body: body})); err != nil {
			t.Fatal(err)
		}
		reason, err := io.ReadAll(br)
		if err != nil || !strings.Contains(string(reason), tc.want) {
			t.Errorf("a frame from %s ended the stream with %q (%v), want a reason naming %q", tc.name, reason, err, tc.want)
		}
		refused++
		if got := testutil.ToFloat64(s.metrics.peerRefused); got != float64(refused) {
			t.Errorf("a frame from %s: %v refusals counted, want %d", tc.name, got, refused)
		}
	}
}

// TestPeerPortServesOnlyRaft: the peer port answers 404 to anything it
// does not serve, and a message stream must ask for the upgrade.
func TestPeerPortServesOnlyRaft(t *testing.T) {
	cfg := oneMember(t, t.TempDir())
	s := startT(t, cfg)
	defer s.Stop()
	resp, err := http.Get(cfg.ListenPeerURLs[0] + "/v2/keys")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /v2/keys on the peer port answered %s, want 404", resp.Status)
	}
	req, err := http.NewRequest(http.MethodPost, cfg.ListenPeerURLs[0]+peerStreamPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(headerClusterID, node.FormatID(s.ClusterID()))
	req.Header.Set(headerFrom, node.FormatID(strangerID))
	req.Header.Set(headerTo, node.FormatID(s.ID()))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("a stream request without the upgrade was answered %s, want 426", resp.Status)
	}
}

// TestTransportCarriesMessagesAndSnapshots: between two transports, a
// queued message reaches the receiver's inbox, a snapshot of several
// chunks arrives whole and is reported delivered, and one over the
// receiver's limit is reported not delivered (raft sends it again).
func TestTransportCarriesMessagesAndSnapshots(t *testing.T) {
	const cluster, quota = 7, 4 << 20
	a := newTransport(1, cluster, quota, nil, quietLogger(), newMetrics(MetricsBasic))
	b := newTransport(2, cluster, quota, nil, quietLogger(), newMetrics(MetricsBasic))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- b.serve(l) }()
	defer func() {
		a.stop()
		b.stop()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("the peer port stopped serving with %v, want http.ErrServerClosed", err)
		}
	}()
	a.update([]node.Member{{ID: 1, PeerURLs: []string{"http://127.0.0.1:1"}}, {ID: 2, PeerURLs: []string{"http://" + l.Addr().String()}}})
	receive := func(what string) *raftpb.Message {
		t.Helper()
		select {
		case env := <-b.inbox:
			return env.Message
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not arrive", what)
			return nil
		}
	}
	report := func(what string) peerReport {
		t.Helper()
		select {
		case r := <-a.reports:
			return r
		case <-time.After(10 * time.Second):
			t.Fatalf("no report for %s", what)
			return peerReport{}
		}
	}

	hb := &raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Term: proto.Uint64(3)}
	if out := a.send([]node.Envelope{{ClusterID: cluster, Message: hb}}); len(out) != 0 {
		t.Fatalf("queueing a heartbeat reported %+v", out)
	}
	if got := receive("a heartbeat"); !proto.Equal(got, hb) {
		t.Fatalf("received %v, want %v", got, hb)
	}

	snap := func(dataBytes int) *raftpb.Message {
		data := make([]byte, dataBytes)
		for i := range data {
			data[i] = byte(i)
		}
		return &raftpb.Message{Type: raftpb.MessageType_MsgSnap.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Term: proto.Uint64(3),
			Snapshot: &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(9), Term: proto.Uint64(3)}}}
	}
	whole := snap(3*snapshotChunkBytes + 5)
	a.send([]node.Envelope{{ClusterID: cluster, Message: whole}})
	if got := receive("a snapshot"); !proto.Equal(got, whole) {
		t.Fatalf("the snapshot arrived changed: %d bytes of data, want %d", len(got.GetSnapshot().GetData()), len(whole.GetSnapshot().GetData()))
	}
	if r := report("a snapshot"); r != (peerReport{to: 2, snapshot: true, delivered: true}) {
		t.Fatalf("a snapshot delivered was reported %+v", r)
	}

	a.send([]node.Envelope{{ClusterID: cluster, Message: snap(int(b.snapshotBytesMax) + 1)}})
	if r := report("a snapshot over the limit"); r != (peerReport{to: 2, snapshot: true, delivered: false}) {
		t.Fatalf("a snapshot over the receiver's limit was reported %+v", r)
	}
}

// TestSendNeverBlocks: a peer that takes connections and never answers
// holds nothing up: send queues up to peerQueueMsgs messages for it and
// drops the rest, reporting the peer unreachable, and stop does not wait
// for the handshake's timeout.
func TestSendNeverBlocks(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var held []net.Conn // never read, never answered
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	a := newTransport(1, 7, 1<<20, nil, quietLogger(), newMetrics(MetricsBasic))
	a.update([]node.Member{{ID: 2, PeerURLs: []string{"http://" + l.Addr().String()}}})
	const extra = 10
	envs := make([]node.Envelope, peerQueueMsgs+extra)
	for i := range envs {
		envs[i] = node.Envelope{ClusterID: 7, Message: &raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(),
			From: proto.Uint64(1), To: proto.Uint64(2)}}
	}
	out := a.send(envs)
	if len(out) != extra {
		t.Errorf("queueing %d messages for a peer that never answers reported %d, want the %d over the queue's bound", len(envs), len(out), extra)
	}
	for _, r := range out {
		if r != (peerReport{to: 2}) {
			t.Fatalf("a message dropped was reported %+v, want the peer unreachable", r)
		}
	}
	start := time.Now()
	a.stop()
	if took := time.Since(start); took >= peerHandshakeTimeout {
		t.Errorf("stop took %v, as long as the handshake's timeout: it waited for the peer", took)
	}
}
