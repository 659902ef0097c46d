package server

import (
	"bufio"
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
	target, err := dialTarget(cfg.ListenPeerURLs[0])
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
