package server

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/plumbdb/plumb/node"
)

// TestResolveDiscovery: the discovery settings and etcd's rules between
// them and --initial-cluster.
func TestResolveDiscovery(t *testing.T) {
	peer := map[string]string{"name": "infra0", "initial-advertise-peer-urls": "http://infra0.example.com:2380"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range peer {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []resolveCase{
		{name: "srv leaves the initial cluster to the records",
			flags: with("discovery-srv", "example.com", "discovery-srv-name", "prod", "discovery-srv-resolver", "127.0.0.9:53"),
			check: func(t *testing.T, c Config) {
				if c.DiscoverySRV != "example.com" || c.DiscoverySRVName != "prod" || c.DiscoverySRVResolver != "127.0.0.9:53" || c.InitialCluster != nil {
					t.Errorf("got %+v", c)
				}
			}},
		{name: "v3 discovery from etcd's variables", flags: peer,
			env: []string{"ETCD_DISCOVERY_TOKEN=t1", "ETCD_DISCOVERY_ENDPOINTS=http://10.0.0.9:2379,10.0.0.10:2379",
				"ETCD_DISCOVERY_REQUEST_TIMEOUT=3s"},
			check: func(t *testing.T, c Config) {
				if c.DiscoveryToken != "t1" || !slices.Equal(c.DiscoveryEndpoints, []string{"http://10.0.0.9:2379", "10.0.0.10:2379"}) ||
					c.DiscoveryRequestTimeout != 3*time.Second || c.DiscoveryDialTimeout != 2*time.Second || c.InitialCluster != nil {
					t.Errorf("got %+v", c)
				}
			}},
		{name: "initial-cluster and discovery-srv", exact: true,
			flags: with("discovery-srv", "example.com", "initial-cluster", "infra0=http://infra0.example.com:2380"),
			wantErr: []string{`multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery-endpoints" or "discovery-srv" ` +
				`(--initial-cluster from the command line, --discovery-srv from the command line)`}},
		{name: "discovery-srv and discovery-endpoints", flags: with("discovery-srv", "example.com"),
			env:     []string{"ETCD_DISCOVERY_TOKEN=t1", "ETCD_DISCOVERY_ENDPOINTS=10.0.0.9:2379"},
			wantErr: []string{"multiple discovery or bootstrap flags are set", "--discovery-endpoints from ETCD_DISCOVERY_ENDPOINTS"}},
		{name: "token without endpoints", flags: with("discovery-token", "t1"),
			wantErr: []string{"both --discovery-token and --discovery-endpoints must be set (--discovery-token from the command line)"}},
		{name: "endpoints without token", flags: with("discovery-endpoints", "10.0.0.9:2379"),
			wantErr: []string{"both --discovery-token and --discovery-endpoints must be set"}},
		{name: "srv-name alone", flags: with("discovery-srv-name", "prod"),
			wantErr: []string{"--discovery-srv-name is set but --discovery-srv is not"}},
		{name: "a URL for a domain", flags: with("discovery-srv", "http://example.com"),
			wantErr: []string{`--discovery-srv: "http://example.com" must be a DNS domain, as in example.com, not a URL or an address (from the command line)`}},
		{name: "a resolver by name", flags: with("discovery-srv", "example.com", "discovery-srv-resolver", "ns1.example.com:53"),
			wantErr: []string{`--discovery-srv-resolver: "ns1.example.com:53" must be a DNS server's IP address and port`}},
		{name: "https endpoints", flags: with("discovery-token", "t1", "discovery-endpoints", "https://10.0.0.9:2379"),
			wantErr: []string{`--discovery-endpoints: "https://10.0.0.9:2379": TLS is not supported yet`}},
		{name: "a token with a slash", flags: with("discovery-token", "a/b", "discovery-endpoints", "10.0.0.9:2379"),
			wantErr: []string{`--discovery-token: "a/b" must not contain '/'`}},
		{name: "a negative timeout", flags: with("discovery-dial-timeout", "-1s"),
			wantErr: []string{"--discovery-dial-timeout: must not be negative (set to -1s)"}},
		{name: "discovery user refused", flags: peer, env: []string{"ETCD_DISCOVERY_USER=root"},
			wantErr: []string{`--discovery-user: "root": plumb does not support authentication to the discovery cluster yet`}},
		{name: "v2 discovery proxy refused", flags: peer, env: []string{"ETCD_DISCOVERY_PROXY=http://proxy:8080"},
			wantErr: []string{"--discovery-proxy: ", "the v2 discovery protocol"}},
	} {
		t.Run(tc.name, tc.run)
	}
}

// newDiscoveryMember is the Config of a member of a new cluster that finds
// its peers through the discovery cluster at endpoint.
func newDiscoveryMember(t *testing.T, dir, name, endpoint, token string) Config {
	cfg := oneMember(t, filepath.Join(dir, name))
	cfg.Name = name
	cfg.InitialCluster = nil
	cfg.InitialClusterToken = "etcd-cluster" // the default, which the discovery token replaces
	cfg.DiscoveryEndpoints = []string{endpoint}
	cfg.DiscoveryToken = token
	return cfg
}

type started struct {
	s   *Server
	err error
}

// startAll starts members at once (each waits in discovery for the
// others) and returns them, failing the test if any does not start.
func startAll(t *testing.T, cfgs ...Config) []*Server {
	t.Helper()
	done := make(chan started, len(cfgs))
	for _, cfg := range cfgs {
		go func() {
			s, err := Start(cfg, Options{Version: "test"}, quietLogger())
			done <- started{s, err}
		}()
	}
	var servers []*Server
	for range cfgs {
		select {
		case r := <-done:
			if r.err != nil {
				t.Fatalf("start: %v", r.err)
			}
			t.Cleanup(func() { r.s.Stop() })
			servers = append(servers, r.s)
		case <-time.After(30 * time.Second):
			t.Fatal("the members did not start within 30s")
		}
	}
	return servers
}

// TestDiscoveryV3 bootstraps a 3-member cluster through a running plumb
// member with etcd 3.7's v3 discovery: the size key, the members'
// registrations under /_etcd/registry/<token>/members/<ID> as name=URL,
// IDs from the peer URLs and the discovery token (as for a static
// --initial-cluster with --initial-cluster-token <token>); then the
// errors: no size key, a bad one, a full cluster; and a restart, which
// skips discovery and keeps the data dir's token.
func TestDiscoveryV3(t *testing.T) {
	dir := t.TempDir()
	dcfg := oneMember(t, filepath.Join(dir, "discovery"))
	startT(t, dcfg)
	dcli := clientOf(t, dcfg)
	endpoint := dcfg.AdvertiseClientURLs[0]
	putRetrying(t, dcli, "/_etcd/registry/tok-3/_config/size", "3")

	var cfgs []Config
	for i := range 3 {
		cfgs = append(cfgs, newDiscoveryMember(t, dir, fmt.Sprintf("m%d", i), endpoint, "tok-3"))
	}
	servers := startAll(t, cfgs...)
	var ids []uint64
	for _, cfg := range cfgs {
		ids = append(ids, node.MemberID(cfg.InitialAdvertisePeerURLs, "tok-3", ""))
	}
	for _, s := range servers {
		if !slices.Contains(ids, s.ID()) || s.ClusterID() != node.ClusterID(ids) {
			t.Errorf("member %s of cluster %s; want one of %x of cluster %s", node.FormatID(s.ID()),
				node.FormatID(s.ClusterID()), ids, node.FormatID(node.ClusterID(ids)))
		}
	}
	cli := clientOf(t, cfgs[0])
	putRetrying(t, cli, "k", "v")
	list, err := cli.MemberList(context.Background())
	if err != nil || len(list.Members) != 3 {
		t.Fatalf("member list: %v, %v", list, err)
	}
	resp, err := dcli.Get(context.Background(), "/_etcd/registry/tok-3/members/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var regs []string
	for _, kv := range resp.Kvs {
		regs = append(regs, string(kv.Key)+" "+string(kv.Value))
	}
	for i, cfg := range cfgs {
		want := fmt.Sprintf("/_etcd/registry/tok-3/members/%s m%d=%s", node.FormatID(ids[i]), i, cfg.InitialAdvertisePeerURLs[0])
		if !slices.Contains(regs, want) {
			t.Errorf("registrations %q lack %q", regs, want)
		}
	}

	// A fourth member finds the cluster full: etcd's error, and what to do.
	extra := newDiscoveryMember(t, dir, "m3", endpoint, "tok-3")
	if _, err := Start(extra, Options{}, quietLogger()); err == nil ||
		!strings.Contains(err.Error(), "failed to join discovery cluster (discovery: cluster is full): ") ||
		!strings.Contains(err.Error(), "etcdctl member add") {
		t.Errorf("a fourth member of a 3-member discovery: %v", err)
	}

	// A restart skips discovery (the discovery cluster is not asked: its
	// keys are gone) and keeps the token recorded at bootstrap.
	if _, err := dcli.Delete(context.Background(), "/_etcd/registry/tok-3/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		if s.ID() == ids[0] {
			if err := s.Stop(); err != nil {
				t.Fatal(err)
			}
		}
	}
	restarted := startT(t, cfgs[0])
	defer restarted.Stop()
	if restarted.ID() != ids[0] {
		t.Errorf("restarted as %s, want %s", node.FormatID(restarted.ID()), node.FormatID(ids[0]))
	}
}

// TestDiscoveryV3Errors: the size key missing or bad is etcd's error at
// once, with what to do; nothing is registered.
func TestDiscoveryV3Errors(t *testing.T) {
	dir := t.TempDir()
	dcfg := oneMember(t, filepath.Join(dir, "discovery"))
	startT(t, dcfg)
	dcli := clientOf(t, dcfg)
	endpoint := dcfg.AdvertiseClientURLs[0]
	putRetrying(t, dcli, "/_etcd/registry/bad/_config/size", "three")
	putRetrying(t, dcli, "/_etcd/registry/full/_config/size", "1")
	putRetrying(t, dcli, "/_etcd/registry/full/members/1234", "other=http://10.0.0.9:2380")
	for _, tc := range []struct {
		token string
		want  []string
	}{
		{"missing", []string{"failed to join discovery cluster (discovery: size key not found): ",
			"etcdctl --endpoints " + endpoint + " put /_etcd/registry/missing/_config/size <number of members>"}},
		{"bad", []string{"failed to join discovery cluster (discovery: size key is bad): ",
			"/_etcd/registry/bad/_config/size must hold the number of members"}},
		{"full", []string{"failed to join discovery cluster (discovery: cluster is full): "}},
	} {
		t.Run(tc.token, func(t *testing.T) {
			cfg := newDiscoveryMember(t, dir, "m-"+tc.token, endpoint, tc.token)
			_, err := Start(cfg, Options{}, quietLogger())
			checkError(t, err, tc.want, false)
			resp, gerr := dcli.Get(context.Background(), "/_etcd/registry/"+tc.token+"/members/", clientv3.WithPrefix())
			if gerr != nil {
				t.Fatal(gerr)
			}
			if want := map[string]int64{"full": 1}[tc.token]; resp.Count != want {
				t.Errorf("%d members registered, want %d", resp.Count, want)
			}
		})
	}
}
