package server

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/node"
)

// timings are etcd's latency families for work inside the node (apply,
// range, compaction, snapshot install), in the request path (request
// duration by type) and in the watch send loop, with etcd's names,
// labels and buckets.
type timings struct {
	apply        *prometheus.HistogramVec // version, op, success
	slowApply    prometheus.Counter
	rangeSec     *prometheus.HistogramVec // success
	request      *prometheus.HistogramVec // type, success
	dbCompPause  prometheus.Histogram
	dbCompTotal  prometheus.Histogram
	idxCompPause prometheus.Histogram
	snapApplying prometheus.Gauge

	watchControl  prometheus.Histogram
	watchProgress prometheus.Histogram
	watchEvents   prometheus.Histogram
	watchPerEvent prometheus.Histogram
}

func newTimings() timings {
	secs := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	}
	hist := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	}
	sendLoop := prometheus.ExponentialBuckets(0.001, 2, 14)
	return timings{
		apply: secs("etcd_server_apply_duration_seconds", "The latency distributions of v2 apply called by backend.",
			prometheus.ExponentialBuckets(0.0001, 2, 20), "version", "op", "success"),
		slowApply: prometheus.NewCounter(prometheus.CounterOpts{Name: "etcd_server_slow_apply_total",
			Help: "The total number of slow apply requests (likely overloaded from slow disk)."}),
		rangeSec: secs("etcd_server_range_duration_seconds", "The latency distributions of txn.Range",
			prometheus.ExponentialBuckets(0.0001, 2, 20), "success"),
		request: secs("etcd_server_request_duration_seconds", "Response latency distribution in seconds for each type.",
			prometheus.ExponentialBuckets(0.001, 2, 14), "type", "success"),
		dbCompPause: hist("etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds",
			"Bucketed histogram of db compaction pause duration.", prometheus.ExponentialBuckets(1, 2, 13)),
		dbCompTotal: hist("etcd_debugging_mvcc_db_compaction_total_duration_milliseconds",
			"Bucketed histogram of db compaction total duration.", prometheus.ExponentialBuckets(100, 2, 14)),
		idxCompPause: hist("etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds",
			"Bucketed histogram of index compaction pause duration.", prometheus.ExponentialBuckets(0.5, 2, 14)),
		snapApplying: prometheus.NewGauge(prometheus.GaugeOpts{Name: "etcd_server_snapshot_apply_in_progress_total",
			Help: "1 if the server is applying the incoming snapshot. 0 if none."}),
		watchControl: hist("etcd_debugging_server_watch_send_loop_control_stream_duration_seconds",
			"The total duration in seconds of running through the send loop control stream response.", sendLoop),
		watchProgress: hist("etcd_debugging_server_watch_send_loop_progress_duration_seconds",
			"The total duration in seconds of running through the progress loop control stream response.", sendLoop),
		watchEvents: hist("etcd_debugging_server_watch_send_loop_watch_stream_duration_seconds",
			"The total duration in seconds of running through the send loop watch stream response all events.", sendLoop),
		watchPerEvent: hist("etcd_debugging_server_watch_send_loop_watch_stream_duration_per_event_seconds",
			"The average duration in seconds of running through the send loop watch stream response, per event.", sendLoop),
	}
}

func (t *timings) collectors() []prometheus.Collector {
	return []prometheus.Collector{t.apply, t.slowApply, t.rangeSec, t.request, t.dbCompPause, t.dbCompTotal,
		t.idxCompPause, t.snapApplying, t.watchControl, t.watchProgress, t.watchEvents, t.watchPerEvent}
}

// stopwatch is the node's Stopwatch in the server: marks are nanoseconds
// on the monotonic clock since the stopwatch was made.
type stopwatch struct {
	t      *timings
	base   time.Time
	logger *slog.Logger
	// slow is --warning-apply-duration: an apply that takes longer is
	// counted in etcd_server_slow_apply_total and logged, as etcd does.
	slow time.Duration
}

func (s *stopwatch) Start(w node.Work) int64 {
	if w.Kind == node.WorkSnapshotInstall {
		s.t.snapApplying.Set(1)
	}
	return int64(time.Since(s.base))
}

func (s *stopwatch) Stop(w node.Work, mark int64, ok bool) {
	d := time.Since(s.base) - time.Duration(mark)
	ms := float64(d) / float64(time.Millisecond)
	switch w.Kind {
	case node.WorkApply:
		s.t.apply.WithLabelValues("v3", w.Op, boolLabel(ok)).Observe(d.Seconds())
		if d > s.slow {
			s.t.slowApply.Inc()
			s.logger.Warn("apply request took too long", "took", d.String(), "expected-duration", s.slow.String(), "op", w.Op)
		}
	case node.WorkRange:
		s.t.rangeSec.WithLabelValues(boolLabel(ok)).Observe(d.Seconds())
	case node.WorkIndexCompaction:
		s.t.idxCompPause.Observe(ms)
	case node.WorkDBCompaction:
		// plumb deletes a compaction's revisions in one pass inside the
		// apply, so the loop pauses for all of it: pause and total are one.
		s.t.dbCompPause.Observe(ms)
		s.t.dbCompTotal.Observe(ms)
	case node.WorkSnapshotInstall:
		s.t.snapApplying.Set(0)
	}
}

// requestType is etcd's name for a request's type in
// etcd_server_request_duration_seconds.
func requestType(req node.Request) string {
	switch {
	case req.Range != nil:
		return "Range"
	case req.Put != nil:
		return "Put"
	case req.DeleteRange != nil:
		return "DeleteRange"
	case req.Txn != nil:
		return "Txn"
	case req.Compaction != nil:
		return "Compaction"
	case req.LeaseGrant != nil:
		return "LeaseGrant"
	case req.LeaseRevoke != nil:
		return "LeaseRevoke"
	case req.Alarm != nil:
		return "Alarm"
	case req.Auth != nil:
		return node.ApplyOp(req.Auth)
	}
	return ""
}

// observeSend times one response of the watch send loop, by kind, as
// etcd's send loop does.
func (t *timings) observeSend(wr *pb.WatchResponse, d time.Duration) {
	switch {
	case wr.Created || wr.Canceled:
		t.watchControl.Observe(d.Seconds())
	case len(wr.Events) == 0:
		t.watchProgress.Observe(d.Seconds())
	default:
		t.watchEvents.Observe(d.Seconds())
		t.watchPerEvent.Observe(d.Seconds() / float64(len(wr.Events)))
	}
}

func boolLabel(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
