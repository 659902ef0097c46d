package node_test

import (
	"errors"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/plumbdb/plumb/node"
	"github.com/plumbdb/plumb/node/backend"
)

// failingLog is a LogStore whose Save fails once fail is set, as a disk
// that returns EIO does: the node stops.
type failingLog struct {
	node.LogStore
	fail bool
}

var errDiskBroke = errors.New("input/output error")

func (l *failingLog) Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot) error {
	if l.fail {
		return errDiskBroke
	}
	return l.LogStore.Save(hs, ents, snap)
}

// TestStoppedWithProposalsInFlight: a member whose storage fails stops;
// a write it had proposed may already be in other members' logs and
// commit, so its reply must say the outcome is unknown. A read, and a
// request that arrives once the member has stopped, were never proposed:
// they fail definitely, with etcd's "server stopped".
func TestStoppedWithProposalsInFlight(t *testing.T) {
	logs := map[uint64]*failingLog{}
	c := newClusterTuned(t, 3, func(cfg *node.Config) {
		l := &failingLog{LogStore: cfg.Log}
		logs[cfg.ID] = l
		cfg.Log = l
	})
	lead := c.leader()
	n := c.nodes[lead]
	c.cut[lead] = true // nothing it sends arrives: nothing commits
	n.Submit(node.Request{ID: 101, Put: &pb.PutRequest{Key: []byte("a"), Value: []byte("1")}})
	c.settle() // saved in the leader's log, sent (and lost)
	n.Submit(node.Request{ID: 102, Range: &pb.RangeRequest{Key: []byte("a")}})
	c.settle() // a read index asked for, never answered
	logs[lead].fail = true
	n.Submit(node.Request{ID: 103, Put: &pb.PutRequest{Key: []byte("b"), Value: []byte("2")}})
	out := n.Process()
	if out.Err == nil {
		t.Fatal("a failed Save did not stop the member")
	}
	got := map[uint64]error{}
	for _, r := range out.Replies {
		got[r.ID] = r.Err
	}
	for _, id := range []uint64{101, 103} {
		err, ok := got[id]
		if !ok || err == nil || !node.OutcomeUnknown(err) {
			t.Errorf("write %d proposed before the stop: answered %v (%v), want an unknown outcome", id, err, ok)
		}
		if ok && !errors.Is(err, node.ErrStopped) {
			t.Errorf("write %d: %v does not say the server stopped", id, err)
		}
	}
	if err := got[102]; !errors.Is(err, node.ErrStopped) || node.OutcomeUnknown(err) {
		t.Errorf("read in flight: %v, want ErrStopped, a known outcome", err)
	}
	n.Submit(node.Request{ID: 104, Put: &pb.PutRequest{Key: []byte("c"), Value: []byte("3")}})
	out = n.Process()
	if len(out.Replies) != 1 || out.Replies[0].ID != 104 || out.Replies[0].Err != node.ErrStopped {
		t.Errorf("a write submitted after the stop: %+v, want exactly ErrStopped (never proposed)", out.Replies)
	}
}

// TestDuplicateDroppedAnswersAtOnce: a proposal that reaches the leader
// after a later one of the same member was applied is dropped at apply
// (dedupe.go) and can never apply. Its waiter is answered at once with a
// definite failure, not left to time out as an unknown outcome.
func TestDuplicateDroppedAnswersAtOnce(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader()
	f := c.follower()
	fn := c.nodes[f]
	// Two proposals from the follower, forwarded to the leader; the network
	// delivers the second first.
	fn.Submit(node.Request{ID: 201, Put: &pb.PutRequest{Key: []byte("x"), Value: []byte("first")}})
	first := fn.Process().Messages
	fn.Submit(node.Request{ID: 202, Put: &pb.PutRequest{Key: []byte("x"), Value: []byte("second")}})
	second := fn.Process().Messages
	deliver := func(envs []node.Envelope) {
		for _, env := range envs {
			if to := env.Message.GetTo(); to == lead {
				if err := c.nodes[to].Step(env); err != nil {
					t.Fatal(err)
				}
			}
		}
		c.settle()
	}
	deliver(second)
	if r, ok := c.replies[202]; !ok || r.Err != nil {
		t.Fatalf("the second proposal: %+v (answered %v)", r, ok)
	}
	deliver(first)
	r, ok := c.replies[201]
	if !ok {
		t.Fatalf("the first proposal, dropped at apply, is unanswered (status %+v)", fn.Status())
	}
	if r.Err == nil || node.OutcomeUnknown(r.Err) || !errors.Is(r.Err, node.ErrProposalDropped) {
		t.Fatalf("the dropped proposal: %v, want a definite ErrProposalDropped", r.Err)
	}
	if st := c.nodes[lead].Status(); st.DuplicatesDropped != 1 {
		t.Fatalf("the leader dropped %d duplicates, want 1", st.DuplicatesDropped)
	}
	if g := c.do(lead, get("x")); g.Err != nil || len(g.Range.Kvs) != 1 || string(g.Range.Kvs[0].Value) != "second" {
		t.Fatalf("x after both: %+v, want the second write only", g)
	}
}

// newClusterWithIDs is newCluster with member IDs chosen by the test.
func newClusterWithIDs(t *testing.T, ids []uint64, tune func(*node.Config)) *cluster {
	c := &cluster{t: t, tune: tune, nodes: map[uint64]*node.Node{}, logs: map[uint64]*node.MemoryLog{},
		bes: map[uint64]*backend.Memory{}, cut: map[uint64]bool{}, replies: map[uint64]node.Reply{}}
	for i, id := range ids {
		url := fmt.Sprintf("http://127.0.0.%d:2380", i+1)
		c.ids = append(c.ids, id)
		c.initial = append(c.initial, node.Member{ID: id, Name: fmt.Sprintf("m%d", i+1), PeerURLs: []string{url}})
	}
	c.cid = node.ClusterID(c.ids)
	for _, id := range c.ids {
		c.logs[id], c.bes[id] = node.NewMemoryLog(), backend.NewMemory()
		c.start(id)
	}
	return c
}

// TestRepliesMatchFullRequestID: request IDs carry only the low 16 bits of
// the member ID (etcd's idutil layout), so two members can hand out the
// same one. An entry another member proposed must never answer this
// member's waiter: only its own entry does, with its own result. The
// three members here share their low 16 bits and their start time.
func TestRepliesMatchFullRequestID(t *testing.T) {
	ids := []uint64{0x1_0000_0000_beef, 0x2_0000_0000_beef, 0x3_0000_0000_beef}
	for _, kind := range []string{"put", "member update"} {
		t.Run(kind, func(t *testing.T) {
			c := newClusterWithIDs(t, ids, func(cfg *node.Config) { cfg.StartMillis = 7 })
			lead := c.leader()
			var a, b uint64
			for _, id := range ids {
				switch {
				case id == lead:
				case a == 0:
					a = id
				default:
					b = id
				}
			}
			req := func(member uint64, key string) node.Request {
				if kind == "put" {
					return node.Request{Put: &pb.PutRequest{Key: []byte(key), Value: []byte(key)}}
				}
				m, _ := c.nodes[member].Member(member)
				urls := append(m.PeerURLs[:1:1], "http://"+key+".example:2380")
				return node.Request{MemberUpdate: &pb.MemberUpdateRequest{ID: member, PeerURLs: urls}}
			}
			// a proposes first; its proposal is held back by the network.
			ra := req(a, "from-a")
			ra.ID = 301
			c.nodes[a].Submit(ra)
			held := c.nodes[a].Process().Messages
			// b's proposal, with the same request ID, commits and applies
			// everywhere, a included.
			rb := c.do(b, req(b, "from-b"))
			if rb.Err != nil {
				t.Fatalf("b's request: %v", rb.Err)
			}
			if r, ok := c.replies[301]; ok {
				t.Fatalf("b's entry answered a's request: %+v", r)
			}
			for _, env := range held {
				if err := c.nodes[env.Message.GetTo()].Step(env); err != nil {
					t.Fatal(err)
				}
			}
			c.settle()
			r, ok := c.replies[301]
			if !ok || r.Err != nil {
				t.Fatalf("a's request once its entry applied: %+v (answered %v)", r, ok)
			}
			if kind == "put" {
				g := c.do(lead, get("from-a"))
				if len(g.Range.GetKvs()) != 1 || g.Range.Kvs[0].ModRevision != r.Put.Header.Revision {
					t.Fatalf("a's reply says revision %d; the key holds %+v", r.Put.Header.Revision, g.Range.GetKvs())
				}
			} else {
				m, _ := c.nodes[lead].Member(a)
				if len(m.PeerURLs) != 2 {
					t.Fatalf("a's update answered ok, but a's peer URLs are %v", m.PeerURLs)
				}
			}
		})
	}
}
