package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/raft/v3"

	"github.com/plumbdb/plumb/node"
	"github.com/plumbdb/plumb/node/backend"
	"github.com/plumbdb/plumb/node/wal"
)

const fsyncMetric = "etcd_disk_wal_fsync_duration_seconds"

// histogramCount reads how many observations a histogram of the member's
// registry holds.
func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestFsyncMetricTimesOnlyWALSyncs: reads, which a member answers without
// writing its WAL, add nothing to the WAL fsync histogram; writes, which
// the WAL fsyncs, do.
func TestFsyncMetricTimesOnlyWALSyncs(t *testing.T) {
	cfg := oneMember(t, t.TempDir())
	s := startT(t, cfg)
	defer s.Stop()
	cli := clientOf(t, cfg)
	putRetrying(t, cli, "k", "v")
	time.Sleep(10 * cfg.HeartbeatInterval) // the member's attributes are published

	const reads, writes = 100, 20
	before := histogramCount(t, s.metrics.reg, fsyncMetric)
	for range reads {
		if _, err := cli.Get(context.Background(), "k", clientv3.WithSerializable()); err != nil {
			t.Fatal(err)
		}
	}
	afterReads := histogramCount(t, s.metrics.reg, fsyncMetric)
	// A tick may save something now and then; a read never does.
	if got := afterReads - before; got > reads/10 {
		t.Errorf("%d serializable reads added %d observations of %s; a read fsyncs nothing", reads, got, fsyncMetric)
	}
	for i := range writes {
		if _, err := cli.Put(context.Background(), fmt.Sprintf("w%d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	if got := histogramCount(t, s.metrics.reg, fsyncMetric) - afterReads; got < writes {
		t.Errorf("%d puts, one after another, added %d observations of %s, want one fsync each at least", writes, got, fsyncMetric)
	}
}

// countingFS counts the fsyncs of files by path prefix, under the timing.
type countingFS struct {
	wal.FS
	syncs map[string]int // top two path elements -> fsyncs
}

func (c *countingFS) Create(name string) (wal.File, error) {
	f, err := c.FS.Create(name)
	return countingFile{File: f, fs: c, name: name}, err
}

func (c *countingFS) OpenAppend(name string) (wal.File, error) {
	f, err := c.FS.OpenAppend(name)
	return countingFile{File: f, fs: c, name: name}, err
}

type countingFile struct {
	wal.File
	fs   *countingFS
	name string
}

func (f countingFile) Sync() error {
	parts := strings.SplitN(f.name, "/", 3)
	f.fs.syncs[strings.Join(parts[:min(2, len(parts))], "/")]++
	return f.File.Sync()
}

// TestTimedFSObservesEachWALSync: a member on timeSyncs' file system
// records one observation per fsync of its WAL, none for its snapshot
// files, and nothing for a Process that applies without saving.
func TestTimedFSObservesEachWALSync(t *testing.T) {
	counting := &countingFS{FS: wal.NewMemFS(), syncs: map[string]int{}}
	var observed int
	fsys := timeSyncs(counting, node.WALDir, walObserver{sync: func(time.Duration) { observed++ }})
	const id, cluster = 1, 1
	log, err := node.OpenDiskLog(fsys, id, cluster, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Config{ID: id, ClusterID: cluster, Log: log, Backend: backend.NewMemory(), SnapshotCount: 20,
		InitialMembers: []node.Member{{ID: id, PeerURLs: []string{"http://127.0.0.1:2380"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		n.Tick()
		n.Process()
		if n.Status().State == raft.StateLeader {
			break
		}
	}
	for i := range 100 {
		n.Submit(node.Request{ID: uint64(i + 1), Put: &pb.PutRequest{Key: []byte(fmt.Sprint(i)), Value: []byte("v")}})
		if out := n.Process(); out.Err != nil {
			t.Fatal(out.Err)
		}
	}
	walSyncs := counting.syncs[node.WALDir]
	if walSyncs == 0 || counting.syncs[node.SnapDir] == 0 {
		t.Fatalf("fsyncs %v: want some of the WAL and of snapshots, or the test tests nothing", counting.syncs)
	}
	if observed != walSyncs {
		t.Fatalf("%d observations for %d WAL fsyncs (all fsyncs: %v)", observed, walSyncs, counting.syncs)
	}
	// Reads apply nothing new and save nothing: no observation.
	for i := range 50 {
		n.Submit(node.Request{ID: uint64(1000 + i), Range: &pb.RangeRequest{Key: []byte("1"), Serializable: true}})
		n.Process()
	}
	if observed != counting.syncs[node.WALDir] {
		t.Fatalf("after reads: %d observations for %d WAL fsyncs", observed, counting.syncs[node.WALDir])
	}
}
