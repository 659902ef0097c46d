package node

import (
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3"

	"github.com/plumbdb/plumb/node/backend"
)

// TestUncommittedEntriesBounded: a leader holds at most
// uncommittedEntriesBytesMax of entries that are not committed; proposals
// past it are dropped by raft and fail at once with ErrProposalDropped, a
// definite outcome. Once the entries commit, proposals are taken again.
func TestUncommittedEntriesBounded(t *testing.T) {
	defer func(v uint64) { uncommittedEntriesBytesMax = v }(uncommittedEntriesBytesMax)
	const boundBytes = 4 << 10
	uncommittedEntriesBytesMax = boundBytes

	member := Member{ID: 1, PeerURLs: []string{"http://127.0.0.1:2380"}}
	n, err := New(Config{ID: 1, ClusterID: 1, InitialMembers: []Member{member}, Log: NewMemoryLog(), Backend: backend.NewMemory()})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		n.Tick()
		if out := n.Process(); out.Err != nil {
			t.Fatal(out.Err)
		}
		if n.Status().State == raft.StateLeader && n.Lead() == 1 {
			break
		}
	}
	if n.Status().State != raft.StateLeader {
		t.Fatal("the one member did not lead")
	}
	n.Process() // its first entries commit

	// A one-member leader commits its entries at Process, once they are
	// saved: until then, every proposal is uncommitted.
	const puts, valueBytes = 10, 1 << 10
	for i := range puts {
		n.Submit(Request{ID: uint64(i + 1), Put: &pb.PutRequest{Key: []byte{'k', byte('0' + i)}, Value: make([]byte, valueBytes)}})
	}
	out := n.Process()
	if out.Err != nil {
		t.Fatal(out.Err)
	}
	var ok, dropped int
	for _, r := range out.Replies {
		switch {
		case r.Err == nil:
			ok++
		case errors.Is(r.Err, ErrProposalDropped) && !OutcomeUnknown(r.Err):
			dropped++
		default:
			t.Errorf("put %d: %v, want success or a definite ErrProposalDropped", r.ID, r.Err)
		}
	}
	if ok+dropped != puts || dropped == 0 || ok == 0 || ok*valueBytes > boundBytes {
		t.Fatalf("%d of %d puts of %d bytes taken and %d dropped under a bound of %d bytes: want some taken, none past the bound, the rest dropped",
			ok, puts, valueBytes, dropped, boundBytes)
	}

	n.Submit(Request{ID: puts + 1, Put: &pb.PutRequest{Key: []byte("after"), Value: make([]byte, valueBytes)}})
	out = n.Process()
	if len(out.Replies) != 1 || out.Replies[0].Err != nil {
		t.Fatalf("a put once the others committed: %+v, want it taken", out.Replies)
	}
}
