package mvcc

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/plumbdb/plumb/node/backend"
)

// view reads the store through r (the committed Backend, or a Write's batch
// to see its own writes) with rev as the current revision.
type view struct {
	s   *Store
	r   backend.Reader
	rev int64
}

// spanEnd turns a request's range_end into the index's span convention
// (etcd's mkGteRange): empty names the single key (nil), "\x00" every key
// from key on (empty, not nil), anything else the end of [key, range_end).
func spanEnd(rangeEnd []byte) []byte {
	switch {
	case len(rangeEnd) == 0:
		return nil
	case len(rangeEnd) == 1 && rangeEnd[0] == 0:
		return []byte{}
	default:
		return rangeEnd
	}
}

type rangeOptions struct {
	limit    int64
	rev      int64 // 0 or less: the view's revision
	count    bool  // count only
	keysOnly bool
}

type rangeResult struct {
	kvs   []*mvccpb.KeyValue
	count int   // keys in the span at the revision, before any limit
	rev   int64 // the view's revision
}

// rangeKeys is etcd's mvcc range: the keys of the span as they were at
// o.rev, read through the view.
func (v view) rangeKeys(key, end []byte, o rangeOptions) (rangeResult, error) {
	rev := o.rev
	if rev > v.rev {
		return rangeResult{}, ErrFutureRev
	}
	if rev <= 0 {
		rev = v.rev
	}
	if rev < v.s.compactRev {
		return rangeResult{}, ErrCompacted
	}
	if o.count {
		return rangeResult{count: v.s.index.countRevisions(key, end, rev), rev: v.rev}, nil
	}
	revs, total := v.s.index.revisions(key, end, rev, int(o.limit))
	if o.limit > 0 && len(revs) > int(o.limit) {
		revs = revs[:o.limit]
	}
	res := rangeResult{count: total, rev: v.rev}
	if len(revs) > 0 {
		res.kvs = make([]*mvccpb.KeyValue, len(revs))
	}
	for i, r := range revs {
		res.kvs[i] = v.readKV(r, o.keysOnly)
	}
	return res, nil
}

// readKV reads the KeyValue a put stored at rev. The index points only at
// stored revisions: a miss is a broken invariant (most likely a read of the
// committed state before the batch of the last Write was committed).
func (v view) readKV(rev revision, keysOnly bool) *mvccpb.KeyValue {
	var buf [markedRevKeyLen]byte
	val, ok := v.r.Get(keyBucket, appendRevKey(buf[:0], rev, false))
	if !ok {
		panic(fmt.Sprintf("mvcc: revision %v is in the index but not in the backend (read before the last batch was committed?)", rev))
	}
	kv, err := decodeKV(val, keysOnly)
	if err != nil {
		panic(fmt.Sprintf("mvcc: revision %v: %v", rev, err))
	}
	return kv
}

// executeRange is etcd's RangeRequest execution on top of rangeKeys: fetch
// (all of it when sorting or filtering, else limit+1 to learn `more`),
// filter by mod/create revision, sort, truncate to limit, strip values for
// keys_only. The Header carries the view's revision.
func (v view) executeRange(r *pb.RangeRequest) (*pb.RangeResponse, error) {
	v.s.ops.Ranges++
	// Values are skipped for keys_only, unless they are the sort key: etcd
	// v3.7 sorts nil values then (in an unspecified order), plumb sorts by
	// the values and drops them afterwards, as etcd did before.
	sortByValue := r.GetSortTarget() == pb.RangeRequest_VALUE
	rr, err := v.rangeKeys(r.GetKey(), spanEnd(r.GetRangeEnd()), rangeOptions{
		limit:    rangeLimit(r),
		rev:      r.GetRevision(),
		count:    r.GetCountOnly(),
		keysOnly: r.GetKeysOnly() && !sortByValue,
	})
	if err != nil {
		return nil, err
	}
	// etcd would panic only now, after the revision checks.
	if err := checkSortTarget(r); err != nil {
		return nil, err
	}
	kvs := filterKVs(rr.kvs, r, v.s.maxCreateByMod)
	sortKVs(kvs, r)
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: rr.rev}, Count: int64(rr.count)}
	if limit := r.GetLimit(); limit > 0 && int64(len(kvs)) > limit {
		kvs = kvs[:limit]
		resp.More = true
	}
	if r.GetKeysOnly() {
		for _, kv := range kvs {
			kv.Value = nil
		}
	}
	resp.Kvs = kvs
	return resp, nil
}

// rangeLimit is how many keys to fetch: everything when results are sorted
// or filtered afterwards, else one more than asked, to set `more`.
func rangeLimit(r *pb.RangeRequest) int64 {
	limit := r.GetLimit()
	if !isDefaultOrdering(r.GetSortTarget(), r.GetSortOrder()) || hasRevisionFilters(r) {
		limit = 0
	}
	if limit > 0 && limit < math.MaxInt64 {
		limit++
	}
	return limit
}

// isDefaultOrdering reports whether the index's order (ascending keys) is
// the requested one.
func isDefaultOrdering(target pb.RangeRequest_SortTarget, order pb.RangeRequest_SortOrder) bool {
	return order == pb.RangeRequest_NONE || (target == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND)
}

func hasRevisionFilters(r *pb.RangeRequest) bool {
	return r.GetMinModRevision() != 0 || r.GetMaxModRevision() != 0 ||
		r.GetMinCreateRevision() != 0 || r.GetMaxCreateRevision() != 0
}

// filterKVs applies a range's revision filters. maxCreateByMod is the
// simulator's planted bug (Store.PlantMaxCreateFiltersMod), false
// everywhere else.
func filterKVs(kvs []*mvccpb.KeyValue, r *pb.RangeRequest, maxCreateByMod bool) []*mvccpb.KeyValue {
	if !hasRevisionFilters(r) {
		return kvs
	}
	minMod, maxMod := r.GetMinModRevision(), r.GetMaxModRevision()
	minCreate, maxCreate := r.GetMinCreateRevision(), r.GetMaxCreateRevision()
	return slices.DeleteFunc(kvs, func(kv *mvccpb.KeyValue) bool {
		created := kv.CreateRevision
		if maxCreateByMod {
			created = kv.ModRevision
		}
		return (maxMod != 0 && kv.ModRevision > maxMod) ||
			(minMod != 0 && kv.ModRevision < minMod) ||
			(maxCreate != 0 && created > maxCreate) ||
			(minCreate != 0 && kv.CreateRevision < minCreate)
	})
}

// PlantMaxCreateFiltersMod plants a bug for the simulator's tests of its
// checks (plant.Bugs.MaxCreateFiltersMod): max_create_revision filters by
// mod revision.
func (s *Store) PlantMaxCreateFiltersMod() { s.maxCreateByMod = true }

// checkSortTarget rejects a sort target etcd does not know (etcd panics).
// Every such request sorts (its order is never the index's), so the check
// does not depend on the order.
func checkSortTarget(r *pb.RangeRequest) error {
	if t := r.GetSortTarget(); t < pb.RangeRequest_KEY || t > pb.RangeRequest_VALUE {
		return fmt.Errorf("%w: %d", ErrSortTarget, t)
	}
	return nil
}

// sortKVs sorts as etcd v3.7 does, with the same algorithm (slices.SortFunc,
// which is deterministic), so ties come out in etcd's order. A target other
// than KEY without an order sorts ascending; an unknown order sorts
// ascending too.
func sortKVs(kvs []*mvccpb.KeyValue, r *pb.RangeRequest) {
	target, order := r.GetSortTarget(), r.GetSortOrder()
	if target != pb.RangeRequest_KEY && order == pb.RangeRequest_NONE {
		order = pb.RangeRequest_ASCEND
	}
	if isDefaultOrdering(target, order) {
		return
	}
	if target == pb.RangeRequest_KEY && order == pb.RangeRequest_DESCEND {
		slices.Reverse(kvs) // keys are unique and ascending already
		return
	}
	var compare func(a, b *mvccpb.KeyValue) int
	switch target {
	case pb.RangeRequest_KEY:
		compare = func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Key, b.Key) }
	case pb.RangeRequest_VERSION:
		compare = func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.Version, b.Version) }
	case pb.RangeRequest_CREATE:
		compare = func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.CreateRevision, b.CreateRevision) }
	case pb.RangeRequest_MOD:
		compare = func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.ModRevision, b.ModRevision) }
	case pb.RangeRequest_VALUE:
		compare = func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Value, b.Value) }
	default:
		panic(fmt.Sprintf("mvcc: unchecked sort target %d", target))
	}
	if order == pb.RangeRequest_DESCEND {
		ascending := compare
		compare = func(a, b *mvccpb.KeyValue) int { return ascending(b, a) }
	}
	slices.SortFunc(kvs, compare)
}
