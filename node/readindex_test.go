package node_test

import (
	"errors"
	"testing"

	"github.com/plumbdb/plumb/node"
)

// submit submits req to member id and returns its request ID; the reply
// is in c.replies once it comes.
func (c *cluster) submit(id uint64, req node.Request) uint64 {
	c.nextReq++
	req.ID = c.nextReq
	c.nodes[id].Submit(req)
	return req.ID
}

// TestReadIndexFailedOnLeaderChange: a linearizable read whose ReadIndex
// round is in flight when the leader changes fails, and the round is
// counted failed once (etcd_server_read_indexes_failed_total).
func TestReadIndexFailedOnLeaderChange(t *testing.T) {
	c := newCluster(t, 3)
	f := c.follower()
	lead := c.leader()
	c.cut[lead] = true
	id := c.submit(f, get("a"))
	for range 100 {
		if _, ok := c.replies[id]; ok {
			break
		}
		c.tick(1)
	}
	if r := c.replies[id]; !errors.Is(r.Err, node.ErrLeaderChanged) {
		t.Fatalf("a read in flight across a leader change got %v, want ErrLeaderChanged", r.Err)
	}
	if st := c.nodes[f].Status(); st.ReadIndexesFailed != 1 || st.SlowReadIndexes != 0 {
		t.Fatalf("ReadIndexesFailed %d, SlowReadIndexes %d, want 1 and 0", st.ReadIndexesFailed, st.SlowReadIndexes)
	}
}

// TestSlowReadIndexTimedOut: a read whose ReadIndex is never answered
// times out, and its round is counted slow once, however many reads it
// carries (etcd_server_slow_read_indexes_total).
func TestSlowReadIndexTimedOut(t *testing.T) {
	c := newClusterTuned(t, 3, func(cfg *node.Config) { cfg.RequestTimeoutTicks = 3 })
	f := c.follower()
	c.cut[f] = true
	ids := []uint64{c.submit(f, get("a")), c.submit(f, get("b"))}
	c.tick(5)
	for _, id := range ids {
		if r := c.replies[id]; !errors.Is(r.Err, node.ErrTimeout) {
			t.Fatalf("a read cut off from its leader got %v, want ErrTimeout", r.Err)
		}
	}
	if st := c.nodes[f].Status(); st.SlowReadIndexes != 1 || st.ReadIndexesFailed != 0 {
		t.Fatalf("SlowReadIndexes %d, ReadIndexesFailed %d, want 1 and 0", st.SlowReadIndexes, st.ReadIndexesFailed)
	}
}

// TestSlowReadIndexOutOfDate: a leader whose ReadIndex round goes
// unanswered asks again; when its followers answer, raft releases both
// rounds, and the answer to the first, already asked again, is out of
// date: ignored and counted slow.
func TestSlowReadIndexOutOfDate(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader()
	for _, id := range c.ids {
		if id != lead {
			c.cut[id] = true
		}
	}
	id := c.submit(lead, get("a"))
	c.tick(node.DefaultElectionTicks/2 + 1) // past readRetryTicks, short of CheckQuorum's step-down
	clear(c.cut)
	for range 10 {
		if _, ok := c.replies[id]; ok {
			break
		}
		c.tick(1)
	}
	if r, ok := c.replies[id]; !ok || r.Err != nil {
		t.Fatalf("the read got %+v (answered %v), want its value", r, ok)
	}
	if st := c.nodes[lead].Status(); st.SlowReadIndexes != 1 || st.ReadIndexesFailed != 0 {
		t.Fatalf("SlowReadIndexes %d, ReadIndexesFailed %d, want 1 and 0", st.SlowReadIndexes, st.ReadIndexesFailed)
	}
}
