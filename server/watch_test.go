package server

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node"
)

// watchMember starts a one-member cluster that has elected itself and
// returns its client.
func watchMember(t *testing.T) (*Server, Config, *clientv3.Client) {
	t.Helper()
	cfg := oneMember(t, t.TempDir())
	s := startT(t, cfg)
	t.Cleanup(func() { s.Stop() })
	cli := clientOf(t, cfg)
	putRetrying(t, cli, "warm", "up")
	return s, cfg, cli
}

// ev is an event as the tests compare it.
type ev struct {
	typ      mvccpb.Event_EventType
	key, val string
	rev      int64
	prev     string // the previous value, "" if none
}

func (e ev) String() string {
	return fmt.Sprintf("%v %s=%s@%d prev=%q", e.typ, e.key, e.val, e.rev, e.prev)
}

// collect reads n events from wch, checking each response's header is at
// the revision of its last event.
func collect(t *testing.T, wch clientv3.WatchChan, n int) []ev {
	t.Helper()
	var got []ev
	timeout := time.After(5 * time.Second)
	for len(got) < n {
		select {
		case resp, ok := <-wch:
			if !ok {
				t.Fatalf("watch channel closed after %v", got)
			}
			if err := resp.Err(); err != nil {
				t.Fatalf("watch: %v after %v", err, got)
			}
			for _, e := range resp.Events {
				var prev string
				if e.PrevKv != nil {
					prev = string(e.PrevKv.Value)
				}
				got = append(got, ev{e.Type, string(e.Kv.Key), string(e.Kv.Value), e.Kv.ModRevision, prev})
			}
			if len(resp.Events) > 0 && resp.Header.Revision != resp.Events[len(resp.Events)-1].Kv.ModRevision {
				t.Errorf("response header at %d, its last event at %d", resp.Header.Revision, resp.Events[len(resp.Events)-1].Kv.ModRevision)
			}
		case <-timeout:
			t.Fatalf("got %v, want %d events", got, n)
		}
	}
	return got
}

func mustPut(t *testing.T, cli *clientv3.Client, k, v string) int64 {
	t.Helper()
	resp, err := cli.Put(context.Background(), k, v)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

func mustDelete(t *testing.T, cli *clientv3.Client, k string) int64 {
	t.Helper()
	resp, err := cli.Delete(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

func sameEvents(t *testing.T, what string, got, want []ev) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

// TestWatchKeyAndPrefix: a key's watcher and a prefix's, on one stream,
// see their puts and deletes in order with their revisions, nothing else.
func TestWatchKeyAndPrefix(t *testing.T) {
	_, _, cli := watchMember(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	keyCh := cli.Watch(ctx, "a")
	prefixCh := cli.Watch(ctx, "p/", clientv3.WithPrefix())
	r1 := mustPut(t, cli, "a", "1")
	r2 := mustPut(t, cli, "p/x", "x1")
	mustPut(t, cli, "q", "other")
	r4 := mustPut(t, cli, "p/y", "y1")
	r5 := mustDelete(t, cli, "p/x")
	r6 := mustDelete(t, cli, "a")
	sameEvents(t, "key", collect(t, keyCh, 2), []ev{
		{mvccpb.PUT, "a", "1", r1, ""}, {mvccpb.DELETE, "a", "", r6, ""},
	})
	sameEvents(t, "prefix", collect(t, prefixCh, 3), []ev{
		{mvccpb.PUT, "p/x", "x1", r2, ""}, {mvccpb.PUT, "p/y", "y1", r4, ""}, {mvccpb.DELETE, "p/x", "", r5, ""},
	})
}

// TestWatchReplayAndPrevKV: a watcher from a past revision replays the
// history from there; prev_kv gives each event the key's previous version
// (none for the event that created it).
func TestWatchReplayAndPrevKV(t *testing.T) {
	_, _, cli := watchMember(t)
	r1 := mustPut(t, cli, "k", "1")
	r2 := mustPut(t, cli, "k", "2")
	r3 := mustDelete(t, cli, "k")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wch := cli.Watch(ctx, "k", clientv3.WithRev(r1), clientv3.WithPrevKV())
	r4 := mustPut(t, cli, "k", "4")
	sameEvents(t, "replay", collect(t, wch, 4), []ev{
		{mvccpb.PUT, "k", "1", r1, ""}, {mvccpb.PUT, "k", "2", r2, "1"},
		{mvccpb.DELETE, "k", "", r3, "2"}, {mvccpb.PUT, "k", "4", r4, ""},
	})
}

// watchCount is how many watchers the loop routes.
func watchCount(t *testing.T, s *Server) int {
	t.Helper()
	var n int
	if err := s.loop.exec(context.Background(), func(*node.Node) { n = len(s.loop.watches) }); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitWatchCount(t *testing.T, s *Server, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for watchCount(t, s) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d watchers, want %d", watchCount(t, s), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWatchCancel: a canceled watch closes its channel and its node
// watcher goes; a closed client takes its streams' watchers with it.
func TestWatchCancel(t *testing.T) {
	s, cfg, cli := watchMember(t)
	ctx, cancel := context.WithCancel(context.Background())
	wch := cli.Watch(ctx, "k")
	mustPut(t, cli, "k", "1")
	collect(t, wch, 1)
	waitWatchCount(t, s, 1)
	cancel()
	for range wch {
	}
	waitWatchCount(t, s, 0)

	other := clientOf(t, cfg)
	och := other.Watch(context.Background(), "k")
	other.Watch(context.Background(), "j", clientv3.WithPrefix())
	mustPut(t, cli, "k", "2")
	collect(t, och, 1)
	waitWatchCount(t, s, 2)
	other.Close()
	waitWatchCount(t, s, 0)
}

// TestWatchCompacted: a watch from a compacted revision is canceled with
// the compaction revision: clientv3's ErrCompacted.
func TestWatchCompacted(t *testing.T) {
	_, _, cli := watchMember(t)
	mustPut(t, cli, "k", "1")
	rev := mustPut(t, cli, "k", "2")
	mustPut(t, cli, "k", "3")
	if _, err := cli.Compact(context.Background(), rev); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, ok := <-cli.Watch(ctx, "k", clientv3.WithRev(rev-1))
	if !ok || resp.Err() != rpctypes.ErrCompacted || resp.CompactRevision != rev || !resp.Canceled {
		t.Fatalf("watch from a compacted revision: %+v (open %v, err %v), want ErrCompacted at %d", resp, ok, resp.Err(), rev)
	}
}

// TestWatchProgress: a progress request is answered on the stream with the
// member's revision, as clientv3's RequestProgress expects.
func TestWatchProgress(t *testing.T) {
	_, _, cli := watchMember(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	wch := cli.Watch(ctx, "k")
	rev := mustPut(t, cli, "other", "v")
	if err := cli.RequestProgress(ctx); err != nil {
		t.Fatal(err)
	}
	resp := <-wch
	if !resp.IsProgressNotify() || resp.Header.Revision != rev {
		t.Fatalf("got %+v, want a progress notification at %d", resp, rev)
	}
}

// rawWatch opens etcd's Watch stream without clientv3, to see each
// response as the server sends it.
func rawWatch(t *testing.T, cfg Config) pb.Watch_WatchClient {
	t.Helper()
	conn, err := grpc.NewClient(strings.TrimPrefix(cfg.AdvertiseClientURLs[0], "http://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
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

func exchange(t *testing.T, ws pb.Watch_WatchClient, req *pb.WatchRequest) *pb.WatchResponse {
	t.Helper()
	if err := ws.Send(req); err != nil {
		t.Fatal(err)
	}
	resp, err := ws.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func create(cr *pb.WatchCreateRequest) *pb.WatchRequest {
	return &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: cr}}
}

// TestWatchStreamResponses: the responses etcd's server sends, as it sends
// them: created with the ID the client chose or the next free one, its
// refusals (created and canceled, ID -1, etcd's reason), a cancel's answer,
// events after a NOPUT filter.
func TestWatchStreamResponses(t *testing.T) {
	_, cfg, cli := watchMember(t)
	rev := mustPut(t, cli, "x", "1")
	ws := rawWatch(t, cfg)
	for _, tc := range []struct {
		name string
		cr   *pb.WatchCreateRequest
		want *pb.WatchResponse
	}{
		{"automatic ID", &pb.WatchCreateRequest{Key: []byte("a")}, &pb.WatchResponse{WatchId: 0, Created: true}},
		{"chosen ID", &pb.WatchCreateRequest{Key: []byte("k"), WatchId: 7, Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NOPUT}},
			&pb.WatchResponse{WatchId: 7, Created: true}},
		{"next automatic ID", &pb.WatchCreateRequest{Key: []byte("b")}, &pb.WatchResponse{WatchId: 1, Created: true}},
		{"duplicate ID", &pb.WatchCreateRequest{Key: []byte("c"), WatchId: 7},
			&pb.WatchResponse{WatchId: -1, Created: true, Canceled: true, CancelReason: "mvcc: duplicate watch ID provided on the WatchStream"}},
		{"range end before the key", &pb.WatchCreateRequest{Key: []byte("b"), RangeEnd: []byte("a")},
			&pb.WatchResponse{WatchId: -1, Created: true, Canceled: true, CancelReason: "mvcc: watcher range is empty"}},
		{"negative start revision", &pb.WatchCreateRequest{Key: []byte("b"), StartRevision: -1},
			&pb.WatchResponse{WatchId: -1, Created: true, Canceled: true, CancelReason: rpctypes.ErrCompacted.Error()}},
	} {
		got := exchange(t, ws, create(tc.cr))
		if got.Header.GetRevision() != rev {
			t.Errorf("%s: header %v, want revision %d", tc.name, got.Header, rev)
		}
		got.Header = nil
		if !proto.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	mustPut(t, cli, "k", "filtered")
	del := mustDelete(t, cli, "k")
	got, err := ws.Recv()
	if err != nil || got.WatchId != 7 || len(got.Events) != 1 || got.Events[0].Type != mvccpb.DELETE || got.Header.Revision != del {
		t.Fatalf("NOPUT watcher: %v (%v), want its delete at %d", got, err, del)
	}
	got = exchange(t, ws, &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: 7}}})
	if got.WatchId != 7 || !got.Canceled || got.Header.Revision != del {
		t.Fatalf("cancel: %v", got)
	}
	got = exchange(t, ws, &pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}})
	if got.WatchId != -1 || got.Canceled || len(got.Events) != 0 || got.Header.Revision != del {
		t.Fatalf("progress: %v", got)
	}
}

// TestWatchSlowClient: a client that reads nothing while many revisions
// pass fills its stream; its watcher is handed back to the node and
// catches up later, and the client still gets every revision once, in
// order.
func TestWatchSlowClient(t *testing.T) {
	_, cfg, cli := watchMember(t)
	ws := rawWatch(t, cfg)
	if got := exchange(t, ws, create(&pb.WatchCreateRequest{Key: []byte("k/"), RangeEnd: []byte("k0")})); !got.Created {
		t.Fatalf("create: %v", got)
	}
	const puts = 800
	value := strings.Repeat("v", 1000) // past gRPC's flow control window, so the send queue fills
	var last int64
	for i := range puts {
		last = mustPut(t, cli, fmt.Sprintf("k/%04d", i), value)
	}
	next := last - puts + 1
	for next <= last {
		resp, err := ws.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.Events {
			if e.Kv.ModRevision != next {
				t.Fatalf("event at %d, want %d", e.Kv.ModRevision, next)
			}
			next++
		}
	}
}

// TestFragments: a response over the limit is split as etcd splits it.
func TestFragments(t *testing.T) {
	events := func(n int) []*mvccpb.Event {
		var evs []*mvccpb.Event
		for i := range n {
			evs = append(evs, &mvccpb.Event{Kv: &mvccpb.KeyValue{Key: []byte(fmt.Sprint("k", i)), Value: bytes.Repeat([]byte("v"), 100), ModRevision: 5}})
		}
		return evs
	}
	for _, tc := range []struct {
		name     string
		events   int
		maxBytes int
		want     []int // events per fragment
	}{
		{"under the limit", 5, 10_000, []int{5}},
		{"one event over the limit", 1, 10, []int{1}},
		{"two per fragment", 5, 250, []int{2, 2, 1}},
		{"one per fragment", 3, 50, []int{1, 1, 1}},
	} {
		wr := &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: 5}, WatchId: 3, Events: events(tc.events), Fragment: true}
		got := fragments(wr, tc.maxBytes)
		var sizes []int
		for i, f := range got {
			sizes = append(sizes, len(f.Events))
			if f.Fragment != (i < len(got)-1) || f.WatchId != 3 || f.Header.Revision != 5 {
				t.Errorf("%s: fragment %d: %v", tc.name, i, f)
			}
		}
		if fmt.Sprint(sizes) != fmt.Sprint(tc.want) {
			t.Errorf("%s: fragments of %v events, want %v", tc.name, sizes, tc.want)
		}
	}
}
