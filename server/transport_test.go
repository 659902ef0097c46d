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

	"github.com/prometheus/client_golang/prometheus"
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
	a := newTransport(1, cluster, quota, 100*time.Millisecond, nil, quietLogger(), newMetrics(MetricsBasic))
	b := newTransport(2, cluster, quota, 100*time.Millisecond, nil, quietLogger(), newMetrics(MetricsBasic))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	la, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served, servedA := make(chan error, 1), make(chan error, 1)
	go func() { served <- b.serve(l) }()
	go func() { servedA <- a.serve(la) }()
	defer func() {
		a.stop()
		b.stop()
		<-servedA
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("the peer port stopped serving with %v, want http.ErrServerClosed", err)
		}
	}()
	members := []node.Member{{ID: 1, PeerURLs: []string{"http://" + la.Addr().String()}}, {ID: 2, PeerURLs: []string{"http://" + l.Addr().String()}}}
	a.update(members)
	b.update(members)
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
	// Its bytes are counted on both sides (the sender's once its flush
	// returned, which may be after the receiver has them), and its
	// response timed.
	want := float64(len(appendFrame(nil, &frame{ClusterID: cluster, From: 1, To: 2, Body: mustMarshal(t, hb)})))
	var sent, recvd float64
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		sent, recvd = peerMetric(t, a.metrics.reg, "etcd_network_peer_sent_bytes_total", "To", "2"),
			peerMetric(t, b.metrics.reg, "etcd_network_peer_received_bytes_total", "From", "1")
		if (sent == want && recvd == want) || time.Now().After(deadline) {
			break
		}
	}
	if sent != want || recvd != want {
		t.Errorf("a heartbeat's frame of %v bytes was counted as %v sent, %v received", want, sent, recvd)
	}
	resp := &raftpb.Message{Type: raftpb.MessageType_MsgHeartbeatResp.Enum(), From: proto.Uint64(2), To: proto.Uint64(1), Term: proto.Uint64(3)}
	b.send([]node.Envelope{{ClusterID: cluster, Message: resp}})
	select {
	case <-a.inbox:
	case <-time.After(10 * time.Second):
		t.Fatal("the heartbeat's response did not arrive")
	}
	if got := peerMetric(t, a.metrics.reg, "etcd_network_peer_round_trip_time_seconds", "To", "2"); got != 1 {
		t.Errorf("the heartbeat's round trip was observed %v times, want once", got)
	}
	b.send([]node.Envelope{{ClusterID: cluster, Message: resp}})
	<-a.inbox
	if got := peerMetric(t, a.metrics.reg, "etcd_network_peer_round_trip_time_seconds", "To", "2"); got != 1 {
		t.Errorf("a second response to the same heartbeat made %v round trips, want 1", got)
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
	dataBytes := float64(len(whole.GetSnapshot().GetData()))
	for _, c := range []struct {
		reg         *prometheus.Registry
		name, label string
		min, max    float64
	}{
		{a.metrics.reg, "etcd_network_snapshot_send_success", "To", 1, 1},
		{a.metrics.reg, "etcd_network_snapshot_send_total_duration_seconds", "To", 1, 1},
		{a.metrics.reg, "etcd_network_snapshot_send_failures", "To", 0, 0},
		{a.metrics.reg, "etcd_network_peer_sent_bytes_total", "To", sent + dataBytes, sent + dataBytes + 1024},
		{b.metrics.reg, "etcd_network_snapshot_receive_success", "From", 1, 1},
		{b.metrics.reg, "etcd_network_snapshot_receive_total_duration_seconds", "From", 1, 1},
		{b.metrics.reg, "etcd_network_snapshot_receive_failures", "From", 0, 0},
		{b.metrics.reg, "etcd_network_peer_received_bytes_total", "From", recvd + dataBytes, recvd + dataBytes + 1024},
	} {
		id := "1"
		if c.label == "To" {
			id = "2"
		}
		if got := settledPeerMetric(t, c.reg, c.name, c.label, id, c.min); got < c.min || got > c.max {
			t.Errorf("after a snapshot of %v bytes: %s{%s=%s} is %v, want %v to %v", dataBytes, c.name, c.label, id, got, c.min, c.max)
		}
	}

	a.send([]node.Envelope{{ClusterID: cluster, Message: snap(int(b.snapshotBytesMax) + 1)}})
	if r := report("a snapshot over the limit"); r != (peerReport{to: 2, snapshot: true, delivered: false}) {
		t.Fatalf("a snapshot over the receiver's limit was reported %+v", r)
	}
	if got := peerMetric(t, a.metrics.reg, "etcd_network_snapshot_send_failures", "To", "2"); got != 1 {
		t.Errorf("a snapshot refused: etcd_network_snapshot_send_failures{To=2} is %v, want 1", got)
	}
	if got := peerMetric(t, a.metrics.reg, "etcd_network_peer_sent_failures_total", "To", "2"); got != 1 {
		t.Errorf("a snapshot refused: etcd_network_peer_sent_failures_total{To=2} is %v, want 1", got)
	}
	if got := settledPeerMetric(t, b.metrics.reg, "etcd_network_snapshot_receive_failures", "From", "1", 1); got != 1 {
		t.Errorf("a snapshot refused: etcd_network_snapshot_receive_failures{From=1} is %v, want 1", got)
	}

	// A message the receiver's loop has no room for is a receive failure.
	for len(b.inbox) < cap(b.inbox) {
		b.inbox <- node.Envelope{}
	}
	a.send([]node.Envelope{{ClusterID: cluster, Message: hb}})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := peerMetric(t, b.metrics.reg, "etcd_network_peer_received_failures_total", "From", "1")
		if got == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a message dropped for a full inbox: etcd_network_peer_received_failures_total{From=1} is %v, want 1", got)
		}
	}
}

// TestHeartbeatSendFailures: a heartbeat handed to the transport more
// than two heartbeat intervals after the previous one to the same peer,
// in the same term, is a heartbeat send failure, as etcd counts one; one
// on time, or the first of a new term, is not.
func TestHeartbeatSendFailures(t *testing.T) {
	const interval = 20 * time.Millisecond
	a := newTransport(1, 7, 1<<20, interval, nil, quietLogger(), newMetrics(MetricsBasic))
	defer a.stop()
	a.update([]node.Member{{ID: 2, PeerURLs: []string{"http://127.0.0.1:1"}}})
	heartbeat := func(term uint64) {
		a.send([]node.Envelope{{ClusterID: 7, Message: &raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(),
			From: proto.Uint64(1), To: proto.Uint64(2), Term: proto.Uint64(term)}}})
	}
	failures := func() float64 {
		v, _ := counter(t, a.metrics.reg, "etcd_server_heartbeat_send_failures_total")
		return v
	}
	heartbeat(3)
	heartbeat(3)
	if got := failures(); got != 0 {
		t.Fatalf("heartbeats on time counted %v failures", got)
	}
	time.Sleep(3 * interval)
	heartbeat(3)
	if got := failures(); got != 1 {
		t.Fatalf("a heartbeat %v after the previous, with an interval of %v: %v failures, want 1", 3*interval, interval, got)
	}
	time.Sleep(3 * interval)
	heartbeat(4)
	if got := failures(); got != 1 {
		t.Fatalf("the first heartbeat of a new term was counted late: %v failures, want 1", got)
	}
}

// peerMetric is the sum of the counters (or histograms' counts) of the
// family name in reg whose label is value.
func peerMetric(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					sum += m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	return sum
}

// settledPeerMetric is peerMetric once it reached least, or after 5
// seconds: a receiver counts a request as its handler ends, which may be
// just after the sender has its answer.
func settledPeerMetric(t *testing.T, reg *prometheus.Registry, name, label, value string, least float64) float64 {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if v := peerMetric(t, reg, name, label, value); v >= least || time.Now().After(deadline) {
			return v
		}
	}
}

// counter reads an unlabelled counter from reg; ok is false when reg
// has none by that name.
func counter(t *testing.T, reg *prometheus.Registry, name string) (v float64, ok bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetCounter().GetValue(), true
		}
	}
	return 0, false
}

func mustMarshal(t *testing.T, m *raftpb.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
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
	a := newTransport(1, 7, 1<<20, 100*time.Millisecond, nil, quietLogger(), newMetrics(MetricsBasic))
	a.update([]node.Member{{ID: 2, PeerURLs: []string{"http://" + l.Addr().String()}}})
	const extra = 10
	envs := make([]node.Envelope, peerQueueMsgs+extra)
	for i := range envs {
		envs[i] = node.Envelope{ClusterID: 7, Message: &raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(),
			From: proto.Uint64(1), To: proto.Uint64(2)}}
	}
	out := a.send(envs)
	if got := peerMetric(t, a.metrics.reg, "etcd_network_peer_sent_failures_total", "To", "2"); got != extra {
		t.Errorf("etcd_network_peer_sent_failures_total{To=2} is %v after %d messages were dropped, want %d", got, extra, extra)
	}
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
