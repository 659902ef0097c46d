package node_test

import (
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/plumbdb/plumb/node"
	"github.com/plumbdb/plumb/node/mvcc"
)

// events flattens what one member's watcher said into "PUT k=v@rev" lines.
func events(rs []mvcc.WatchResponse, id mvcc.WatchID) []string {
	var out []string
	for _, r := range rs {
		if r.WatchID != id {
			continue
		}
		for _, ev := range r.Events {
			s := fmt.Sprintf("%s %s", ev.Type, ev.Kv.Key)
			if ev.Type == mvccpb.PUT {
				s += "=" + string(ev.Kv.Value)
			}
			out = append(out, fmt.Sprintf("%s@%d", s, ev.Kv.ModRevision))
		}
	}
	return out
}

// TestWatchOnEveryMember: a watcher on a follower sees the writes made
// through the leader once the follower applies them, every revision once
// and in order; one started in the past replays the history first.
func TestWatchOnEveryMember(t *testing.T) {
	c := newCluster(t, 3)
	lead, f := c.leader(), c.follower()
	live, err := c.nodes[f].Watch(mvcc.WatchRequest{Key: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []node.Request{put("k", "1"), put("other", "x"), put("k", "2"),
		{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("k")}}} {
		if r := c.do(lead, req); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	c.tick(2)
	got := events(c.watch[f], live)
	want := []string{"PUT k=1@2", "PUT k=2@4", "DELETE k@5"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("live watcher on a follower: %v, want %v", got, want)
	}
	past, err := c.nodes[lead].Watch(mvcc.WatchRequest{Key: []byte("k"), StartRev: 3, PrevKV: true})
	if err != nil {
		t.Fatal(err)
	}
	c.tick(1)
	if got, want := events(c.watch[lead], past), []string{"PUT k=2@4", "DELETE k@5"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("watcher from revision 3: %v, want %v", got, want)
	}
}

// TestWatchAcrossSnapshotInstall: a follower cut off until only a snapshot
// can catch it up keeps its watcher; after the install it catches up from
// the history the snapshot brought, every event exactly once.
func TestWatchAcrossSnapshotInstall(t *testing.T) {
	c := newClusterTuned(t, 3, func(cfg *node.Config) { cfg.SnapshotCount, cfg.SnapshotCatchUpEntries = 10, 2 })
	lead, f := c.leader(), c.follower()
	id, err := c.nodes[f].Watch(mvcc.WatchRequest{Key: []byte("k"), End: []byte("l")})
	if err != nil {
		t.Fatal(err)
	}
	c.cut[f] = true
	var want []string
	for i := range 40 {
		r := c.do(lead, put(fmt.Sprintf("k%d", i%7), fmt.Sprint(i)))
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		want = append(want, fmt.Sprintf("PUT k%d=%d@%d", i%7, i, r.Put.Header.Revision))
	}
	delete(c.cut, f)
	c.tick(10)
	if st := c.nodes[f].Status(); st.SnapshotsInstalled == 0 {
		t.Fatalf("follower status %+v: no snapshot installed", st)
	}
	if got := events(c.watch[f], id); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the snapshot:\n got %v\nwant %v", got, want)
	}
}
