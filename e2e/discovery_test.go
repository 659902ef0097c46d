package e2e_test

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plumbdb/plumb/internal/dnstest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// startEnv runs member m with its --name, flags and the environment
// variables env (the seeds' ETCD_* environment file), which say how it
// finds its peers in place of a static --initial-cluster.
func startEnv(c *cluster, m *member, env []string, flags ...string) {
	c.t.Helper()
	c.run(m, slices.Concat(c.serveArgs(m), []string{"--name", m.name}, flags), env)
}

// newMembers lays out members named prefix1, prefix2, ... on the given
// loopback addresses, not started.
func newMembers(t *testing.T, prefix string, ips ...string) *cluster {
	c := &cluster{t: t, base: t.TempDir()}
	for i, ip := range ips {
		c.members = append(c.members, c.newMember(fmt.Sprintf("%s%d", prefix, i+1), ip))
	}
	t.Cleanup(c.stopAll)
	return c
}

// etcdMemberID is etcd's member ID of a member of a new cluster: the
// first 8 bytes of the SHA-1 of its sorted peer URLs and the cluster token.
func etcdMemberID(token string, urls ...string) string {
	urls = slices.Clone(urls)
	sort.Strings(urls)
	sum := sha1.Sum([]byte(strings.Join(urls, "") + token))
	return strconv.FormatUint(binary.BigEndian.Uint64(sum[:8]), 16)
}

// wantMembers waits until member list names every member as it has
// published itself, and returns etcd's member list lines for them
// ("ID, started, name, peer URL, client URL, false"), sorted.
func wantMembers(t *testing.T, c *cluster, token string, peerURL func(*member) string) []string {
	t.Helper()
	var want []string
	names := map[string]bool{}
	for _, m := range c.members {
		want = append(want, fmt.Sprintf("%s, started, %s, %s, %s, false", etcdMemberID(token, peerURL(m)), m.name, peerURL(m), m.clientURL()))
		names[m.name] = true
	}
	sort.Strings(want)
	cli := c.client()
	var got []string
	for range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		list, err := cli.MemberList(ctx)
		cancel()
		got = nil
		if err == nil {
			for _, m := range list.Members {
				if names[m.Name] && len(m.ClientURLs) == 1 && len(m.PeerURLs) == 1 {
					got = append(got, fmt.Sprintf("%x, started, %s, %s, %s, false", m.ID, m.Name, m.PeerURLs[0], m.ClientURLs[0]))
				}
			}
		}
		sort.Strings(got)
		if slices.Equal(got, want) {
			return want
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("member list:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	return nil
}

// putGet writes through one member and reads through another.
func putGet(t *testing.T, c *cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.client(c.members[0].endpoint()).Put(ctx, "/config/db", "host=10.0.0.9"); err != nil {
		t.Fatal(err)
	}
	resp, err := c.client(c.members[len(c.members)-1].endpoint()).Get(ctx, "/config/db")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "host=10.0.0.9" {
		t.Fatalf("get /config/db: %v, %v", resp, err)
	}
}

// TestDiscoverySRV is the seeds' DNS discovery: SRV records
// _etcd-server._tcp.example.com for infra1..3 (on 127.0.0.1..3, each on
// its own peer port) and their A records, served by a DNS server on a
// loopback address; each member started with --discovery-srv or
// ETCD_DISCOVERY_SRV (and plumb's --discovery-srv-resolver or
// PLUMB_DISCOVERY_SRV_RESOLVER naming that server) and no
// --initial-cluster. etcdctl member list shows the three with etcd's IDs
// and the records' names as peer URLs, and a put is read back. A fourth
// member the records do not list is refused with etcd's error.
func TestDiscoverySRV(t *testing.T) {
	c := newMembers(t, "infra", "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
	extra := c.members[3]
	c.members = c.members[:3]
	host := func(m *member) string { return m.name + ".example.com" }
	peerURL := func(m *member) string { return fmt.Sprintf("http://%s:%d", host(m), m.peerPort) }
	var records []string
	for _, m := range append(slices.Clone(c.members), extra) {
		records = append(records, fmt.Sprintf("%s. 300 IN A %s", host(m), m.ip))
	}
	for _, m := range c.members {
		records = append(records, fmt.Sprintf("_etcd-server._tcp.example.com. 300 IN SRV 0 0 %d %s.", m.peerPort, host(m)))
	}
	// The DNS server the seeds set up with dnsmasq, which the members reach
	// through --discovery-srv-resolver rather than through /etc/resolv.conf.
	resolver := dnstest.Serve(t, "127.0.0.9", records...)
	env := func(m *member) []string {
		return []string{"ETCD_DISCOVERY_SRV=example.com", "PLUMB_DISCOVERY_SRV_RESOLVER=" + resolver,
			"ETCD_INITIAL_ADVERTISE_PEER_URLS=" + peerURL(m), "ETCD_INITIAL_CLUSTER_TOKEN=etcd-cluster-1",
			"ETCD_INITIAL_CLUSTER_STATE=new"}
	}
	// infra1 takes the seeds' command line, the others their environment
	// file.
	startEnv(c, c.members[0], nil, "--discovery-srv", "example.com", "--discovery-srv-resolver", resolver,
		"--initial-advertise-peer-urls", peerURL(c.members[0]), "--initial-cluster-token", "etcd-cluster-1",
		"--initial-cluster-state", "new")
	for _, m := range c.members[1:] {
		startEnv(c, m, env(m))
	}
	c.waitLeader(startTimeout)
	want := wantMembers(t, c, "etcd-cluster-1", peerURL)
	putGet(t, c)

	startEnv(c, extra, env(extra))
	if log := c.waitExit(extra, startTimeout); !strings.Contains(log, `cannot find local etcd member \"infra4\" in SRV records`) &&
		!strings.Contains(log, `cannot find local etcd member "infra4" in SRV records`) {
		t.Errorf("a member the records do not list:\n%s", tail([]byte(log), 2048))
	}

	bin := etcdctl(t)
	if got := strings.Split(strings.TrimSpace(ctl(t, bin, c.endpoints(), "member", "list")), "\n"); !slices.Equal(sorted(got), want) {
		t.Errorf("etcdctl member list:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if out := ctl(t, bin, c.endpoints(), "put", "/config/discovered", "srv"); out != "OK\n" {
		t.Errorf("etcdctl put printed %q", out)
	}
	if out := ctl(t, bin, c.endpoints()[2:], "get", "/config/discovered"); out != "/config/discovered\nsrv\n" {
		t.Errorf("etcdctl get printed %q", out)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// TestDiscoveryToken bootstraps a 3-member cluster through another running
// plumb member with etcd 3.7's v3 discovery: the operator sets the size
// under /_etcd/registry/<token>/_config/size, and each member starts with
// ETCD_DISCOVERY_TOKEN and ETCD_DISCOVERY_ENDPOINTS instead of
// --initial-cluster. The token is the cluster token (etcd's IDs); a fourth
// member finds the cluster full.
func TestDiscoveryToken(t *testing.T) {
	registry := newCluster(t, 1)
	const token = "e2e-discovery-token"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rcli := registry.client()
	if _, err := rcli.Put(ctx, "/_etcd/registry/"+token+"/_config/size", "3"); err != nil {
		t.Fatal(err)
	}

	c := newMembers(t, "d", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6")
	extra, waiting := c.members[3], c.members[4]
	c.members = c.members[:3]
	env := func(m *member) []string {
		return []string{"ETCD_DISCOVERY_TOKEN=" + token, "ETCD_DISCOVERY_ENDPOINTS=" + registry.members[0].clientURL(),
			"ETCD_INITIAL_ADVERTISE_PEER_URLS=" + m.peerURL()}
	}
	for _, m := range c.members {
		startEnv(c, m, env(m))
	}
	c.waitLeader(startTimeout)
	wantMembers(t, c, token, (*member).peerURL)
	putGet(t, c)

	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := rcli.Get(ctx, "/_etcd/registry/"+token+"/members/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var regs []string
	for _, kv := range resp.Kvs {
		regs = append(regs, string(kv.Key)+" "+string(kv.Value))
	}
	for _, m := range c.members {
		want := fmt.Sprintf("/_etcd/registry/%s/members/%s %s=%s", token, etcdMemberID(token, m.peerURL()), m.name, m.peerURL())
		if !slices.Contains(regs, want) {
			t.Errorf("registrations %q lack %q", regs, want)
		}
	}

	startEnv(c, extra, env(extra))
	if log := c.waitExit(extra, startTimeout); !strings.Contains(log, "failed to join discovery cluster (discovery: cluster is full)") {
		t.Errorf("a fourth member of a 3-member discovery:\n%s", tail([]byte(log), 2048))
	}

	// A member waiting for peers that never come stops on SIGTERM (the
	// discovery wait is not deaf to it), leaving no member in its data dir.
	if _, err := rcli.Put(ctx, "/_etcd/registry/alone/_config/size", "2"); err != nil {
		t.Fatal(err)
	}
	startEnv(c, waiting, []string{"ETCD_DISCOVERY_TOKEN=alone", "ETCD_DISCOVERY_ENDPOINTS=" + registry.members[0].clientURL(),
		"ETCD_INITIAL_ADVERTISE_PEER_URLS=" + waiting.peerURL()})
	for deadline := time.Now().Add(startTimeout); !logContains(t, waiting, "waiting for peers from discovery service"); {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start waiting for its peers within %v", waiting.name, startTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.stop(waiting)
	if !logContains(t, waiting, "failed to join discovery cluster (context canceled)") {
		t.Error("the waiting member did not say why it stopped")
	}
	if _, err := os.Stat(filepath.Join(waiting.dataDir, "member", "wal")); err == nil {
		t.Error("the waiting member left a WAL behind")
	}
}

// TestDiscoveryTokenEtcd: v3 discovery with etcd 3.7.3 itself. Two plumb
// members bootstrap through an etcd cluster as their discovery service;
// and an etcd member bootstrapping by --discovery-token registers the key
// and value, and takes the ID, that plumb's registrations are checked
// against (TestDiscoveryToken): the layout is etcd's.
func TestDiscoveryTokenEtcd(t *testing.T) {
	ep := refEtcdEndpoint(t)
	rcli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer rcli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for token, size := range map[string]string{"via-etcd": "2", "etcd-layout": "1"} {
		if _, err := rcli.Put(ctx, "/_etcd/registry/"+token+"/_config/size", size); err != nil {
			t.Fatal(err)
		}
	}

	c := newMembers(t, "p", "127.0.0.2", "127.0.0.3")
	for _, m := range c.members {
		startEnv(c, m, []string{"ETCD_DISCOVERY_TOKEN=via-etcd", "ETCD_DISCOVERY_ENDPOINTS=http://" + ep,
			"ETCD_INITIAL_ADVERTISE_PEER_URLS=" + m.peerURL()})
	}
	c.waitLeader(startTimeout)
	wantMembers(t, c, "via-etcd", (*member).peerURL)
	putGet(t, c)

	// etcd 3.7.3 bootstrapping a one-member cluster through the same
	// discovery service.
	ip := "127.0.0.7"
	peer := fmt.Sprintf("http://%s:%d", ip, freePort(t, ip))
	client := fmt.Sprintf("http://%s:%d", ip, freePort(t, ip))
	logPath := filepath.Join(t.TempDir(), "etcd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), filepath.Join(filepath.Dir(etcdctl(t)), "etcd"),
		"--name", "e1", "--data-dir", t.TempDir(), "--log-level", "error",
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--discovery-token", "etcd-layout", "--discovery-endpoints", "http://"+ep)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() { <-exited }) // t.Context ends first and kills it
	wantKey := "/_etcd/registry/etcd-layout/members/" + etcdMemberID("etcd-layout", peer)
	for deadline := time.Now().Add(startTimeout); ; time.Sleep(100 * time.Millisecond) {
		resp, err := rcli.Get(ctx, "/_etcd/registry/etcd-layout/members/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) > 0 {
			if got := string(resp.Kvs[0].Key) + " " + string(resp.Kvs[0].Value); got != wantKey+" e1="+peer {
				t.Errorf("etcd registered %q, want %q", got, wantKey+" e1="+peer)
			}
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("etcd did not register within %v\n%s", startTimeout, b)
		}
	}
	ecli, err := clientv3.New(clientv3.Config{Endpoints: []string{strings.TrimPrefix(client, "http://")}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer ecli.Close()
	for deadline := time.Now().Add(startTimeout); ; time.Sleep(100 * time.Millisecond) {
		sctx, scancel := context.WithTimeout(ctx, time.Second)
		st, err := ecli.Status(sctx, strings.TrimPrefix(client, "http://"))
		scancel()
		if err == nil {
			if got := strconv.FormatUint(st.Header.MemberId, 16); got != etcdMemberID("etcd-layout", peer) {
				t.Errorf("etcd's member ID %s, want %s (the token hashed with the peer URL)", got, etcdMemberID("etcd-layout", peer))
			}
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("etcd did not answer within %v: %v\n%s", startTimeout, err, b)
		}
	}
}
