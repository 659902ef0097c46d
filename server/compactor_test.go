package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/plumbdb/plumb/node"
)

func TestParseCompactionRetention(t *testing.T) {
	for _, tc := range []struct {
		mode, retention string
		want            time.Duration
		errHas          string
	}{
		{CompactionModePeriodic, "0", 0, ""},
		{CompactionModePeriodic, "", 0, ""},
		{CompactionModePeriodic, "1", time.Hour, ""}, // a bare number is hours
		{CompactionModePeriodic, "72", 72 * time.Hour, ""},
		{CompactionModePeriodic, "5m", 5 * time.Minute, ""},
		{CompactionModePeriodic, "1h30m", 90 * time.Minute, ""},
		{CompactionModeRevision, "1000", 1000, ""},
		{CompactionModeRevision, "1h", 0, "whole number of revisions"},
		{CompactionModePeriodic, "soon", 0, "error parsing CompactionRetention"},
		{CompactionModePeriodic, "-1h", 0, "error parsing CompactionRetention"},
	} {
		got, err := parseCompactionRetention(tc.mode, tc.retention)
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("%s %q: %v, %v; want an error with %q", tc.mode, tc.retention, got, err, tc.errHas)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s %q: %v, %v; want %v", tc.mode, tc.retention, got, err, tc.want)
		}
	}
}

func TestResolveAutoCompaction(t *testing.T) {
	for _, tc := range []resolveCase{
		{name: "periodic", flags: map[string]string{"auto-compaction-mode": "periodic", "auto-compaction-retention": "5m"},
			check: func(t *testing.T, c Config) {
				if c.AutoCompactionMode != "periodic" || c.AutoCompactionRetention != "5m" {
					t.Errorf("got %q %q", c.AutoCompactionMode, c.AutoCompactionRetention)
				}
			}},
		{name: "revision from etcd's environment", env: []string{"ETCD_AUTO_COMPACTION_MODE=revision", "ETCD_AUTO_COMPACTION_RETENTION=1000"},
			check: func(t *testing.T, c Config) {
				if c.AutoCompactionMode != "revision" || c.AutoCompactionRetention != "1000" {
					t.Errorf("got %q %q", c.AutoCompactionMode, c.AutoCompactionRetention)
				}
			}},
		{name: "unknown mode", flags: map[string]string{"auto-compaction-mode": "hourly"}, wantErr: []string{"--auto-compaction-mode", "hourly"}},
		{name: "bad retention", flags: map[string]string{"auto-compaction-retention": "soon"},
			wantErr: []string{"--auto-compaction-retention", "error parsing CompactionRetention"}},
		{name: "a duration in revision mode", flags: map[string]string{"auto-compaction-mode": "revision", "auto-compaction-retention": "1h"},
			wantErr: []string{"--auto-compaction-retention", "whole number of revisions"}},
	} {
		t.Run(tc.name, tc.run)
	}
}

// compactRev reads the member's compaction point.
func compactRev(t *testing.T, s *Server) (compact, rev int64) {
	t.Helper()
	err := s.loop.exec(context.Background(), func(n *node.Node) {
		st := n.Status()
		compact, rev = st.CompactRevision, st.Revision
	})
	if err != nil {
		t.Fatal(err)
	}
	return compact, rev
}

// TestAutoCompactionPeriodic: with --auto-compaction-retention 1s the
// leader compacts, about every second, to the revision of a second ago:
// the history of the last half second is always kept.
func TestAutoCompactionPeriodic(t *testing.T) {
	cfg := oneMember(t, t.TempDir())
	cfg.AutoCompactionMode, cfg.AutoCompactionRetention = CompactionModePeriodic, "1s"
	s := startT(t, cfg)
	defer s.Stop()
	cli := clientOf(t, cfg)
	type sample struct {
		at  time.Time
		rev int64
	}
	var samples []sample
	compactions := map[int64]bool{}
	for i := range 80 {
		putRetrying(t, cli, "k", fmt.Sprint(i))
		compact, rev := compactRev(t, s)
		now := time.Now()
		samples = append(samples, sample{now, rev})
		if compact > 0 {
			compactions[compact] = true
			for _, sm := range samples {
				if now.Sub(sm.at) < 500*time.Millisecond && sm.rev <= compact {
					t.Fatalf("compacted to %d, but revision %d is only %v old (retention 1s)", compact, sm.rev, now.Sub(sm.at))
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(compactions) < 2 {
		t.Fatalf("compactions to %v in 4s with a retention of 1s, want one every second", compactions)
	}
}

// TestAutoCompactionRevision: --auto-compaction-mode revision keeps the
// last --auto-compaction-retention revisions.
func TestAutoCompactionRevision(t *testing.T) {
	saved := revisionCompactInterval
	revisionCompactInterval = 100 * time.Millisecond
	defer func() { revisionCompactInterval = saved }()
	cfg := oneMember(t, t.TempDir())
	cfg.AutoCompactionMode, cfg.AutoCompactionRetention = CompactionModeRevision, "10"
	s := startT(t, cfg)
	defer s.Stop()
	cli := clientOf(t, cfg)
	for i := range 50 {
		putRetrying(t, cli, "k", fmt.Sprint(i))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		compact, rev := compactRev(t, s)
		if compact == rev-10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("compaction point %d at revision %d, want %d (retention 10 revisions)", compact, rev, rev-10)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAutoCompactionOff: retention 0, the default, never compacts.
func TestAutoCompactionOff(t *testing.T) {
	saved := revisionCompactInterval
	revisionCompactInterval = 50 * time.Millisecond
	defer func() { revisionCompactInterval = saved }()
	cfg := oneMember(t, t.TempDir())
	cfg.AutoCompactionMode, cfg.AutoCompactionRetention = CompactionModeRevision, "0"
	s := startT(t, cfg)
	defer s.Stop()
	cli := clientOf(t, cfg)
	for i := range 20 {
		putRetrying(t, cli, "k", fmt.Sprint(i))
	}
	time.Sleep(300 * time.Millisecond)
	if compact, _ := compactRev(t, s); compact > 0 {
		t.Fatalf("compacted to %d with auto-compaction off", compact)
	}
}
