package server

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// strangerID is the member ID the tests' frames claim: anyone who can
// reach the peer port can claim one.
const strangerID = 42

// peerConn dials the member's peer port as a peer would.
func peerConn(t *testing.T, cfg Config) *grpc.ClientConn {
	t.Helper()
	target, err := dialTarget(cfg.ListenPeerURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("passthrough:///"+target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(frameCodec{}), grpc.MaxCallSendMsgSize(maxPeerFrameBytes)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// openSnapshot opens a snapshot stream to s and sends its head, which
// announces dataBytes of state; the caller sends the chunks, or not.
func openSnapshot(ctx context.Context, t *testing.T, conn *grpc.ClientConn, s *Server, dataBytes uint64) grpc.ClientStream {
	t.Helper()
	stream, err := conn.NewStream(ctx, &peerServiceDesc.Streams[1], peerSnapshotMethod)
	if err != nil {
		t.Fatal(err)
	}
	msg := &raftpb.Message{Type: raftpb.MessageType_MsgSnap.Enum(), From: proto.Uint64(strangerID), To: proto.Uint64(s.ID()),
		Term: proto.Uint64(1), Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(1), Term: proto.Uint64(1)}}}
	body, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.SendMsg(&frame{ClusterID: s.ClusterID(), From: strangerID, To: s.ID(), DataBytes: dataBytes, Body: body}); err != nil {
		t.Fatal(err)
	}
	return stream
}

// endOf closes the sending side and returns how the member ended the stream.
func endOf(stream grpc.ClientStream) error {
	if err := stream.CloseSend(); err != nil {
		return err
	}
	return stream.RecvMsg(&frame{})
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
	conn := peerConn(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	stream := openSnapshot(ctx, t, conn, s, announced)
	if err := stream.SendMsg(&frame{ClusterID: s.ClusterID(), From: strangerID, To: s.ID(), Body: make([]byte, snapshotChunkBytes)}); err != nil {
		t.Fatal(err)
	}
	err := endOf(stream)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "cut off") {
		t.Fatalf("a snapshot that stops short ended with %v, want it reported cut off", err)
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
	conn := peerConn(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	err := endOf(openSnapshot(ctx, t, conn, s, 64<<20))
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "quota") {
		t.Errorf("a snapshot of 64 MiB to a member with a 1 MiB quota ended with %v, want ResourceExhausted naming the quota", err)
	}

	stream := openSnapshot(ctx, t, conn, s, 3<<19) // 1.5 MiB, in two chunks of 1 MiB
	for range 2 {
		if err := stream.SendMsg(&frame{ClusterID: s.ClusterID(), From: strangerID, To: s.ID(), Body: make([]byte, 1<<20)}); err != nil {
			break // the member ended the stream; endOf says why
		}
	}
	if err := endOf(stream); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "longer than announced") {
		t.Errorf("a snapshot longer than announced ended with %v, want InvalidArgument", err)
	}
}

// TestSnapshotStreamsBounded: a member receives at most snapshotStreamsMax
// snapshots at once; another is refused with ResourceExhausted at once,
// and a slot is free again when a stream ends.
func TestSnapshotStreamsBounded(t *testing.T) {
	cfg := oneMember(t, t.TempDir())
	s := startT(t, cfg)
	defer s.Stop()
	conn := peerConn(t, cfg)
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
		openSnapshot(sctx, t, conn, s, 1<<20) // announced, never sent: the stream holds its slot
	}
	sawTwo := waitReceiving(2)
	err := endOf(openSnapshot(ctx, t, conn, s, 1<<20))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a third snapshot stream ended with %v, want ResourceExhausted at once", err)
	}
	if !sawTwo {
		t.Errorf("%s never read 2 while two snapshots were held open", receiving)
	}

	held[0]() // the first sender goes away
	if !waitReceiving(1) {
		t.Fatalf("%s did not drop to 1 after a sender went away", receiving)
	}
	if err := endOf(openSnapshot(ctx, t, conn, s, 1<<20)); err == nil || !strings.Contains(err.Error(), "cut off") {
		t.Errorf("a snapshot stream once a slot was free ended with %v, want it taken (then cut off)", err)
	}
	held[1]()
	if !waitReceiving(0) {
		t.Errorf("%s did not drop to 0 once every stream ended", receiving)
	}
}
