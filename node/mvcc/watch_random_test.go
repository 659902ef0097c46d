package mvcc_test

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node/mvcc"
)

var (
	watchSeeds = flag.Int("mvcc.watchseeds", 40, "seeds TestWatchRandomized runs")
	watchSeed  = flag.Uint64("mvcc.watchseed", 0, "run TestWatchRandomized with this seed only")
	watchOps   = flag.Int("mvcc.watchops", 500, "steps per seed in TestWatchRandomized")
)

// TestWatchRandomized interleaves random writes (alone, batched, and in
// batches rolled back), compactions, reopenings that carry the watchers
// over, and random watchers (key, range, prefix, from key on; start in the
// past, now or the future; prev_kv; filters) created, canceled, drained,
// asked for progress and handed back (Defer) at random moments, under
// small random limits. Each watcher's stream must equal what replaying the
// history of a never-compacted twin store gives for its span and filters,
// from its start to the end (or to its cancellation, which must name the
// store's compaction revision and come only when the watcher was behind
// it); every response must leave the watcher current to its Revision,
// with nothing of a later revision.
func TestWatchRandomized(t *testing.T) {
	n := *watchSeeds
	if testing.Short() {
		n = min(n, 5)
	}
	seeds := make([]uint64, 0, n)
	if *watchSeed != 0 {
		seeds = append(seeds, *watchSeed)
	} else {
		for i := range n {
			seeds = append(seeds, uint64(i+1))
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Logf("reproduce with: go test ./node/mvcc -run 'TestWatchRandomized' -mvcc.watchseed=%d -mvcc.watchops=%d", seed, *watchOps)
			runWatchRandomized(t, seed, *watchOps)
		})
	}
}

type watchRun struct {
	t     *testing.T
	rng   *rand.Rand
	gen   *randomRun // requests
	plain *harness   // the history: never compacted, never watched
	ws    *harness   // the watched store
	step  int

	history []*mvccpb.Event // every event of plain, PrevKv filled
	histRev int64
	twice   map[int64]bool // revisions that changed a key twice: not compacted at (see report)

	watchers map[mvcc.WatchID]*watchState
	limits   mvcc.WatchLimits

	responses, compacted, deferred int
}

type watchState struct {
	id        mvcc.WatchID
	req       mvcc.WatchRequest
	start     int64
	cur       int64 // the last response's Revision: every event up to it delivered
	next      int   // index in history after the last event delivered
	delivered int
	canceled  bool
}

// current is the revision up to which the watcher has been given
// everything: the last response's, or the one before its start.
func (st *watchState) current() int64 { return max(st.cur, st.start-1) }

func runWatchRandomized(t *testing.T, seed uint64, n int) {
	rng := rand.New(rand.NewPCG(seed, 0x7761746368))
	r := &watchRun{
		t:        t,
		rng:      rng,
		gen:      &randomRun{t: t, rng: rng, m: newModel()},
		plain:    newHarness(t),
		ws:       newHarness(t),
		histRev:  1,
		twice:    map[int64]bool{},
		watchers: map[mvcc.WatchID]*watchState{},
	}
	r.limits = mvcc.WatchLimits{
		Watchers:      1 + rng.IntN(40),
		PendingEvents: 1 + rng.IntN(8),
		SyncRevisions: 1 + rng.IntN(6),
		SyncEvents:    1 + rng.IntN(10),
		SyncWatchers:  1 + rng.IntN(5),
	}
	t.Logf("limits %+v", r.limits)
	r.setLimits(r.limits)
	for r.step = 0; r.step < n; r.step++ {
		switch x := rng.IntN(100); {
		case x < 40:
			r.batch(1, false)
		case x < 48:
			r.batch(2+rng.IntN(3), false)
		case x < 51:
			r.batch(1+rng.IntN(3), true)
		case x < 54:
			r.compact()
		case x < 57:
			r.reopen()
		case x < 72:
			r.watch()
		case x < 74:
			r.cancel()
		case x < 79:
			r.progress()
		default:
			r.drain(rng.IntN(5) == 0)
		}
	}
	for range 10_000 {
		rs := r.ws.s.WatchResponses()
		r.deliver(rs)
		if _, unsynced := r.ws.s.Watchers(); len(rs) == 0 && unsynced == 0 {
			break
		}
	}
	delivered, canceled := 0, 0
	for _, st := range r.sorted() {
		delivered += st.delivered
		if st.canceled {
			canceled++
			continue
		}
		if i := r.nextMatch(st, st.next); i < len(r.history) {
			r.fatalf("watcher %d (%+v from %d) never got %s", st.id, st.req, st.start, fmtEvent(r.history[i]))
		}
	}
	t.Logf("%d revisions, %d events; %d watchers (%d compacted, %d canceled) were given %d events in %d responses; %d deferred",
		r.histRev, len(r.history), len(r.watchers), r.compacted, canceled-r.compacted, delivered, r.responses, r.deferred)
}

func (r *watchRun) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("step %d: "+format, append([]any{r.step}, args...)...)
}

func (r *watchRun) setLimits(l mvcc.WatchLimits) {
	if err := r.ws.s.SetWatchLimits(l); err != nil {
		r.fatalf("SetWatchLimits: %v", err)
	}
}

func (r *watchRun) sorted() []*watchState {
	out := make([]*watchState, 0, len(r.watchers))
	for _, st := range r.watchers {
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b *watchState) int { return int(a.id - b.id) })
	return out
}

// batch applies k random requests in one batch to both stores, or, when
// rollback, to the watched store only, and rolls that batch back.
func (r *watchRun) batch(k int, rollback bool) {
	r.t.Helper()
	reqs := make([]any, k)
	for i := range reqs {
		r.gen.m.rev = r.plain.s.Rev()
		reqs[i] = r.gen.randomRequest()
	}
	targets := []*harness{r.plain, r.ws}
	if rollback {
		targets = targets[1:]
	}
	var errs [2][]error
	for j, h := range targets {
		b := h.be.Begin()
		w := h.s.Write(b)
		for _, req := range reqs {
			var err error
			switch req := req.(type) {
			case *pb.PutRequest:
				_, err = w.Put(req)
			case *pb.DeleteRangeRequest:
				_, err = w.DeleteRange(req)
			case *pb.TxnRequest:
				_, err = w.Txn(req)
			}
			errs[j] = append(errs[j], err)
		}
		if rollback {
			b.Rollback()
			r.reopen()
			return
		}
		if err := b.Commit(); err != nil {
			r.fatalf("commit: %v", err)
		}
		h.s.Committed()
	}
	for i := range reqs {
		if (errs[0][i] == nil) != (errs[1][i] == nil) {
			r.fatalf("%s: %v on one store, %v on the other", describe(reqs[i]), errs[0][i], errs[1][i])
		}
	}
	if r.plain.s.Rev() != r.ws.s.Rev() {
		r.fatalf("revisions %d and %d", r.plain.s.Rev(), r.ws.s.Rev())
	}
	r.readHistory()
}

// readHistory appends plain's new revisions to the history, in order.
func (r *watchRun) readHistory() {
	var evs []*mvccpb.Event
	seen := map[string]bool{}
	last := r.histRev
	err := r.plain.be.ForEach([]byte("key"), func(k, v []byte) error {
		main := int64(binary.BigEndian.Uint64(k[:8]))
		if main <= r.histRev {
			return nil
		}
		if main != last {
			clear(seen)
			last = main
		}
		kv := &mvccpb.KeyValue{}
		if err := proto.Unmarshal(v, kv); err != nil {
			return err
		}
		ev := &mvccpb.Event{Type: mvccpb.PUT, Kv: kv}
		if len(k) == 18 && k[17] == 't' {
			ev.Type, ev.Kv = mvccpb.DELETE, &mvccpb.KeyValue{Key: kv.Key, ModRevision: main}
		}
		if seen[string(kv.Key)] {
			r.twice[main] = true
		}
		seen[string(kv.Key)] = true
		prev, err := r.plain.s.Range(getAt(string(kv.Key), main-1))
		if err != nil {
			return err
		}
		// etcd reads no prev_kv for an event that creates the key.
		if len(prev.Kvs) == 1 && !(ev.Type == mvccpb.PUT && kv.CreateRevision == main) {
			ev.PrevKv = prev.Kvs[0]
		}
		evs = append(evs, ev)
		return nil
	})
	if err != nil {
		r.fatalf("read history: %v", err)
	}
	r.history = append(r.history, evs...)
	r.histRev = r.plain.s.Rev()
}

func (r *watchRun) compact() {
	s := r.ws.s
	lo := max(s.CompactRev()+1, 1)
	if lo > s.Rev() {
		return
	}
	// Mostly well behind the head, sometimes right at it.
	rev := lo + r.rng.Int64N(s.Rev()-lo+1)
	if r.rng.IntN(4) != 0 {
		rev = lo + (rev-lo)/2
	}
	if r.twice[rev] {
		return
	}
	if _, err := r.ws.do(compact(rev)); err != nil {
		r.fatalf("compact(%d): %v", rev, err)
	}
}

// reopen replaces the watched store by one opened from its backend, which
// adopts the watchers (as the node does after a rollback or a snapshot).
func (r *watchRun) reopen() {
	s, err := mvcc.Open(r.ws.be)
	if err != nil {
		r.fatalf("reopen: %v", err)
	}
	s.AdoptWatchers(r.ws.s) // the limits too
	r.ws.s = s
}

func (r *watchRun) watch() {
	req := mvcc.WatchRequest{Key: r.gen.key()}
	switch r.rng.IntN(4) {
	case 0:
	case 1:
		req.End = []byte{0}
	case 2: // a prefix
		req.End = append(bytes.Clone(req.Key[:len(req.Key)-1]), req.Key[len(req.Key)-1]+1)
	default:
		req.End = append(bytes.Clone(req.Key), byte('a'+r.rng.IntN(4)))
	}
	rev := r.ws.s.Rev()
	switch x := r.rng.IntN(10); {
	case x < 3:
	case x < 5:
		req.StartRev = 1 + r.rng.Int64N(rev)
	case x < 8: // near the compaction point, or after it
		lo := max(1, r.ws.s.CompactRev()-1)
		req.StartRev = lo + r.rng.Int64N(rev-lo+1)
	default:
		req.StartRev = rev + 1 + r.rng.Int64N(3)
	}
	req.PrevKV = r.rng.IntN(3) == 0
	req.NoPut = r.rng.IntN(6) == 0
	req.NoDelete = r.rng.IntN(6) == 0
	id, err := r.ws.s.Watch(req)
	if err != nil {
		if n, _ := r.ws.s.Watchers(); n >= r.limits.Watchers {
			return
		}
		r.fatalf("Watch(%+v): %v", req, err)
	}
	start := req.StartRev
	if start == 0 {
		start = rev + 1
	}
	if r.watchers[id] != nil {
		r.fatalf("watch ID %d reused", id)
	}
	r.watchers[id] = &watchState{id: id, req: req, start: start}
}

func (r *watchRun) cancel() {
	live := r.live()
	if len(live) == 0 {
		return
	}
	st := live[r.rng.IntN(len(live))]
	if !r.ws.s.CancelWatch(st.id) {
		r.fatalf("CancelWatch(%d) of a live watcher: false", st.id)
	}
	st.canceled = true
}

func (r *watchRun) live() []*watchState {
	var out []*watchState
	for _, st := range r.sorted() {
		if !st.canceled {
			out = append(out, st)
		}
	}
	return out
}

func (r *watchRun) progress() {
	live := r.live()
	if len(live) == 0 || r.rng.IntN(2) == 0 {
		r.ws.s.RequestProgress()
		return
	}
	r.ws.s.RequestProgress(live[r.rng.IntN(len(live))].id)
}

// drain takes the ready responses; when partial, one watcher's are only
// partly delivered and it is handed back with Defer.
func (r *watchRun) drain(partial bool) {
	rs := r.ws.s.WatchResponses()
	if !partial || len(rs) == 0 {
		r.deliver(rs)
		return
	}
	id := rs[r.rng.IntN(len(rs))].WatchID
	var mine, others []mvcc.WatchResponse
	for _, resp := range rs {
		if resp.WatchID == id {
			mine = append(mine, resp)
		} else {
			others = append(others, resp)
		}
	}
	r.deliver(others)
	if mine[len(mine)-1].Canceled {
		r.deliver(mine)
		return
	}
	k := r.rng.IntN(len(mine))
	r.deliver(mine[:k])
	st := r.watchers[id]
	if err := r.ws.s.Defer(id, st.current()+1); err != nil {
		r.fatalf("Defer(%d, %d): %v", id, st.current()+1, err)
	}
	r.deferred++
}

// nextMatch returns the index of the first event of the history from i on
// that the watcher matches, or len(history).
func (r *watchRun) nextMatch(st *watchState, i int) int {
	for ; i < len(r.history); i++ {
		ev := r.history[i]
		if ev.Kv.ModRevision < st.start || !watchMatches(st.req, ev) {
			continue
		}
		return i
	}
	return i
}

func watchMatches(req mvcc.WatchRequest, ev *mvccpb.Event) bool {
	if (ev.Type == mvccpb.PUT && req.NoPut) || (ev.Type == mvccpb.DELETE && req.NoDelete) {
		return false
	}
	key := ev.Kv.Key
	switch {
	case len(req.End) == 0:
		return bytes.Equal(key, req.Key)
	case bytes.Equal(req.End, []byte{0}):
		return bytes.Compare(key, req.Key) >= 0
	default:
		return bytes.Compare(key, req.Key) >= 0 && bytes.Compare(key, req.End) < 0
	}
}

func (r *watchRun) deliver(rs []mvcc.WatchResponse) {
	r.t.Helper()
	compactRev, rev := r.ws.s.CompactRev(), r.ws.s.Rev()
	r.responses += len(rs)
	for _, resp := range rs {
		st := r.watchers[resp.WatchID]
		switch {
		case st == nil:
			r.fatalf("response for unknown watcher %d", resp.WatchID)
		case st.canceled:
			r.fatalf("response for canceled watcher %d: %s", st.id, fmtResponse(resp, true))
		case resp.Canceled:
			if resp.CompactRevision != compactRev || st.current()+1 >= compactRev {
				r.fatalf("watcher %d (current to %d) canceled with compact revision %d (store compacted at %d)",
					st.id, st.cur, resp.CompactRevision, compactRev)
			}
			st.canceled = true
			r.compacted++
			continue
		case resp.Revision < st.cur || (resp.Revision == st.cur && len(resp.Events) > 0) || resp.Revision > rev:
			r.fatalf("watcher %d current to %d got a response at %d (store at %d): %s", st.id, st.cur, resp.Revision, rev, fmtResponse(resp, true))
		}
		if len(resp.Events) == 0 && resp.Revision != rev {
			r.fatalf("watcher %d: progress at %d; store at %d", st.id, resp.Revision, rev)
		}
		for _, ev := range resp.Events {
			i := r.nextMatch(st, st.next)
			if i == len(r.history) {
				r.fatalf("watcher %d (%+v from %d) got %s; history has nothing more for it", st.id, st.req, st.start, fmtEvent(ev))
			}
			want := r.history[i]
			if ev.Kv.ModRevision > resp.Revision {
				r.fatalf("watcher %d: event %s in a response at %d", st.id, fmtEvent(ev), resp.Revision)
			}
			if ev.Type != want.Type || !proto.Equal(ev.Kv, want.Kv) || !r.samePrev(st, ev, want, compactRev) {
				r.fatalf("watcher %d (%+v from %d), event %d:\n got %s\nwant %s", st.id, st.req, st.start, st.delivered, fmtEvent(ev), fmtEvent(want))
			}
			st.next = i + 1
			st.delivered++
		}
		// Current to resp.Revision: nothing matching up to it is left.
		if i := r.nextMatch(st, st.next); i < len(r.history) && r.history[i].Kv.ModRevision <= resp.Revision {
			r.fatalf("watcher %d (%+v from %d): response %s skipped %s", st.id, st.req, st.start, fmtResponse(resp, true), fmtEvent(r.history[i]))
		}
		st.cur = resp.Revision
	}
}

// samePrev: prev_kv as the history has it, or omitted only when the
// revision before the event is compacted.
func (r *watchRun) samePrev(st *watchState, got, want *mvccpb.Event, compactRev int64) bool {
	switch {
	case !st.req.PrevKV:
		return got.PrevKv == nil
	case got.PrevKv == nil:
		return want.PrevKv == nil || want.Kv.ModRevision-1 < compactRev
	default:
		return proto.Equal(got.PrevKv, want.PrevKv)
	}
}
