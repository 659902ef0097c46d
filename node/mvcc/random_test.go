package mvcc_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node/backend"
	"github.com/plumbdb/plumb/node/mvcc"
)

var (
	randomSeeds = flag.Int("mvcc.seeds", 30, "seeds TestRandomized runs")
	randomSeed  = flag.Uint64("mvcc.seed", 0, "run TestRandomized with this seed only")
	randomOps   = flag.Int("mvcc.ops", 400, "operations per seed in TestRandomized")
)

// TestRandomized applies one random operation sequence to four stores and a
// naive model:
//
//   - plain never compacts;
//   - compacted compacts at random points;
//   - twin compacts at the same points and is reopened from its backend at
//     random points (a restart);
//   - reopened never compacts and is reopened at random points.
//
// Every answer must equal the model's; current ranges must agree; ranges at
// every revision the compacted stores keep must agree with plain's; and
// hashes must be equal between stores with the same compaction points
// (compacted and twin; plain and reopened), and their backends identical.
func TestRandomized(t *testing.T) {
	n := *randomSeeds
	if testing.Short() {
		n = min(n, 5)
	}
	seeds := make([]uint64, 0, n)
	if *randomSeed != 0 {
		seeds = append(seeds, *randomSeed)
	} else {
		for i := range n {
			seeds = append(seeds, uint64(i+1))
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Logf("reproduce with: go test ./node/mvcc -run 'TestRandomized' -mvcc.seed=%d -mvcc.ops=%d", seed, *randomOps)
			runRandomized(t, seed, *randomOps)
		})
	}
}

type randomRun struct {
	t       *testing.T
	rng     *rand.Rand
	m       *model
	plain   *harness
	comp    *harness
	twin    *harness
	reopen  *harness
	applied int
}

func runRandomized(t *testing.T, seed uint64, n int) {
	r := &randomRun{
		t:      t,
		rng:    rand.New(rand.NewPCG(seed, 0x706c756d62)),
		m:      newModel(),
		plain:  newHarness(t),
		comp:   newHarness(t),
		twin:   newHarness(t),
		reopen: newHarness(t),
	}
	for r.applied = 0; r.applied < n; r.applied++ {
		switch x := r.rng.IntN(100); {
		case x < 6:
			r.compact()
		case x < 9:
			r.restart(r.twin)
		case x < 11:
			r.restart(r.reopen)
		case x < 16:
			r.checkHistory(r.sampleRevisions(4))
		default:
			r.write(r.randomRequest())
		}
		r.checkCurrent()
	}
	r.checkHistory(r.allRevisions())
	r.checkHashes()
	sameBackends(t, r.comp.be, r.twin.be)
	sameBackends(t, r.plain.be, r.reopen.be)
}

func (r *randomRun) stores() []*harness { return []*harness{r.plain, r.comp, r.twin, r.reopen} }

func (r *randomRun) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("op %d: "+format, append([]any{r.applied}, args...)...)
}

// write applies a request to the model and every store.
func (r *randomRun) write(op any) {
	r.t.Helper()
	var want proto.Message
	var wantErr error
	switch op := op.(type) {
	case *pb.PutRequest:
		want, wantErr = r.m.Put(op)
	case *pb.DeleteRangeRequest:
		want = r.m.DeleteRange(op)
	case *pb.TxnRequest:
		want, wantErr = r.m.Txn(op)
	}
	for _, h := range r.stores() {
		got, err := h.do(op)
		if !errors.Is(err, wantErr) || (wantErr == nil && err != nil) {
			r.fatalf("%s: error %v; model says %v", describe(op), err, wantErr)
		}
		if wantErr == nil && !proto.Equal(got, want) {
			r.fatalf("%s:\n got %s\nwant %s", describe(op), text(got), text(want))
		}
	}
}

func (r *randomRun) compact() {
	s := r.comp.s
	if s.CompactRev() >= s.Rev() {
		return
	}
	lo := max(s.CompactRev()+1, 1)
	rev := lo + r.rng.Int64N(s.Rev()-lo+1)
	for _, h := range []*harness{r.comp, r.twin} {
		if _, err := h.do(compact(rev)); err != nil {
			r.fatalf("compact(%d): %v", rev, err)
		}
	}
	r.checkHashes()
}

func (r *randomRun) restart(h *harness) {
	s, err := mvcc.Open(h.be)
	if err != nil {
		r.fatalf("reopen: %v", err)
	}
	h.s = s
	r.checkHashes()
}

func (r *randomRun) checkCurrent() {
	r.t.Helper()
	want := r.m.all()
	for _, h := range r.stores() {
		if h.s.Rev() != r.m.rev {
			r.fatalf("Rev %d; model %d", h.s.Rev(), r.m.rev)
		}
		got, err := h.s.Range(everything(0))
		if err != nil || !proto.Equal(got, want) {
			r.fatalf("current state %v:\n got %s\nwant %s", err, text(got), text(want))
		}
	}
}

func (r *randomRun) allRevisions() []int64 {
	revs := make([]int64, 0, r.m.rev)
	for rev := int64(1); rev <= r.m.rev; rev++ {
		revs = append(revs, rev)
	}
	return revs
}

func (r *randomRun) sampleRevisions(n int) []int64 {
	revs := make([]int64, n)
	for i := range revs {
		revs[i] = 1 + r.rng.Int64N(r.m.rev)
	}
	return revs
}

// checkHistory compares the stores at the given revisions: those the
// compacted stores keep must read as in the uncompacted ones, and those
// below the compaction fail with ErrCompacted.
func (r *randomRun) checkHistory(revs []int64) {
	r.t.Helper()
	for _, rev := range revs {
		want, err := r.plain.s.Range(everything(rev))
		if err != nil {
			r.fatalf("plain Range at %d: %v", rev, err)
		}
		for _, h := range r.stores() {
			got, err := h.s.Range(everything(rev))
			if rev < h.s.CompactRev() {
				if !errors.Is(err, mvcc.ErrCompacted) {
					r.fatalf("Range at %d below compaction %d: %v", rev, h.s.CompactRev(), err)
				}
				continue
			}
			if err != nil || !proto.Equal(got, want) {
				r.fatalf("Range at %d (compacted at %d): %v\n got %s\nwant %s", rev, h.s.CompactRev(), err, text(got), text(want))
			}
		}
	}
}

func (r *randomRun) checkHashes() {
	r.t.Helper()
	for _, pair := range [][2]*harness{{r.comp, r.twin}, {r.plain, r.reopen}} {
		a, b := pair[0].s, pair[1].s
		ha, ca, ra := a.Hash()
		hb, cb, rb := b.Hash()
		if ha != hb || ca != cb || ra != rb {
			r.fatalf("Hash %x/%d/%d vs %x/%d/%d", ha, ca, ra, hb, cb, rb)
		}
		// And at a random revision still kept.
		lo := max(a.CompactRev()+1, 1)
		if lo <= a.Rev() {
			rev := lo + r.rng.Int64N(a.Rev()-lo+1)
			ha, _, _, erra := a.HashByRev(rev)
			hb, _, _, errb := b.HashByRev(rev)
			if erra != nil || errb != nil || ha != hb {
				r.fatalf("HashByRev(%d): %x %v vs %x %v", rev, ha, erra, hb, errb)
			}
		}
	}
	// Before the first compaction, all four agree.
	if r.comp.s.CompactRev() == -1 {
		h1, _, _ := r.plain.s.Hash()
		h2, _, _ := r.comp.s.Hash()
		if h1 != h2 {
			r.fatalf("uncompacted hashes differ: %x vs %x", h1, h2)
		}
	}
}

// sameBackends fails unless two Memory backends hold the same key bucket.
func sameBackends(t *testing.T, a, b *backend.Memory) {
	t.Helper()
	dump := func(m *backend.Memory) [][]byte {
		var out [][]byte
		if err := m.ForEach([]byte("key"), func(k, v []byte) error {
			out = append(out, append(bytes.Clone(k), v...))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	da, db := dump(a), dump(b)
	if len(da) != len(db) {
		t.Fatalf("backends hold %d and %d revisions", len(da), len(db))
	}
	for i := range da {
		if !bytes.Equal(da[i], db[i]) {
			t.Fatalf("backends differ at revision %d: %x vs %x", i, da[i], db[i])
		}
	}
}

// Random requests over a small key space, so they collide.

var randomKeys = []string{"a", "b", "c", "d", "e", "f", "g", "h"}

func (r *randomRun) key() []byte { return []byte(randomKeys[r.rng.IntN(len(randomKeys))]) }

func (r *randomRun) value() []byte {
	if r.rng.IntN(10) == 0 {
		return nil
	}
	return []byte(fmt.Sprint("v", r.rng.IntN(4)))
}

// rangeEnd is empty (one key), "\x00" (from the key on) or a later key.
func (r *randomRun) rangeEnd(key []byte) []byte {
	switch x := r.rng.IntN(10); {
	case x < 5:
		return nil
	case x < 7:
		return []byte{0}
	default:
		return append(bytes.Clone(key), byte('a'+r.rng.IntN(4)))
	}
}

func (r *randomRun) randomRequest() any {
	switch x := r.rng.IntN(10); {
	case x < 5:
		return r.randomPut()
	case x < 7:
		return r.randomDelete()
	default:
		for {
			t := r.randomTxn(2)
			// Mostly valid transactions, as the node would let through;
			// sometimes one etcd would refuse, which the store must still
			// execute like etcd's state machine.
			if mvcc.ValidateTxn(t, 128) == nil || r.rng.IntN(4) == 0 {
				return t
			}
		}
	}
}

func (r *randomRun) randomPut() *pb.PutRequest {
	p := &pb.PutRequest{Key: r.key(), Value: r.value(), PrevKv: r.rng.IntN(3) == 0}
	if r.rng.IntN(3) == 0 {
		p.Lease = int64(1 + r.rng.IntN(3))
	}
	if r.rng.IntN(8) == 0 {
		p.IgnoreValue, p.Value = true, nil
	}
	if r.rng.IntN(8) == 0 {
		p.IgnoreLease, p.Lease = true, 0
	}
	return p
}

func (r *randomRun) randomDelete() *pb.DeleteRangeRequest {
	key := r.key()
	return &pb.DeleteRangeRequest{Key: key, RangeEnd: r.rangeEnd(key), PrevKv: r.rng.IntN(2) == 0}
}

func (r *randomRun) randomCompare() *pb.Compare {
	c := &pb.Compare{Key: r.key(), Result: pb.Compare_CompareResult(r.rng.IntN(4))}
	if r.rng.IntN(5) == 0 {
		c.RangeEnd = r.rangeEnd(c.Key)
	}
	n := r.rng.Int64N(r.m.rev + 2)
	switch r.rng.IntN(5) {
	case 0:
		c.Target, c.TargetUnion = pb.Compare_VERSION, &pb.Compare_Version{Version: r.rng.Int64N(4)}
	case 1:
		c.Target, c.TargetUnion = pb.Compare_CREATE, &pb.Compare_CreateRevision{CreateRevision: n}
	case 2:
		c.Target, c.TargetUnion = pb.Compare_MOD, &pb.Compare_ModRevision{ModRevision: n}
	case 3:
		c.Target, c.TargetUnion = pb.Compare_VALUE, &pb.Compare_Value{Value: r.value()}
	default:
		c.Target, c.TargetUnion = pb.Compare_LEASE, &pb.Compare_Lease{Lease: r.rng.Int64N(4)}
	}
	return c
}

func (r *randomRun) randomOps(depth int) []*pb.RequestOp {
	var out []*pb.RequestOp
	for range r.rng.IntN(4) {
		switch x := r.rng.IntN(10); {
		case x < 4:
			out = append(out, opPut(r.randomPut()))
		case x < 6:
			out = append(out, opDel(r.randomDelete()))
		case x < 9 || depth == 0:
			key := r.key()
			out = append(out, opRange(&pb.RangeRequest{Key: key, RangeEnd: r.rangeEnd(key)}))
		default:
			out = append(out, opTxn(r.randomTxn(depth-1)))
		}
	}
	return out
}

func (r *randomRun) randomTxn(depth int) *pb.TxnRequest {
	t := &pb.TxnRequest{}
	for range r.rng.IntN(3) {
		t.Compare = append(t.Compare, r.randomCompare())
	}
	t.Success = r.randomOps(depth)
	t.Failure = r.randomOps(depth)
	return t
}
