package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// progressStream serves the Watch service over s's loop with the given
// progress interval, on a listener of its own, and opens a stream to it.
func progressStream(t *testing.T, s *Server, interval time.Duration) pb.Watch_WatchClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	pb.RegisterWatchServer(gs, &watchServer{l: s.loop, maxRequestBytes: int(s.cfg.MaxRequestBytes), progressInterval: interval})
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ws, err := pb.NewWatchClient(conn).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// progressChecker reads one stream's responses and checks what the
// progress responses of a progress_notify watcher promise: a progress
// response at revision R comes after every event of the watcher at or
// below R, and never before one; a watcher without progress_notify gets
// none.
type progressChecker struct {
	t              *testing.T
	resps          chan *pb.WatchResponse
	notify, silent int64 // the watchers with and without progress_notify

	events       map[int64]bool // revisions of the notify watcher's events received
	lastEvent    int64
	lastProgress int64
}

func newProgressChecker(t *testing.T, ws pb.Watch_WatchClient, notify, silent int64) *progressChecker {
	c := &progressChecker{t: t, resps: make(chan *pb.WatchResponse, 1024), notify: notify, silent: silent, events: map[int64]bool{}}
	go func() {
		defer close(c.resps)
		for {
			resp, err := ws.Recv()
			if err != nil {
				return
			}
			c.resps <- resp
		}
	}()
	return c
}

// nextProgress reads responses, checking each, until the notify watcher's
// next progress response, and returns its revision.
func (c *progressChecker) nextProgress() int64 {
	c.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case resp, ok := <-c.resps:
			if !ok {
				c.t.Fatal("the stream ended")
			}
			if rev, isProgress := c.check(resp); isProgress {
				return rev
			}
		case <-timeout:
			c.t.Fatalf("no progress response (events up to %d, last progress at %d)", c.lastEvent, c.lastProgress)
		}
	}
}

func (c *progressChecker) check(resp *pb.WatchResponse) (rev int64, isProgress bool) {
	c.t.Helper()
	rev = resp.Header.GetRevision()
	switch {
	case resp.Created || resp.Canceled:
		c.t.Fatalf("unexpected response %v", resp)
	case resp.WatchId == c.silent:
		if len(resp.Events) == 0 {
			c.t.Fatalf("a progress response %v to a watcher without progress_notify", resp)
		}
	case resp.WatchId != c.notify:
		c.t.Fatalf("a response to watcher %d: %v", resp.WatchId, resp)
	case len(resp.Events) == 0:
		if rev < c.lastEvent || rev < c.lastProgress {
			c.t.Fatalf("progress at %d after an event at %d and a progress at %d", rev, c.lastEvent, c.lastProgress)
		}
		c.lastProgress = rev
		return rev, true
	default:
		for _, e := range resp.Events {
			r := e.Kv.ModRevision
			if r <= c.lastProgress || r <= c.lastEvent {
				c.t.Fatalf("event at %d after a progress at %d and an event at %d", r, c.lastProgress, c.lastEvent)
			}
			c.events[r] = true
			c.lastEvent = r
		}
	}
	return rev, false
}

// TestWatchProgressNotifyInterval: with --watch-progress-notify-interval
// short, a progress_notify watcher on an idle stream gets a progress
// response every period at the member's revision; while other keys change
// it gets them whenever it had no events for a period, each after every
// event of the watcher at or below its revision, never ahead of one. A
// watcher without progress_notify gets none.
func TestWatchProgressNotifyInterval(t *testing.T) {
	s, _, cli := watchMember(t)
	ws := progressStream(t, s, watchProgressIntervalMin)
	for _, cr := range []*pb.WatchCreateRequest{
		{Key: []byte("k"), WatchId: 1, ProgressNotify: true},
		{Key: []byte("k"), WatchId: 2},
	} {
		if got := exchange(t, ws, create(cr)); !got.Created || got.WatchId != cr.WatchId {
			t.Fatalf("create %v: %v", cr, got)
		}
	}
	c := newProgressChecker(t, ws, 1, 2)

	idle := mustPut(t, cli, "other", "idle")
	for range 3 {
		if rev := c.nextProgress(); rev != idle {
			t.Fatalf("progress at %d on an idle member at %d", rev, idle)
		}
	}

	// Other keys change all along, so that each progress response has a
	// revision of its own to get wrong.
	ctx, cancel := context.WithCancel(context.Background())
	writerDone := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			if _, err := cli.Put(ctx, "other", fmt.Sprint(i)); err != nil {
				writerDone <- err
				return
			}
		}
	}()
	defer func() {
		cancel()
		if err := <-writerDone; !errors.Is(err, context.Canceled) {
			t.Errorf("writer: %v", err)
		}
	}()
	var puts []int64
	for i := range 5 {
		puts = append(puts, mustPut(t, cli, "k", fmt.Sprint(i)))
		c.caughtUp(c.nextProgress(), puts)
	}
}

// caughtUp checks that a progress response at rev came after the events
// of every put of the key at or below rev.
func (c *progressChecker) caughtUp(rev int64, puts []int64) {
	c.t.Helper()
	for _, p := range puts {
		if p <= rev && !c.events[p] {
			c.t.Fatalf("progress at %d before the event at %d", rev, p)
		}
	}
}

// TestWatchProgressWhileCatchingUp: a progress_notify watcher started in
// the past has no events for a long stretch of the history it catches up
// from, a bounded chunk at a time, so it is quiet for whole periods while
// it is behind; its progress responses still come only once it has its
// event, never at a revision it has not caught up to.
func TestWatchProgressWhileCatchingUp(t *testing.T) {
	s, _, cli := watchMember(t)
	from := mustPut(t, cli, "other", "start") + 1
	// Revisions of many events each: the node reads the history for
	// watchers in chunks of about a thousand events.
	ops := make([]clientv3.Op, 0, s.cfg.MaxTxnOps)
	for i := range int(s.cfg.MaxTxnOps) {
		ops = append(ops, clientv3.OpPut(fmt.Sprint("other/", i), "v"))
	}
	for range 400 {
		if _, err := cli.Txn(context.Background()).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	puts := []int64{mustPut(t, cli, "k", "late")}

	ws := progressStream(t, s, watchProgressIntervalMin)
	for _, cr := range []*pb.WatchCreateRequest{
		{Key: []byte("k"), WatchId: 1, StartRevision: from, ProgressNotify: true},
		{Key: []byte("k"), WatchId: 2, StartRevision: from},
	} {
		if got := exchange(t, ws, create(cr)); !got.Created || got.WatchId != cr.WatchId {
			t.Fatalf("create %v: %v", cr, got)
		}
	}
	c := newProgressChecker(t, ws, 1, 2)
	for rev := c.nextProgress(); rev < puts[0]; rev = c.nextProgress() {
		c.caughtUp(rev, puts)
	}
	c.caughtUp(puts[0], puts)
}

// TestWatchProgressIntervalBounds: etcd's bounds on the setting, and the
// jitter each stream adds (up to a tenth of the period).
func TestWatchProgressIntervalBounds(t *testing.T) {
	for _, tc := range []struct {
		set, want time.Duration
	}{
		{0, watchProgressIntervalDefault},
		{-time.Second, watchProgressIntervalDefault},
		{time.Millisecond, watchProgressIntervalMin},
		{watchProgressIntervalMin, watchProgressIntervalMin},
		{5 * time.Second, 5 * time.Second},
	} {
		w := &watchServer{progressInterval: tc.set}
		for range 100 {
			if got := w.streamProgressInterval(); got < tc.want || got >= tc.want+tc.want/watchProgressJitterDivisor {
				t.Fatalf("--watch-progress-notify-interval %v: a stream's period is %v, want %v and up to a tenth more", tc.set, got, tc.want)
			}
		}
	}
}

// TestResolveWatchProgressNotifyInterval: the flag and the environment
// take a duration, etcd's config file integer nanoseconds (or a duration);
// too short a period warns, as etcd does.
func TestResolveWatchProgressNotifyInterval(t *testing.T) {
	want := func(d time.Duration) func(*testing.T, Config) {
		return func(t *testing.T, c Config) {
			t.Helper()
			if c.WatchProgressNotifyInterval != d {
				t.Errorf("WatchProgressNotifyInterval = %v, want %v", c.WatchProgressNotifyInterval, d)
			}
		}
	}
	const name = "watch-progress-notify-interval"
	for _, tc := range []resolveCase{
		{name: "default", check: want(10 * time.Minute)},
		{name: "flag", flags: map[string]string{name: "500ms"}, check: want(500 * time.Millisecond)},
		{name: "ETCD variable", env: []string{"ETCD_WATCH_PROGRESS_NOTIFY_INTERVAL=1m30s"}, check: want(90 * time.Second)},
		{name: "PLUMB variable", env: []string{"PLUMB_WATCH_PROGRESS_NOTIFY_INTERVAL=2s"}, check: want(2 * time.Second)},
		{name: "file, nanoseconds as etcd's", file: name + ": 600000000000\n", check: want(10 * time.Minute)},
		{name: "file, a duration", file: name + ": 5s\n", check: want(5 * time.Second)},
		{name: "zero is the default", flags: map[string]string{name: "0"}, check: want(0)},
		{name: "a number without a unit", flags: map[string]string{name: "600"},
			wantErr: []string{`--watch-progress-notify-interval: "600" is not a duration such as 10m or 500ms (from the command line)`}},
		{name: "not a duration in the file", file: name + ": soon\n",
			wantErr: []string{`plumb.yaml:1: watch-progress-notify-interval: "soon" is neither a whole number of nanoseconds nor a duration such as 10m`}},
		{name: "below the minimum", env: []string{"ETCD_WATCH_PROGRESS_NOTIFY_INTERVAL=10ms"}, check: want(10 * time.Millisecond),
			wantWarn: []string{"--watch-progress-notify-interval: 10ms is below the minimum, 100ms, which is used instead (from ETCD_WATCH_PROGRESS_NOTIFY_INTERVAL)"}},
	} {
		t.Run(tc.name, tc.run)
	}
}
