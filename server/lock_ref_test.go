package server

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/status"
)

// refEtcd starts etcd 3.7.3, built by ../../shared/tools/etcd-ref (or
// found in PLUMB_ETCD_REF_DIR), as a one-member cluster, and returns its
// client URL. Without it the test skips, unless PLUMB_REQUIRE_ETCD_REF=1
// (CI) makes that a failure.
func refEtcd(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PLUMB_ETCD_REF_DIR")
	if dir == "" {
		out, err := exec.Command("../../shared/tools/etcd-ref").Output()
		if err != nil {
			refMissing(t, fmt.Sprintf("../../shared/tools/etcd-ref could not build etcd: %v", err))
		}
		dir = strings.TrimSpace(string(out))
	}
	bin := filepath.Join(dir, "etcd")
	if _, err := os.Stat(bin); err != nil {
		refMissing(t, err.Error())
	}
	client, peer := freeURL(t), freeURL(t)
	logPath := filepath.Join(t.TempDir(), "etcd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), bin, "--name", "ref", "--data-dir", t.TempDir(), "--log-level", "error",
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "ref="+peer)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() { <-exited }) // t.Context ends first and kills it
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{strings.TrimPrefix(client, "http://")}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "ready")
		cancel()
		if err == nil {
			return client
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("etcd did not answer within 30s: %v\n%s", err, b)
		}
	}
}

func refMissing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("PLUMB_REQUIRE_ETCD_REF") == "1" {
		t.Fatal(why)
	}
	t.Skip(why + " (set PLUMB_REQUIRE_ETCD_REF=1 to make this a failure)")
}

// TestLockElectionMatchEtcd runs one script of Lock and Election calls
// against etcd 3.7.3 and against plumb and compares what each answered
// (lease IDs and revisions written relative to the script's own). The
// requests and responses are the messages of api_lock.go and
// api_election.go: that etcd understands them and answers in them is what
// shows they are v3lock.proto's and v3election.proto's on the wire.
func TestLockElectionMatchEtcd(t *testing.T) {
	etcdURL := refEtcd(t)
	cfg := oneMember(t, t.TempDir())
	s := startT(t, cfg)
	defer s.Stop()
	putRetrying(t, clientOf(t, cfg), "warm", "up")
	ref := lockElectionScript(t, etcdURL)
	got := lockElectionScript(t, cfg.AdvertiseClientURLs[0])
	if ref != got {
		t.Errorf("etcd 3.7.3 answered:\n%s\nplumb answered:\n%s", ref, got)
	}
	t.Logf("both answered:\n%s", got)
}

// lockElectionScript drives the server at url and writes down its answers.
func lockElectionScript(t *testing.T, url string) string {
	ep := strings.TrimPrefix(url, "http://")
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	conn := cli.ActiveConnection()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l1, l2 := grantT(t, cli, 60), grantT(t, cli, 60)
	start, err := cli.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	base := start.Header.Revision
	var out strings.Builder
	names := strings.NewReplacer(fmt.Sprintf("%x", l1), "<l1>", fmt.Sprintf("%x", l2), "<l2>")
	note := func(what string, resp fmt.Stringer, err error) {
		if err != nil {
			st, _ := status.FromError(err)
			fmt.Fprintf(&out, "%s: error %v %q\n", what, st.Code(), st.Message())
			return
		}
		fmt.Fprintf(&out, "%s: ok\n", what)
	}
	rel := func(rev int64) int64 { return rev - base }
	leaseName := func(id int64) string { return names.Replace(fmt.Sprintf("%x", id)) }

	lk, err := lock(ctx, conn, "R", l1)
	note("lock R l1", lk, err)
	if err == nil {
		fmt.Fprintf(&out, "  key %s at +%d\n", names.Replace(string(lk.Key)), rel(lk.Header.GetRevision()))
		ul, err := unlock(ctx, conn, lk.Key)
		note("unlock", ul, err)
		if err == nil {
			fmt.Fprintf(&out, "  at +%d\n", rel(ul.Header.GetRevision()))
		}
	}
	ul, err := unlock(ctx, conn, []byte("R/none"))
	note("unlock of no key", ul, err)
	lk, err = lock(ctx, conn, "R", 12345)
	note("lock R with an unknown lease", lk, err)

	ld, err := leaderOf(ctx, conn, "E")
	note("leader of an empty election", ld, err)
	won, err := campaign(ctx, conn, "E", l1, "v1")
	note("campaign E l1 v1", won, err)
	if err != nil {
		return out.String()
	}
	k := won.Leader
	fmt.Fprintf(&out, "  leader %s %s rev +%d lease %s, at +%d\n", k.Name, names.Replace(string(k.Key)), rel(k.Rev), leaseName(k.Lease), rel(won.Header.GetRevision()))
	seen := observe(t, conn, "E")
	fmt.Fprintf(&out, "  observed %q\n", within(t, "observe", seen))
	pr, err := proclaim(ctx, conn, k, "v2")
	note("proclaim v2", pr, err)
	fmt.Fprintf(&out, "  observed %q\n", within(t, "observe", seen))
	ld, err = leaderOf(ctx, conn, "E")
	note("leader", ld, err)
	if err == nil {
		fmt.Fprintf(&out, "  %s = %s, created +%d, modified +%d, lease %s\n", names.Replace(string(ld.Kv.Key)), ld.Kv.Value,
			rel(ld.Kv.CreateRevision), rel(ld.Kv.ModRevision), leaseName(ld.Kv.Lease))
	}
	pr, err = proclaim(ctx, conn, nil, "v3")
	note("proclaim without a leader key", pr, err)
	other := *k
	other.Lease = int64(l2)
	other.Key = []byte(fmt.Sprintf("E/%x", l2))
	pr, err = proclaim(ctx, conn, &other, "v3")
	note("proclaim with another lease's key", pr, err)
	rs, err := resign(ctx, conn, k)
	note("resign", rs, err)
	ld, err = leaderOf(ctx, conn, "E")
	note("leader after the resign", ld, err)
	pr, err = proclaim(ctx, conn, k, "v4")
	note("proclaim after the resign", pr, err)
	rs, err = resign(ctx, conn, nil)
	note("resign without a leader key", rs, err)
	return out.String()
}
