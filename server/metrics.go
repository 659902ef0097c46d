package server

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/plumbdb/plumb/node"
)

// metrics are the member's Prometheus metrics, served on /metrics. Where
// etcd has a metric with the same meaning it has etcd's name, so existing
// dashboards and alerts work; plumb's own are prefixed plumb_. Each server
// has its own registry, so that tests can run several in one process.
type metrics struct {
	reg *prometheus.Registry

	hasLeader       prometheus.Gauge
	isLeader        prometheus.Gauge
	leaderChanges   prometheus.Counter
	proposalsFailed prometheus.Counter
	appliedIndex    prometheus.Gauge
	committedIndex  prometheus.Gauge
	pending         prometheus.Gauge
	term            prometheus.Gauge
	dbSize          prometheus.Gauge
	snapshots       prometheus.Gauge
	// snapshotsInstalled counts snapshots received from a leader.
	snapshotsInstalled prometheus.Counter
	fsync              prometheus.Histogram

	peerActive  *prometheus.GaugeVec
	peerDropped prometheus.Counter
	peerRefused prometheus.Counter
	// snapshotsReceiving counts the snapshot streams being received now.
	snapshotsReceiving prometheus.Gauge
	// tlsRejected counts the connections refused in their TLS handshake,
	// by listener (client or peer) and reason (rejectReason). etcd has no
	// such metric; it only logs "rejected connection".
	tlsRejected *prometheus.CounterVec
	// gatewayRefused counts the JSON gateway's error answers by gRPC code.
	gatewayRefused *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		hasLeader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "etcd_server_has_leader",
			Help: "Whether or not a leader exists. 1 is existence, 0 is not."}),
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "etcd_server_is_leader",
			Help: "Whether or not this member is a leader. 1 if is, 0 otherwise."}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "etcd_server_leader_changes_seen_total",
			Help: "The number of leader changes seen."}),
		proposalsFailed: prometheus.NewCounter(prometheus.CounterOpts{Name: "etcd_server_proposals_failed_total",
			Help: "The total number of failed proposals seen."}),
		appliedIndex: prometheus.NewGauge(prometheus.GaugeOpts{Name: "etcd_server_proposals_applied_total",
			Help: "The total number of consensus proposals applied (the applied index)."}),
		committedIndex: prometheus.NewGauge(prometheus.GaugeOpts{Name: "etcd_server_proposals_committed_total",
			Help: "The total number of consensus proposals committed (the commit index)."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "etcd_server_proposals_pending",
			Help: "The current number of requests waiting to be applied or read."}),
		term: prometheus.NewGauge(prometheus.GaugeOpts{Name: "plumb_server_raft_term",
			Help: "The raft term this member is in."}),
		dbSize: prometheus.NewGauge(prometheus.GaugeOpts{Name: "etcd_mvcc_db_total_size_in_bytes",
			Help: "Total size of the underlying database physically allocated in bytes."}),
		snapshots: prometheus.NewGauge(prometheus.GaugeOpts{Name: "plumb_server_snapshot_index",
			Help: "The index of the newest raft snapshot."}),
		snapshotsInstalled: prometheus.NewCounter(prometheus.CounterOpts{Name: "plumb_server_snapshots_installed_total",
			Help: "Snapshots received from a leader and installed (a follower too far behind for the log)."}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "etcd_disk_wal_fsync_duration_seconds",
			Help:    "The latency distributions of fsync called by WAL.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		peerActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "etcd_network_active_peers",
			Help: "The current number of active peer connections."}, []string{"Remote"}),
		peerDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "plumb_network_peer_dropped_messages_total",
			Help: "Peer messages dropped because a queue was full or the peer was unreachable."}),
		peerRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "plumb_network_peer_refused_messages_total",
			Help: "Peer messages refused for naming another cluster or another member."}),
		snapshotsReceiving: prometheus.NewGauge(prometheus.GaugeOpts{Name: "plumb_network_snapshots_receiving",
			Help: fmt.Sprintf("Snapshots being received from peers now (a member takes at most %d at once).", snapshotStreamsMax)}),
		tlsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plumb_tls_rejected_connections_total",
			Help: "Connections refused in their TLS handshake (logged as \"rejected connection\"), by listener (client or peer) and reason."},
			[]string{"listener", "reason"}),
		gatewayRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plumb_gateway_refused_requests_total",
			Help: "Requests the JSON gateway (/v3/) answered with an error: malformed JSON or base64, unknown path or method, too large, or refused by the server; by gRPC code."}, []string{"code"}),
	}
	m.reg.MustRegister(m.hasLeader, m.isLeader, m.leaderChanges, m.proposalsFailed, m.appliedIndex,
		m.committedIndex, m.pending, m.term, m.dbSize, m.snapshots, m.snapshotsInstalled, m.fsync, m.peerActive, m.peerDropped, m.peerRefused,
		m.snapshotsReceiving, m.tlsRejected, m.gatewayRefused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Bounds of a scrape.
const (
	// scrapeLoopWait bounds how long a scrape waits for the loop to read
	// the node's counts; a scrape that waits longer goes without them.
	scrapeLoopWait = time.Second
)

// loopCollector reports, at each scrape, what only the loop's goroutine
// may read: the node's lease counts and the watchers the loop routes.
type loopCollector struct {
	l                        *loop
	watchers, slowWatchers   *prometheus.Desc
	granted, revoked, renews *prometheus.Desc
	ttls                     *prometheus.Desc
}

func newLoopCollector(l *loop) *loopCollector {
	return &loopCollector{
		l: l,
		watchers: prometheus.NewDesc("etcd_debugging_mvcc_watcher_total",
			"Total number of watchers.", nil, nil),
		slowWatchers: prometheus.NewDesc("etcd_debugging_mvcc_slow_watcher_total",
			"Total number of unsynced slow watchers.", nil, nil),
		granted: prometheus.NewDesc("etcd_debugging_lease_granted_total",
			"The total number of granted leases.", nil, nil),
		revoked: prometheus.NewDesc("etcd_debugging_lease_revoked_total",
			"The total number of revoked leases.", nil, nil),
		renews: prometheus.NewDesc("etcd_debugging_lease_renewed_total",
			"The number of renewed leases seen by the leader.", nil, nil),
		// etcd's buckets: 1 second to 2^23 seconds (about 3 months); every
		// member counts the grants it applies, as etcd's do.
		ttls: prometheus.NewDesc("etcd_debugging_lease_ttl_total",
			"Bucketed histogram of lease TTLs.", nil, nil),
	}
}

func (c *loopCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.watchers
	ch <- c.slowWatchers
	ch <- c.granted
	ch <- c.revoked
	ch <- c.renews
	ch <- c.ttls
}

func (c *loopCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeLoopWait)
	defer cancel()
	var st node.LeaseStats
	var watchers, slow int
	if err := c.l.exec(ctx, func(n *node.Node) {
		st, watchers = n.LeaseStats(), len(c.l.watches)
		_, slow = n.Watchers()
	}); err != nil {
		return // the loop is gone, or too busy to answer: the scrape has the rest
	}
	ch <- prometheus.MustNewConstMetric(c.watchers, prometheus.GaugeValue, float64(watchers))
	ch <- prometheus.MustNewConstMetric(c.slowWatchers, prometheus.GaugeValue, float64(slow))
	ch <- prometheus.MustNewConstMetric(c.granted, prometheus.CounterValue, float64(st.Granted))
	ch <- prometheus.MustNewConstMetric(c.revoked, prometheus.CounterValue, float64(st.Revoked))
	ch <- prometheus.MustNewConstMetric(c.renews, prometheus.CounterValue, float64(st.Renewals))
	buckets := make(map[float64]uint64, node.LeaseTTLBuckets)
	var count uint64
	for i, n := range st.TTLs {
		count += n
		buckets[float64(int64(1)<<i)] = count
	}
	count += st.TTLOver
	ch <- prometheus.MustNewConstHistogram(c.ttls, count, float64(st.TTLSum), buckets)
}
