package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"
)

// follower returns a member that does not lead: lease calls made there
// are forwarded to the leader.
func (c *cluster) follower() *member {
	c.t.Helper()
	leader, _ := c.waitLeader(5 * time.Second)
	for _, m := range c.members {
		if m != leader && m.running() {
			return m
		}
	}
	c.t.Fatal("no running follower")
	return nil
}

// ctlOutcome runs etcdctl and returns its exit code, stdout and stderr
// without the client's JSON log lines; it fails the test only when
// etcdctl could not run.
func ctlOutcome(t *testing.T, bin string, endpoints []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--endpoints", strings.Join(endpoints, ",")}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("etcdctl %s: %v", strings.Join(args, " "), err)
	}
	var kept []string
	for _, line := range strings.Split(errOut.String(), "\n") {
		if line != "" && !strings.HasPrefix(line, "{") {
			kept = append(kept, line)
		}
	}
	return cmd.ProcessState.ExitCode(), out.String(), strings.Join(kept, "\n")
}

// TestEtcdctlLease: etcdctl 3.7's lease commands against a follower of a
// 3-member cluster (keep-alive and time-to-live are forwarded to the
// leader): grant, put --lease, timetolive --keys, list, keep-alive --once,
// revoke (which deletes the key), and timetolive of the revoked lease.
func TestEtcdctlLease(t *testing.T) {
	bin := etcdctl(t)
	c := newCluster(t, 3)
	waitPublished(t, c)
	eps := []string{c.follower().endpoint()}
	granted := ctl(t, bin, eps, "lease", "grant", "60")
	m := regexp.MustCompile(`^lease ([0-9a-f]{16}) granted with TTL\(60s\)\n$`).FindStringSubmatch(granted)
	if m == nil {
		t.Fatalf("lease grant 60 printed %q", granted)
	}
	id := m[1]
	expect := func(got, want, what string) {
		t.Helper()
		if got != want {
			t.Errorf("etcdctl %s printed %q, want %q", what, got, want)
		}
	}
	expect(ctl(t, bin, eps, "put", "--lease="+id, "leased", "v"), "OK\n", "put --lease")
	ttl := ctl(t, bin, eps, "lease", "timetolive", "--keys", id)
	if !regexp.MustCompile(`^lease ` + id + ` granted with TTL\(60s\), remaining\((58|59)s\), attached keys\(\[leased\]\)\n$`).MatchString(ttl) {
		t.Errorf("lease timetolive --keys printed %q", ttl)
	}
	if list := ctl(t, bin, eps, "lease", "list"); !strings.HasPrefix(list, "found 1 leases\n") || !strings.Contains(list, id+"\n") {
		t.Errorf("lease list printed %q, want the one lease %s", list, id)
	}
	expect(ctl(t, bin, eps, "lease", "keep-alive", "--once", id), fmt.Sprintf("lease %s keepalived with TTL(60)\n", id), "lease keep-alive --once")
	expect(ctl(t, bin, eps, "lease", "revoke", id), fmt.Sprintf("lease %s revoked\n", id), "lease revoke")
	expect(ctl(t, bin, c.endpoints(), "get", "leased"), "", "get of the revoked lease's key")
	expect(ctl(t, bin, eps, "lease", "timetolive", id), fmt.Sprintf("lease %s already expired\n", id), "lease timetolive of a revoked lease")
}

// refEtcdEndpoint starts etcd 3.7.3 (from the reference tool, beside
// etcdctl) as a one-member cluster, with extra flags, and returns its
// endpoint.
func refEtcdEndpoint(t *testing.T, extra ...string) string {
	t.Helper()
	ip := "127.0.0.1"
	return refEtcdWith(t, fmt.Sprintf("http://%s:%d", ip, freePort(t, ip)), extra...)
}

// refEtcdWith starts etcd 3.7.3 serving clients on client, with more
// flags, and returns client's host:port once a read through gRPC there
// is answered.
func refEtcdWith(t *testing.T, client string, flags ...string) string {
	t.Helper()
	bin := filepath.Join(filepath.Dir(etcdctl(t)), "etcd")
	if _, err := os.Stat(bin); err != nil {
		missing(t, fmt.Sprintf("no etcd beside etcdctl: %v", err))
	}
	ip := "127.0.0.1"
	peer := fmt.Sprintf("http://%s:%d", ip, freePort(t, ip))
	logPath := filepath.Join(t.TempDir(), "etcd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), bin, "--name", "ref", "--data-dir", t.TempDir(), "--log-level", "error",
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "ref="+peer)
	cmd.Args = append(cmd.Args, flags...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() { <-exited }) // t.Context ends first and kills it
	ep := strings.TrimPrefix(client, "http://")
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for deadline := time.Now().Add(startTimeout); ; time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "ready")
		cancel()
		if err == nil {
			return ep
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("etcd did not answer within %v: %v\n%s", startTimeout, err, b)
		}
	}
}

// TestLeaseErrorsMatchEtcd: the lease errors a client meets, asked of
// etcd 3.7.3 and of a follower of a plumb cluster (which forwards
// keep-alive and time-to-live): the same gRPC codes and messages, the
// same answers for an unknown lease (keep-alive TTL 0, time-to-live TTL
// -1), each with a header, the same minimum TTL, and etcdctl's exit codes
// and messages for the same mistakes.
func TestLeaseErrorsMatchEtcd(t *testing.T) {
	bin := etcdctl(t)
	ref := refEtcdEndpoint(t)
	c := newCluster(t, 3)
	waitPublished(t, c)
	plumb := c.follower().endpoint()
	want, got := leaseErrors(t, bin, ref), leaseErrors(t, bin, plumb)
	if want != got {
		t.Errorf("etcd 3.7.3 answered:\n%s\nplumb answered:\n%s", want, got)
	}
	t.Logf("both answered:\n%s", got)
}

// leaseErrors makes the mistakes against endpoint and writes down its
// answers.
func leaseErrors(t *testing.T, bin, endpoint string) string {
	t.Helper()
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := ctxT(t)
	lc, kv := pb.NewLeaseClient(conn), pb.NewKVClient(conn)
	const unknown = 0x1234
	var out strings.Builder
	note := func(what string, resp fmt.Stringer, err error) {
		if err != nil {
			st, _ := grpcstatus.FromError(err)
			fmt.Fprintf(&out, "%s: %v %q\n", what, st.Code(), st.Message())
			return
		}
		fmt.Fprintf(&out, "%s: ok\n", what)
	}
	hasHeader := func(h *pb.ResponseHeader) bool {
		return h.GetClusterId() != 0 && h.GetMemberId() != 0 && h.GetRevision() != 0
	}
	g, err := lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{TTL: 60, ID: 0x777})
	note("grant 0x777", g, err)
	if err == nil {
		fmt.Fprintf(&out, "  ID %x TTL %d header %v\n", g.ID, g.TTL, hasHeader(g.Header))
	}
	g, err = lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{TTL: 1})
	note("grant TTL 1", g, err)
	if err == nil {
		fmt.Fprintf(&out, "  TTL %d (the minimum at a %dms election timeout)\n", g.TTL, electionMs)
	}
	g, err = lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{TTL: 60, ID: 0x777})
	note("grant 0x777 again", g, err)
	g, err = lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{TTL: 9000000001})
	note("grant TTL 9000000001", g, err)
	for _, req := range []*pb.LeaseGrantRequest{{TTL: -5}, {TTL: 60, ID: -7}, {TTL: 0}} {
		g, err = lc.LeaseGrant(ctx, req)
		note(fmt.Sprintf("grant %v", req), g, err)
		if err == nil {
			fmt.Fprintf(&out, "  TTL %d negative ID %v\n", g.TTL, g.ID < 0)
		}
	}
	for _, id := range []int64{0, -7} {
		ttl, err := lc.LeaseTimeToLive(ctx, &pb.LeaseTimeToLiveRequest{ID: id})
		note(fmt.Sprintf("time-to-live %d", id), ttl, err)
		if err == nil {
			// A remaining TTL depends on when it is read: 59 at once (the
			// TTL truncated, as soon as any time has passed), 58 a second on.
			fmt.Fprintf(&out, "  ID %d TTL %v granted %d\n", ttl.ID, remaining(ttl.TTL), ttl.GrantedTTL)
		}
		r, err := lc.LeaseRevoke(ctx, &pb.LeaseRevokeRequest{ID: id})
		note(fmt.Sprintf("revoke %d", id), r, err)
	}
	r, err := lc.LeaseRevoke(ctx, &pb.LeaseRevokeRequest{ID: unknown})
	note("revoke of an unknown lease", r, err)
	list, err := lc.LeaseLeases(ctx, &pb.LeaseLeasesRequest{})
	note("leases", list, err)
	if err == nil {
		fmt.Fprintf(&out, "  %d leases, header %v\n", len(list.Leases), hasHeader(list.Header))
	}
	ttl, err := lc.LeaseTimeToLive(ctx, &pb.LeaseTimeToLiveRequest{ID: unknown, Keys: true})
	note("time-to-live of an unknown lease", ttl, err)
	if err == nil {
		fmt.Fprintf(&out, "  ID %x TTL %d granted %d keys %q header %v\n", ttl.ID, ttl.TTL, ttl.GrantedTTL, ttl.Keys, hasHeader(ttl.Header))
	}
	stream, err := lc.LeaseKeepAlive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{unknown, 0x777} {
		err := stream.Send(&pb.LeaseKeepAliveRequest{ID: id})
		var ka *pb.LeaseKeepAliveResponse
		if err == nil {
			ka, err = stream.Recv()
		}
		note(fmt.Sprintf("keep-alive of %x", id), ka, err)
		if err == nil {
			fmt.Fprintf(&out, "  ID %x TTL %d header %v\n", ka.ID, ka.TTL, hasHeader(ka.Header))
		}
	}
	p, err := kv.Put(ctx, &pb.PutRequest{Key: []byte("k"), Value: []byte("v"), Lease: unknown})
	note("put with an unknown lease", p, err)
	txn, err := kv.Txn(ctx, &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{
		RequestPut: &pb.PutRequest{Key: []byte("k"), Lease: unknown}}}}})
	note("txn put with an unknown lease", txn, err)
	for _, args := range [][]string{
		{"lease", "keep-alive", "--once", "1234"},
		{"lease", "revoke", "1234"},
		{"lease", "timetolive", "1234"},
		{"lease", "grant", "9000000001"},
		{"put", "--lease=1234", "k", "v"},
	} {
		code, stdout, stderr := ctlOutcome(t, bin, []string{endpoint}, args...)
		fmt.Fprintf(&out, "etcdctl %s: exit %d, stdout %q, stderr %q\n", strings.Join(args, " "), code, stdout, stderr)
	}
	return out.String()
}

// remaining writes a remaining TTL down as the comparison sees it: within
// two seconds below 60 (the TTL of the leases it reads) as one range, any
// other value (60 included: etcd never says it once any time has passed)
// as it is.
func remaining(ttl int64) string {
	if ttl > 57 && ttl < 60 {
		return "58-59"
	}
	return fmt.Sprint(ttl)
}
