package node_test

import (
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"

	"github.com/plumbdb/plumb/node"
	"github.com/plumbdb/plumb/node/backend"
)

// addMember asks member via to add a member at url (a learner if asked)
// at the given time, and returns the reply.
func (c *cluster) addMember(via uint64, url string, learner bool, unix int64) node.Reply {
	c.t.Helper()
	return c.do(via, node.Request{MemberAdd: &pb.MemberAddRequest{PeerURLs: []string{url}, IsLearner: learner}, MemberAddUnix: unix})
}

// join starts an added member from an empty log, as an operator starts it
// with --initial-cluster-state existing.
func (c *cluster) join(id uint64, name string) {
	c.t.Helper()
	c.ids = append(c.ids, id)
	c.logs[id], c.bes[id] = node.NewMemoryLog(), backend.NewMemory()
	n, err := node.New(node.Config{ID: id, ClusterID: c.cid, Name: name, Join: true,
		Log: c.logs[id], Backend: c.bes[id], StartMillis: int64(len(c.nodes)) * 1000})
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[id] = n
}

// etcdAddedMemberID is etcd's computeMemberId for a member add, written out
// here on its own: sha1 of the sorted peer URLs, no cluster name, and the
// Unix time of the add in decimal; the first 8 bytes, big-endian.
func etcdAddedMemberID(url string, unix int64) uint64 {
	sum := sha1.Sum(fmt.Appendf([]byte(url), "%d", unix))
	return binary.BigEndian.Uint64(sum[:8])
}

// TestMemberAddIDIsEtcds: an added member's ID is the one etcd computes
// from the same peer URL and time of the add, and it is in the reply and
// in every member's membership once applied.
func TestMemberAddIDIsEtcds(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader()
	const url, unix = "http://127.0.0.9:2380", 1764000000
	r := c.addMember(lead, url, true, unix)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	want := etcdAddedMemberID(url, unix)
	if got := r.MemberAdd.Member.ID; got != want {
		t.Fatalf("added member ID %x, want etcd's %x", got, want)
	}
	if !r.MemberAdd.Member.IsLearner || len(r.MemberAdd.Members) != 4 {
		t.Fatalf("reply %v: want the learner among 4 members", r.MemberAdd)
	}
	c.tick(2)
	for _, id := range c.ids {
		if m, ok := c.nodes[id].Member(want); !ok || !m.IsLearner {
			t.Errorf("member %x: added member is %+v (known %v), want a learner", id, m, ok)
		}
	}
	if r := c.do(lead, node.Request{MemberAdd: &pb.MemberAddRequest{PeerURLs: []string{"http://127.0.0.10:2380"}}}); r.Err == nil {
		t.Fatal("a member add without its time was accepted")
	}
}

// TestLearnerJoinsAndIsPromoted: a learner added to a running cluster and
// started from an empty log catches up, serves serializable reads only
// (etcd's error for everything else), counts in no quorum, and is promoted
// only once its log is close to the leader's.
func TestLearnerJoinsAndIsPromoted(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader()
	for i := range 20 {
		if r := c.do(lead, put(fmt.Sprintf("k%d", i), "v")); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	r := c.addMember(lead, "http://127.0.0.9:2380", true, 1000)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	l := r.MemberAdd.Member.ID
	if r := c.addMember(lead, "http://127.0.0.10:2380", true, 1000); !errors.Is(r.Err, node.ErrTooManyLearners) {
		t.Fatalf("a second learner: %v, want %v", r.Err, node.ErrTooManyLearners)
	}
	// Not started yet: nothing to promote.
	if r := c.do(lead, node.Request{MemberPromote: &pb.MemberPromoteRequest{ID: l}}); !errors.Is(r.Err, node.ErrLearnerNotReady) {
		t.Fatalf("promote a learner that has no log: %v, want %v", r.Err, node.ErrLearnerNotReady)
	}
	// A learner counts in no quorum: the cluster commits without it.
	if r := c.do(lead, put("after-add", "v")); r.Err != nil {
		t.Fatal(r.Err)
	}
	c.join(l, "learner")
	c.tick(5)
	if st := c.nodes[l].Status(); !st.IsLearner || st.Applied != c.nodes[lead].Status().Applied {
		t.Fatalf("learner status %+v, leader applied %d", st, c.nodes[lead].Status().Applied)
	}
	if r := c.do(l, node.Request{Range: &pb.RangeRequest{Key: []byte("k7"), Serializable: true}}); r.Err != nil || len(r.Range.Kvs) != 1 {
		t.Fatalf("serializable read on the learner: %v %v", r.Err, r.Range)
	}
	for name, req := range map[string]node.Request{
		"put":              put("k", "v"),
		"linearizable get": get("k7"),
		"member list":      {MemberList: &pb.MemberListRequest{}},
	} {
		if r := c.do(l, req); !errors.Is(r.Err, node.ErrNotSupportedForLearner) {
			t.Errorf("%s on the learner: %v, want %v", name, r.Err, node.ErrNotSupportedForLearner)
		}
	}
	f := c.follower()
	if r := c.do(f, node.Request{MemberPromote: &pb.MemberPromoteRequest{ID: l}}); !errors.Is(r.Err, node.ErrNotLeader) {
		t.Fatalf("promote on a follower: %v, want %v", r.Err, node.ErrNotLeader)
	}
	if r := c.do(lead, node.Request{MemberPromote: &pb.MemberPromoteRequest{ID: f}}); !errors.Is(r.Err, node.ErrMemberNotLearner) {
		t.Fatalf("promote a voter: %v, want %v", r.Err, node.ErrMemberNotLearner)
	}
	if r := c.do(lead, node.Request{MemberPromote: &pb.MemberPromoteRequest{ID: 42}}); !errors.Is(r.Err, node.ErrMemberNotFound) {
		t.Fatalf("promote an unknown member: %v, want %v", r.Err, node.ErrMemberNotFound)
	}
	r = c.do(lead, node.Request{MemberPromote: &pb.MemberPromoteRequest{ID: l}})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	for _, m := range r.MemberPromote.Members {
		if m.IsLearner {
			t.Fatalf("after promote: %v is still a learner", m)
		}
	}
	c.tick(2)
	if r := c.do(l, put("from-promoted", "v")); r.Err != nil {
		t.Fatalf("a put on the promoted member: %v", r.Err)
	}
	// Four voters now: with two of them cut off, nothing commits.
	c.cut[f], c.cut[l] = true, true
	c.nodes[lead].Submit(node.Request{ID: 9999, Put: &pb.PutRequest{Key: []byte("minority"), Value: []byte("v")}})
	c.tick(3)
	if r, ok := c.replies[9999]; ok && r.Err == nil {
		t.Fatal("a put committed with 2 of 4 voters: the promoted member does not count in the quorum")
	}
}

// TestMemberAddNeedsReachableStartedVoters is etcd's strict reconfiguration
// check for adds: every voter reachable from the leader, and enough of them
// started; a 1-member cluster may grow to 2 (etcd's restore procedure).
func TestMemberAddNeedsReachableStartedVoters(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader()
	f := c.follower()
	c.cut[f] = true
	c.tick(12) // more than an election timeout without a word from f
	if r := c.addMember(lead, "http://127.0.0.9:2380", false, 1); !errors.Is(r.Err, node.ErrUnhealthy) {
		t.Fatalf("add a voter with a voter unreachable: %v, want %v", r.Err, node.ErrUnhealthy)
	}
	if r := c.addMember(lead, "http://127.0.0.9:2380", true, 1); !errors.Is(r.Err, node.ErrUnhealthy) {
		t.Fatalf("add a learner with a voter unreachable: %v, want %v", r.Err, node.ErrUnhealthy)
	}
	delete(c.cut, f)
	c.tick(2)
	if r := c.addMember(lead, "http://127.0.0.9:2380", false, 1); r.Err != nil {
		t.Fatalf("add with every voter back: %v", r.Err)
	}

	one := newCluster(t, 1)
	lead = one.leader()
	r := one.addMember(lead, "http://127.0.0.9:2380", false, 1)
	if r.Err != nil {
		t.Fatalf("grow a 1-member cluster to 2: %v", r.Err)
	}
	// The second member never started: a third add would count on it.
	if r := one.addMember(lead, "http://127.0.0.10:2380", false, 1); !errors.Is(r.Err, node.ErrNotEnoughStartedMembers) {
		t.Fatalf("add with a member that never started: %v, want %v", r.Err, node.ErrNotEnoughStartedMembers)
	}
	// Once it starts (publishes its name), the cluster goes on.
	one.join(r.MemberAdd.Member.ID, "second")
	one.tick(30)
	if m, _ := one.nodes[lead].Member(r.MemberAdd.Member.ID); m.Name != "second" {
		t.Fatalf("the joined member did not publish its name: %+v", m)
	}
	if r := one.do(lead, put("k", "v")); r.Err != nil {
		t.Fatalf("put after the second member joined: %v", r.Err)
	}
}

// TestMemberAddLooseCheck: with the strict check off
// (--strict-reconfig-check=false) an unreachable voter does not stop an add.
func TestMemberAddLooseCheck(t *testing.T) {
	c := newClusterTuned(t, 3, func(cfg *node.Config) { cfg.SkipReconfigCheck = true })
	lead := c.leader()
	f := c.follower()
	c.cut[f] = true
	c.tick(12)
	if r := c.addMember(lead, "http://127.0.0.9:2380", true, 1); r.Err != nil {
		t.Fatalf("add a learner with the loose check: %v", r.Err)
	}
}

// TestMemberRemoveKeepsQuorum is etcd's strict check for removes, and the
// rule plumb keeps whatever the check says: the last voter stays.
func TestMemberRemoveKeepsQuorum(t *testing.T) {
	for _, strict := range []bool{true, false} {
		one := newClusterTuned(t, 1, func(cfg *node.Config) { cfg.SkipReconfigCheck = !strict })
		lead := one.leader()
		if r := one.do(lead, node.Request{MemberRemove: &pb.MemberRemoveRequest{ID: lead}}); !errors.Is(r.Err, node.ErrNotEnoughStartedMembers) {
			t.Fatalf("strict %v: remove the only member: %v, want %v", strict, r.Err, node.ErrNotEnoughStartedMembers)
		}
		if r := one.do(lead, put("k", "v")); r.Err != nil {
			t.Fatalf("strict %v: the cluster after the refused remove: %v", strict, r.Err)
		}
	}

	c := newCluster(t, 3)
	lead := c.leader()
	var down, up uint64
	for _, id := range c.ids {
		switch {
		case id == lead:
		case down == 0:
			down = id
		default:
			up = id
		}
	}
	if r := c.do(up, node.Request{MemberRemove: &pb.MemberRemoveRequest{ID: down}}); !errors.Is(r.Err, node.ErrNotLeader) {
		t.Fatalf("remove on a follower: %v, want %v", r.Err, node.ErrNotLeader)
	}
	c.cut[down] = true
	c.tick(12)
	if r := c.do(lead, node.Request{MemberRemove: &pb.MemberRemoveRequest{ID: up}}); !errors.Is(r.Err, node.ErrUnhealthy) {
		t.Fatalf("remove a live follower while another is down: %v, want %v", r.Err, node.ErrUnhealthy)
	}
	if r := c.do(lead, node.Request{MemberRemove: &pb.MemberRemoveRequest{ID: down}}); r.Err != nil {
		t.Fatalf("remove the member that is down: %v", r.Err)
	}
	if r := c.do(lead, node.Request{MemberRemove: &pb.MemberRemoveRequest{ID: 42}}); !errors.Is(r.Err, node.ErrMemberNotFound) {
		t.Fatalf("remove an unknown member: %v, want %v", r.Err, node.ErrMemberNotFound)
	}
	if r := c.do(lead, node.Request{MemberRemove: &pb.MemberRemoveRequest{ID: down}}); !errors.Is(r.Err, node.ErrIDRemoved) {
		t.Fatalf("remove a removed member: %v, want %v", r.Err, node.ErrIDRemoved)
	}
	// The removed member's messages are refused from now on.
	delete(c.cut, down)
	c.tick(15)
	if c.refused == 0 {
		t.Fatal("no message of the removed member was refused")
	}
	if st := c.nodes[lead].Status(); st.State != raft.StateLeader {
		t.Fatalf("the leader lost its place to a removed member: %+v", st)
	}
}

// TestRemoveTheLeader: the leader can remove itself; it stops, and the
// member that is left leads and takes writes.
func TestRemoveTheLeader(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader()
	if r := c.do(lead, node.Request{MemberRemove: &pb.MemberRemoveRequest{ID: lead}}); r.Err != nil {
		t.Fatalf("remove the leader: %v", r.Err)
	}
	c.tick(2)
	if st := c.nodes[lead].Status(); !st.Removed {
		t.Fatalf("the removed leader's status: %+v", st)
	}
	delete(c.nodes, lead)
	var next uint64
	for range 50 {
		c.tick(1)
		for _, id := range c.ids {
			if n, ok := c.nodes[id]; ok && n.Status().State == raft.StateLeader {
				next = id
			}
		}
		if next != 0 {
			break
		}
	}
	if next == 0 || next == lead {
		t.Fatalf("no new leader after removing the leader (got %x)", next)
	}
	if r := c.do(next, put("k", "v")); r.Err != nil {
		t.Fatal(r.Err)
	}
	if n := len(c.nodes[next].Members()); n != 2 {
		t.Fatalf("%d members, want 2", n)
	}
}

// TestLearnerSurvivesRestart: the learner flag is in the backend, so a
// restarted member still knows who learns.
func TestLearnerSurvivesRestart(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader()
	r := c.addMember(lead, "http://127.0.0.9:2380", true, 7)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	c.tick(2)
	f := c.follower()
	delete(c.nodes, f)
	c.start(f)
	c.tick(3)
	if m, ok := c.nodes[f].Member(r.MemberAdd.Member.ID); !ok || !m.IsLearner {
		t.Fatalf("after restart the learner is %+v (known %v)", m, ok)
	}
}

// TestJoinAfterSnapshot: a member added after the leader's last snapshot,
// whose log no longer reaches back to the start, catches up from a
// snapshot message built at the leader's applied index with the membership
// as of it (the stored snapshot predates the add, and raft on the new
// member refuses a snapshot that does not list it).
func TestJoinAfterSnapshot(t *testing.T) {
	c := newClusterTuned(t, 3, func(cfg *node.Config) { cfg.SnapshotCount, cfg.SnapshotCatchUpEntries = 10, 2 })
	lead := c.leader()
	// Writes until the leader has just taken its second snapshot, so that
	// the add lands after it and the stored snapshot does not hold it.
	for i := 0; c.nodes[lead].Status().Snapshots < 2 || c.nodes[lead].Status().Applied != c.nodes[lead].Status().SnapshotIndex; i++ {
		if r := c.do(lead, put(fmt.Sprintf("k%d", i), "v")); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	r := c.addMember(lead, "http://127.0.0.9:2380", true, 1)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if st := c.nodes[lead].Status(); st.SnapshotIndex >= st.Applied {
		t.Fatalf("the leader took a snapshot at %d, after the add (applied %d)", st.SnapshotIndex, st.Applied)
	}
	if first, _ := c.logs[lead].FirstIndex(); first <= 1 {
		t.Fatalf("the leader's log still starts at %d: the new member could catch up without a snapshot", first)
	}
	id := r.MemberAdd.Member.ID
	c.join(id, "joiner")
	c.tick(10)
	st := c.nodes[id].Status()
	if st.SnapshotsInstalled == 0 || st.Applied != c.nodes[lead].Status().Applied {
		t.Fatalf("joiner %+v, leader applied %d", st, c.nodes[lead].Status().Applied)
	}
	if m, ok := c.nodes[id].Member(id); !ok || !m.IsLearner {
		t.Fatalf("the joiner does not know itself as a learner: %+v %v", m, ok)
	}
}
