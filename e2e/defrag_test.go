package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// dbSizes runs etcdctl endpoint status -w json and returns each endpoint's
// DB size.
func dbSizes(t *testing.T, bin string, eps []string) map[string]int64 {
	t.Helper()
	var st []struct {
		Endpoint string
		Status   struct {
			DbSize int64 `json:"dbSize"`
		}
	}
	if err := json.Unmarshal([]byte(ctl(t, bin, eps, "endpoint", "status", "-w", "json")), &st); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, s := range st {
		out[s.Endpoint] = s.Status.DbSize
	}
	return out
}

// TestDefrag: the seeds' maintenance. Once the history is compacted,
// etcdctl defrag of one member shrinks that member's file (etcdctl
// endpoint status's DB SIZE) and only its; the keys stay.
func TestDefrag(t *testing.T) {
	bin := etcdctl(t)
	c := newCluster(t, 3)
	cli := c.client()
	value := strings.Repeat("v", 4096)
	var rev int64
	for i := range 1000 {
		resp, err := cli.Put(context.Background(), fmt.Sprintf("k/%02d", i%20), value)
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
	}
	eps := c.endpoints()
	ctl(t, bin, eps, "compact", fmt.Sprint(rev), "--physical")
	before := dbSizes(t, bin, eps)
	target := c.members[1].endpoint()
	if out := ctl(t, bin, []string{target}, "defrag"); !strings.Contains(out, "Finished defragmenting etcd member["+target+"]") {
		t.Fatalf("etcdctl defrag printed %q", out)
	}
	after := dbSizes(t, bin, eps)
	for _, ep := range eps {
		shrank := after[ep] < before[ep]/4
		if shrank != (ep == target) {
			t.Fatalf("DB size of %s: %d before etcdctl defrag of %s, %d after", ep, before[ep], target, after[ep])
		}
	}
	got, err := c.client(target).Get(context.Background(), "k/", clientv3.WithPrefix(), clientv3.WithSerializable())
	if err != nil || len(got.Kvs) != 20 || got.Header.Revision != rev {
		t.Fatalf("the defragmented member serves %v, %v; want 20 keys at revision %d", got, err, rev)
	}
}
