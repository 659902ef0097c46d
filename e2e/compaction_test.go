package e2e_test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestAutoCompaction: etcd's --auto-compaction-mode periodic and
// --auto-compaction-retention on a 3-member cluster: the leader alone
// compacts, and etcdctl's read of an old revision then gets etcd's
// "required revision has been compacted".
func TestAutoCompaction(t *testing.T) {
	bin := etcdctl(t)
	c := newCluster(t, 3, "--auto-compaction-mode", "periodic", "--auto-compaction-retention", "1s")
	leader, _ := c.waitLeader(5 * time.Second)
	eps := c.endpoints()
	for i := range 20 {
		ctl(t, bin, eps, "put", "k", fmt.Sprint(i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command(bin, "--endpoints", strings.Join(eps, ","), "get", "k", "--rev", "2").CombinedOutput()
		if err != nil && strings.Contains(string(out), "etcdserver: mvcc: required revision has been compacted") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcdctl get --rev 2 after 10s of a 1s retention: %v\n%s", err, out)
		}
		ctl(t, bin, eps, "put", "k", "more")
		time.Sleep(200 * time.Millisecond)
	}
	if now, _ := c.waitLeader(5 * time.Second); now != leader {
		t.Skip("the leader changed: which member compacted proves nothing")
	}
	for _, m := range c.members {
		if compacted := logContains(t, m, "completed auto periodic compaction"); compacted != (m == leader) {
			t.Fatalf("%s (leader: %v) compacted: %v; want only the leader to", m.name, m == leader, compacted)
		}
	}
}
