package e2e_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestSnapshotCatchUp: a follower that was down while the others wrote far
// more than they keep in their logs (--snapshot-count 100 keeps 100
// entries behind a snapshot) can only catch up from a snapshot, sent over
// the peer port's snapshot stream. Once restarted it holds every key.
func TestSnapshotCatchUp(t *testing.T) {
	c := newCluster(t, 3, "--snapshot-count", "100")
	leader, _ := c.waitLeader(5 * time.Second)
	behind := c.members[0]
	if behind == leader {
		behind = c.members[1]
	}
	c.stop(behind)
	cli := c.client(c.endpointsExcept(behind)...)
	const keys = 600
	for i := range keys {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := cli.Put(ctx, fmt.Sprintf("snap/%04d", i), fmt.Sprint(i))
		cancel()
		if err != nil {
			t.Fatalf("put %d with a member down: %v", i, err)
		}
	}
	c.start(behind)
	one := c.client(behind.endpoint())
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := one.Get(ctx, "snap/", clientv3.WithPrefix(), clientv3.WithSerializable(), clientv3.WithCountOnly())
		cancel()
		if err == nil && resp.Count == keys {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted member has %v of %d keys (%v) after 20s", resp, keys, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The member logs the install on its next tick.
	for !logContains(t, behind, "installed a snapshot from the leader") {
		if time.Now().After(deadline.Add(2 * time.Second)) {
			t.Fatalf("%s caught up without installing a snapshot: the test did not test the snapshot stream", behind.name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
