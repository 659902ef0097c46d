package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/plumbdb/plumb/node"
)

func freeURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

// oneMember is the Config of a one-member cluster in dir.
func oneMember(t *testing.T, dir string) Config {
	peer, client := freeURL(t), freeURL(t)
	return Config{
		Name: "solo", DataDir: dir,
		ListenPeerURLs: []string{peer}, InitialAdvertisePeerURLs: []string{peer},
		ListenClientURLs: []string{client}, AdvertiseClientURLs: []string{client},
		InitialCluster:      map[string][]string{"solo": {peer}},
		InitialClusterState: ClusterStateNew, InitialClusterToken: "server-test",
		HeartbeatInterval: 10 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond,
		SnapshotCount: 100, MaxRequestBytes: 1536 * 1024, MaxTxnOps: 128, LogLevel: "info",
		EnableGRPCGateway: true,
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startT(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := Start(cfg, Options{Version: "test"}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func clientOf(t *testing.T, cfg Config) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{strings.TrimPrefix(cfg.AdvertiseClientURLs[0], "http://")},
		DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// putRetrying puts until the member has elected itself and answers.
func putRetrying(t *testing.T, cli *clientv3.Client, k, v string) {
	t.Helper()
	var err error
	for range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = cli.Put(ctx, k, v)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("put %s: %v", k, err)
}

// TestRestartKeepsData: a member stopped and started again on its data dir
// (with another --initial-cluster, which a restart ignores) has every
// write, the same identity, and still takes writes, past several
// snapshots; another cluster's --initial-cluster-token is refused.
func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	cfg := oneMember(t, dir)
	s := startT(t, cfg)
	id, cid := s.ID(), s.ClusterID()
	cli := clientOf(t, cfg)
	putRetrying(t, cli, "first", "1")
	for i := range 250 { // past SnapshotCount twice
		if _, err := cli.Put(context.Background(), fmt.Sprintf("k%03d", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	// Another cluster's token: this data dir is not that cluster's member.
	other := cfg
	other.InitialClusterToken = "some-other-cluster"
	if _, err := Start(other, Options{}, quietLogger()); !errors.Is(err, node.ErrDataDirMismatch) ||
		!strings.Contains(err.Error(), `bootstrapped with --initial-cluster-token "server-test"`) {
		t.Fatalf("a restart with another cluster's token: %v", err)
	}
	// The other --initial-* settings (another cluster layout) are ignored.
	cfg.InitialCluster = map[string][]string{"solo": {"http://127.0.0.1:1"}}
	s = startT(t, cfg)
	defer s.Stop()
	if s.ID() != id || s.ClusterID() != cid {
		t.Fatalf("restarted as %x of %x, want %x of %x", s.ID(), s.ClusterID(), id, cid)
	}
	putRetrying(t, cli, "second", "2")
	resp, err := cli.Get(context.Background(), "", clientv3.WithFromKey(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 252 {
		t.Fatalf("after restart: %v (%v), want 252 keys", resp, err)
	}
}

// TestBootstrapRefusals: the mistakes etcd users make get errors that say
// what to do.
func TestBootstrapRefusals(t *testing.T) {
	dir := t.TempDir()
	cfg := oneMember(t, dir)

	notIn := cfg
	notIn.Name = "other"
	if _, err := Start(notIn, Options{}, quietLogger()); err == nil || !strings.Contains(err.Error(), `--initial-cluster has no member named "other"`) {
		t.Errorf("a member missing from --initial-cluster: %v", err)
	}

	wrongURL := cfg
	wrongURL.InitialAdvertisePeerURLs = []string{"http://127.0.0.1:1"}
	if _, err := Start(wrongURL, Options{}, quietLogger()); err == nil || !strings.Contains(err.Error(), "--initial-advertise-peer-urls") {
		t.Errorf("--initial-cluster and --initial-advertise-peer-urls disagree: %v", err)
	}

	joining := cfg
	joining.InitialClusterState = ClusterStateExisting
	if _, err := Start(joining, Options{}, quietLogger()); err == nil || !strings.Contains(err.Error(), "--initial-cluster-state is existing") {
		t.Errorf("existing with an empty data dir: %v", err)
	}

	s := startT(t, cfg)
	putRetrying(t, clientOf(t, cfg), "k", "v") // the member has published its name
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	renamed := cfg
	renamed.Name = "impostor"
	_, err := Start(renamed, Options{}, quietLogger())
	if !errors.Is(err, node.ErrDataDirMismatch) || !strings.Contains(err.Error(), `holds member`) {
		t.Errorf("another member's data dir: %v", err)
	}

	busy := cfg
	l, lerr := net.Listen("tcp", "127.0.0.1:0")
	if lerr != nil {
		t.Fatal(lerr)
	}
	defer l.Close()
	busy.ListenClientURLs = []string{"http://" + l.Addr().String()}
	if _, err := Start(busy, Options{}, quietLogger()); err == nil || !strings.Contains(err.Error(), "--listen-client-urls") {
		t.Errorf("a client URL already in use: %v", err)
	}
	// The failed starts closed what they opened: the member starts again.
	s = startT(t, cfg)
	s.Stop()
}

// TestErrorMapping: every node error reaches clientv3 as etcd's typed error.
func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want error
	}{
		{node.ErrNoLeader, rpctypes.ErrNoLeader},
		{node.ErrTimeout, rpctypes.ErrTimeout},
		{node.ErrLeaderChanged, rpctypes.ErrLeaderChanged},
		{node.ErrRequestTooLarge, rpctypes.ErrRequestTooLarge},
		{node.ErrNoSpace, rpctypes.ErrNoSpace},
		{fmt.Errorf("wrapped: %w", node.ErrStopped), rpctypes.ErrStopped},
	} {
		if got := rpctypes.Error(toGRPC(tc.err)); !errors.Is(got, tc.want) {
			t.Errorf("%v reaches the client as %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestPprofSwitch: --enable-pprof serves Go's profiles on the client port;
// without it they are not there.
func TestPprofSwitch(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		cfg := oneMember(t, t.TempDir())
		cfg.EnablePprof = enabled
		s := startT(t, cfg)
		resp, err := http.Get(cfg.AdvertiseClientURLs[0] + "/debug/pprof/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{false: 404, true: 200}[enabled]; resp.StatusCode != want {
			t.Errorf("--enable-pprof=%v: /debug/pprof/ answered %d, want %d", enabled, resp.StatusCode, want)
		}
		s.Stop()
	}
}

// TestSystemdNotify: under systemd's Type=notify the member says READY=1
// once its storage is open and its listeners are bound (a client can
// connect at once), and STOPPING=1 when it stops.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	cfg := oneMember(t, t.TempDir())
	s := startT(t, cfg)
	read := func() string {
		buf := make([]byte, 256)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
	if got := read(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	l, err := net.Dial("tcp", strings.TrimPrefix(cfg.ListenClientURLs[0], "http://"))
	if err != nil {
		t.Fatalf("READY=1 came before the client listener was bound: %v", err)
	}
	l.Close()
	s.Stop()
	if got := read(); got != "STOPPING=1" {
		t.Fatalf("notification on stop %q, want STOPPING=1", got)
	}
}

// TestTwoClientURLs: the seeds listen for clients on the host's address
// and on 127.0.0.1 at once; both serve.
func TestTwoClientURLs(t *testing.T) {
	cfg := oneMember(t, t.TempDir())
	second := freeURL(t)
	cfg.ListenClientURLs = append(cfg.ListenClientURLs, second)
	s := startT(t, cfg)
	defer s.Stop()
	putRetrying(t, clientOf(t, cfg), "k", "v")
	other := cfg
	other.AdvertiseClientURLs = []string{second}
	resp, err := clientOf(t, other).Get(context.Background(), "k")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get on the second client URL: %v %v", resp, err)
	}
}
