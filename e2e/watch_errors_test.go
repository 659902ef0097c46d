package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"
)

// watchQuiet is how long a watch stream must stay silent for a case's
// answers to be taken as complete (etcd syncs unsynced watchers, the
// compacted one included, every 100ms).
const watchQuiet = time.Second

// TestWatchErrorsMatchEtcd: the watch mistakes a client can make on the
// raw Watch stream, asked of etcd 3.7.3 and of a follower of a plumb
// cluster, each case on a stream of its own: a watch from a compacted
// revision, a range end before the key, a client-chosen watch ID already
// in use on the stream, a cancel of an unknown watch ID, a progress
// request on a stream without watchers, a negative start revision. Both
// must send the same responses (created, canceled, cancel reason,
// compact revision, watch ID, header and its revision), IDs the server
// chose written down by the order they first appeared in, revisions
// relative to the script's own writes and compaction.
func TestWatchErrorsMatchEtcd(t *testing.T) {
	ref := refEtcdEndpoint(t)
	c := newCluster(t, 3)
	waitPublished(t, c)
	plumb := c.follower().endpoint()
	want, got := watchErrors(t, ref), watchErrors(t, plumb)
	if want != got {
		t.Errorf("etcd 3.7.3 answered:\n%s\nplumb answered:\n%s", want, got)
	}
	t.Logf("both answered:\n%s", got)
}

// watchErrors makes the mistakes against endpoint and writes down its
// answers.
func watchErrors(t *testing.T, endpoint string) string {
	t.Helper()
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := ctxT(t)
	kv, wc := pb.NewKVClient(conn), pb.NewWatchClient(conn)
	var out strings.Builder
	var last int64
	for i := range 5 {
		p, err := kv.Put(ctx, &pb.PutRequest{Key: []byte(fmt.Sprintf("we/%d", i)), Value: []byte("v")})
		if err != nil {
			t.Fatal(err)
		}
		last = p.Header.Revision
	}
	compactAt := last - 1
	if _, err := kv.Compact(ctx, &pb.CompactionRequest{Revision: compactAt, Physical: true}); err != nil {
		t.Fatal(err)
	}
	create := func(cr *pb.WatchCreateRequest) *pb.WatchRequest {
		return &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: cr}}
	}
	cancel := func(id int64) *pb.WatchRequest {
		return &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: id}}}
	}
	progress := &pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}}
	const chosen = 7 // a client-chosen watch ID
	for _, tc := range []struct {
		name string
		reqs []*pb.WatchRequest
	}{
		{"watch from revision 1, compacted", []*pb.WatchRequest{create(&pb.WatchCreateRequest{Key: []byte("we/0"), StartRevision: 1})}},
		{"range end before the key", []*pb.WatchRequest{create(&pb.WatchCreateRequest{Key: []byte("we/b"), RangeEnd: []byte("we/a")})}},
		{"client-chosen watch ID already in use", []*pb.WatchRequest{
			create(&pb.WatchCreateRequest{Key: []byte("we/a"), WatchId: chosen}),
			create(&pb.WatchCreateRequest{Key: []byte("we/b"), WatchId: chosen}),
		}},
		{"cancel of an unknown watch ID", []*pb.WatchRequest{cancel(0x1234)}},
		{"progress request without watchers", []*pb.WatchRequest{progress}},
		{"negative start revision", []*pb.WatchRequest{create(&pb.WatchCreateRequest{Key: []byte("we/0"), StartRevision: -5})}},
	} {
		fmt.Fprintf(&out, "%s:\n", tc.name)
		for _, line := range watchTranscript(t, wc, tc.reqs, last, compactAt, chosen) {
			fmt.Fprintf(&out, "  %s\n", line)
		}
	}
	return out.String()
}

// watchTranscript sends reqs on a new Watch stream and writes down every
// response until the stream has been quiet for watchQuiet (or ends). The
// watch ID is -1, chosen as it is, or the server's choice by its order
// ("auto#0", ...); the compact revision is written relative to compactAt,
// a header's revision relative to head (the last write's), and which of
// its fields are set.
func watchTranscript(t *testing.T, wc pb.WatchClient, reqs []*pb.WatchRequest, head, compactAt, chosen int64) []string {
	t.Helper()
	ctx := ctxT(t)
	stream, err := wc.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range reqs {
		if err := stream.Send(req); err != nil {
			t.Fatalf("send %v: %v", req, err)
		}
	}
	type recv struct {
		wr  *pb.WatchResponse
		err error
	}
	got := make(chan recv, 16)
	go func() {
		for {
			wr, err := stream.Recv()
			got <- recv{wr, err}
			if err != nil {
				return
			}
		}
	}()
	auto := map[int64]string{}
	id := func(id int64) string {
		switch {
		case id == -1 || id == chosen:
			return fmt.Sprint(id)
		case auto[id] == "":
			auto[id] = fmt.Sprintf("auto#%d", len(auto))
		}
		return auto[id]
	}
	var lines []string
	for {
		select {
		case r := <-got:
			if r.err != nil {
				st, _ := grpcstatus.FromError(r.err)
				return append(lines, fmt.Sprintf("stream ended: %v %q", st.Code(), st.Message()))
			}
			wr := r.wr
			compact := "0"
			if wr.CompactRevision != 0 {
				compact = fmt.Sprintf("compacted%+d", wr.CompactRevision-compactAt)
			}
			header := "none"
			if h := wr.Header; h != nil {
				rev := "0"
				if h.Revision != 0 {
					rev = fmt.Sprintf("head%+d", h.Revision-head)
				}
				header = fmt.Sprintf("{ids %v term %v revision %s}", h.ClusterId != 0 && h.MemberId != 0, h.RaftTerm != 0, rev)
			}
			lines = append(lines, fmt.Sprintf("watch_id %s created %v canceled %v cancel_reason %q compact_revision %s events %d header %s",
				id(wr.WatchId), wr.Created, wr.Canceled, wr.CancelReason, compact, len(wr.Events), header))
		case <-time.After(watchQuiet):
			if len(lines) == 0 {
				lines = []string{"no response"}
			}
			return lines
		}
	}
}
