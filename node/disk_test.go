package node_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"

	"github.com/plumbdb/plumb/node"
	"github.com/plumbdb/plumb/node/backend"
	"github.com/plumbdb/plumb/node/backend/bolt"
	"github.com/plumbdb/plumb/node/wal"
)

// diskMember is a one-member cluster on real files: the WAL and snapshots
// under dir through wal.OSFS, the key-value state in bbolt, as the
// production server lays them out.
func diskMember(t testing.TB, dir string) (*node.Node, *node.DiskLog, *bolt.Backend) {
	const url = "http://127.0.0.1:2380"
	id := node.MemberID([]string{url}, "disk-test", "")
	cid := node.ClusterID([]uint64{id})
	log, err := node.OpenDiskLog(wal.OSFS(dir), id, cid, wal.Options{SegmentBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	be, err := bolt.Open(filepath.Join(dir, node.SnapDir, "db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Config{ID: id, ClusterID: cid, Log: log, Backend: be, SnapshotCount: 50,
		InitialMembers: []node.Member{{ID: id, Name: "m1", PeerURLs: []string{url}}}})
	if err != nil {
		t.Fatal(err)
	}
	for range 30 { // a lone member elects itself
		n.Tick()
		n.Process()
		if n.Status().State == raft.StateLeader {
			return n, log, be
		}
	}
	t.Fatal("the lone member did not become leader")
	return nil, nil, nil
}

// TestCrashOnRealFiles: a member killed without any clean close (a child
// process that exits mid-stream) comes back from its files with every write
// it acknowledged. The child prints each acknowledged key; the parent
// reopens the data dir and reads them all.
func TestCrashOnRealFiles(t *testing.T) {
	if dir := os.Getenv("PLUMB_DISK_CHILD"); dir != "" {
		n, _, _ := diskMember(t, dir)
		out := bufio.NewWriter(os.Stdout)
		for i := range 400 {
			key := fmt.Sprintf("k%03d", i%37)
			n.Submit(node.Request{ID: uint64(i + 1), Put: &pb.PutRequest{Key: []byte(key), Value: []byte(strconv.Itoa(i))}})
			for _, r := range n.Process().Replies {
				if r.Err == nil {
					fmt.Fprintf(out, "acked %s %d\n", key, i)
					out.Flush() // the parent must learn of an ack only after it happened
				}
			}
		}
		os.Exit(0) // no Close of the WAL or of bbolt: a crash as far as the files know
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashOnRealFiles$")
	cmd.Env = append(os.Environ(), "PLUMB_DISK_CHILD="+dir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	want := map[string]string{}
	acks := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var key string
		var v int
		if _, err := fmt.Sscanf(line, "acked %s %d", &key, &v); err == nil {
			want[key] = strconv.Itoa(v)
			acks++
		}
	}
	if acks < 300 {
		t.Fatalf("the child acknowledged only %d writes:\n%s", acks, out)
	}
	n, log, be := diskMember(t, dir)
	defer be.Close()
	defer log.Close()
	for key, v := range want {
		resp, err := n.Read(&pb.RangeRequest{Key: []byte(key)})
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != v {
			t.Errorf("%s: got %v %v, want the acknowledged %q", key, resp.GetKvs(), err, v)
		}
	}
	// The log and hard state came back too: the member leads again and
	// takes a new write after everything it had.
	n.Submit(node.Request{ID: 1, Put: &pb.PutRequest{Key: []byte("after"), Value: []byte("restart")}})
	var rep *node.Reply
	for range 20 {
		for _, r := range n.Process().Replies {
			rep = &r
		}
		if rep != nil {
			break
		}
		n.Tick()
	}
	if rep == nil || rep.Err != nil || rep.Put.Header.Revision <= int64(acks) {
		t.Fatalf("a write after the restart: %+v; want it acknowledged after the %d before (status %+v)", rep, acks, n.Status())
	}
	if st := n.Status(); st.SnapshotIndex == 0 {
		t.Errorf("status %+v: the run should have crossed snapshots (SnapshotCount 50)", st)
	}
}

// TestDiskFull: a full disk stalls the member without losing anything. It
// raises NOSPACE, refuses new writes with etcd's error, keeps answering
// serializable reads, and once space is back finishes the write it was
// holding; writes resume after the operator disarms the alarm.
func TestDiskFull(t *testing.T) {
	const url = "http://127.0.0.1:2380"
	id := node.MemberID([]string{url}, "full", "")
	cid := node.ClusterID([]uint64{id})
	disk := wal.NewMemFS()
	log, err := node.OpenDiskLog(disk, id, cid, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Config{ID: id, ClusterID: cid, Log: log, Backend: backend.NewMemory(),
		InitialMembers: []node.Member{{ID: id, PeerURLs: []string{url}}}})
	if err != nil {
		t.Fatal(err)
	}
	replies := map[uint64]node.Reply{}
	step := func() {
		n.Tick()
		for _, r := range n.Process().Replies {
			replies[r.ID] = r
		}
	}
	for range 30 {
		step()
	}
	put := func(id uint64, k string) {
		n.Submit(node.Request{ID: id, Put: &pb.PutRequest{Key: []byte(k), Value: []byte(k)}})
		step()
	}
	put(1, "before")
	if r := replies[1]; r.Err != nil || r.Put == nil {
		t.Fatalf("a write before the disk fills: %+v", r)
	}
	disk.SetFull(true)
	put(2, "stalled")
	for range 5 {
		step()
	}
	if _, answered := replies[2]; answered {
		t.Fatalf("a write on a full disk was answered: %+v", replies[2])
	}
	if alarms := n.Alarms(); len(alarms) != 1 || alarms[0].Alarm != pb.AlarmType_NOSPACE {
		t.Fatalf("alarms %v, want NOSPACE", alarms)
	}
	put(3, "refused")
	if r := replies[3]; !errors.Is(r.Err, node.ErrNoSpace) || r.Err.Error() != "etcdserver: mvcc: database space exceeded" {
		t.Fatalf("a write with NOSPACE raised: %v", r.Err)
	}
	if resp, err := n.Read(&pb.RangeRequest{Key: []byte("before")}); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("a serializable read on a full disk: %v %v", resp, err)
	}
	disk.SetFull(false)
	for range 5 {
		step()
	}
	if r, ok := replies[2]; !ok || r.Err != nil {
		t.Fatalf("the stalled write once space is back: %+v (answered %v)", r, ok)
	}
	put(4, "still-refused")
	if !errors.Is(replies[4].Err, node.ErrNoSpace) {
		t.Fatalf("NOSPACE must stay until disarmed: %v", replies[4].Err)
	}
	n.Submit(node.Request{ID: 5, Alarm: &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE, Alarm: pb.AlarmType_NOSPACE}})
	step()
	put(6, "after")
	if r := replies[6]; r.Err != nil {
		t.Fatalf("a write after disarm: %v", r.Err)
	}
}
