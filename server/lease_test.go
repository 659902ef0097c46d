package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	"github.com/plumbdb/plumb/node"
)

// grantT grants a lease of ttl seconds through cli.
func grantT(t *testing.T, cli *clientv3.Client, ttl int64) clientv3.LeaseID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g, err := cli.Grant(ctx, ttl)
	if err != nil {
		t.Fatalf("grant %ds: %v", ttl, err)
	}
	return g.ID
}

// leaseConn is a plain gRPC connection to cfg's client URL, for what
// clientv3 hides (raw keep-alive responses, metadata).
func leaseConn(t *testing.T, cfg Config) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(strings.TrimPrefix(cfg.AdvertiseClientURLs[0], "http://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// keepAlives sends each ID on one keep-alive stream and returns the
// responses, read as they come.
func keepAlives(ctx context.Context, c pb.LeaseClient, ids ...int64) ([]*pb.LeaseKeepAliveResponse, error) {
	stream, err := c.LeaseKeepAlive(ctx)
	if err != nil {
		return nil, err
	}
	var out []*pb.LeaseKeepAliveResponse
	for _, id := range ids {
		if err := stream.Send(&pb.LeaseKeepAliveRequest{ID: id}); err != nil {
			return out, err
		}
		resp, err := stream.Recv()
		if err != nil {
			return out, err
		}
		out = append(out, resp)
	}
	return out, stream.CloseSend()
}

// TestLeaseLifecycle: etcd's lease calls through clientv3 on one member:
// grant, put with the lease, time-to-live with its keys, list, keep-alive,
// revoke (which deletes the keys), and what each says of a lease that is
// gone: TTL -1, keep-alive refused, not listed.
func TestLeaseLifecycle(t *testing.T) {
	_, _, cli := watchMember(t)
	ctx := context.Background()
	id := grantT(t, cli, 60)
	other := grantT(t, cli, 30)
	for _, k := range []string{"l/a", "l/b"} {
		if _, err := cli.Put(ctx, k, "v", clientv3.WithLease(id)); err != nil {
			t.Fatal(err)
		}
	}
	ttl, err := cli.TimeToLive(ctx, id, clientv3.WithAttachedKeys())
	if err != nil || ttl.ID != id || ttl.GrantedTTL != 60 || ttl.TTL < 58 || ttl.TTL > 60 || fmt.Sprintf("%s", ttl.Keys) != "[l/a l/b]" {
		t.Fatalf("time-to-live --keys: %+v %v, want granted 60, remaining 58-60, keys [l/a l/b]", ttl, err)
	}
	list, err := cli.Leases(ctx)
	if err != nil || len(list.Leases) != 2 || !slices.ContainsFunc(list.Leases, func(s clientv3.LeaseStatus) bool { return s.ID == id }) {
		t.Fatalf("leases: %+v %v, want %x and %x", list, err, id, other)
	}
	ka, err := cli.KeepAliveOnce(ctx, id)
	if err != nil || ka.ID != id || ka.TTL != 60 || ka.Revision == 0 {
		t.Fatalf("keep-alive: %+v %v, want TTL 60 and a header", ka, err)
	}
	rev, err := cli.Revoke(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := cli.Get(ctx, "l/", clientv3.WithPrefix())
	if err != nil || len(got.Kvs) != 0 {
		t.Fatalf("the revoked lease's keys: %v %v, want none", got.Kvs, err)
	}
	if got.Header.Revision != rev.Header.Revision {
		t.Errorf("the revoke answered at %d, the keys were gone at %d: it deleted them in one revision after the puts", rev.Header.Revision, got.Header.Revision)
	}
	ttl, err = cli.TimeToLive(ctx, id)
	if err != nil || ttl.TTL != -1 || ttl.ID != id {
		t.Fatalf("time-to-live of a revoked lease: %+v %v, want TTL -1", ttl, err)
	}
	if _, err := cli.KeepAliveOnce(ctx, id); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("keep-alive of a revoked lease: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
	list, err = cli.Leases(ctx)
	if err != nil || len(list.Leases) != 1 || list.Leases[0].ID != other {
		t.Fatalf("leases after the revoke: %+v %v, want only %x", list, err, other)
	}
}

// TestLeaseErrors: etcd's errors for the lease calls, each as clientv3's
// typed error; and a keep-alive stream that names an unknown lease gets a
// TTL 0 answer and goes on serving the next request, as etcd's does.
func TestLeaseErrors(t *testing.T) {
	_, cfg, cli := watchMember(t)
	ctx := context.Background()
	id := grantT(t, cli, 60)
	lc := pb.NewLeaseClient(cli.ActiveConnection())
	for _, tc := range []struct {
		name string
		do   func() error
		want error
	}{
		{"grant of an ID that exists", func() error {
			_, err := lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: int64(id), TTL: 10})
			return err
		}, rpctypes.ErrLeaseExist},
		{"grant of a TTL too large", func() error { _, err := cli.Grant(ctx, node.MaxLeaseTTL+1); return err }, rpctypes.ErrLeaseTTLTooLarge},
		{"revoke of an unknown lease", func() error { _, err := cli.Revoke(ctx, 12345); return err }, rpctypes.ErrLeaseNotFound},
		{"put with an unknown lease", func() error { _, err := cli.Put(ctx, "k", "v", clientv3.WithLease(12345)); return err }, rpctypes.ErrLeaseNotFound},
	} {
		if err := tc.do(); !errors.Is(rpctypes.Error(err), tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	resps, err := keepAlives(ctx, pb.NewLeaseClient(leaseConn(t, cfg)), 12345, int64(id))
	if err != nil || len(resps) != 2 {
		t.Fatalf("keep-alives of an unknown lease, then of a granted one: %v %v", resps, err)
	}
	if r := resps[0]; r.ID != 12345 || r.TTL != 0 || r.Header.GetMemberId() == 0 {
		t.Errorf("keep-alive of an unknown lease: %v, want ID 12345, TTL 0, a header", r)
	}
	if r := resps[1]; r.ID != int64(id) || r.TTL != 60 {
		t.Errorf("keep-alive after it on the same stream: %v, want TTL 60", r)
	}
	ttl, err := lc.LeaseTimeToLive(ctx, &pb.LeaseTimeToLiveRequest{ID: 12345})
	if err != nil || ttl.TTL != -1 || ttl.ID != 12345 || ttl.Header.GetMemberId() == 0 {
		t.Errorf("time-to-live of an unknown lease: %v %v, want TTL -1 and a header", ttl, err)
	}
}

// TestLeaseStatusesAreEtcds: the node's lease errors reach a client with
// the gRPC code and message etcd 3.7.3 gives them (its
// api/v3rpc/rpctypes), and clientv3 turns each back into its typed error.
func TestLeaseStatusesAreEtcds(t *testing.T) {
	for _, tc := range []struct {
		err   error
		code  codes.Code
		msg   string
		typed error
	}{
		{node.ErrLeaseNotFound, codes.NotFound, "etcdserver: requested lease not found", rpctypes.ErrLeaseNotFound},
		{node.ErrLeaseExists, codes.FailedPrecondition, "etcdserver: lease already exists", rpctypes.ErrLeaseExist},
		{node.ErrLeaseTTLTooLarge, codes.OutOfRange, "etcdserver: too large lease TTL", rpctypes.ErrLeaseTTLTooLarge},
		{node.ErrNotLeader, codes.FailedPrecondition, "etcdserver: not leader", rpctypes.ErrNotLeader},
	} {
		st, _ := status.FromError(toGRPC(tc.err))
		if st.Code() != tc.code || st.Message() != tc.msg {
			t.Errorf("%v: %v %q, want etcd's %v %q", tc.err, st.Code(), st.Message(), tc.code, tc.msg)
		}
		if got := rpctypes.Error(toGRPC(tc.err)); !errors.Is(got, tc.typed) {
			t.Errorf("%v reaches clientv3 as %v, want %v", tc.err, got, tc.typed)
		}
	}
}

// TestLeaseExpiry: a lease no one keeps alive runs out: the leader revokes
// it, its key goes, and the member's counters say so; the TTL histogram
// has the grant.
func TestLeaseExpiry(t *testing.T) {
	s, _, cli := watchMember(t)
	ctx := context.Background()
	before := leaseCounts(t, s.metrics.reg)
	id := grantT(t, cli, 1) // etcd's minimum at a 100ms election timeout
	if _, err := cli.Put(ctx, "short", "v", clientv3.WithLease(id)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := cli.Get(ctx, "short")
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Kvs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the key of a 1s lease no one kept alive is still there after 5s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	after := leaseCounts(t, s.metrics.reg)
	if after["etcd_debugging_lease_granted_total"] != before["etcd_debugging_lease_granted_total"]+1 ||
		after["etcd_debugging_lease_revoked_total"] != before["etcd_debugging_lease_revoked_total"]+1 {
		t.Errorf("lease counters before %v, after %v: want one more grant and one more revoke", before, after)
	}
	if after["etcd_debugging_lease_ttl_total"] != before["etcd_debugging_lease_ttl_total"]+1 {
		t.Errorf("TTL histogram count before %v, after %v: want the grant observed", before, after)
	}
}

// leaseCounts reads the lease and watcher metrics: counters and gauges by
// value, the histogram by its count.
func leaseCounts(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "etcd_debugging_") || len(f.GetMetric()) != 1 {
			continue
		}
		m := f.GetMetric()[0]
		switch {
		case m.Counter != nil:
			out[f.GetName()] = m.Counter.GetValue()
		case m.Gauge != nil:
			out[f.GetName()] = m.Gauge.GetValue()
		case m.Histogram != nil:
			out[f.GetName()] = float64(m.Histogram.GetSampleCount())
		}
	}
	return out
}

// TestMetricsCountWatchersAndRenewals: etcd's watcher gauge follows the
// watchers open on the member, and each keep-alive the leader acknowledges
// is a renewal.
func TestMetricsCountWatchersAndRenewals(t *testing.T) {
	s, _, cli := watchMember(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base := leaseCounts(t, s.metrics.reg)
	cli.Watch(ctx, "a")
	cli.Watch(ctx, "b", clientv3.WithPrefix())
	waitWatchCount(t, s, 2)
	id := grantT(t, cli, 60)
	for range 3 {
		if _, err := cli.KeepAliveOnce(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	got := leaseCounts(t, s.metrics.reg)
	if got["etcd_debugging_mvcc_watcher_total"] != base["etcd_debugging_mvcc_watcher_total"]+2 {
		t.Errorf("watcher gauge %v with two watchers open (%v before)", got["etcd_debugging_mvcc_watcher_total"], base["etcd_debugging_mvcc_watcher_total"])
	}
	if slow, ok := got["etcd_debugging_mvcc_slow_watcher_total"]; !ok || slow != 0 {
		t.Errorf("slow watcher gauge %v (exported: %v) with both watchers synced", slow, ok)
	}
	if got["etcd_debugging_lease_renewed_total"] != base["etcd_debugging_lease_renewed_total"]+3 {
		t.Errorf("renewals %v after three keep-alives (%v before)", got["etcd_debugging_lease_renewed_total"], base["etcd_debugging_lease_renewed_total"])
	}
	cancel()
	waitWatchCount(t, s, 0)
	if got := leaseCounts(t, s.metrics.reg)["etcd_debugging_mvcc_watcher_total"]; got != 0 {
		t.Errorf("watcher gauge %v once the watchers are gone", got)
	}
}

// testCluster is a cluster of in-process members on loopback.
type testCluster struct {
	t       *testing.T
	members []*Server
	cfgs    []Config
}

// newTestCluster starts size members and waits until they agree on a
// leader that has published its client URL.
func newTestCluster(t *testing.T, size int) *testCluster {
	t.Helper()
	c := &testCluster{t: t}
	initial := map[string][]string{}
	for i := range size {
		cfg := oneMember(t, t.TempDir())
		cfg.Name = fmt.Sprintf("m%d", i+1)
		cfg.InitialClusterToken = "server-cluster-test"
		initial[cfg.Name] = cfg.InitialAdvertisePeerURLs
		c.cfgs = append(c.cfgs, cfg)
	}
	for i := range c.cfgs {
		c.cfgs[i].InitialCluster = initial
		s := startT(t, c.cfgs[i])
		t.Cleanup(func() { s.Stop() })
		c.members = append(c.members, s)
	}
	c.waitLeader(0)
	return c
}

// lead returns what member i takes for the leader, and whether that
// leader's client URL is known to it.
func (c *testCluster) lead(i int) (uint64, bool) {
	var lead uint64
	var published bool
	err := c.members[i].loop.exec(context.Background(), func(n *node.Node) {
		lead = n.Lead()
		m, ok := n.Member(lead)
		published = ok && len(m.ClientURLs) > 0
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return lead, published
}

// waitLeader waits until every member sees one leader, not notID, with a
// published client URL, and returns its index.
func (c *testCluster) waitLeader(notID uint64) int {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		first, ok := c.lead(0)
		for i := range c.members {
			lead, published := c.lead(i)
			ok = ok && published && lead == first && lead != 0 && lead != notID
		}
		if ok {
			for i, s := range c.members {
				if s.ID() == first {
					return i
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("the members did not agree on a leader within 10s")
	return -1
}

// TestLeaseForwarding: keep-alive and time-to-live asked of a follower
// (whose node refuses them: only the leader counts lease time) are
// forwarded to the leader and answered, in order on one stream; after the
// leader moves, the follower forwards to the new one. A request another
// member forwarded is never forwarded again: on a follower it fails.
func TestLeaseForwarding(t *testing.T) {
	c := newTestCluster(t, 3)
	leader := c.waitLeader(0)
	follower := (leader + 1) % 3
	fcfg := c.cfgs[follower]
	cli := clientOf(t, fcfg)
	ctx := context.Background()
	a, b := grantT(t, cli, 60), grantT(t, cli, 90)
	if _, err := cli.Put(ctx, "fwd/k", "v", clientv3.WithLease(a)); err != nil {
		t.Fatal(err)
	}
	lc := pb.NewLeaseClient(leaseConn(t, fcfg))

	check := func(when string, leaderID uint64) {
		t.Helper()
		resps, err := keepAlives(ctx, lc, int64(a), int64(b), 4242, int64(a))
		if err != nil {
			t.Fatalf("%s: keep-alives on the follower: %v", when, err)
		}
		want := []struct{ id, ttl int64 }{{int64(a), 60}, {int64(b), 90}, {4242, 0}, {int64(a), 60}}
		for i, r := range resps {
			if r.ID != want[i].id || r.TTL != want[i].ttl {
				t.Errorf("%s: keep-alive response %d: ID %x TTL %d, want ID %x TTL %d", when, i, r.ID, r.TTL, want[i].id, want[i].ttl)
			}
		}
		ttl, err := cli.TimeToLive(ctx, a, clientv3.WithAttachedKeys())
		if err != nil || ttl.GrantedTTL != 60 || ttl.TTL < 58 || fmt.Sprintf("%s", ttl.Keys) != "[fwd/k]" {
			t.Errorf("%s: time-to-live --keys on the follower: %+v %v", when, ttl, err)
		}
		if ttl, err := cli.TimeToLive(ctx, 4242); err != nil || ttl.TTL != -1 {
			t.Errorf("%s: time-to-live of an unknown lease on the follower: %+v %v, want TTL -1", when, ttl, err)
		}
		if got := resps[0].GetHeader().GetMemberId(); got != leaderID {
			t.Errorf("%s: the forwarded keep-alive was answered by %x, want the leader %x", when, got, leaderID)
		}
	}
	check("first leader", c.members[leader].ID())

	// A forwarded keep-alive that reaches a follower fails there; one
	// from a member of no cluster of ours is refused before it is read.
	third := (leader + 2) % 3
	fs := c.members[follower]
	for _, fwd := range []struct {
		method string
		req    proto.Message
	}{{"LeaseKeepAlive", &pb.LeaseKeepAliveRequest{ID: int64(a)}}, {"LeaseTimeToLive", &pb.LeaseTimeToLiveRequest{ID: int64(a)}}} {
		code, out := postForward(t, fs, c.members[third].ID(), fwd.method, fwd.req)
		if want := status.Convert(rpctypes.ErrGRPCNotLeader); code != http.StatusOK || out.Code != uint32(want.Code()) || out.Message != want.Message() {
			t.Errorf("a forwarded %s on a follower: %d %+v, want %v", fwd.method, code, out, rpctypes.ErrGRPCNotLeader)
		}
		if code, _ := postForward(t, fs, 0xbad, fwd.method, fwd.req); code != http.StatusPreconditionFailed {
			t.Errorf("a %s forwarded by a stranger: %d, want 412", fwd.method, code)
		}
	}

	// Leadership moves to the third member; the follower follows it.
	old := c.members[leader].ID()
	mc := pb.NewMaintenanceClient(leaseConn(t, c.cfgs[leader]))
	if _, err := mc.MoveLeader(ctx, &pb.MoveLeaderRequest{TargetID: c.members[third].ID()}); err != nil {
		t.Fatal(err)
	}
	if got := c.waitLeader(old); got != third {
		t.Fatalf("leadership moved to member %d, want %d", got, third)
	}
	check("after the leader moved", c.members[third].ID())
}

// TestLeaseForwardingWithoutLeader: a member that has lost its quorum
// cannot forward a keep-alive or a time-to-live; after etcd's request
// timeout it answers etcd's "no leader" (Unavailable, which clients retry),
// never "not leader", and a keep-alive stream ends with it.
func TestLeaseForwardingWithoutLeader(t *testing.T) {
	c := newTestCluster(t, 3)
	leader := c.waitLeader(0)
	cli := clientOf(t, c.cfgs[leader])
	id := grantT(t, cli, 60)
	survivor := (leader + 1) % 3
	for i, s := range c.members {
		if i != survivor {
			s.Stop()
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if lead, _ := c.lead(survivor); lead == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the survivor still knows a leader 5s after the others stopped")
		}
	}
	lc := pb.NewLeaseClient(leaseConn(t, c.cfgs[survivor]))
	ctx := context.Background()
	start := time.Now()
	if _, err := keepAlives(ctx, lc, int64(id)); !sameStatus(err, rpctypes.ErrGRPCNoLeader) {
		t.Errorf("keep-alive without a leader: %v, want %v", err, rpctypes.ErrGRPCNoLeader)
	}
	if took, bound := time.Since(start), 5*time.Second+2*c.cfgs[survivor].ElectionTimeout; took < bound {
		t.Errorf("keep-alive without a leader failed after %v, before the request timeout %v", took, bound)
	}
	if _, err := lc.LeaseTimeToLive(ctx, &pb.LeaseTimeToLiveRequest{ID: int64(id)}); !sameStatus(err, rpctypes.ErrGRPCNoLeader) {
		t.Errorf("time-to-live without a leader: %v, want %v", err, rpctypes.ErrGRPCNoLeader)
	}
}

// postForward sends s a request forwarded (forward.go) by member from of
// s's cluster, over s's peer port, and returns the HTTP status and the
// decoded answer.
func postForward(t *testing.T, s *Server, from uint64, method string, req proto.Message) (int, forwardResponse) {
	t.Helper()
	body, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	data, err := proto.Marshal(protoadapt.MessageV2Of(&forwardRequest{Method: method, Body: body}))
	if err != nil {
		t.Fatal(err)
	}
	hr, err := http.NewRequest(http.MethodPost, s.cfg.InitialAdvertisePeerURLs[0]+peerForwardPath, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set(headerClusterID, node.FormatID(s.tr.clusterID))
	hr.Header.Set(headerFrom, node.FormatID(from))
	hr.Header.Set(headerTo, node.FormatID(s.ID()))
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out forwardResponse
	if resp.StatusCode == http.StatusOK {
		if err := proto.Unmarshal(raw, protoadapt.MessageV2Of(&out)); err != nil {
			t.Fatalf("%s: %v", method, err)
		}
	}
	return resp.StatusCode, out
}
