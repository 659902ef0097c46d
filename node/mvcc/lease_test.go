package mvcc_test

import (
	"fmt"
	"maps"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/node/mvcc"
)

// TestLeaseTracking: a Write reports each committed change to a key's
// lease, nothing for a request that fails; Revoke deletes in one revision;
// Open finds every live key's lease again.
func TestLeaseTracking(t *testing.T) {
	h := newHarness(t)
	h.leases = map[int64]bool{1: true, 2: true}
	tracked := map[string]int64{}
	apply := func(fn func(w *mvcc.Write) error) error {
		b := h.be.Begin()
		w := h.s.Write(b).CheckLeases(func(id int64) bool { return h.leases[id] }).TrackLeases(func(c mvcc.LeaseChange) {
			if c.Lease == 0 {
				delete(tracked, string(c.Key))
			} else {
				tracked[string(c.Key)] = c.Lease
			}
		})
		err := fn(w)
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		return err
	}
	putL := func(k string, lease int64) func(w *mvcc.Write) error {
		return func(w *mvcc.Write) error {
			_, err := w.Put(&pb.PutRequest{Key: []byte(k), Lease: lease})
			return err
		}
	}
	for _, f := range []func(w *mvcc.Write) error{
		putL("a", 1), putL("b", 1), putL("c", 2), putL("d", 0),
		putL("c", 0), // detached
		func(w *mvcc.Write) error {
			_, err := w.Put(&pb.PutRequest{Key: []byte("b"), IgnoreLease: true, Value: []byte("x")})
			return err
		},
		func(w *mvcc.Write) error {
			_, err := w.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("a")})
			return err
		},
		putL("e", 2),
	} {
		if err := apply(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := apply(putL("x", 9)); err == nil {
		t.Fatal("a put with a missing lease succeeded")
	}
	// A txn that fails after its put: nothing reported.
	err := apply(func(w *mvcc.Write) error {
		_, err := w.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{
			opPut(&pb.PutRequest{Key: []byte("f"), Lease: 1}),
			opPut(&pb.PutRequest{Key: []byte("g"), Lease: 9}),
		}})
		return err
	})
	if err == nil {
		t.Fatal("a txn with a missing lease succeeded")
	}
	if want := map[string]int64{"b": 1, "e": 2}; !maps.Equal(tracked, want) {
		t.Fatalf("tracked %v, want %v", tracked, want)
	}
	before := h.s.Rev()
	_ = apply(func(w *mvcc.Write) error {
		if rev := w.Revoke([]string{"e", "b", "gone"}); rev != before+1 {
			return fmt.Errorf("revoke at revision %d, want %d", rev, before+1)
		}
		return nil
	})
	if len(tracked) != 0 {
		t.Fatalf("after the revoke, tracked %v", tracked)
	}
	_ = apply(putL("z", 2))
	s, err := mvcc.Open(h.be)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Leased(), map[string]int64{"z": 2}; !maps.Equal(got, want) {
		t.Fatalf("Leased after reopening: %v, want %v", got, want)
	}
	if rev := h.s.Rev(); rev != before+2 {
		t.Fatalf("revision %d after a revoke and a put from %d", rev, before)
	}
}
