package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestNoSpaceAlarm: the seeds' NOSPACE procedure on a 3-member cluster
// with --quota-backend-bytes. The member whose writes reach the quota
// raises NOSPACE through raft: etcdctl alarm list shows it on every
// member and every member refuses puts with etcd's "database space
// exceeded"; after etcdctl compact, defrag and alarm disarm writes work
// again.
func TestNoSpaceAlarm(t *testing.T) {
	bin := etcdctl(t)
	c := newCluster(t, 3, "--quota-backend-bytes", "200000")
	one := c.members[0]
	cli := c.client(one.endpoint())
	value := strings.Repeat("v", 2048)
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = cli.Put(ctx, fmt.Sprintf("k/%d", i%10), value)
		cancel()
	}
	if !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Fatalf("puts past the quota: %v, want %v", err, rpctypes.ErrNoSpace)
	}
	id := fmt.Sprintf("%d", mustStatus(t, one).Header.MemberId)
	for _, m := range c.members {
		deadline := time.Now().Add(5 * time.Second)
		for {
			out := ctl(t, bin, []string{m.endpoint()}, "alarm", "list")
			if strings.Contains(out, "memberID:"+id) && strings.Contains(out, "alarm:NOSPACE") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("etcdctl alarm list on %s: %q, want NOSPACE of member %s", m.name, out, id)
			}
			time.Sleep(100 * time.Millisecond)
		}
		cmd := exec.Command(bin, "--endpoints", m.endpoint(), "put", "x", "y")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "etcdserver: mvcc: database space exceeded") {
			t.Fatalf("etcdctl put on %s with NOSPACE raised: %v\n%s", m.name, err, out)
		}
	}
	// The seeds' recovery: compact away the history, defragment, disarm.
	rev := mustStatus(t, one).Header.Revision
	eps := c.endpoints()
	ctl(t, bin, eps, "compact", fmt.Sprint(rev))
	ctl(t, bin, eps, "defrag")
	if out := ctl(t, bin, eps, "alarm", "disarm"); !strings.Contains(out, "alarm:NOSPACE") {
		t.Fatalf("etcdctl alarm disarm printed %q", out)
	}
	if out := ctl(t, bin, eps, "alarm", "list"); strings.TrimSpace(out) != "" {
		t.Fatalf("etcdctl alarm list after disarm: %q", out)
	}
	for _, m := range c.members {
		ctl(t, bin, []string{m.endpoint()}, "put", "after-"+m.name, "y")
	}
}

func mustStatus(t *testing.T, m *member) *clientv3.StatusResponse {
	t.Helper()
	st, err := status(m)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
