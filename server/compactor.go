package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"

	"github.com/plumbdb/plumb/node"
	"github.com/plumbdb/plumb/node/mvcc"
)

// Automatic compaction, etcd's v3compactor: --auto-compaction-mode
// periodic keeps --auto-compaction-retention of history (a duration, or a
// whole number of hours), revision keeps that many revisions. Only the
// leader compacts (a compaction goes through raft and applies on every
// member); the others keep sampling, so a new leader goes on where the
// old one was.
const (
	CompactionModePeriodic = "periodic"
	CompactionModeRevision = "revision"

	// compactRetryDivisor: a periodic compactor samples the revision
	// every tenth of its period (at most an hour), as etcd's.
	compactRetryDivisor = 10
	compactPeriodMax    = time.Hour
	compactTimeout      = 10 * time.Second
)

// revisionCompactInterval is how often the revision compactor compacts:
// etcd's 5 minutes. Tests shorten it.
var revisionCompactInterval = 5 * time.Minute

// parseCompactionRetention is etcd's: a whole number is hours (periodic) or
// revisions (revision); anything else a duration, periodic only.
func parseCompactionRetention(mode, retention string) (time.Duration, error) {
	if retention == "" {
		retention = "0"
	}
	if h, err := strconv.Atoi(retention); err == nil && h >= 0 {
		if mode == CompactionModeRevision {
			return time.Duration(h), nil
		}
		return time.Duration(h) * time.Hour, nil
	}
	if mode == CompactionModeRevision {
		return 0, fmt.Errorf("%q: in revision mode the retention is a whole number of revisions", retention)
	}
	d, err := time.ParseDuration(retention)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("error parsing CompactionRetention: %q is not a duration or a whole number of hours", retention)
	}
	return d, nil
}

// compactor runs one of etcd's compactors against the loop.
type compactor struct {
	l         *loop
	mode      string
	retention time.Duration // periodic: the history kept; revision: revisions kept
	now       func() time.Time
}

// run compacts until stop is closed.
func (c *compactor) run(stop <-chan struct{}) {
	if c.mode == CompactionModeRevision {
		c.runRevision(stop)
		return
	}
	c.runPeriodic(stop)
}

// state asks the loop for the current revision and whether this member
// leads.
func (c *compactor) state() (rev int64, leader bool, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), compactTimeout)
	defer cancel()
	err := c.l.exec(ctx, func(n *node.Node) {
		st := n.Status()
		rev, leader = st.Revision, st.State == raft.StateLeader
	})
	return rev, leader, err == nil
}

// compact compacts to rev through raft; a revision already compacted
// counts as done.
func (c *compactor) compact(rev int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), compactTimeout)
	defer cancel()
	_, err := c.l.do(ctx, node.Request{Compaction: &pb.CompactionRequest{Revision: rev}})
	if errors.Is(err, mvcc.ErrCompacted) {
		return nil
	}
	return err
}

// runPeriodic is etcd's Periodic: the revision is sampled every tenth of
// the period (at most an hour); once a period has passed since the start
// (or since the last compaction, every min(period, 1h) after the first),
// the leader compacts to the revision sampled a period ago.
func (c *compactor) runPeriodic(stop <-chan struct{}) {
	interval := min(c.retention, compactPeriodMax)
	retry := interval / compactRetryDivisor
	keep := int(c.retention/retry) + 1
	var revs []int64
	var last int64
	lastSuccess := c.now()
	wait := c.retention
	t := time.NewTicker(retry)
	defer t.Stop()
	for {
		rev, leader, ok := c.state()
		if ok {
			revs = append(revs, rev)
			if len(revs) > keep {
				revs = revs[1:]
			}
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if !leader || len(revs) == 0 || c.now().Sub(lastSuccess) < wait {
			continue
		}
		target := revs[0]
		if target == last || target <= 0 {
			continue
		}
		c.l.logger.Info("starting auto periodic compaction", "revision", target, "compact-period", c.retention)
		if err := c.compact(target); err != nil {
			c.l.logger.Warn("failed auto periodic compaction", "revision", target, "err", err)
			continue
		}
		c.l.logger.Info("completed auto periodic compaction", "revision", target, "compact-period", c.retention)
		last, lastSuccess, wait = target, c.now(), interval
	}
}

// runRevision is etcd's Revision: every 5 minutes the leader compacts to
// the current revision less the retention.
func (c *compactor) runRevision(stop <-chan struct{}) {
	t := time.NewTicker(revisionCompactInterval)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		rev, leader, ok := c.state()
		target := rev - int64(c.retention)
		if !ok || !leader || target <= 0 || target == last {
			continue
		}
		c.l.logger.Info("starting auto revision compaction", "revision", target, "revision-compaction-retention", int64(c.retention))
		if err := c.compact(target); err != nil {
			c.l.logger.Warn("failed auto revision compaction", "revision", target, "err", err)
			continue
		}
		c.l.logger.Info("completed auto revision compaction", "revision", target, "revision-compaction-retention", int64(c.retention))
		last = target
	}
}

// newCompactor returns the compactor --auto-compaction-* ask for, or nil
// when the retention is 0 (off, etcd's default).
func (s *Server) newCompactor() *compactor {
	retention, err := parseCompactionRetention(s.cfg.AutoCompactionMode, s.cfg.AutoCompactionRetention)
	if err != nil || retention <= 0 {
		return nil // Validate refused a bad one
	}
	mode := s.cfg.AutoCompactionMode
	if mode == "" {
		mode = CompactionModePeriodic
	}
	s.logger.Info("auto compaction is on", "mode", mode, "retention", s.cfg.AutoCompactionRetention)
	return &compactor{l: s.loop, mode: mode, retention: retention, now: time.Now}
}
