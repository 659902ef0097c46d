package mvcc_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/plumbdb/plumb/node/mvcc"
)

// The watch tests write responses as lines: "r5: PUT a=x c2 m5 v2 prev
// a=w m4; DEL b m5", "r7: progress", "r7: compacted 4" (the watch ID is
// left out when a test has one watcher).

func fmtEvent(ev *mvccpb.Event) string {
	var s string
	kv := ev.Kv
	switch ev.Type {
	case mvccpb.PUT:
		s = fmt.Sprintf("PUT %s=%s c%d m%d v%d", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version)
		if kv.Lease != 0 {
			s += fmt.Sprintf(" l%d", kv.Lease)
		}
	case mvccpb.DELETE:
		s = fmt.Sprintf("DEL %s m%d", kv.Key, kv.ModRevision)
		if len(kv.Value) != 0 || kv.CreateRevision != 0 || kv.Version != 0 || kv.Lease != 0 {
			s += fmt.Sprintf(" (unexpected fields %v)", kv)
		}
	}
	if p := ev.PrevKv; p != nil {
		s += fmt.Sprintf(" prev %s=%s m%d", p.Key, p.Value, p.ModRevision)
	}
	return s
}

func fmtResponse(r mvcc.WatchResponse, withID bool) string {
	var b strings.Builder
	if withID {
		fmt.Fprintf(&b, "w%d ", r.WatchID)
	}
	fmt.Fprintf(&b, "r%d: ", r.Revision)
	switch {
	case r.Canceled:
		fmt.Fprintf(&b, "compacted %d", r.CompactRevision)
	case len(r.Events) == 0:
		b.WriteString("progress")
	default:
		evs := make([]string, len(r.Events))
		for i, ev := range r.Events {
			evs[i] = fmtEvent(ev)
		}
		b.WriteString(strings.Join(evs, "; "))
	}
	return b.String()
}

func fmtResponses(rs []mvcc.WatchResponse, withID bool) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmtResponse(r, withID)
	}
	return out
}

// drainAll calls WatchResponses until every watcher is synced and a call
// returns nothing, and returns everything it gave.
func drainAll(t testing.TB, s *mvcc.Store) []mvcc.WatchResponse {
	t.Helper()
	var out []mvcc.WatchResponse
	for range 10_000 {
		rs := s.WatchResponses()
		out = append(out, rs...)
		if _, unsynced := s.Watchers(); len(rs) == 0 && unsynced == 0 {
			return out
		}
	}
	t.Fatal("watchers never caught up")
	return nil
}

func sameLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", what, strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

func mustWatch(t testing.TB, s *mvcc.Store, r mvcc.WatchRequest) mvcc.WatchID {
	t.Helper()
	id, err := s.Watch(r)
	if err != nil {
		t.Fatalf("Watch(%+v): %v", r, err)
	}
	return id
}

func wreq(key, end string, start int64) mvcc.WatchRequest {
	return mvcc.WatchRequest{Key: []byte(key), End: bytesOrNil(end), StartRev: start}
}

func TestWatch(t *testing.T) {
	prevKV := func(r mvcc.WatchRequest) mvcc.WatchRequest { r.PrevKV = true; return r }
	noPut := func(r mvcc.WatchRequest) mvcc.WatchRequest { r.NoPut = true; return r }
	noDelete := func(r mvcc.WatchRequest) mvcc.WatchRequest { r.NoDelete = true; return r }
	tests := []struct {
		name          string
		before, after []any
		req           mvcc.WatchRequest
		want          []string
	}{{
		name:   "key",
		before: []any{put("a", "1")},
		req:    wreq("a", "", 0),
		after:  []any{put("a", "2"), put("b", "1"), del("a"), put("ab", "1")},
		want:   []string{"r3: PUT a=2 c2 m3 v2", "r5: DEL a m5"},
	}, {
		name:  "range [a, c)",
		req:   wreq("a", "c", 0),
		after: []any{put("a", "1"), put("b", "1"), put("c", "1"), put("bz", "1"), put("0", "1")},
		want:  []string{"r2: PUT a=1 c2 m2 v1", "r3: PUT b=1 c3 m3 v1", "r5: PUT bz=1 c5 m5 v1"},
	}, {
		name:  "prefix a (end b)",
		req:   wreq("a", "b", 0),
		after: []any{put("a", "1"), put("ab", "1"), put("b", "1"), put("a\xff", "1"), put("`", "1")},
		want:  []string{"r2: PUT a=1 c2 m2 v1", "r3: PUT ab=1 c3 m3 v1", "r5: PUT a\xff=1 c5 m5 v1"},
	}, {
		name:  "from key on (end \\x00)",
		req:   wreq("b", "\x00", 0),
		after: []any{put("a", "1"), put("b", "1"), put("zzz", "1")},
		want:  []string{"r3: PUT b=1 c3 m3 v1", "r4: PUT zzz=1 c4 m4 v1"},
	}, {
		name:  "every key (empty key, end \\x00)",
		req:   wreq("", "\x00", 0),
		after: []any{put("a", "1"), put("\x00", "1")},
		want:  []string{"r2: PUT a=1 c2 m2 v1", "r3: PUT \x00=1 c3 m3 v1"},
	}, {
		name:   "replay from the past, then live",
		before: []any{put("a", "1"), put("a", "2"), del("a"), put("a", "3")},
		req:    wreq("a", "", 3),
		after:  []any{put("a", "4")},
		want:   []string{"r5: PUT a=2 c2 m3 v2; DEL a m4; PUT a=3 c5 m5 v1", "r6: PUT a=4 c5 m6 v2"},
	}, {
		name:   "replay from revision 1",
		before: []any{put("a", "1"), put("b", "1")},
		req:    wreq("a", "\x00", 1),
		want:   []string{"r3: PUT a=1 c2 m2 v1; PUT b=1 c3 m3 v1"},
	}, {
		name:   "start at the current revision",
		before: []any{put("a", "1"), put("a", "2")},
		req:    wreq("a", "", 3),
		after:  []any{put("a", "3")},
		want:   []string{"r3: PUT a=2 c2 m3 v2", "r4: PUT a=3 c2 m4 v3"},
	}, {
		name:   "start at the next revision",
		before: []any{put("a", "1")},
		req:    wreq("a", "", 3),
		after:  []any{put("a", "2")},
		want:   []string{"r3: PUT a=2 c2 m3 v2"},
	}, {
		name:   "start in the future",
		before: []any{put("a", "1")},
		req:    wreq("a", "", 4),
		after:  []any{put("a", "2"), put("a", "3"), put("a", "4")},
		want:   []string{"r4: PUT a=3 c2 m4 v3", "r5: PUT a=4 c2 m5 v4"},
	}, {
		name:   "prev_kv live",
		before: []any{put("a", "1")},
		req:    prevKV(wreq("a", "", 0)),
		after:  []any{put("a", "2"), del("a"), put("a", "3")},
		want:   []string{"r3: PUT a=2 c2 m3 v2 prev a=1 m2", "r4: DEL a m4 prev a=2 m3", "r5: PUT a=3 c5 m5 v1"},
	}, {
		name:   "prev_kv replayed",
		before: []any{put("a", "1"), put("a", "2"), del("a"), put("a", "3")},
		req:    prevKV(wreq("a", "", 2)),
		want:   []string{"r5: PUT a=1 c2 m2 v1; PUT a=2 c2 m3 v2 prev a=1 m2; DEL a m4 prev a=2 m3; PUT a=3 c5 m5 v1"},
	}, {
		name:  "no put",
		req:   noPut(wreq("a", "c", 0)),
		after: []any{put("a", "1"), put("b", "1"), &pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("c")}},
		want:  []string{"r4: DEL a m4; DEL b m4"},
	}, {
		name:   "no delete, replayed",
		before: []any{put("a", "1"), del("a"), put("a", "2")},
		req:    noDelete(wreq("a", "", 1)),
		after:  []any{del("a"), put("a", "3")},
		want:   []string{"r4: PUT a=1 c2 m2 v1; PUT a=2 c4 m4 v1", "r6: PUT a=3 c6 m6 v1"},
	}, {
		name:   "a txn's puts and deletes in one response, in order",
		before: []any{put("a", "1"), put("b", "1")},
		req:    prevKV(wreq("a", "\x00", 0)),
		after: []any{txn(nil, ops(opPut(put("c", "1")), opDel(del("a")), opPut(put("d", "1")),
			opRange(get("a")), opDel(del("b"))), nil)},
		want: []string{"r4: PUT c=1 c4 m4 v1; DEL a m4 prev a=1 m2; PUT d=1 c4 m4 v1; DEL b m4 prev b=1 m3"},
	}, {
		name:   "a range delete in one response",
		before: []any{put("a", "1"), put("b", "1"), put("c", "1")},
		req:    wreq("a", "\x00", 0),
		after:  []any{&pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte{0}}},
		want:   []string{"r5: DEL a m5; DEL b m5; DEL c m5"},
	}, {
		name:   "a txn that changes nothing publishes nothing",
		before: []any{put("a", "1")},
		req:    wreq("a", "\x00", 0),
		after:  []any{txn(nil, ops(opRange(get("a")), opDel(del("zz"))), nil), put("a", "2")},
		want:   []string{"r3: PUT a=2 c2 m3 v2"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			for _, op := range tc.before {
				h.mustDo(op)
			}
			mustWatch(t, h.s, tc.req)
			got := drainAll(t, h.s)
			for _, op := range tc.after {
				h.mustDo(op)
				// Drain only now and then, so responses wait.
				if h.s.Rev()%2 == 0 {
					got = append(got, h.s.WatchResponses()...)
				}
			}
			got = append(got, drainAll(t, h.s)...)
			sameLines(t, "responses", fmtResponses(got, false), tc.want)
		})
	}
}

func TestWatchValidation(t *testing.T) {
	h := newHarness(t)
	if err := h.s.SetWatchLimits(mvcc.WatchLimits{Watchers: 2, PendingEvents: 1, SyncRevisions: 1, SyncEvents: 1, SyncWatchers: 0}); err == nil {
		t.Error("SetWatchLimits took a zero limit")
	}
	if err := h.s.SetWatchLimits(mvcc.WatchLimits{Watchers: 2, PendingEvents: 1, SyncRevisions: 1, SyncEvents: 1, SyncWatchers: 1}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		req  mvcc.WatchRequest
		want error
	}{
		{wreq("b", "a", 0), mvcc.ErrEmptyWatcherRange},
		{wreq("b", "b", 0), mvcc.ErrEmptyWatcherRange},
		{wreq("a", "", -1), mvcc.ErrNegativeStartRev},
		{wreq("a", "b", 0), nil},
		{wreq("a", "", 100), nil},
		{wreq("a", "", 0), mvcc.ErrTooManyWatchers},
	} {
		if _, err := h.s.Watch(tc.req); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("Watch(%+v): %v; want %v", tc.req, err, tc.want)
		}
	}
	if n, _ := h.s.Watchers(); n != 2 {
		t.Errorf("%d watchers; want 2", n)
	}
}

func TestWatchCancel(t *testing.T) {
	h := newHarness(t)
	a := mustWatch(t, h.s, wreq("a", "", 0))
	b := mustWatch(t, h.s, wreq("a", "", 0))
	h.mustDo(put("a", "1"))
	if !h.s.CancelWatch(a) {
		t.Fatal("CancelWatch of a watcher: false")
	}
	if h.s.CancelWatch(a) || h.s.CancelWatch(42) {
		t.Fatal("CancelWatch of no watcher: true")
	}
	h.mustDo(put("a", "2"))
	sameLines(t, "responses", fmtResponses(drainAll(t, h.s), true),
		[]string{"w1 r2: PUT a=1 c2 m2 v1", "w1 r3: PUT a=2 c2 m3 v2"})
	if err := h.s.Defer(a, 1); !errors.Is(err, mvcc.ErrWatcherNotFound) {
		t.Errorf("Defer of a canceled watcher: %v", err)
	}
	if !h.s.CancelWatch(b) {
		t.Fatal("CancelWatch: false")
	}
	if n, _ := h.s.Watchers(); n != 0 {
		t.Fatalf("%d watchers left", n)
	}
	// IDs are not reused.
	if c := mustWatch(t, h.s, wreq("a", "", 0)); c != 2 {
		t.Errorf("third watcher's ID %d; want 2", c)
	}
}

func TestWatchCompaction(t *testing.T) {
	h := newHarness(t)
	for i := range 5 { // revisions 2..6
		h.mustDo(put("a", fmt.Sprint(i)))
	}
	h.mustDo(put("b", "x")) // 7
	h.mustDo(compact(5))
	behind := mustWatch(t, h.s, wreq("a", "", 4))       // next 4 < 5: canceled
	atCompaction := mustWatch(t, h.s, wreq("a", "", 5)) // served from 5, as etcd
	above := mustWatch(t, h.s, wreq("a", "\x00", 6))    // served
	_ = h.s.SetWatchLimits(mvcc.WatchLimits{Watchers: 10, PendingEvents: 10, SyncRevisions: 2, SyncEvents: 10, SyncWatchers: 3})
	got := h.s.WatchResponses() // revisions 5 and 6
	h.mustDo(put("c", "1"))     // 8
	h.mustDo(compact(8))        // the two still behind, at 7, are compacted
	got = append(got, drainAll(t, h.s)...)
	sameLines(t, "responses", fmtResponses(got, true), []string{
		fmt.Sprintf("w%d r7: compacted 5", behind),
		fmt.Sprintf("w%d r6: PUT a=3 c2 m5 v4; PUT a=4 c2 m6 v5", atCompaction),
		fmt.Sprintf("w%d r6: PUT a=4 c2 m6 v5", above),
		fmt.Sprintf("w%d r8: compacted 8", atCompaction),
		fmt.Sprintf("w%d r8: compacted 8", above),
	})
	if n, _ := h.s.Watchers(); n != 0 {
		t.Errorf("%d watchers left after their compaction", n)
	}
	// A tombstone exactly at the compaction point is served.
	h.mustDo(del("b")) // 9
	h.mustDo(compact(9))
	all := mustWatch(t, h.s, wreq("", "\x00", 9))
	sameLines(t, "tombstone at the compaction", fmtResponses(drainAll(t, h.s), false), []string{"r9: DEL b m9"})
	h.s.CancelWatch(all)
	// And a put at the compaction point, then the history after it.
	h.mustDo(put("d", "1")) // 10
	h.mustDo(put("d", "2")) // 11
	h.mustDo(compact(10))
	mustWatch(t, h.s, wreq("d", "", 10))
	sameLines(t, "a put at the compaction", fmtResponses(drainAll(t, h.s), false), []string{"r11: PUT d=1 c10 m10 v1; PUT d=2 c10 m11 v2"})
}

// TestWatchCompactionPrevKV: prev_kv is omitted when the previous revision
// is compacted, as etcd's server omits it.
func TestWatchCompactionPrevKV(t *testing.T) {
	h := newHarness(t)
	h.mustDo(put("a", "1")) // 2
	h.mustDo(put("a", "2")) // 3
	h.mustDo(compact(3))
	mustWatch(t, h.s, mvcc.WatchRequest{Key: []byte("a"), StartRev: 3, PrevKV: true})
	h.mustDo(put("a", "3")) // 4
	sameLines(t, "responses", fmtResponses(drainAll(t, h.s), false), []string{
		"r4: PUT a=2 c2 m3 v2; PUT a=3 c2 m4 v3 prev a=2 m3",
	})
}

// TestWatchAbortedTxn: a transaction that fails after it began writing
// publishes nothing, and its revision goes to the next write.
func TestWatchAbortedTxn(t *testing.T) {
	h := newHarness(t)
	h.mustDo(put("a", "1"))
	mustWatch(t, h.s, wreq("", "\x00", 0))
	bad := txn(nil, ops(opDel(&pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte{0}}),
		opPut(&pb.PutRequest{Key: []byte("a"), IgnoreValue: true})), nil)
	if _, err := h.do(bad); !errors.Is(err, mvcc.ErrKeyNotFound) {
		t.Fatalf("txn: %v; want ErrKeyNotFound", err)
	}
	if _, err := h.do(&pb.PutRequest{Key: []byte("zz"), IgnoreValue: true}); !errors.Is(err, mvcc.ErrKeyNotFound) {
		t.Fatalf("put: %v; want ErrKeyNotFound", err)
	}
	h.mustDo(put("b", "1"))
	sameLines(t, "responses", fmtResponses(drainAll(t, h.s), false), []string{"r3: PUT b=1 c3 m3 v1"})
}

// TestWatchRolledBackBatch: the events of a batch that is rolled back are
// never published; the watchers move to the reopened Store.
func TestWatchRolledBackBatch(t *testing.T) {
	h := newHarness(t)
	h.mustDo(put("a", "1")) // 2
	live := mustWatch(t, h.s, wreq("a", "", 0))
	past := mustWatch(t, h.s, wreq("a", "", 2))
	b := h.be.Begin()
	w := h.s.Write(b)
	for _, v := range []string{"lost1", "lost2"} {
		if _, err := w.Put(put("a", v)); err != nil {
			t.Fatal(err)
		}
	}
	b.Rollback()
	s, err := mvcc.Open(h.be)
	if err != nil {
		t.Fatal(err)
	}
	s.AdoptWatchers(h.s)
	old := h.s
	h.s = s
	if n, _ := old.Watchers(); n != 0 {
		t.Errorf("the old store kept %d watchers", n)
	}
	h.mustDo(put("a", "2")) // 3, again
	sameLines(t, "responses", fmtResponses(drainAll(t, h.s), true), []string{
		fmt.Sprintf("w%d r3: PUT a=2 c2 m3 v2", live),
		fmt.Sprintf("w%d r3: PUT a=1 c2 m2 v1; PUT a=2 c2 m3 v2", past),
	})
	if id := mustWatch(t, h.s, wreq("a", "", 0)); id != 2 {
		t.Errorf("new watcher's ID after adoption %d; want 2", id)
	}
}

// TestWatchWithinBatch: watchers created between a Write and Committed
// (which a driver should not do, but may) still see every revision once.
func TestWatchWithinBatch(t *testing.T) {
	for _, early := range []bool{false, true} {
		t.Run(fmt.Sprint("watcher before the batch ", early), func(t *testing.T) {
			h := newHarness(t)
			h.mustDo(put("a", "1")) // 2
			if early {
				mustWatch(t, h.s, wreq("zzz", "", 0))
			}
			b := h.be.Begin()
			w := h.s.Write(b)
			if _, err := w.Put(put("a", "2")); err != nil { // 3
				t.Fatal(err)
			}
			fromNow := mustWatch(t, h.s, wreq("a", "", 0))   // next 4
			fromThree := mustWatch(t, h.s, wreq("a", "", 3)) // the uncommitted revision
			fromTwo := mustWatch(t, h.s, wreq("a", "", 2))   // the past
			if _, err := w.Put(put("a", "3")); err != nil {  // 4
				t.Fatal(err)
			}
			// Only the committed revision 2 may be given before the commit.
			got := fmtResponses(h.s.WatchResponses(), true)
			sameLines(t, "before the commit", got, []string{fmt.Sprintf("w%d r2: PUT a=1 c2 m2 v1", fromTwo)})
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
			h.s.Committed()
			got = append(got, fmtResponses(drainAll(t, h.s), true)...)
			// Group by watcher: each stream must be whole.
			want := map[mvcc.WatchID]string{
				fromNow:   "PUT a=3 c2 m4 v3",
				fromThree: "PUT a=2 c2 m3 v2PUT a=3 c2 m4 v3",
				fromTwo:   "PUT a=1 c2 m2 v1PUT a=2 c2 m3 v2PUT a=3 c2 m4 v3",
			}
			for id, w := range want {
				var s string
				for _, line := range got {
					if p := fmt.Sprintf("w%d ", id); strings.HasPrefix(line, p) {
						_, evs, _ := strings.Cut(line, ": ")
						s += strings.ReplaceAll(evs, "; ", "")
					}
				}
				if s != w {
					t.Errorf("watcher %d: %q; want %q (all: %v)", id, s, w, got)
				}
			}
		})
	}
}

// TestWatchSlowWatcher: a synced watcher that is not drained holds at most
// PendingEvents (plus one revision), becomes unsynced, and catches up from
// the history in bounded chunks: every event exactly once, in order.
func TestWatchSlowWatcher(t *testing.T) {
	h := newHarness(t)
	if err := h.s.SetWatchLimits(mvcc.WatchLimits{Watchers: 10, PendingEvents: 3, SyncRevisions: 2, SyncEvents: 100, SyncWatchers: 10}); err != nil {
		t.Fatal(err)
	}
	slow := mustWatch(t, h.s, wreq("k", "", 0))
	var want []string
	for i := range 10 {
		h.mustDo(put("k", fmt.Sprint(i)))
		want = append(want, fmt.Sprintf("PUT k=%d c2 m%d v%d", i, i+2, i+1))
	}
	if n, unsynced := h.s.Watchers(); n != 1 || unsynced != 1 {
		t.Fatalf("Watchers() = %d, %d unsynced; want the slow one unsynced", n, unsynced)
	}
	var got []string
	drains := 0
	for ; drains < 20; drains++ {
		rs := h.s.WatchResponses()
		events := 0
		for _, r := range rs {
			if r.WatchID != slow {
				t.Fatalf("response for %d", r.WatchID)
			}
			for _, ev := range r.Events {
				got = append(got, fmtEvent(ev))
			}
			events += len(r.Events)
		}
		if events > 3+2 {
			t.Errorf("drain %d gave %d events; the bound is 3 pending and 2 revisions read", drains, events)
		}
		if _, unsynced := h.s.Watchers(); unsynced == 0 {
			break
		}
	}
	// 3 pending and 2 read, then 5 revisions 2 at a time.
	if drains != 3 {
		t.Errorf("caught up in drain %d; want 3", drains)
	}
	h.mustDo(put("k", "live"))
	for _, r := range h.s.WatchResponses() {
		for _, ev := range r.Events {
			got = append(got, fmtEvent(ev))
		}
	}
	want = append(want, "PUT k=live c2 m12 v11")
	sameLines(t, "events", got, want)
}

// TestWatchBigRevision: a revision with more events than PendingEvents still
// reaches a drained watcher whole.
func TestWatchBigRevision(t *testing.T) {
	h := newHarness(t)
	_ = h.s.SetWatchLimits(mvcc.WatchLimits{Watchers: 10, PendingEvents: 2, SyncRevisions: 1, SyncEvents: 1, SyncWatchers: 1})
	mustWatch(t, h.s, wreq("a", "\x00", 0))
	h.mustDo(txn(nil, ops(opPut(put("a", "1")), opPut(put("b", "1")), opPut(put("c", "1"))), nil)) // 2
	h.mustDo(put("d", "1"))                                                                        // 3: a victim now
	h.mustDo(txn(nil, ops(opPut(put("e", "1")), opPut(put("f", "1"))), nil))                       // 4
	sameLines(t, "responses", fmtResponses(drainAll(t, h.s), false), []string{
		"r2: PUT a=1 c2 m2 v1; PUT b=1 c2 m2 v1; PUT c=1 c2 m2 v1",
		"r3: PUT d=1 c3 m3 v1",
		"r4: PUT e=1 c4 m4 v1; PUT f=1 c4 m4 v1",
	})
}

// TestWatchDefer: a driver that could not deliver hands the watcher back
// from the first revision it did not deliver; it gets exactly the rest.
func TestWatchDefer(t *testing.T) {
	h := newHarness(t)
	id := mustWatch(t, h.s, wreq("a", "", 0))
	for i := range 4 { // 2..5
		h.mustDo(put("a", fmt.Sprint(i)))
	}
	rs := h.s.WatchResponses()
	if len(rs) != 4 {
		t.Fatalf("%d responses; want 4", len(rs))
	}
	// Delivered the first two; the stream was full.
	delivered := fmtResponses(rs[:2], false)
	h.mustDo(put("a", "4")) // 6, pending
	if err := h.s.Defer(id, 8); !errors.Is(err, mvcc.ErrDeferAhead) {
		t.Errorf("Defer past the watcher: %v", err)
	}
	if err := h.s.Defer(id, rs[1].Revision+1); err != nil {
		t.Fatal(err)
	}
	h.mustDo(put("a", "5")) // 7
	got := append(delivered, fmtResponses(drainAll(t, h.s), false)...)
	sameLines(t, "delivered", got, []string{
		"r2: PUT a=0 c2 m2 v1",
		"r3: PUT a=1 c2 m3 v2",
		"r7: PUT a=2 c2 m4 v3; PUT a=3 c2 m5 v4; PUT a=4 c2 m6 v5; PUT a=5 c2 m7 v6",
	})
}

// TestWatchProgress: a progress response carries the committed revision,
// comes after the watcher's events, and an unsynced watcher gets it only
// once caught up.
func TestWatchProgress(t *testing.T) {
	h := newHarness(t)
	_ = h.s.SetWatchLimits(mvcc.WatchLimits{Watchers: 10, PendingEvents: 10, SyncRevisions: 2, SyncEvents: 10, SyncWatchers: 10})
	for i := range 5 { // 2..6
		h.mustDo(put("a", fmt.Sprint(i)))
	}
	synced := mustWatch(t, h.s, wreq("a", "", 0))
	behind := mustWatch(t, h.s, wreq("a", "", 2))
	filtered := mustWatch(t, h.s, mvcc.WatchRequest{Key: []byte("a"), NoPut: true})
	h.mustDo(put("a", "x")) // 7
	h.s.RequestProgress()
	var got []string
	for range 5 {
		got = append(got, fmtResponses(h.s.WatchResponses(), true)...)
	}
	sameLines(t, "responses", got, []string{
		fmt.Sprintf("w%d r7: PUT a=x c2 m7 v6", synced),
		fmt.Sprintf("w%d r7: progress", synced),
		fmt.Sprintf("w%d r3: PUT a=0 c2 m2 v1; PUT a=1 c2 m3 v2", behind),
		fmt.Sprintf("w%d r7: progress", filtered), // its put was filtered: still current
		fmt.Sprintf("w%d r5: PUT a=2 c2 m4 v3; PUT a=3 c2 m5 v4", behind),
		fmt.Sprintf("w%d r7: PUT a=4 c2 m6 v5; PUT a=x c2 m7 v6", behind),
		fmt.Sprintf("w%d r7: progress", behind),
	})
	h.s.RequestProgress(behind, 99)
	sameLines(t, "one watcher's progress", fmtResponses(h.s.WatchResponses(), true),
		[]string{fmt.Sprintf("w%d r7: progress", behind)})
}

// TestWatchManyWatchers: responses come in watch ID order, each watcher's
// in revision order, and two identical runs give identical responses.
func TestWatchManyWatchers(t *testing.T) {
	run := func() []string {
		h := newHarness(t)
		_ = h.s.SetWatchLimits(mvcc.WatchLimits{Watchers: 1000, PendingEvents: 4, SyncRevisions: 3, SyncEvents: 5, SyncWatchers: 7})
		var out []string
		for i := range 200 {
			key := string(rune('a' + i%7))
			h.mustDo(put(key, fmt.Sprint(i)))
			switch i % 3 {
			case 0:
				mustWatch(t, h.s, wreq(key, "", 0))
			case 1:
				mustWatch(t, h.s, wreq(key, "\x00", int64(1+i/2)))
			default:
				mustWatch(t, h.s, wreq("a", key+"0", int64(i/3)))
			}
			if i%11 == 0 {
				rs := h.s.WatchResponses()
				if !slices.IsSortedFunc(rs, func(a, b mvcc.WatchResponse) int { return int(a.WatchID - b.WatchID) }) {
					t.Fatalf("responses not in watch ID order")
				}
				out = append(out, fmtResponses(rs, true)...)
			}
		}
		return append(out, fmtResponses(drainAll(t, h.s), true)...)
	}
	a, b := run(), run()
	if !slices.Equal(a, b) {
		t.Fatal("two identical runs gave different responses")
	}
	if len(a) < 1000 {
		t.Fatalf("only %d responses", len(a))
	}
}

// TestWatchRestart: watchers live in memory only.
func TestWatchRestart(t *testing.T) {
	h := newHarness(t)
	mustWatch(t, h.s, wreq("a", "", 0))
	h.mustDo(put("a", "1"))
	s, err := mvcc.Open(h.be)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Watchers(); n != 0 {
		t.Fatalf("a reopened store has %d watchers", n)
	}
	if id := mustWatch(t, s, wreq("a", "", 1)); id != 0 {
		t.Errorf("first watch ID after a restart %d; want 0", id)
	}
	sameLines(t, "replay after restart", fmtResponses(drainAll(t, s), false), []string{"r2: PUT a=1 c2 m2 v1"})
}

// TestWatchDeferBeforeStart: a watcher handed back from before its start
// replays from its start, never earlier.
func TestWatchDeferBeforeStart(t *testing.T) {
	h := newHarness(t)
	h.mustDo(put("a", "0")) // 2
	h.mustDo(put("a", "1")) // 3
	id := mustWatch(t, h.s, wreq("a", "", 3))
	h.mustDo(put("a", "2")) // 4
	if err := h.s.Defer(id, 0); err != nil {
		t.Fatal(err)
	}
	sameLines(t, "responses", fmtResponses(drainAll(t, h.s), false), []string{
		"r4: PUT a=1 c2 m3 v2; PUT a=2 c2 m4 v3",
	})
}
