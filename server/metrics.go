package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"syscall"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/plumbdb/plumb/node"
	"github.com/plumbdb/plumb/node/mvcc"
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

	peerActive  peerGauge
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
	knownPeers     *prometheus.GaugeVec

	// Peer traffic, as etcd's rafthttp counts it: bytes of frames written
	// to (read from) a peer, messages that could not be sent (dropped from
	// a full queue, or lost with a stream that failed) or received (the
	// loop's inbox full, or refused), and the snapshots sent and received.
	peerSentBytes    *prometheus.CounterVec // To
	peerRecvBytes    *prometheus.CounterVec // From
	peerSentFailures *prometheus.CounterVec // To
	peerRecvFailures *prometheus.CounterVec // From
	snapSendSuccess  *prometheus.CounterVec // To
	snapSendFailures *prometheus.CounterVec // To
	snapSendSeconds  *prometheus.HistogramVec
	snapRecvSuccess  *prometheus.CounterVec // From
	snapRecvFailures *prometheus.CounterVec // From
	snapRecvSeconds  *prometheus.HistogramVec
	// peerRTT is the round trip of a heartbeat (see transport.heartbeatAnswered):
	// etcd's measures a prober's; plumb's leader measures its heartbeats'.
	peerRTT *prometheus.HistogramVec
	// heartbeatSendFailures counts heartbeats the leader handed out more
	// than two heartbeat intervals after the previous one to the same peer,
	// as etcd's does: the leader was too slow (a slow disk, an overload).
	heartbeatSendFailures prometheus.Counter

	// grpc is the gRPC server's metrics (grpc_server_*), as etcd has
	// them from the same library: started, handled, messages, and with
	// --metrics extensive the handling time histogram.
	grpc           *grpcprom.ServerMetrics
	clientRequests *prometheus.CounterVec
	grpcRecvBytes  prometheus.Counter
	grpcSentBytes  prometheus.Counter

	isLearner       prometheus.Gauge
	quotaBytes      prometheus.Gauge
	dbInUse         prometheus.Gauge
	serverID        *prometheus.GaugeVec
	healthSuccess   prometheus.Counter
	healthFailures  prometheus.Counter
	walWriteBytes   prometheus.Gauge
	walWrite        prometheus.Histogram
	backendCommit   prometheus.Histogram
	backendSnapshot prometheus.Histogram
	defrag          prometheus.Histogram
	defragInflight  prometheus.Gauge
	hashKV          prometheus.Histogram
	learnerPromotes prometheus.Counter
	// watchStreams is the gRPC watch streams open now.
	watchStreams prometheus.Gauge
	// compactionLast is when the loop last saw a compaction applied, as
	// unix time, to the tick (etcd's: when its compaction finished).
	compactionLast prometheus.Gauge
	// timings: etcd's latency families for apply, range, requests,
	// compaction, snapshot install and the watch send loop.
	timings timings
}

// Metrics levels, --metrics: etcd's.
const (
	MetricsBasic     = "basic"
	MetricsExtensive = "extensive"
)

// newMetrics makes a member's metrics; level is --metrics.
func newMetrics(level string) *metrics {
	var grpcOpts []grpcprom.ServerMetricsOption
	if level == MetricsExtensive {
		grpcOpts = append(grpcOpts, grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets(prometheus.DefBuckets)))
	}
	m := &metrics{
		reg:     prometheus.NewRegistry(),
		grpc:    grpcprom.NewServerMetrics(grpcOpts...),
		timings: newTimings(),
		clientRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etcd_server_client_requests_total",
			Help: "The total number of client requests per client version."}, []string{"type", "client_api_version"}),
		grpcRecvBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "etcd_network_client_grpc_received_bytes_total",
			Help: "The total number of bytes received from grpc clients."}),
		grpcSentBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "etcd_network_client_grpc_sent_bytes_total",
			Help: "The total number of bytes sent to grpc clients."}),
		isLearner: prometheus.NewGauge(prometheus.GaugeOpts{Name: "etcd_server_is_learner",
			Help: "Whether or not this member is a learner. 1 if is, 0 otherwise."}),
		quotaBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "etcd_server_quota_backend_bytes",
			Help: "Current backend storage quota size in bytes."}),
		dbInUse: prometheus.NewGauge(prometheus.GaugeOpts{Name: "etcd_mvcc_db_total_size_in_use_in_bytes",
			Help: "Total size of the underlying database logically in use in bytes."}),
		serverID: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "etcd_server_id",
			Help: "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID."}, []string{"server_id"}),
		healthSuccess: prometheus.NewCounter(prometheus.CounterOpts{Name: "etcd_server_health_success",
			Help: "The total number of successful health checks"}),
		healthFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "etcd_server_health_failures",
			Help: "The total number of failed health checks"}),
		walWriteBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "etcd_disk_wal_write_bytes_total",
			Help: "Total number of bytes written in WAL."}),
		walWrite: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "etcd_disk_wal_write_duration_seconds",
			Help:    "The latency distributions of write called by WAL.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		backendCommit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "etcd_disk_backend_commit_duration_seconds",
			Help:    "The latency distributions of commit called by backend.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		backendSnapshot: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "etcd_disk_backend_snapshot_duration_seconds",
			Help:    "The latency distribution of backend snapshots.",
			Buckets: prometheus.ExponentialBuckets(.01, 2, 17)}),
		defrag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "etcd_disk_backend_defrag_duration_seconds",
			Help:    "The latency distribution of backend defragmentation.",
			Buckets: prometheus.ExponentialBuckets(.1, 2, 13)}),
		defragInflight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "etcd_disk_defrag_inflight",
			Help: "Whether or not defrag is active on the member. 1 means active, 0 means not."}),
		hashKV: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "etcd_mvcc_hash_rev_duration_seconds",
			Help:    "The latency distribution of storage hash by revision operation.",
			Buckets: prometheus.ExponentialBuckets(.01, 2, 15)}),
		compactionLast: prometheus.NewGauge(prometheus.GaugeOpts{Name: "etcd_debugging_mvcc_db_compaction_last",
			Help: "The unix time of the last db compaction. Resets to 0 on start."}),
		watchStreams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "etcd_debugging_mvcc_watch_stream_total",
			Help: "Total number of watch streams."}),
		learnerPromotes: prometheus.NewCounter(prometheus.CounterOpts{Name: "etcd_server_learner_promote_successes",
			Help: "The total number of successful learner promotions while this member is leader."}),
		knownPeers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "etcd_network_known_peers",
			Help: "The current number of known peers."}, []string{"Local", "Remote"}),
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
		peerActive: peerGauge{vec: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "etcd_network_active_peers",
			Help: "The current number of active peer connections."}, []string{"Local", "Remote"}), local: new(string)},
		peerSentBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etcd_network_peer_sent_bytes_total",
			Help: "The total number of bytes sent to peers."}, []string{"To"}),
		peerRecvBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etcd_network_peer_received_bytes_total",
			Help: "The total number of bytes received from peers."}, []string{"From"}),
		peerSentFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etcd_network_peer_sent_failures_total",
			Help: "The total number of send failures from peers."}, []string{"To"}),
		peerRecvFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etcd_network_peer_received_failures_total",
			Help: "The total number of receive failures from peers."}, []string{"From"}),
		snapSendSuccess: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etcd_network_snapshot_send_success",
			Help: "Total number of successful snapshot sends"}, []string{"To"}),
		snapSendFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etcd_network_snapshot_send_failures",
			Help: "Total number of snapshot send failures"}, []string{"To"}),
		snapSendSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "etcd_network_snapshot_send_total_duration_seconds",
			Help:    "Total latency distributions of v3 snapshot sends",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 10)}, []string{"To"}),
		snapRecvSuccess: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etcd_network_snapshot_receive_success",
			Help: "Total number of successful snapshot receives"}, []string{"From"}),
		snapRecvFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etcd_network_snapshot_receive_failures",
			Help: "Total number of snapshot receive failures"}, []string{"From"}),
		snapRecvSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "etcd_network_snapshot_receive_total_duration_seconds",
			Help:    "Total latency distributions of v3 snapshot receives",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 10)}, []string{"From"}),
		peerRTT: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "etcd_network_peer_round_trip_time_seconds",
			Help:    "Round-Trip-Time histogram between peers",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, []string{"To"}),
		heartbeatSendFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "etcd_server_heartbeat_send_failures_total",
			Help: "The total number of leader heartbeat send failures (likely overloaded from slow disk)."}),
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
		m.committedIndex, m.pending, m.term, m.dbSize, m.snapshots, m.snapshotsInstalled, m.fsync, m.peerActive.vec, m.peerDropped, m.peerRefused,
		m.peerSentBytes, m.peerRecvBytes, m.peerSentFailures, m.peerRecvFailures, m.snapSendSuccess, m.snapSendFailures,
		m.snapSendSeconds, m.snapRecvSuccess, m.snapRecvFailures, m.snapRecvSeconds, m.peerRTT, m.heartbeatSendFailures,
		m.snapshotsReceiving, m.knownPeers, m.tlsRejected, m.gatewayRefused,
		m.grpc, m.clientRequests, m.grpcRecvBytes, m.grpcSentBytes, m.isLearner, m.quotaBytes, m.dbInUse,
		m.serverID, m.healthSuccess, m.healthFailures, m.walWriteBytes, m.walWrite, m.backendCommit,
		m.backendSnapshot, m.defrag, m.defragInflight, m.hashKV, m.learnerPromotes, m.watchStreams, m.compactionLast,
		versionGauge("etcd_server_version", "Which version is running. 1 for 'server_version' label with current version.",
			"server_version", APIVersion),
		versionGauge("etcd_server_go_version", "Which Go version server is running with. 1 for 'server_go_version' label with current version.",
			"server_go_version", runtime.Version()),
		versionGauge("etcd_cluster_version", "Which version is running. 1 for 'cluster_version' label with current cluster version",
			"cluster_version", clusterVersion),
		fdCollector{
			used:  prometheus.NewDesc("os_fd_used", "The number of used file descriptors.", nil, nil),
			limit: prometheus.NewDesc("os_fd_limit", "The file descriptor limit.", nil, nil),
		},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(m.timings.collectors()...)
	return m
}

// peerGauge is a gauge by peer with etcd's labels, Local (this member,
// known once its storage is open) and Remote.
type peerGauge struct {
	vec   *prometheus.GaugeVec
	local *string
}

func (g peerGauge) WithLabelValues(remote string) prometheus.Gauge {
	return g.vec.WithLabelValues(*g.local, remote)
}

// setLocal names this member in the peer gauges.
func (m *metrics) setLocal(id string) { *m.peerActive.local = id }

// clusterVersion is the cluster version plumb runs at, as etcd's
// etcd_cluster_version labels it (major.minor).
const clusterVersion = "3.7"

// versionGauge is one of etcd's information metrics: a gauge at 1 whose
// label carries the value.
func versionGauge(name, help, label, value string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: prometheus.Labels{label: value}})
	g.Set(1)
	return g
}

// fdCollector reports etcd's os_fd_used and os_fd_limit: the process's
// open file descriptors and its RLIMIT_NOFILE, read at each scrape.
type fdCollector struct{ used, limit *prometheus.Desc }

func (c fdCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.used; ch <- c.limit }

func (c fdCollector) Collect(ch chan<- prometheus.Metric) {
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(len(fds)))
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(lim.Cur))
	}
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
	expired                  *prometheus.Desc
	ttls                     *prometheus.Desc
	revision, compacted      *prometheus.Desc
	puts, ranges, deletes    *prometheus.Desc
	txns                     *prometheus.Desc
	readIndexesFailed        *prometheus.Desc
	slowReadIndexes          *prometheus.Desc
	authRevision             *prometheus.Desc
	keys, putBytes           *prometheus.Desc
	watchEvents, eventsTaken *prometheus.Desc
	compactedKeys            *prometheus.Desc
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
		expired: prometheus.NewDesc("etcd_debugging_server_lease_expired_total",
			"The total number of expired leases.", nil, nil),
		// etcd's buckets: 1 second to 2^23 seconds (about 3 months); every
		// member counts the grants it applies, as etcd's do.
		ttls: prometheus.NewDesc("etcd_debugging_lease_ttl_total",
			"Bucketed histogram of lease TTLs.", nil, nil),
		revision: prometheus.NewDesc("etcd_debugging_mvcc_current_revision",
			"The current revision of store.", nil, nil),
		compacted: prometheus.NewDesc("etcd_debugging_mvcc_compact_revision",
			"The revision of the last compaction in store.", nil, nil),
		puts:    prometheus.NewDesc("etcd_mvcc_put_total", "Total number of puts seen by this member.", nil, nil),
		ranges:  prometheus.NewDesc("etcd_mvcc_range_total", "Total number of ranges seen by this member.", nil, nil),
		deletes: prometheus.NewDesc("etcd_mvcc_delete_total", "Total number of deletes seen by this member.", nil, nil),
		txns:    prometheus.NewDesc("etcd_mvcc_txn_total", "Total number of txns seen by this member.", nil, nil),
		// Counted by the node (node.Status): ReadIndex rounds that failed
		// with a leader change, and answers out of date or timed out.
		readIndexesFailed: prometheus.NewDesc("etcd_server_read_indexes_failed_total",
			"The total number of failed read indexes seen.", nil, nil),
		slowReadIndexes: prometheus.NewDesc("etcd_server_slow_read_indexes_total",
			"The total number of pending read indexes not in sync with leader's or timed out read index requests.", nil, nil),
		authRevision: prometheus.NewDesc("etcd_debugging_auth_revision",
			"The current revision of auth store.", nil, nil),
		keys: prometheus.NewDesc("etcd_debugging_mvcc_keys_total",
			"Total number of keys.", nil, nil),
		// As etcd's: the events mvcc handed to watchers that the watch
		// server has not taken yet, and those it took. plumb's loop takes
		// them in the turn that produced them and a scrape runs between
		// turns, so pending is 0 unless the node handed out events the
		// loop never took.
		watchEvents: prometheus.NewDesc("etcd_debugging_mvcc_pending_events_total",
			"Total number of pending events to be sent.", nil, nil),
		compactedKeys: prometheus.NewDesc("etcd_debugging_mvcc_db_compaction_keys_total",
			"Total number of db keys compacted.", nil, nil),
		eventsTaken: prometheus.NewDesc("etcd_debugging_mvcc_events_total",
			"Total number of events sent by this member.", nil, nil),
		putBytes: prometheus.NewDesc("etcd_debugging_mvcc_total_put_size_in_bytes",
			"The total size of put kv pairs seen by this member.", nil, nil),
	}
}

func (c *loopCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.watchers
	ch <- c.slowWatchers
	ch <- c.granted
	ch <- c.revoked
	ch <- c.renews
	ch <- c.expired
	ch <- c.ttls
	ch <- c.revision
	ch <- c.compacted
	ch <- c.puts
	ch <- c.ranges
	ch <- c.deletes
	ch <- c.txns
	ch <- c.readIndexesFailed
	ch <- c.slowReadIndexes
	ch <- c.authRevision
	ch <- c.keys
	ch <- c.putBytes
	ch <- c.watchEvents
	ch <- c.eventsTaken
	ch <- c.compactedKeys
}

func (c *loopCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeLoopWait)
	defer cancel()
	var st node.LeaseStats
	var watchers, slow int
	var status node.Status
	var ops mvcc.OpCounts
	var authRev, eventsTaken uint64
	if err := c.l.exec(ctx, func(n *node.Node) {
		st, watchers = n.LeaseStats(), len(c.l.watches)
		_, slow = n.Watchers()
		status, ops, authRev = n.Status(), n.KVOps(), n.AuthRevision()
		eventsTaken = c.l.watchEventsTaken
	}); err != nil {
		return // the loop is gone, or too busy to answer: the scrape has the rest
	}
	ch <- prometheus.MustNewConstMetric(c.puts, prometheus.CounterValue, float64(ops.Puts))
	ch <- prometheus.MustNewConstMetric(c.ranges, prometheus.CounterValue, float64(ops.Ranges))
	ch <- prometheus.MustNewConstMetric(c.deletes, prometheus.CounterValue, float64(ops.Deletes))
	ch <- prometheus.MustNewConstMetric(c.txns, prometheus.CounterValue, float64(ops.Txns))
	ch <- prometheus.MustNewConstMetric(c.readIndexesFailed, prometheus.CounterValue, float64(status.ReadIndexesFailed))
	ch <- prometheus.MustNewConstMetric(c.slowReadIndexes, prometheus.CounterValue, float64(status.SlowReadIndexes))
	ch <- prometheus.MustNewConstMetric(c.authRevision, prometheus.GaugeValue, float64(authRev))
	ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(status.Keys))
	ch <- prometheus.MustNewConstMetric(c.putBytes, prometheus.GaugeValue, float64(status.PutBytes))
	ch <- prometheus.MustNewConstMetric(c.watchEvents, prometheus.GaugeValue, float64(status.WatchEvents)-float64(eventsTaken))
	ch <- prometheus.MustNewConstMetric(c.eventsTaken, prometheus.CounterValue, float64(eventsTaken))
	ch <- prometheus.MustNewConstMetric(c.compactedKeys, prometheus.CounterValue, float64(status.CompactedKeys))
	ch <- prometheus.MustNewConstMetric(c.revision, prometheus.GaugeValue, float64(status.Revision))
	ch <- prometheus.MustNewConstMetric(c.compacted, prometheus.GaugeValue, float64(status.CompactRevision))
	ch <- prometheus.MustNewConstMetric(c.watchers, prometheus.GaugeValue, float64(watchers))
	ch <- prometheus.MustNewConstMetric(c.slowWatchers, prometheus.GaugeValue, float64(slow))
	ch <- prometheus.MustNewConstMetric(c.granted, prometheus.CounterValue, float64(st.Granted))
	ch <- prometheus.MustNewConstMetric(c.revoked, prometheus.CounterValue, float64(st.Revoked))
	ch <- prometheus.MustNewConstMetric(c.renews, prometheus.CounterValue, float64(st.Renewals))
	ch <- prometheus.MustNewConstMetric(c.expired, prometheus.CounterValue, float64(st.Expired))
	buckets := make(map[float64]uint64, node.LeaseTTLBuckets)
	var count uint64
	for i, n := range st.TTLs {
		count += n
		buckets[float64(int64(1)<<i)] = count
	}
	count += st.TTLOver
	ch <- prometheus.MustNewConstHistogram(c.ttls, count, float64(st.TTLSum), buckets)
}

// handler serves the registry as etcd's /metrics does, counting its own
// scrapes (promhttp_metric_handler_requests_*).
func (m *metrics) handler() http.Handler {
	return promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
}
