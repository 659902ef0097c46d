package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// dbSizeMetric reads etcd_mvcc_db_total_size_in_bytes from /metrics.
func dbSizeMetric(t *testing.T, cfg Config) float64 {
	t.Helper()
	resp, err := http.Get(cfg.AdvertiseClientURLs[0] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^etcd_mvcc_db_total_size_in_bytes (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("/metrics has no etcd_mvcc_db_total_size_in_bytes")
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDefragment: after the history is compacted away, Defragment shrinks
// the member's file, which Status (etcdctl endpoint status's DB SIZE) and
// /metrics report; the keys are all there and writes go on.
func TestDefragment(t *testing.T) {
	cfg := oneMember(t, t.TempDir())
	s := startT(t, cfg)
	defer s.Stop()
	cli := clientOf(t, cfg)
	value := strings.Repeat("v", 4096)
	for i := range 1000 {
		putRetrying(t, cli, fmt.Sprintf("k/%02d", i%20), value)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	get, err := cli.Get(ctx, "k/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, get.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	ep := strings.TrimPrefix(cfg.AdvertiseClientURLs[0], "http://")
	before, err := cli.Status(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Defragment(ctx, ep); err != nil {
		t.Fatal(err)
	}
	after, err := cli.Status(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	if after.DbSize > before.DbSize/4 {
		t.Fatalf("Status DbSize %d after defragment, %d before: want it to shrink to the 20 keys left", after.DbSize, before.DbSize)
	}
	deadline := time.Now().Add(5 * time.Second)
	for dbSizeMetric(t, cfg) != float64(after.DbSize) {
		if time.Now().After(deadline) {
			t.Fatalf("/metrics reports %v, Status %d", dbSizeMetric(t, cfg), after.DbSize)
		}
		time.Sleep(20 * time.Millisecond)
	}
	again, err := cli.Get(ctx, "k/", clientv3.WithPrefix())
	if err != nil || fmt.Sprint(again.Kvs) != fmt.Sprint(get.Kvs) {
		t.Fatalf("the keys after defragment: %v, %v", again, err)
	}
	putRetrying(t, cli, "after", "x")
}
