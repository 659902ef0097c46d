package e2e_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// restoredCluster restores file into the data dirs of a new 3-member
// cluster (the seeds' restore procedure, with plumb snapshot restore in
// place of etcdutl) and starts it.
func restoredCluster(t *testing.T, file string, size int) *cluster {
	t.Helper()
	c := &cluster{t: t, token: "restored-" + strings.ToLower(t.Name()), base: t.TempDir()}
	for i := range size {
		c.members = append(c.members, c.newMember(fmt.Sprintf("r%d", i+1), fmt.Sprintf("127.0.0.%d", i+1)))
	}
	for _, m := range c.members {
		out, err := exec.Command(plumbBin, "snapshot", "restore", file, "--data-dir", m.dataDir, "--name", m.name,
			"--initial-cluster", c.initialCluster(), "--initial-cluster-token", c.token,
			"--initial-advertise-peer-urls", m.peerURL()).CombinedOutput()
		if err != nil {
			t.Fatalf("plumb snapshot restore for %s: %v\n%s", m.name, err, out)
		}
	}
	for _, m := range c.members {
		c.start(m)
	}
	t.Cleanup(c.stopAll)
	c.waitLeader(startTimeout)
	return c
}

// everything reads every key, linearizably, retrying while a new cluster
// settles.
func everything(t *testing.T, cli *clientv3.Client, opts ...clientv3.OpOption) *clientv3.GetResponse {
	t.Helper()
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var resp *clientv3.GetResponse
		resp, err = cli.Get(ctx, "", append([]clientv3.OpOption{clientv3.WithPrefix()}, opts...)...)
		cancel()
		if err == nil {
			return resp
		}
	}
	t.Fatalf("get every key: %v", err)
	return nil
}

func sameKVs(a, b []*mvccpb.KeyValue) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d keys, want %d", len(a), len(b))
	}
	for i := range a {
		x, y := a[i], b[i]
		if string(x.Key) != string(y.Key) || string(x.Value) != string(y.Value) || x.CreateRevision != y.CreateRevision ||
			x.ModRevision != y.ModRevision || x.Version != y.Version || x.Lease != y.Lease {
			return fmt.Errorf("key %d: %v, want %v", i, x, y)
		}
	}
	return nil
}

// TestBackupRestore: the seeds' backup and restore. A backup taken with
// etcdctl snapshot save from a follower while clients write is restored
// with plumb snapshot restore into the data dirs of a new 3-member
// cluster, which holds every write acknowledged before the backup started,
// and exactly the old cluster's keys at the revision it restored (same
// values, revisions, versions and leases); it then takes writes.
func TestBackupRestore(t *testing.T) {
	bin := etcdctl(t)
	c := newCluster(t, 3)
	leader, _ := c.waitLeader(5 * time.Second)
	follower := c.members[0]
	if follower == leader {
		follower = c.members[1]
	}
	cli := c.client()
	lease, err := cli.Grant(context.Background(), 600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(context.Background(), "leased", "x", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		acked []string
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("load/%d/%05d", w, i%500) // overwrites: several versions
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := cli.Put(ctx, key, fmt.Sprint(i))
				cancel()
				if err == nil {
					mu.Lock()
					acked = append(acked, key)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(time.Second)
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()
	file := filepath.Join(t.TempDir(), "backup.db")
	out := ctl(t, bin, []string{follower.endpoint()}, "snapshot", "save", file)
	if !strings.Contains(out, "Snapshot saved at "+file) {
		t.Fatalf("etcdctl snapshot save printed %q", out)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(before) < 50 {
		t.Fatalf("only %d writes acknowledged before the backup: the test wrote too little to test anything", len(before))
	}

	r := restoredCluster(t, file, 3)
	rcli := r.client()
	got := everything(t, rcli)
	rev := got.Header.Revision
	want := everything(t, cli, clientv3.WithRev(rev))
	if err := sameKVs(got.Kvs, want.Kvs); err != nil {
		t.Fatalf("the restored cluster at revision %d differs from the old one at that revision: %v", rev, err)
	}
	have := map[string]bool{}
	for _, kv := range got.Kvs {
		have[string(kv.Key)] = true
	}
	for _, k := range append(before, "leased") {
		if !have[k] {
			t.Fatalf("%s, acknowledged before the backup, is not in the restored cluster", k)
		}
	}
	if now := everything(t, cli); now.Header.Revision <= rev {
		t.Fatalf("the old cluster is at revision %d, the restore at %d: the backup was not taken under load", now.Header.Revision, rev)
	}
	// Every member of the new cluster serves the same, and takes writes.
	for _, m := range r.members {
		one := everything(t, r.client(m.endpoint()), clientv3.WithSerializable())
		if err := sameKVs(one.Kvs, got.Kvs); err != nil || one.Header.Revision != rev {
			t.Fatalf("%s serves revision %d (want %d): %v", m.name, one.Header.Revision, rev, err)
		}
	}
	put, err := rcli.Put(context.Background(), "after-restore", "x")
	if err != nil || put.Header.Revision != rev+1 {
		t.Fatalf("a put on the restored cluster: %v, %v; want revision %d", put, err, rev+1)
	}
	list, err := rcli.MemberList(context.Background())
	if err != nil || len(list.Members) != 3 {
		t.Fatalf("member list of the restored cluster: %v, %v", list, err)
	}
	for _, m := range list.Members {
		if !strings.HasPrefix(m.Name, "r") {
			t.Fatalf("the restored cluster has member %q: an old member came back", m.Name)
		}
	}
}

// TestRestoreEtcdSnapshot: a backup of etcd 3.7.3 itself, saved with
// etcdctl snapshot save, restored by plumb: the backend layouts line up
// (etcd's key, meta and lease buckets), so a new plumb cluster holds etcd's
// keys with their revisions and versions, and its leases.
func TestRestoreEtcdSnapshot(t *testing.T) {
	bin := etcdctl(t)
	ref := refEtcdEndpoint(t)
	eps := []string{ref}
	for _, args := range [][]string{{"put", "a", "1"}, {"put", "b", "2"}, {"put", "a", "3"}, {"put", "c", "4"}, {"del", "c"}} {
		ctl(t, bin, eps, args...)
	}
	var id string
	if _, err := fmt.Sscanf(ctl(t, bin, eps, "lease", "grant", "600"), "lease %s granted", &id); err != nil {
		t.Fatal(err)
	}
	ctl(t, bin, eps, "put", "leased", "x", "--lease", id)
	file := filepath.Join(t.TempDir(), "etcd.db")
	ctl(t, bin, eps, "snapshot", "save", file)
	want := ctl(t, bin, eps, "get", "", "--prefix", "-w", "fields")

	r := restoredCluster(t, file, 1)
	rep := []string{r.members[0].endpoint()}
	everything(t, r.client()) // wait until it serves
	got := ctl(t, bin, rep, "get", "", "--prefix", "-w", "fields")
	if strip(got) != strip(want) {
		t.Fatalf("plumb restored from etcd's snapshot serves\n%s\nwant what etcd served\n%s", got, want)
	}
	if leases := ctl(t, bin, rep, "lease", "list"); !strings.Contains(leases, id) {
		t.Fatalf("lease list after the restore: %q, want lease %s", leases, id)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
}

// strip drops the header fields that name the cluster, the member and the
// raft term, which a new cluster changes.
func strip(fields string) string {
	var keep []string
	for _, line := range strings.Split(fields, "\n") {
		if strings.HasPrefix(line, `"ClusterID"`) || strings.HasPrefix(line, `"MemberID"`) || strings.HasPrefix(line, `"RaftTerm"`) {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}
