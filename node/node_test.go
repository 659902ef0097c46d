package node_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node"
	"github.com/plumbdb/plumb/node/backend"
	"github.com/plumbdb/plumb/node/mvcc"
)

// cluster is a minimal synchronous driver: every message is delivered at
// once, in order, and nothing is lost unless a test cuts a member off.
type cluster struct {
	t       *testing.T
	ids     []uint64
	nodes   map[uint64]*node.Node
	logs    map[uint64]*node.MemoryLog
	bes     map[uint64]*backend.Memory
	cut     map[uint64]bool
	dupProp bool // deliver every MsgProp twice, as a duplicating network would
	replies map[uint64]node.Reply
	initial []node.Member
	cid     uint64
	nextReq uint64
	tune    func(*node.Config)              // adjusts every member's config, if set
	watch   map[uint64][]mvcc.WatchResponse // what each member's watchers said
	refused int                             // messages refused as from a removed member
}

func newCluster(t *testing.T, size int) *cluster { return newClusterTuned(t, size, nil) }

func newClusterTuned(t *testing.T, size int, tune func(*node.Config)) *cluster {
	c := &cluster{t: t, tune: tune, nodes: map[uint64]*node.Node{}, logs: map[uint64]*node.MemoryLog{},
		bes: map[uint64]*backend.Memory{}, cut: map[uint64]bool{}, replies: map[uint64]node.Reply{}}
	for i := range size {
		url := fmt.Sprintf("http://127.0.0.%d:2380", i+1)
		id := node.MemberID([]string{url}, "test", "")
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

func (c *cluster) start(id uint64) {
	cfg := node.Config{ID: id, ClusterID: c.cid, InitialMembers: c.initial,
		Log: c.logs[id], Backend: c.bes[id], StartMillis: int64(len(c.nodes)) * 1000}
	for _, m := range c.initial {
		if m.ID == id {
			cfg.Name = m.Name
		}
	}
	if c.tune != nil {
		c.tune(&cfg)
	}
	n, err := node.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[id] = n
}

// settle processes every member and delivers messages until quiet.
func (c *cluster) settle() {
	for round := 0; round < 1000; round++ {
		var msgs []node.Envelope
		for _, id := range c.ids {
			n, ok := c.nodes[id]
			if !ok {
				continue
			}
			out := n.Process()
			if out.Err != nil {
				c.t.Fatalf("member %x: %v", id, out.Err)
			}
			msgs = append(msgs, out.Messages...)
			for _, r := range out.Replies {
				c.replies[r.ID] = r
			}
			if len(out.Watch) > 0 {
				if c.watch == nil {
					c.watch = map[uint64][]mvcc.WatchResponse{}
				}
				c.watch[id] = append(c.watch[id], out.Watch...)
			}
		}
		if len(msgs) == 0 {
			return
		}
		if c.dupProp {
			var twice []node.Envelope
			for _, m := range msgs {
				twice = append(twice, m)
				if m.Message.GetType() == raftpb.MessageType_MsgProp {
					twice = append(twice, node.Envelope{ClusterID: m.ClusterID, Message: proto.CloneOf(m.Message)})
				}
			}
			msgs = twice
		}
		for _, m := range msgs {
			to, from := m.Message.GetTo(), m.Message.GetFrom()
			n, ok := c.nodes[to]
			delivered := ok && !c.cut[to] && !c.cut[from]
			if delivered {
				// A member that was removed refuses everything: the
				// others learn of its removal by applying it.
				err := n.Step(m)
				switch {
				case errors.Is(err, node.ErrRemovedMember):
					c.refused++
				case err != nil && !errors.Is(err, node.ErrStopped):
					c.t.Fatalf("step: %v", err)
				}
			}
			if m.Message.GetType() == raftpb.MessageType_MsgSnap {
				if sender, ok := c.nodes[from]; ok {
					sender.ReportSnapshot(to, delivered)
				}
			}
		}
	}
	c.t.Fatal("cluster did not settle in 1000 rounds")
}

func (c *cluster) tick(times int) {
	for range times {
		for _, id := range c.ids {
			if n, ok := c.nodes[id]; ok {
				n.Tick()
			}
		}
		c.settle()
	}
}

// leader ticks until some member leads, and returns it.
func (c *cluster) leader() uint64 {
	for range 100 {
		for _, id := range c.ids {
			if n, ok := c.nodes[id]; ok && !c.cut[id] && n.Status().State == raft.StateLeader {
				return id
			}
		}
		c.tick(1)
	}
	c.t.Fatal("no leader after 100 ticks")
	return 0
}

func (c *cluster) follower() uint64 {
	lead := c.leader()
	for _, id := range c.ids {
		if id != lead && !c.cut[id] {
			return id
		}
	}
	c.t.Fatal("no follower")
	return 0
}

// do submits req to member id and returns its reply once it comes.
func (c *cluster) do(id uint64, req node.Request) node.Reply {
	c.t.Helper()
	c.nextReq++
	req.ID = c.nextReq
	c.nodes[id].Submit(req)
	for range 50 {
		c.settle()
		if r, ok := c.replies[req.ID]; ok {
			return r
		}
		c.tick(1)
	}
	c.t.Fatalf("request %d got no reply", req.ID)
	return node.Reply{}
}

func put(k, v string) node.Request {
	return node.Request{Put: &pb.PutRequest{Key: []byte(k), Value: []byte(v)}}
}

func get(k string) node.Request {
	return node.Request{Range: &pb.RangeRequest{Key: []byte(k)}}
}

func TestRevisionsLikeEtcd(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader()
	r := c.do(lead, put("a", "1"))
	if r.Err != nil || r.Put.Header.Revision != 2 {
		t.Fatalf("first put: %v, revision %d; etcd's first put has revision 2", r.Err, r.Put.GetHeader().GetRevision())
	}
	h := r.Put.Header
	if h.ClusterId != c.cid || h.MemberId != lead || h.RaftTerm == 0 {
		t.Fatalf("header %+v: want cluster %x, member %x, a term", h, c.cid, lead)
	}
	c.do(lead, put("a", "2"))
	g := c.do(c.follower(), get("a"))
	if g.Err != nil || len(g.Range.Kvs) != 1 {
		t.Fatalf("get on a follower: %v %v", g.Err, g.Range)
	}
	kv := g.Range.Kvs[0]
	if string(kv.Value) != "2" || kv.CreateRevision != 2 || kv.ModRevision != 3 || kv.Version != 2 {
		t.Fatalf("kv %+v: want value 2, create 2, mod 3, version 2", kv)
	}
	old := c.do(lead, node.Request{Range: &pb.RangeRequest{Key: []byte("a"), Revision: 2}})
	if string(old.Range.Kvs[0].Value) != "1" {
		t.Fatalf("read at revision 2: %v", old.Range.Kvs)
	}
	if r := c.do(lead, node.Request{Range: &pb.RangeRequest{Key: []byte("a"), Revision: 99}}); !errors.Is(r.Err, mvcc.ErrFutureRev) {
		t.Fatalf("future revision: %v", r.Err)
	}
	if r := c.do(lead, node.Request{Compaction: &pb.CompactionRequest{Revision: 3}}); r.Err != nil {
		t.Fatalf("compact: %v", r.Err)
	}
	if r := c.do(c.follower(), node.Request{Range: &pb.RangeRequest{Key: []byte("a"), Revision: 2}}); !errors.Is(r.Err, mvcc.ErrCompacted) {
		t.Fatalf("read below the compaction on a follower: %v", r.Err)
	}
}

func TestTxnCompareAndSwap(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader()
	c.do(lead, put("k", "old"))
	cas := func(expect, next string) *pb.TxnResponse {
		r := c.do(c.follower(), node.Request{Txn: &pb.TxnRequest{
			Compare: []*pb.Compare{{Key: []byte("k"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL,
				TargetUnion: &pb.Compare_Value{Value: []byte(expect)}}},
			Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("k"), Value: []byte(next)}}}},
			Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("k")}}}},
		}})
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		return r.Txn
	}
	if !cas("old", "new").Succeeded {
		t.Fatal("cas from the current value failed")
	}
	lost := cas("old", "newer")
	if lost.Succeeded || string(lost.Responses[0].GetResponseRange().Kvs[0].Value) != "new" {
		t.Fatalf("cas from a stale value: %+v", lost)
	}
}

func TestRequestErrors(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader()
	ops := make([]*pb.RequestOp, 129)
	for i := range ops {
		ops[i] = &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(fmt.Sprint(i))}}}
	}
	dup := []*pb.RequestOp{
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("x")}}},
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("x")}}},
	}
	for _, tc := range []struct {
		name string
		req  node.Request
		want error
	}{
		{"empty key", put("", "v"), mvcc.ErrEmptyKey},
		{"empty range key", get(""), mvcc.ErrEmptyKey},
		{"too many txn ops", node.Request{Txn: &pb.TxnRequest{Success: ops}}, mvcc.ErrTooManyOps},
		{"duplicate key in txn", node.Request{Txn: &pb.TxnRequest{Success: dup}}, mvcc.ErrDuplicateKey},
		{"too large", put("big", string(make([]byte, node.DefaultMaxRequestBytes+1))), node.ErrRequestTooLarge},
		{"unknown lease", node.Request{Put: &pb.PutRequest{Key: []byte("k"), Lease: 7}}, node.ErrLeaseNotFound},
		{"no operation", node.Request{}, node.ErrEmptyRequest},
		{"update an unknown member", node.Request{MemberUpdate: &pb.MemberUpdateRequest{ID: 12345, PeerURLs: []string{"http://x:1"}}}, node.ErrMemberNotFound},
	} {
		if r := c.do(lead, tc.req); !errors.Is(r.Err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, r.Err, tc.want)
		}
	}
}

// TestNoLeaderIsADefiniteFailure: an isolated member that knows no leader
// refuses at once, and the error says nothing happened.
func TestNoLeaderIsADefiniteFailure(t *testing.T) {
	c := newCluster(t, 3)
	f := c.follower()
	c.cut[f] = true
	c.tick(40) // CheckQuorum and election timeouts pass; the follower forgets the leader
	if c.nodes[f].Lead() != 0 {
		t.Fatalf("the cut-off follower still believes in leader %x after 40 ticks", c.nodes[f].Lead())
	}
	r := c.do(f, put("a", "1"))
	if !errors.Is(r.Err, node.ErrNoLeader) || node.OutcomeUnknown(r.Err) {
		t.Fatalf("got %v (unknown=%v), want ErrNoLeader, a known outcome", r.Err, node.OutcomeUnknown(r.Err))
	}
}

// TestLeaderChangeLeavesWritesUnknown: a write in flight when the leader
// changes is answered with an unknown-outcome error, never success or a
// definite failure.
func TestLeaderChangeLeavesWritesUnknown(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader()
	c.cut[lead] = true
	c.nextReq++
	id := c.nextReq
	c.nodes[lead].Submit(node.Request{ID: id, Put: &pb.PutRequest{Key: []byte("a"), Value: []byte("1")}})
	for range 60 {
		c.tick(1)
		if _, ok := c.replies[id]; ok {
			break
		}
	}
	r, ok := c.replies[id]
	if !ok {
		t.Fatal("the cut-off leader never answered")
	}
	if !node.OutcomeUnknown(r.Err) {
		t.Fatalf("got %v: a write on a leader that lost its quorum must be unknown", r.Err)
	}
}

func TestStepRejectsStrangers(t *testing.T) {
	c := newCluster(t, 3)
	lead, f := c.leader(), c.follower()
	msg := &raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(), To: &f, From: &lead}
	if err := c.nodes[f].Step(node.Envelope{ClusterID: c.cid + 1, Message: msg}); !errors.Is(err, node.ErrClusterMismatch) {
		t.Errorf("another cluster's message: %v", err)
	}
	if err := c.nodes[lead].Step(node.Envelope{ClusterID: c.cid, Message: msg}); !errors.Is(err, node.ErrWrongMember) {
		t.Errorf("a message for another member: %v", err)
	}
}

// TestRestartAppliesNothingTwice: a restarted member replays its log from
// raft's point of view, but the backend's consistent index keeps every
// entry from being applied again; it then catches up on what it missed.
func TestRestartAppliesNothingTwice(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader()
	for i := range 5 {
		c.do(lead, put("k", fmt.Sprint(i)))
	}
	f := c.follower()
	before := c.nodes[f].Status()
	h1, _, rev1 := c.nodes[f].HashKV()
	delete(c.nodes, f)
	c.do(lead, put("k", "while-down"))
	c.start(f)
	c.settle()
	st := c.nodes[f].Status()
	if st.Applied < before.Applied {
		t.Fatalf("restart lost applied entries: %d < %d", st.Applied, before.Applied)
	}
	c.tick(5)
	g := c.do(f, node.Request{Range: &pb.RangeRequest{Key: []byte("k"), Revision: rev1}})
	if g.Err != nil || string(g.Range.Kvs[0].Value) != "4" || g.Range.Kvs[0].Version != 5 {
		t.Fatalf("at the old revision after restart: %v %v (version must stay 5: nothing applied twice)", g.Err, g.Range)
	}
	g = c.do(f, get("k"))
	if string(g.Range.Kvs[0].Value) != "while-down" || g.Range.Kvs[0].Version != 6 {
		t.Fatalf("after catching up: %v", g.Range.Kvs)
	}
	hl, _, _ := c.nodes[lead].HashKV()
	hf, _, _ := c.nodes[f].HashKV()
	if hl != hf || h1 == hl {
		t.Fatalf("hashes: leader %x, restarted follower %x (before %x)", hl, hf, h1)
	}
}

// TestMemberUpdateIsReplicated: member update is a conf change; once
// applied, every member sends to the new peer URL.
func TestMemberUpdateIsReplicated(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader()
	f := c.follower()
	const moved = "http://127.0.0.9:2380"
	r := c.do(lead, node.Request{MemberUpdate: &pb.MemberUpdateRequest{ID: f, PeerURLs: []string{moved}}})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	c.tick(2)
	for _, id := range c.ids {
		if url, _ := c.nodes[id].PeerURL(f); url != moved {
			t.Errorf("member %x sends to %q, want %q", id, url, moved)
		}
	}
	taken := c.initial[slices.IndexFunc(c.initial, func(m node.Member) bool { return m.ID == lead })].PeerURLs
	r = c.do(lead, node.Request{MemberUpdate: &pb.MemberUpdateRequest{ID: f, PeerURLs: taken}})
	if !errors.Is(r.Err, node.ErrPeerURLExist) {
		t.Fatalf("taking the leader's URL: %v", r.Err)
	}
	list := c.do(f, node.Request{MemberList: &pb.MemberListRequest{}})
	if len(list.MemberList.Members) != 3 {
		t.Fatalf("member list: %v", list.MemberList.Members)
	}
}

// TestMembersPublishClientURLs: a member's name and client URLs reach the
// replicated membership through raft, as etcd publishes them.
func TestMembersPublishClientURLs(t *testing.T) {
	c := newCluster(t, 1)
	id := c.ids[0]
	c.logs[id], c.bes[id] = node.NewMemoryLog(), backend.NewMemory()
	n, err := node.New(node.Config{ID: id, ClusterID: c.cid, InitialMembers: c.initial, Name: "m1",
		ClientURLs: []string{"http://127.0.0.1:2379"}, Log: c.logs[id], Backend: c.bes[id]})
	if err != nil {
		t.Fatal(err)
	}
	c.nodes[id] = n
	c.leader()
	c.tick(3)
	m, _ := n.Member(id)
	if !slices.Equal(m.ClientURLs, []string{"http://127.0.0.1:2379"}) {
		t.Fatalf("member %+v: client URLs not published", m)
	}
}

// TestDuplicateProposalAppliedOnce: a proposal the network delivers twice
// is appended twice by the leader, but applied once: the second copy must
// not undo a later write (see dedupe.go). Found by flaky-network.yaml.
func TestDuplicateProposalAppliedOnce(t *testing.T) {
	c := newCluster(t, 3)
	lead, f := c.leader(), c.follower()
	c.dupProp = true
	c.do(f, put("k", "first")) // forwarded to the leader, twice
	c.dupProp = false
	last := c.do(lead, put("k", "second"))
	c.tick(2)
	for _, id := range c.ids {
		g := c.do(id, node.Request{Range: &pb.RangeRequest{Key: []byte("k"), Serializable: true}})
		kv := g.Range.Kvs[0]
		if string(kv.Value) != "second" || kv.Version != 2 || kv.ModRevision != last.Put.Header.Revision {
			t.Errorf("member %x: %s version %d mod %d; want second, version 2, mod %d",
				id, kv.Value, kv.Version, kv.ModRevision, last.Put.Header.Revision)
		}
		if got := c.nodes[id].Status().DuplicatesDropped; got != 1 {
			t.Errorf("member %x dropped %d duplicates, want 1", id, got)
		}
	}
}

// TestSnapshotCatchUp: a follower cut off while the others compact their
// logs past it can only catch up from a snapshot; it installs one, holds the
// same state as the leader, and restarts from it.
func TestSnapshotCatchUp(t *testing.T) {
	c := newClusterTuned(t, 3, func(cfg *node.Config) { cfg.SnapshotCount, cfg.SnapshotCatchUpEntries = 10, 2 })
	lead := c.leader()
	f := c.follower()
	c.cut[f] = true
	for i := range 40 {
		if r := c.do(lead, put(fmt.Sprintf("k%d", i%7), fmt.Sprint(i))); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if st := c.nodes[lead].Status(); st.Snapshots == 0 || st.SnapshotIndex < 20 {
		t.Fatalf("leader status %+v: want snapshots taken", st)
	}
	if first, _ := c.logs[lead].FirstIndex(); first <= c.nodes[f].Status().Applied+1 {
		t.Fatalf("the leader's log still starts at %d; the follower could catch up without a snapshot", first)
	}
	delete(c.cut, f)
	c.tick(10)
	st := c.nodes[f].Status()
	if st.SnapshotsInstalled == 0 {
		t.Fatalf("follower status %+v: no snapshot installed", st)
	}
	hl, _, revl := c.nodes[lead].HashKV()
	hf, _, revf := c.nodes[f].HashKV()
	if hl != hf || revl != revf {
		t.Fatalf("after catch-up: leader %08x at %d, follower %08x at %d", hl, revl, hf, revf)
	}
	if members := c.nodes[f].Members(); len(members) != 3 {
		t.Fatalf("membership after the snapshot: %v", members)
	}
	// A restart comes back from the installed snapshot and the log after it.
	delete(c.nodes, f)
	c.start(f)
	c.tick(3)
	g := c.do(f, node.Request{Range: &pb.RangeRequest{Key: []byte("k5"), Serializable: true}})
	if g.Err != nil || string(g.Range.Kvs[0].Value) != "33" {
		t.Fatalf("after restart: %v %v", g.Err, g.Range)
	}
	if h, _, _ := c.nodes[f].HashKV(); h != hl {
		t.Fatalf("after restart the hash is %08x, want %08x", h, hl)
	}
}

// TestPrepareSendsLeaderAppendsEarly: Prepare hands out a leader's appends
// for a new proposal before Process saves them, and Process then does not
// send them again; a follower's Prepare hands out nothing (its replies
// depend on its save). The write still completes.
func TestPrepareSendsLeaderAppendsEarly(t *testing.T) {
	c := newCluster(t, 3)
	lead, follower := c.leader(), c.follower()
	ln := c.nodes[lead]
	req := put("early", "1")
	req.ID = 7001
	ln.Submit(req)
	early := ln.Prepare()
	apps := 0
	for _, env := range early {
		if env.Message.GetType() == raftpb.MessageType_MsgApp && len(env.Message.GetEntries()) > 0 {
			apps++
		}
	}
	if apps != 2 {
		t.Fatalf("the leader's Prepare handed out %d appends with entries, want one per follower: %v", apps, early)
	}
	out := ln.Process()
	for _, env := range out.Messages {
		if env.Message.GetType() == raftpb.MessageType_MsgApp && len(env.Message.GetEntries()) > 0 {
			t.Fatalf("Process sent an append Prepare had already handed out: %v", env.Message)
		}
	}
	// The followers take the early appends; their own answers wait for
	// their save, so Prepare hands them nothing.
	for _, env := range early {
		if err := c.nodes[env.Message.GetTo()].Step(env); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.nodes[follower].Prepare(); len(got) != 0 {
		t.Fatalf("a follower's Prepare handed out %v", got)
	}
	c.settle()
	if rep, ok := c.replies[7001]; !ok || rep.Err != nil {
		t.Fatalf("the write whose appends went early: %+v (answered %v)", rep, ok)
	}
}
