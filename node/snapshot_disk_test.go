package node_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"

	"github.com/plumbdb/plumb/node"
	"github.com/plumbdb/plumb/node/backend"
	"github.com/plumbdb/plumb/node/wal"
)

// snapFS is a MemFS that runs out of space (SetFull) the moment a
// snapshot file is created while fillOnSnapshot is set: a disk that fills
// up just as a snapshot is due, after the log's last write went through.
// With failSnapshot set, creating a snapshot file fails instead, as on a
// disk that returns EIO there.
type snapFS struct {
	*wal.MemFS
	fillOnSnapshot bool
	failSnapshot   bool
}

var errSnapshotIO = errors.New("input/output error")

func (f *snapFS) Create(name string) (wal.File, error) {
	if strings.HasPrefix(name, node.SnapDir+"/") {
		if f.failSnapshot {
			return nil, errSnapshotIO
		}
		if f.fillOnSnapshot {
			f.SetFull(true)
		}
	}
	return f.MemFS.Create(name)
}

// diskNode is a one-member cluster over fs and be with cfg's tuning, as a
// restarted member would open them; it ticks until the member leads.
type diskNode struct {
	t       *testing.T
	n       *node.Node
	log     *node.DiskLog
	replies map[uint64]node.Reply
	next    uint64
}

func openDiskNode(t *testing.T, fs wal.FS, be backend.Backend, tune func(*node.Config)) *diskNode {
	t.Helper()
	const url = "http://127.0.0.1:2380"
	id := node.MemberID([]string{url}, "snap-disk", "")
	cid := node.ClusterID([]uint64{id})
	log, err := node.OpenDiskLog(fs, id, cid, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.Config{ID: id, ClusterID: cid, Log: log, Backend: be,
		InitialMembers: []node.Member{{ID: id, PeerURLs: []string{url}}}}
	if tune != nil {
		tune(&cfg)
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := &diskNode{t: t, n: n, log: log, replies: map[uint64]node.Reply{}}
	for range 30 {
		d.step()
		if n.Status().State == raft.StateLeader {
			return d
		}
	}
	t.Fatal("the lone member did not become leader")
	return nil
}

// step ticks and processes once; a member that stops fails the test.
func (d *diskNode) step() {
	d.t.Helper()
	d.n.Tick()
	out := d.n.Process()
	for _, r := range out.Replies {
		d.replies[r.ID] = r
	}
	if out.Err != nil {
		d.t.Fatalf("the member stopped: %v", out.Err)
	}
}

// put submits a write and steps until it is answered.
func (d *diskNode) put(k, v string) node.Reply {
	d.t.Helper()
	d.next++
	id := d.next
	d.n.Submit(node.Request{ID: id, Put: &pb.PutRequest{Key: []byte(k), Value: []byte(v)}})
	for range 20 {
		d.step()
		if r, ok := d.replies[id]; ok {
			return r
		}
	}
	d.t.Fatalf("put %s got no answer", k)
	return node.Reply{}
}

// TestSnapshotOnFullDiskStalls: a disk that fills up when a snapshot is
// due stalls the member like a full log does, never stops it: NOSPACE is
// raised, nothing acknowledged is lost, and the snapshot is taken once
// space is back.
func TestSnapshotOnFullDiskStalls(t *testing.T) {
	fs := &snapFS{MemFS: wal.NewMemFS()}
	be := backend.NewMemory()
	d := openDiskNode(t, fs, be, func(c *node.Config) { c.SnapshotCount = 20 })
	acked := map[string]string{}
	fs.fillOnSnapshot = true
	for i := 0; !fs.Full(); i++ {
		if i == 40 {
			t.Fatalf("no snapshot was attempted in 40 writes (status %+v)", d.n.Status())
		}
		k, v := fmt.Sprintf("k%02d", i), fmt.Sprint(i)
		if r := d.put(k, v); r.Err != nil {
			t.Fatalf("put %s before the disk filled: %v", k, r.Err)
		}
		acked[k] = v
	}
	fs.fillOnSnapshot = false
	for range 5 {
		d.step()
	}
	if alarms := d.n.Alarms(); len(alarms) != 1 || alarms[0].Alarm != pb.AlarmType_NOSPACE {
		t.Fatalf("alarms %v, want NOSPACE", alarms)
	}
	if st := d.n.Status(); st.Snapshots != 0 {
		t.Fatalf("a snapshot was taken on a full disk: %+v", st)
	}
	if r := d.put("refused", "x"); !errors.Is(r.Err, node.ErrNoSpace) {
		t.Fatalf("a write with NOSPACE raised: %v", r.Err)
	}
	if resp, err := d.n.Read(&pb.RangeRequest{Key: []byte("k00")}); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("a serializable read on a full disk: %v %v", resp, err)
	}
	fs.SetFull(false)
	d.n.Submit(node.Request{ID: 1000, Alarm: &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE, Alarm: pb.AlarmType_NOSPACE}})
	for i := 0; d.n.Status().Snapshots == 0; i++ {
		if i == 20 {
			t.Fatalf("no snapshot once space was back (status %+v)", d.n.Status())
		}
		k, v := fmt.Sprintf("after%02d", i), fmt.Sprint(i)
		if r := d.put(k, v); r.Err != nil {
			t.Fatalf("put %s once space was back: %v", k, r.Err)
		}
		acked[k] = v
	}
	// A crash now (everything acknowledged was synced): the member comes
	// back from its snapshot and log with every acknowledged write.
	fs.Crash(rand.New(rand.NewPCG(1, 2)))
	be.Crash()
	d = openDiskNode(t, fs, be, func(c *node.Config) { c.SnapshotCount = 20 })
	for k, v := range acked {
		resp, err := d.n.Read(&pb.RangeRequest{Key: []byte(k)})
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != v {
			t.Errorf("%s after a restart: %v %v, want the acknowledged %q", k, resp.GetKvs(), err, v)
		}
	}
}

// TestRestartWithStateAheadOfSnapshot: a snapshot save that failed after
// the key-value state was made durable leaves a data dir whose backend is
// ahead of its newest snapshot. On restart raft applies from that older
// snapshot, replaying entries the backend already holds; the member must
// not snapshot at the backend's index and compact the log past what raft
// has applied (raft would panic: "requested index is unavailable due to
// compaction"). Entries are large, so that raft hands the replay out a
// few at a time.
func TestRestartWithStateAheadOfSnapshot(t *testing.T) {
	fs := &snapFS{MemFS: wal.NewMemFS()}
	be := backend.NewMemory()
	tune := func(c *node.Config) { c.SnapshotCount, c.SnapshotCatchUpEntries = 20, 1 }
	d := openDiskNode(t, fs, be, tune)
	value := strings.Repeat("v", 300<<10)
	acked := map[string]string{}
	for i := 0; d.n.Status().Snapshots == 0; i++ {
		k := fmt.Sprintf("k%02d", i)
		if r := d.put(k, k+value); r.Err != nil {
			t.Fatalf("put %s: %v", k, r.Err)
		}
		acked[k] = k + value
	}
	first := d.n.Status().SnapshotIndex
	fs.failSnapshot = true
	var stopped error
	for i := len(acked); stopped == nil; i++ {
		if i == 60 {
			t.Fatalf("the next snapshot was never attempted (status %+v)", d.n.Status())
		}
		k := fmt.Sprintf("k%02d", i)
		d.n.Submit(node.Request{ID: uint64(1000 + i), Put: &pb.PutRequest{Key: []byte(k), Value: []byte(k + value)}})
		for range 3 {
			d.n.Tick()
			out := d.n.Process()
			for _, r := range out.Replies {
				if r.Err == nil && r.ID == uint64(1000+i) {
					acked[k] = k + value
				}
			}
			if stopped = out.Err; stopped != nil {
				break
			}
		}
	}
	if !errors.Is(stopped, errSnapshotIO) {
		t.Fatalf("the member stopped for %v, want the failed snapshot", stopped)
	}
	// The state was made durable before the snapshot was tried: the data
	// dir holds it a snapshot count past the newest snapshot.
	if st := d.n.Status(); st.SnapshotIndex != first || st.Applied < first+20 {
		t.Fatalf("stopped with snapshot %d and state at %d; the test needs the state a snapshot count past the snapshot %d",
			st.SnapshotIndex, st.Applied, first)
	}
	fs.failSnapshot = false
	fs.Crash(rand.New(rand.NewPCG(3, 4)))
	be.Crash()
	d = openDiskNode(t, fs, be, tune)
	for i := 0; d.n.Status().SnapshotIndex == first; i++ {
		if i == 20 {
			t.Fatalf("no new snapshot after the restart (status %+v)", d.n.Status())
		}
		k := fmt.Sprintf("after%02d", i)
		if r := d.put(k, k); r.Err != nil {
			t.Fatalf("put %s after the restart: %v", k, r.Err)
		}
		acked[k] = k
	}
	for k, v := range acked {
		resp, err := d.n.Read(&pb.RangeRequest{Key: []byte(k)})
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != v {
			t.Errorf("%s after the restart: %v, want the acknowledged value", k, err)
		}
	}
}
