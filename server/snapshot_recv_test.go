package server

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node"
)

// strangerID is the member ID the tests' frames claim: anyone who can
// reach the peer port can claim one.
const strangerID = 42

// snapshotSender is a snapshot request to a member, sent as a peer sends
// one (Expect: 100-continue), whose body the test writes frame by frame.
type snapshotSender struct {
	s      *Server
	body   *io.PipeWriter
	answer chan snapshotAnswer
}

// snapshotAnswer is how the member answered a snapshot request: its
// status and reason, or the request's error.
type snapshotAnswer struct {
	code   int
	reason string
	err    error
}

// openSnapshot sends s a snapshot request announcing dataBytes of state,
// and its head frame unless the member refused it first; the caller sends
// the chunks, or not.
func openSnapshot(ctx context.Context, t *testing.T, s *Server, dataBytes uint64) *snapshotSender {
	t.Helper()
	target, _, err := dialTarget(s.cfg.ListenPeerURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+target+peerSnapshotPath, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Expect", "100-continue")
	req.Header.Set(headerClusterID, node.FormatID(s.ClusterID()))
	req.Header.Set(headerFrom, node.FormatID(strangerID))
	req.Header.Set(headerTo, node.FormatID(s.ID()))
	req.Header.Set(headerSnapshotBytes, strconv.FormatUint(dataBytes, 10))
	ss := &snapshotSender{s: s, body: pw, answer: make(chan snapshotAnswer, 1)}
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second, DisableKeepAlives: true}}
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			ss.answer <- snapshotAnswer{err: err}
			return
		}
		defer resp.Body.Close()
		reason, err := io.ReadAll(resp.Body)
		ss.answer <- snapshotAnswer{code: resp.StatusCode, reason: string(reason), err: err}
	}()
	msg := &raftpb.Message{Type: raftpb.MessageType_MsgSnap.Enum(), From: proto.Uint64(strangerID), To: proto.Uint64(s.ID()),
		Term: proto.Uint64(1), Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(1), Term: proto.Uint64(1)}}}
	body, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	ss.send(&frame{ClusterID: s.ClusterID(), From: strangerID, To: s.ID(), DataBytes: dataBytes, Body: body})
	return ss
}

// send writes f to the request's body; it reports false once the member
// answered without taking it (the client then closes the body).
func (ss *snapshotSender) send(f *frame) bool {
	_, err := ss.body.Write(appendFrame(nil, f))
	return err == nil
}

// sendChunk sends a chunk of n bytes of data.
func (ss *snapshotSender) sendChunk(n int) bool {
	return ss.send(&frame{ClusterID: ss.s.ClusterID(), From: strangerID, To: ss.s.ID(), Body: make([]byte, n)})
}

// end ends the request's body and returns the member's answer.
func (ss *snapshotSender) end() snapshotAnswer {
	ss.body.Close()
	return <-ss.answer
}

// gauge reads a gauge from the member's registry by name; ok is false
// when the registry has no such metric.
func gauge(t *testing.T, reg *prometheus.Registry, name string) (v float64, ok bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// TestSnapshotReceiveGrowsWithData: a peer that announces a snapshot of
// a gigabyte and sends one megabyte costs the member about a megabyte, not
// the gigabyte it announced (the peer port takes anyone's word).
func TestSnapshotReceiveGrowsWithData(t *testing.T) {
	const announced = 1 << 30 // under the default quota's limit: the announcement alone is not refused
	const allocMax = 128 << 20
	cfg := oneMember(t, t.TempDir())
	s := startT(t, cfg)
	defer s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	stream := openSnapshot(ctx, t, s, announced)
	if !stream.sendChunk(snapshotChunkBytes) {
		t.Fatal("the member did not take the first chunk")
	}
	a := stream.end()
	runtime.ReadMemStats(&after)
	if a.code != http.StatusBadRequest || !strings.Contains(a.reason, "cut off") {
		t.Fatalf("a snapshot that stops short was answered %+v, want 400 and it reported cut off", a)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > allocMax {
		t.Fatalf("receiving %d bytes of a snapshot announced at %d allocated %d bytes, want at most %d",
			snapshotChunkBytes, announced, got, allocMax)
	}
}

// TestAppendChunkGrowsWithData: the receive buffer's capacity follows the
// data that arrived (doubling), and never passes the announced size.
func TestAppendChunkGrowsWithData(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		chunks                []int
		announced             uint64
		wantLen, wantCapAtMax int
	}{
		{"one chunk of a huge announcement", []int{1000}, 1 << 34, 1000, 1000},
		{"doubles", []int{1000, 1000, 1000}, 1 << 34, 3000, 4000},
		{"capped at the announced size", []int{1000, 1000, 500}, 2500, 2500, 2500},
	} {
		var data []byte
		for _, n := range tc.chunks {
			data = appendChunk(data, make([]byte, n), tc.announced)
		}
		if len(data) != tc.wantLen || cap(data) > tc.wantCapAtMax {
			t.Errorf("%s: len %d cap %d, want len %d and cap at most %d", tc.name, len(data), cap(data), tc.wantLen, tc.wantCapAtMax)
		}
	}
}

// TestSnapshotOverQuotaRefused: a snapshot announced larger than the
// member's backend quota allows is refused before any data is taken, and
// one that sends more than it announced is refused when it does.
func TestSnapshotOverQuotaRefused(t *testing.T) {
	cfg := oneMember(t, t.TempDir())
	cfg.QuotaBackendBytes = 1 << 20
	s := startT(t, cfg)
	defer s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	a := openSnapshot(ctx, t, s, 64<<20).end()
	if a.code != http.StatusRequestEntityTooLarge || !strings.Contains(a.reason, "quota") {
		t.Errorf("a snapshot of 64 MiB to a member with a 1 MiB quota was answered %+v, want 413 naming the quota", a)
	}

	stream := openSnapshot(ctx, t, s, 3<<19) // 1.5 MiB, in two chunks of 1 MiB
	for range 2 {
		if !stream.sendChunk(1 << 20) {
			break // the member answered; end says how
		}
	}
	if a := stream.end(); a.code != http.StatusBadRequest || !strings.Contains(a.reason, "longer than announced") {
		t.Errorf("a snapshot longer than announced was answered %+v, want 400", a)
	}
}

// TestSnapshotStreamsBounded: a member receives at most snapshotStreamsMax
// snapshots at once; another is refused with 429 at once,
// and a slot is free again when a stream ends.
func TestSnapshotStreamsBounded(t *testing.T) {
	cfg := oneMember(t, t.TempDir())
	s := startT(t, cfg)
	defer s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const receiving = "plumb_network_snapshots_receiving"
	// waitReceiving waits for the member to be receiving want snapshots,
	// and reports whether it saw that.
	waitReceiving := func(want float64) bool {
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if v, ok := gauge(t, s.metrics.reg, receiving); ok && v == want {
				return true
			}
		}
		return false
	}

	var held []context.CancelFunc
	for range 2 {
		sctx, scancel := context.WithCancel(ctx)
		held = append(held, scancel)
		openSnapshot(sctx, t, s, 1<<20) // announced, never sent: the request holds its slot
	}
	sawTwo := waitReceiving(2)
	if a := openSnapshot(ctx, t, s, 1<<20).end(); a.code != http.StatusTooManyRequests {
		t.Fatalf("a third snapshot request was answered %+v, want 429 at once", a)
	}
	if !sawTwo {
		t.Errorf("%s never read 2 while two snapshots were held open", receiving)
	}

	held[0]() // the first sender goes away
	if !waitReceiving(1) {
		t.Fatalf("%s did not drop to 1 after a sender went away", receiving)
	}
	if a := openSnapshot(ctx, t, s, 1<<20).end(); !strings.Contains(a.reason, "cut off") {
		t.Errorf("a snapshot request once a slot was free was answered %+v, want it taken (then cut off)", a)
	}
	held[1]()
	if !waitReceiving(0) {
		t.Errorf("%s did not drop to 0 once every stream ended", receiving)
	}
}
