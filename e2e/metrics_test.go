package e2e_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// family is what a dashboard or an alert depends on in a metric family:
// its name, its type and its label names.
// For a histogram, its bucket bounds too (a quantile depends on them).
type family struct {
	typ     string
	labels  []string
	buckets []float64
}

func (f family) String() string {
	s := f.typ + "{" + strings.Join(f.labels, ",") + "}"
	if f.buckets != nil {
		s += fmt.Sprint(f.buckets)
	}
	return s
}

// scrape reads url (a /metrics page) into its families, and the parsed
// families for their values.
func scrape(t *testing.T, url string) (map[string]family, map[string]*dto.MetricFamily) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("GET %s: not Prometheus text: %v", url, err)
	}
	out := map[string]family{}
	for name, mf := range mfs {
		labels := map[string]bool{}
		var buckets []float64
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
			if h := m.GetHistogram(); h != nil && buckets == nil {
				buckets = []float64{}
				for _, b := range h.GetBucket() {
					buckets = append(buckets, b.GetUpperBound())
				}
			}
		}
		out[name] = family{typ: strings.ToLower(mf.GetType().String()), labels: slices.Sorted(maps.Keys(labels)), buckets: buckets}
	}
	return out, mfs
}

// metricsWorkload is the same traffic for etcd and for plumb, so that the
// families that appear only once something happened appear on both: a
// put, a get, a txn of two operations, a delete, a lease granted and kept alive, a watch
// that sees an event, a member list, a status, a user added, a compaction
// at revision 4 (the delete's) and a health check.
func metricsWorkload(t *testing.T, endpoint, healthURL string) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, Logger: zap.NewNop(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wch := cli.Watch(ctx, "k")
	lease, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error { _, err := cli.Put(ctx, "k", "v", clientv3.WithLease(lease.ID)); return err },
		func() error { _, err := cli.Get(ctx, "k"); return err },
		func() error {
			_, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("k"), "=", "v")).Then(clientv3.OpPut("k2", "v2"), clientv3.OpGet("k")).Commit()
			return err
		},
		func() error { _, err := cli.Delete(ctx, "k2"); return err },
		func() error { _, err := cli.KeepAliveOnce(ctx, lease.ID); return err },
		func() error { _, err := cli.MemberList(ctx); return err },
		func() error { _, err := cli.Status(ctx, endpoint); return err },
		func() error { _, err := cli.UserAdd(ctx, "metrics-user", "pw"); return err }, // moves the auth revision
		func() error { // compacts k2's put and deletion, physically before it answers
			_, err := cli.Compact(ctx, 4, clientv3.WithCompactPhysical())
			return err
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("%s: step %d: %v", endpoint, i, err)
		}
	}
	select {
	case wr := <-wch:
		if len(wr.Events) == 0 {
			t.Fatalf("%s: watch: %v", endpoint, wr.Err())
		}
	case <-ctx.Done():
		t.Fatalf("%s: the watch saw nothing", endpoint)
	}
	if body, code := httpGet(t, healthURL); code != http.StatusOK {
		t.Fatalf("%s: %d %s", healthURL, code, body)
	}
}

// etcdOnlyMetrics are etcd 3.7's metric families that plumb does not
// export, each with why. Every other family of etcd's must be exported by
// plumb with the same type and label names.
var etcdOnlyMetrics = map[string]string{
	// etcd's bbolt internals, its v2 store and its grpc-proxy (a process
	// plumb does not have; etcd registers its metrics in the server too).
	"etcd_debugging_disk_backend_commit_rebalance_duration_seconds": "bbolt's commit phases: plumb times the whole commit (etcd_disk_backend_commit_duration_seconds)",
	"etcd_debugging_disk_backend_commit_spill_duration_seconds":     "bbolt's commit phases: plumb times the whole commit",
	"etcd_debugging_disk_backend_commit_write_duration_seconds":     "bbolt's commit phases: plumb times the whole commit",
	"etcd_debugging_store_expires_total":                            "the v2 store, which plumb does not have",
	"etcd_debugging_store_watch_requests_total":                     "the v2 store, which plumb does not have",
	"etcd_debugging_store_watchers":                                 "the v2 store, which plumb does not have",
	"etcd_grpc_proxy_cache_hits_total":                              "etcd's grpc-proxy, which plumb does not have",
	"etcd_grpc_proxy_cache_keys_total":                              "etcd's grpc-proxy, which plumb does not have",
	"etcd_grpc_proxy_cache_misses_total":                            "etcd's grpc-proxy, which plumb does not have",
	"etcd_grpc_proxy_events_coalescing_total":                       "etcd's grpc-proxy, which plumb does not have",
	"etcd_grpc_proxy_watchers_coalescing_total":                     "etcd's grpc-proxy, which plumb does not have",
	"etcd_debugging_snap_save_marshalling_duration_seconds":         "etcd's snap files: plumb's snapshots are its bbolt file and log index",
	"etcd_debugging_snap_save_total_duration_seconds":               "etcd's snap files: plumb's snapshots are its bbolt file and log index",
	"etcd_snap_fsync_duration_seconds":                              "etcd's snap files: plumb's snapshots are its bbolt file and log index",
	"etcd_snap_db_fsync_duration_seconds":                           "etcd saves a received snapshot to a .snap.db file; plumb receives it in memory and the node installs it (the receive is timed: etcd_network_snapshot_receive_total_duration_seconds)",
	"etcd_snap_db_save_total_duration_seconds":                      "etcd saves a received snapshot to a .snap.db file; plumb receives it in memory and the node installs it (the receive is timed: etcd_network_snapshot_receive_total_duration_seconds)",
	"etcd_mvcc_hash_duration_seconds":                               "Maintenance.Hash is not served (HashKV is, timed as etcd_mvcc_hash_rev_duration_seconds)",
	"etcd_mvcc_db_open_read_transactions":                           "plumb's reads run on the loop, with no concurrent read transactions to count",
}

// TestMetricsMatchEtcd: a one-member plumb and a one-member etcd 3.7.3,
// both with --metrics extensive and --listen-metrics-urls, get the same
// traffic; then the families each serves on its metrics URL are compared.
// Every etcd family is served by plumb with the same type and label names,
// or is in etcdOnlyMetrics with a reason; plumb serves nothing under
// etcd's prefixes that etcd does not (except etcd's peer families, which a
// one-member etcd does not show). Then values that must be real are
// checked on plumb's: counts of what the workload did.
func TestMetricsMatchEtcd(t *testing.T) {
	ip := "127.0.0.1"
	refMetrics := fmt.Sprintf("http://%s:%d", ip, freePort(t, ip))
	refEP := refEtcdEndpoint(t, "--metrics", "extensive", "--listen-metrics-urls", refMetrics)
	metricsWorkload(t, refEP, refMetrics+"/health")

	plumbStart := time.Now()
	c := &cluster{t: t, token: "e2e-metrics", base: t.TempDir()}
	m := c.newMember("n1", ip)
	c.members = append(c.members, m)
	plumbMetrics := fmt.Sprintf("http://%s:%d", ip, freePort(t, ip))
	// Every apply is slow against 1ns: etcd_server_slow_apply_total must
	// count them all.
	c.start(m, "--metrics", "extensive", "--listen-metrics-urls", plumbMetrics, "--warning-apply-duration", "1ns")
	t.Cleanup(c.stopAll)
	c.waitLeader(startTimeout)
	metricsWorkload(t, m.endpoint(), plumbMetrics+"/health")

	want, refMfs := scrape(t, refMetrics+"/metrics")
	scrape(t, plumbMetrics+"/metrics") // promhttp counts a scrape once it is served: the next shows this one
	got, mfs := scrape(t, plumbMetrics+"/metrics")
	for _, name := range slices.Sorted(maps.Keys(want)) {
		w := want[name]
		g, ok := got[name]
		_, excepted := etcdOnlyMetrics[name]
		switch {
		case !ok && !excepted:
			t.Errorf("plumb lacks etcd's %s %v", name, w)
		case ok && excepted:
			t.Errorf("plumb exports %s, which etcdOnlyMetrics says it lacks (%s)", name, etcdOnlyMetrics[name])
		case ok && g.String() != w.String():
			t.Errorf("%s: plumb's is %v, etcd's %v", name, g, w)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[name]; ok || strings.HasPrefix(name, "plumb_") || strings.HasPrefix(name, "etcd_network_peer_") ||
			name == "etcd_network_active_peers" {
			continue
		}
		t.Errorf("plumb exports %s %v, which etcd 3.7.3 does not", name, got[name])
	}

	// The values are real: what the workload did shows.
	valueIn := func(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
		mf := mfs[name]
		var sum float64
		for _, m := range mf.GetMetric() {
			match := true
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					match = false
				}
			}
			if !match {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
		return sum
	}
	value := func(name string, labels map[string]string) float64 { return valueIn(mfs, name, labels) }
	for _, name := range []string{"etcd_mvcc_put_total", "etcd_mvcc_delete_total", "etcd_mvcc_range_total", "etcd_mvcc_txn_total"} {
		t.Logf("%s: plumb %v, etcd %v", name, value(name, nil), valueIn(refMfs, name, nil))
	}
	// The same writes, counted as etcd counts them.
	// The auth store's revision too, after the same user added, and the
	// keys left and the bytes put.
	for _, name := range []string{"etcd_mvcc_put_total", "etcd_mvcc_delete_total", "etcd_mvcc_txn_total", "etcd_debugging_auth_revision",
		"etcd_debugging_mvcc_keys_total", "etcd_debugging_mvcc_total_put_size_in_bytes",
		"etcd_debugging_mvcc_pending_events_total", "etcd_debugging_mvcc_events_total", "etcd_debugging_mvcc_watch_stream_total",
		"etcd_debugging_mvcc_db_compaction_keys_total"} {
		if got, want := value(name, nil), valueIn(refMfs, name, nil); got != want {
			t.Errorf("%s: plumb's %v, etcd's %v after the same workload", name, got, want)
		}
	}
	// The workload's compaction, seen by plumb's loop within a tick (the
	// scrape may come before that tick: it is asked again).
	last := value("etcd_debugging_mvcc_db_compaction_last", nil)
	for deadline := time.Now().Add(2 * time.Second); last == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, again := scrape(t, plumbMetrics+"/metrics")
		last = valueIn(again, "etcd_debugging_mvcc_db_compaction_last", nil)
	}
	if last < float64(plumbStart.Unix()) || last > float64(time.Now().Unix()) {
		t.Errorf("etcd_debugging_mvcc_db_compaction_last is %v, want the unix time of the workload's compaction, %d to %d",
			last, plumbStart.Unix(), time.Now().Unix())
	}
	for _, check := range []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"grpc_server_handled_total", map[string]string{"grpc_method": "Put", "grpc_code": "OK"}, 1},
		{"grpc_server_started_total", map[string]string{"grpc_service": "etcdserverpb.KV", "grpc_method": "Range"}, 1},
		{"grpc_server_msg_received_total", map[string]string{"grpc_method": "Watch"}, 1},
		{"grpc_server_msg_sent_total", map[string]string{"grpc_method": "Watch"}, 2}, // created, then the event
		{"grpc_server_handling_seconds", map[string]string{"grpc_method": "Txn"}, 1},
		{"etcd_server_client_requests_total", map[string]string{"type": "unary", "client_api_version": "3.7"}, 7},
		{"etcd_server_client_requests_total", map[string]string{"type": "stream"}, 2}, // watch and keep-alive
		{"etcd_network_client_grpc_received_bytes_total", nil, 10},
		{"etcd_network_client_grpc_sent_bytes_total", nil, 10},
		{"etcd_disk_wal_write_bytes_total", nil, 100},
		{"etcd_disk_wal_write_duration_seconds", nil, 1},
		{"etcd_disk_wal_fsync_duration_seconds", nil, 1},
		{"etcd_server_health_success", nil, 1},
		{"etcd_mvcc_range_total", nil, 4}, // the get, the txn's compare and get, /health's read
		{"etcd_mvcc_txn_total", nil, 1},   // the txn with two operations
		{"etcd_debugging_mvcc_current_revision", nil, 3},
		{"etcd_debugging_auth_revision", nil, 2},                 // the store's first revision, and the user added
		{"etcd_debugging_mvcc_keys_total", nil, 1},               // k; k2 was deleted
		{"etcd_debugging_mvcc_total_put_size_in_bytes", nil, 6},  // k=v, k2=v2
		{"etcd_debugging_mvcc_events_total", nil, 1},             // the watch's put of k
		{"etcd_debugging_mvcc_db_compaction_keys_total", nil, 1}, // k2's put at least
		{"etcd_mvcc_db_total_size_in_use_in_bytes", nil, 1},
		{"etcd_server_quota_backend_bytes", nil, 2 << 30},
		{"etcd_network_known_peers", nil, 1},
		{"etcd_server_id", map[string]string{"server_id": fmt.Sprintf("%x", mustStatus(t, m).Header.MemberId)}, 1},
		{"etcd_cluster_version", map[string]string{"cluster_version": "3.7"}, 1},
		{"os_fd_used", nil, 5},
		{"os_fd_limit", nil, 5},
		{"promhttp_metric_handler_requests_total", nil, 1},
		// Timed inside the node (node.Stopwatch) and in the server.
		{"etcd_server_apply_duration_seconds", map[string]string{"version": "v3", "op": "Put", "success": "true"}, 1},
		{"etcd_server_apply_duration_seconds", map[string]string{"op": "Txn", "success": "true"}, 1},
		{"etcd_server_apply_duration_seconds", map[string]string{"op": "Compaction", "success": "true"}, 1},
		{"etcd_server_apply_duration_seconds", map[string]string{"op": "AuthUserAdd", "success": "true"}, 1},
		{"etcd_server_apply_duration_seconds", map[string]string{"op": "ClusterMemberAttrSet", "success": "true"}, 1},
		{"etcd_server_slow_apply_total", nil, 6}, // every apply above, over 1ns
		{"etcd_server_range_duration_seconds", map[string]string{"success": "true"}, 1},
		{"etcd_server_request_duration_seconds", map[string]string{"type": "Put", "success": "true"}, 1},
		{"etcd_server_request_duration_seconds", map[string]string{"type": "Range", "success": "true"}, 1},
		{"etcd_server_request_duration_seconds", map[string]string{"type": "Compaction", "success": "true"}, 1},
		{"etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds", nil, 1},
		{"etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds", nil, 1},
		{"etcd_debugging_mvcc_db_compaction_total_duration_milliseconds", nil, 1},
		{"etcd_debugging_server_watch_send_loop_control_stream_duration_seconds", nil, 1}, // created
		{"etcd_debugging_server_watch_send_loop_watch_stream_duration_seconds", nil, 1},   // the event
		{"etcd_debugging_server_watch_send_loop_watch_stream_duration_per_event_seconds", nil, 1},
	} {
		if v := value(check.name, check.labels); v < check.min {
			t.Errorf("plumb's %s%v is %v, want at least %v", check.name, check.labels, v, check.min)
		}
	}
}

// refEtcdCluster starts a three-member etcd 3.7.3 cluster on 127.0.0.1
// and returns its client URLs, once a write through the first succeeds.
func refEtcdCluster(t *testing.T) []string {
	t.Helper()
	bin := filepath.Join(filepath.Dir(etcdctl(t)), "etcd")
	if _, err := os.Stat(bin); err != nil {
		missing(t, fmt.Sprintf("no etcd beside etcdctl: %v", err))
	}
	ip := "127.0.0.1"
	var clients, initial []string
	var peers []string
	for i := range 3 {
		clients = append(clients, fmt.Sprintf("http://%s:%d", ip, freePort(t, ip)))
		peers = append(peers, fmt.Sprintf("http://%s:%d", ip, freePort(t, ip)))
		initial = append(initial, fmt.Sprintf("r%d=%s", i+1, peers[i]))
	}
	dir := t.TempDir()
	for i := range 3 {
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("r%d.log", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(t.Context(), bin, "--name", fmt.Sprintf("r%d", i+1), "--data-dir", filepath.Join(dir, fmt.Sprintf("r%d", i+1)),
			"--log-level", "error", "--listen-client-urls", clients[i], "--advertise-client-urls", clients[i],
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i], "--initial-cluster", strings.Join(initial, ","))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); logf.Close(); close(exited) }()
		t.Cleanup(func() { <-exited }) // t.Context ends first and kills it
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{strings.TrimPrefix(clients[0], "http://")}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for deadline := time.Now().Add(startTimeout); ; time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Put(ctx, "ready", "1")
		cancel()
		if err == nil {
			return clients
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd's cluster did not answer within %v: %v", startTimeout, err)
		}
	}
}

// etcdEventPeerMetrics are etcd's peer families that a member shows only
// once something happened (a message or a snapshot that failed, a
// snapshot sent or received), with their type, labels and buckets as
// etcd 3.7.3 declares them (etcdserver/api/rafthttp/metrics.go). Where
// only one of the two clusters shows one after the same traffic, plumb's
// is compared with this.
var etcdEventPeerMetrics = map[string]family{
	"etcd_network_peer_sent_failures_total":                {typ: "counter", labels: []string{"To"}},
	"etcd_network_peer_received_failures_total":            {typ: "counter", labels: []string{"From"}},
	"etcd_network_disconnected_peers_total":                {typ: "counter", labels: []string{"Local", "Remote"}},
	"etcd_network_snapshot_send_success":                   {typ: "counter", labels: []string{"To"}},
	"etcd_network_snapshot_send_failures":                  {typ: "counter", labels: []string{"To"}},
	"etcd_network_snapshot_send_total_duration_seconds":    {typ: "histogram", labels: []string{"To"}, buckets: exponentialBuckets(0.1, 2, 10)},
	"etcd_network_snapshot_receive_success":                {typ: "counter", labels: []string{"From"}},
	"etcd_network_snapshot_receive_failures":               {typ: "counter", labels: []string{"From"}},
	"etcd_network_snapshot_receive_total_duration_seconds": {typ: "histogram", labels: []string{"From"}, buckets: exponentialBuckets(0.1, 2, 10)},
}

// exponentialBuckets are Prometheus's ExponentialBuckets with the +Inf
// bucket the text format adds.
func exponentialBuckets(start, factor float64, count int) []float64 {
	out := make([]float64, 0, count+1)
	for b := start; len(out) < count; b *= factor {
		out = append(out, b)
	}
	return append(out, math.Inf(1))
}

// TestPeerMetricsMatchEtcd: the network families (etcd_network_*) of a
// member of a three-member etcd 3.7.3 cluster and of the leader of a
// three-member plumb cluster, after a write, have the same names, types,
// labels and buckets (the families that appear only on an event are
// compared with etcd's declarations, etcdEventPeerMetrics). etcd's round
// trip histogram is its prober's, observed 5 seconds after a peer is
// added; plumb's leader times its heartbeats (from writing one to reading
// its response), so the test waits for both. Then plumb's values say what
// is there: each member knows three and is connected to two; a batch of
// writes moves the leader's bytes sent to and received from each follower
// and its round trips; a follower stopped makes sends to it fail.
func TestPeerMetricsMatchEtcd(t *testing.T) {
	ref := refEtcdCluster(t)
	c := newCluster(t, 3)
	waitPublished(t, c)
	cli := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	network := func(fams map[string]family) map[string]family {
		out := map[string]family{}
		for name, f := range fams {
			if strings.HasPrefix(name, "etcd_network_") || name == "etcd_server_heartbeat_send_failures_total" {
				out[name] = f
			}
		}
		return out
	}
	const rtt = "etcd_network_peer_round_trip_time_seconds"
	var want map[string]family
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		want, _ = scrape(t, ref[0]+"/metrics")
		if _, ok := want[rtt]; ok || time.Now().After(deadline) {
			break
		}
	}
	want = network(want)
	m, _ := c.waitLeader(5 * time.Second)
	var got map[string]family
	var mfs map[string]*dto.MetricFamily
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got, mfs = scrape(t, m.clientURL()+"/metrics")
		if len(mfs["etcd_network_active_peers"].GetMetric()) == 2 || time.Now().After(deadline) {
			break
		}
	}
	got = network(got)
	for _, name := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[name]
		_, event := etcdEventPeerMetrics[name]
		switch {
		case !ok && !event:
			t.Errorf("plumb lacks etcd's %s %v", name, want[name])
		case ok && g.String() != want[name].String():
			t.Errorf("%s: plumb's is %v, etcd's %v", name, g, want[name])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[name]; ok {
			continue
		}
		if w, event := etcdEventPeerMetrics[name]; event {
			if got[name].String() != w.String() {
				t.Errorf("%s: plumb's is %v, etcd 3.7.3 declares %v", name, got[name], w)
			}
			continue
		}
		if name == "etcd_server_heartbeat_send_failures_total" { // a plain counter: etcd's member shows it too
			continue
		}
		t.Errorf("plumb exports %s %v, which etcd 3.7.3's member does not", name, got[name])
	}
	if _, ok := want["etcd_server_heartbeat_send_failures_total"]; ok {
		if g, w := got["etcd_server_heartbeat_send_failures_total"], want["etcd_server_heartbeat_send_failures_total"]; g.String() != w.String() {
			t.Errorf("etcd_server_heartbeat_send_failures_total: plumb's is %v, etcd's %v", g, w)
		}
	}
	self := fmt.Sprintf("%x", mustStatus(t, m).Header.MemberId)
	count := func(name string) (n int) {
		for _, mm := range mfs[name].GetMetric() {
			for _, l := range mm.GetLabel() {
				if l.GetName() == "Local" && l.GetValue() != self {
					t.Errorf("%s: Local is %s, not the member's ID %s", name, l.GetValue(), self)
				}
			}
			if mm.GetGauge().GetValue() == 1 {
				n++
			}
		}
		return n
	}
	if n := count("etcd_network_known_peers"); n != 3 {
		t.Errorf("etcd_network_known_peers: %d at 1, want 3", n)
	}
	if n := count("etcd_network_active_peers"); n != 2 {
		t.Errorf("etcd_network_active_peers: %d at 1, want 2", n)
	}

	// The values move with the traffic, for each follower.
	var followers []string
	for _, f := range c.members {
		if f != m {
			followers = append(followers, fmt.Sprintf("%x", mustStatus(t, f).Header.MemberId))
		}
	}
	peerValues := func(mfs map[string]*dto.MetricFamily, name, label string) map[string]float64 {
		out := map[string]float64{}
		for _, mm := range mfs[name].GetMetric() {
			for _, l := range mm.GetLabel() {
				if l.GetName() == label {
					out[l.GetValue()] = mm.GetCounter().GetValue() + float64(mm.GetHistogram().GetSampleCount())
				}
			}
		}
		return out
	}
	moved := []struct{ name, label string }{
		{"etcd_network_peer_sent_bytes_total", "To"},
		{"etcd_network_peer_received_bytes_total", "From"},
		{rtt, "To"},
	}
	_, before := scrape(t, m.clientURL()+"/metrics")
	const writes, valueBytes = 20, 1000
	for i := range writes {
		if _, err := cli.Put(ctx, fmt.Sprintf("k%d", i), strings.Repeat("v", valueBytes)); err != nil {
			t.Fatal(err)
		}
	}
	// The round trip is timed on heartbeats, one per heartbeat interval
	// (100ms): twenty writes may all fit between two, so it is asked
	// again until a heartbeat has come back from each follower.
	_, after := scrape(t, m.clientURL()+"/metrics")
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		b, a := peerValues(before, rtt, "To"), peerValues(after, rtt, "To")
		if !slices.ContainsFunc(followers, func(id string) bool { return a[id] <= b[id] }) {
			break
		}
		_, after = scrape(t, m.clientURL()+"/metrics")
	}
	for _, mv := range moved {
		b, a := peerValues(before, mv.name, mv.label), peerValues(after, mv.name, mv.label)
		for _, id := range followers {
			t.Logf("%s{%s=%s}: %v then %v", mv.name, mv.label, id, b[id], a[id])
			min := 1.0
			if mv.name == "etcd_network_peer_sent_bytes_total" {
				min = writes * valueBytes // every write's value goes to every follower
			}
			if a[id]-b[id] < min {
				t.Errorf("%s{%s=%s} went from %v to %v over %d writes of %d bytes, want at least %v more", mv.name, mv.label, id, b[id], a[id], writes, valueBytes, min)
			}
		}
	}
	if s := peerValues(after, rtt, "To"); len(s) > 0 {
		for _, mm := range after[rtt].GetMetric() {
			h := mm.GetHistogram()
			if mean := h.GetSampleSum() / float64(h.GetSampleCount()); mean <= 0 || mean > 1 {
				t.Errorf("%s: a mean round trip of %vs on one machine", rtt, mean)
			} else {
				t.Logf("%s: mean %.6fs over %d", rtt, mean, h.GetSampleCount())
			}
		}
	}

	// A follower stopped: what the leader sends it fails.
	var stopped *member
	for _, f := range c.members {
		if f != m {
			stopped = f
			break
		}
	}
	stoppedID := fmt.Sprintf("%x", mustStatus(t, stopped).Header.MemberId)
	failedBefore := peerValues(after, "etcd_network_peer_sent_failures_total", "To")[stoppedID]
	c.stop(stopped)
	var failed float64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		_, now := scrape(t, m.clientURL()+"/metrics")
		if failed = peerValues(now, "etcd_network_peer_sent_failures_total", "To")[stoppedID]; failed > failedBefore {
			break
		}
	}
	if failed <= failedBefore {
		t.Errorf("etcd_network_peer_sent_failures_total{To=%s} stayed at %v with the follower stopped", stoppedID, failed)
	}
}

// TestMetricsURLTLS: an https:// --listen-metrics-urls listener is served
// with the client certificate (--cert-file, --key-file), as etcd's, while
// the client URL stays http://; it answers /metrics and /health and
// nothing else.
func TestMetricsURLTLS(t *testing.T) {
	c := &cluster{t: t, token: "e2e-metrics-tls", base: t.TempDir()}
	m := c.newMember("n1", "127.0.0.1")
	c.members = append(c.members, m)
	ca := newTestCA(t, c.base, "ca")
	cert, key := ca.issue("member", []string{m.ip}, time.Now().Add(time.Hour))
	metricsURL := fmt.Sprintf("https://%s:%d", m.ip, freePort(t, m.ip))
	c.start(m, "--listen-metrics-urls", metricsURL, "--cert-file", cert, "--key-file", key)
	t.Cleanup(c.stopAll)
	c.waitLeader(startTimeout)

	pem, err := os.ReadFile(ca.file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(path string) (int, string) {
		resp, err := client.Get(metricsURL + path)
		if err != nil {
			t.Fatalf("GET %s%s: %v", metricsURL, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "etcd_server_has_leader 1") {
		t.Errorf("/metrics: %d, has_leader missing:\n%.300s", code, body)
	}
	if code, body := get("/health"); code != http.StatusOK || !strings.Contains(body, `"health":"true"`) {
		t.Errorf("/health: %d %s", code, body)
	}
	if code, _ := get("/version"); code != http.StatusNotFound {
		t.Errorf("/version on the metrics URL: %d, want 404", code)
	}
	// Plain HTTP to the TLS listener gets Go's 400 answer, not metrics.
	if resp, err := http.Get(strings.Replace(metricsURL, "https://", "http://", 1) + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "etcd_server_has_leader") {
			t.Error("the https metrics URL served metrics over plain http")
		}
	}
	if _, code := httpGet(t, m.clientURL()+"/version"); code != http.StatusOK {
		t.Errorf("the http client URL: /version %d", code)
	}
}
