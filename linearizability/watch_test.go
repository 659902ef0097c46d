package linearizability

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// The watch check's tests run on one small history whose revisions are all
// known, its store going:
//
//	2: put k/a=a1          (create 2, version 1)
//	3: put k/b=b1          (create 3, version 1)
//	4: delete k/a          (k/a was a1 mod 2 create 2 version 1)
//	5: txn put k/a=a2, put k/b=b2   (k/a created again; k/b version 2)
//	6: put k/c=c1
//
// and a watcher of the prefix k/ with prev_kv from revision 2 that saw all
// of it. Each case breaks that stream (or the watcher) in one way, and the
// check must name the rule broken.

func watchOps() []Operation {
	ops := []Operation{
		{Kind: KindPut, Key: "k/a", Value: "a1", Revision: 2},
		{Kind: KindPut, Key: "k/b", Value: "b1", Revision: 3},
		{Kind: KindDelete, Key: "k/a", Deleted: 1, Revision: 4},
		{Kind: KindTxn, Ops: []TxnOp{{Kind: KindPut, Key: "k/a", Value: "a2"}, {Kind: KindPut, Key: "k/b", Value: "b2"}}, Revision: 5},
		{Kind: KindPut, Key: "k/c", Value: "c1", Revision: 6},
		{Kind: KindRange, Key: "k/", End: "k0", Revision: 6, KVs: []KV{
			{Key: "k/a", Value: "a2", ModRevision: 5, CreateRevision: 5, Version: 1},
			{Key: "k/b", Value: "b2", ModRevision: 5, CreateRevision: 3, Version: 2},
			{Key: "k/c", Value: "c1", ModRevision: 6, CreateRevision: 6, Version: 1}}},
	}
	for i := range ops {
		ops[i].Client, ops[i].Outcome = 1, OutcomeOK
		ops[i].Call, ops[i].Return = int64(i*10), int64(i*10+5)
	}
	return ops
}

func putEv(key, value string, rev, create, version int64) WatchEvent {
	return WatchEvent{Type: KindPut, Key: key, Value: value, ModRevision: rev, CreateRevision: create, Version: version}
}

func delEv(key string, rev int64) WatchEvent {
	return WatchEvent{Type: KindDelete, Key: key, ModRevision: rev}
}

func withPrev(ev WatchEvent, kv KV) WatchEvent { ev.PrevKV = &kv; return ev }

func events(at, header int64, evs ...WatchEvent) WatchResponse {
	return WatchResponse{At: at, Revision: header, Events: evs}
}

// retimed gives responses rising receive times, in their order.
func retimed(rs ...WatchResponse) []WatchResponse {
	for i := range rs {
		rs[i].At = 100 + 10*int64(i)
	}
	return rs
}

func progress(at, rev int64) WatchResponse { return WatchResponse{At: at, Revision: rev} }

var (
	a1 = KV{Key: "k/a", Value: "a1", ModRevision: 2, CreateRevision: 2, Version: 1}
	b1 = KV{Key: "k/b", Value: "b1", ModRevision: 3, CreateRevision: 3, Version: 1}
)

// goodStream is everything the prefix watcher is owed, as etcd delivers it.
func goodStream() []WatchResponse {
	return []WatchResponse{
		events(100, 3, putEv("k/a", "a1", 2, 2, 1), putEv("k/b", "b1", 3, 3, 1)),
		events(110, 4, withPrev(delEv("k/a", 4), a1)),
		events(120, 5, putEv("k/a", "a2", 5, 5, 1), withPrev(putEv("k/b", "b2", 5, 3, 2), b1)),
		events(130, 6, putEv("k/c", "c1", 6, 6, 1)),
		progress(140, 6),
	}
}

func prefixWatcher(sessions ...WatchSession) Watcher {
	return Watcher{ID: 1, Key: "k/", End: "k0", PrevKV: true, Sessions: sessions}
}

func session(start int64, rs ...WatchResponse) WatchSession {
	return WatchSession{Member: "n1", Open: 90, StartRevision: start, Created: 1, Responses: rs}
}

// checkWatch checks ops and the watchers, the operations first, as the
// simulator does.
func checkWatch(t *testing.T, ops []Operation, compactions []Compaction, ws ...Watcher) WatchResult {
	t.Helper()
	h := History{Operations: ops, Compactions: compactions, Watchers: ws}
	r := Check(h, Options{})
	if r.Verdict != VerdictOK {
		t.Fatalf("the operations: %s: %s", r.Verdict, r.Reason)
	}
	return CheckWatches(h, r)
}

func TestCheckWatchesAccepts(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ops         []Operation
		compactions []Compaction
		w           Watcher
	}{
		{name: "everything, in order", w: prefixWatcher(session(2, goodStream()...))},
		{name: "one response per revision, then progress", w: prefixWatcher(session(2,
			events(100, 2, putEv("k/a", "a1", 2, 2, 1)),
			events(101, 3, putEv("k/b", "b1", 3, 3, 1)),
			progress(102, 3),
			events(110, 4, withPrev(delEv("k/a", 4), a1)),
			events(120, 6, putEv("k/a", "a2", 5, 5, 1), withPrev(putEv("k/b", "b2", 5, 3, 2), b1), putEv("k/c", "c1", 6, 6, 1))))},
		{name: "reconnects from the last revision seen plus one", w: prefixWatcher(
			session(2, goodStream()[:2]...),
			WatchSession{Member: "n2", Open: 115, StartRevision: 5, Created: 4, Responses: goodStream()[2:]})},
		{name: "a watch from now starts after its created revision", w: prefixWatcher(
			WatchSession{Member: "n3", Created: 4, Responses: goodStream()[2:]})},
		{name: "a key watcher with a filter", w: Watcher{ID: 2, Key: "k/a", NoDelete: true, Sessions: []WatchSession{session(1,
			progress(95, 1), events(100, 2, putEv("k/a", "a1", 2, 2, 1)), events(120, 5, putEv("k/a", "a2", 5, 5, 1)), progress(140, 6))}}},
		{name: "compacted, then from the compaction on, prev_kv omitted below it",
			compactions: []Compaction{{Revision: 5, Call: 112}},
			w: prefixWatcher(
				session(2, goodStream()[0], WatchResponse{At: 113, Revision: 5, Canceled: true, CompactRevision: 5}),
				WatchSession{Member: "n2", Open: 114, StartRevision: 5, Created: 6, Responses: []WatchResponse{
					events(120, 6, putEv("k/a", "a2", 5, 5, 1), putEv("k/b", "b2", 5, 3, 2), putEv("k/c", "c1", 6, 6, 1))}})},
		{name: "a session that broke before it was created", w: prefixWatcher(
			WatchSession{Member: "n1", Open: 1, End: "no leader"},
			session(2, goodStream()...))},
		{name: "events of a revision an unknown write created are taken as they come",
			ops: append(watchOps()[:5], Operation{Client: 2, Kind: KindPut, Key: "k/c", Value: "c9", Call: 45, Outcome: OutcomeUnknown}),
			w:   prefixWatcher(session(2, append(goodStream()[:4], events(150, 7, putEv("k/c", "c9", 7, 6, 2)))...))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops := tc.ops
			if ops == nil {
				ops = watchOps()
			}
			if r := checkWatch(t, ops, tc.compactions, tc.w); r.Verdict != VerdictOK {
				t.Fatalf("%s: %s", r.Verdict, r.Reason)
			}
		})
	}
}

// TestCheckWatchesRules breaks the good stream once per rule; the check
// must fail it, naming the rule, the watcher and the revision.
func TestCheckWatchesRules(t *testing.T) {
	good := goodStream
	replace := func(i int, r ...WatchResponse) []WatchResponse {
		s := good()
		return append(append(s[:i:i], r...), s[i+1:]...)
	}
	for _, tc := range []struct {
		name, rule, want string
		w                Watcher
		compactions      []Compaction
	}{
		{name: "events out of order in one response", rule: "order", want: "comes after event 1",
			w: prefixWatcher(session(2, replace(0, events(100, 3, putEv("k/b", "b1", 3, 3, 1), putEv("k/a", "a1", 2, 2, 1)))...))},
		{name: "responses out of order", rule: "order", want: "revision 4's delete of k/a, which came only later",
			w: prefixWatcher(session(2, retimed(good()[0], good()[2], good()[1], good()[3])...))},
		{name: "an event below what was observed", rule: "order", want: "delete k/b @4 comes after the watcher had observed revision 6",
			w: Watcher{ID: 1, Key: "k/b", Sessions: []WatchSession{session(2, events(100, 3, putEv("k/b", "b1", 3, 3, 1)),
				events(120, 6, putEv("k/b", "b2", 5, 3, 2)), events(130, 6, delEv("k/b", 4)))}}},
		{name: "a revision delivered twice", rule: "duplicate", want: "delete k/a @4 was delivered before, in watch 1 on n1, response 2",
			w: prefixWatcher(session(2, append(good()[:2], good()[1:]...)...))},
		{name: "a revision delivered twice across a reconnect", rule: "duplicate", want: "put k/a=a2 @5",
			w: prefixWatcher(session(2, good()[:3]...), WatchSession{Member: "n2", Open: 125, StartRevision: 5, Created: 5, Responses: good()[2:]})},
		{name: "a key twice in one revision", rule: "duplicate", want: "a revision changes a key once",
			w: prefixWatcher(session(2, replace(2, events(120, 5, putEv("k/a", "a2", 5, 5, 1), putEv("k/a", "a2", 5, 5, 1)))...))},
		{name: "a revision split across responses", rule: "atomic", want: "revision 5's events are split: its put k/b=b2 came later",
			w: prefixWatcher(session(2, replace(2, events(120, 5, putEv("k/a", "a2", 5, 5, 1)), events(121, 5, withPrev(putEv("k/b", "b2", 5, 3, 2), b1)))...))},
		{name: "a revision's event missing", rule: "gap", want: "revision 5's put k/b=b2, in its range, was never delivered",
			w: prefixWatcher(session(2, replace(2, events(120, 5, putEv("k/a", "a2", 5, 5, 1)))...))},
		{name: "a revision missing", rule: "gap", want: "revision 4's delete of k/a, in its range, had not been delivered, and never was",
			w: prefixWatcher(session(2, good()[0], good()[2], good()[3]))},
		{name: "a reconnect past what it had", rule: "gap", want: "the watch asked from revision 6, but revision 5's put k/a=a2",
			w: prefixWatcher(session(2, good()[:2]...), WatchSession{Member: "n2", Open: 125, StartRevision: 6, Created: 6, Responses: good()[3:]})},
		{name: "progress ahead of the events", rule: "progress", want: "a progress notification at revision 4 came, but revision 4's delete of k/a",
			w: prefixWatcher(session(2, good()[0], progress(105, 4)))},
		{name: "a header ahead of the events", rule: "header", want: "a response with header revision 5 came, but revision 5's put k/a=a2",
			w: prefixWatcher(session(2, good()[0], events(110, 5, withPrev(delEv("k/a", 4), a1))))},
		{name: "a header behind the events", rule: "header", want: "header revision 3 is behind its event of revision 4",
			w: prefixWatcher(session(2, replace(1, events(110, 3, withPrev(delEv("k/a", 4), a1)))...))},
		{name: "a revision the store never reached", rule: "phantom", want: "the store never reached revision 7",
			w: prefixWatcher(session(2, append(good(), events(150, 7, withPrev(putEv("k/c", "c2", 7, 6, 2), KV{Key: "k/c", Value: "c1", ModRevision: 6, CreateRevision: 6, Version: 1})))...))},
		{name: "a key its revision did not change", rule: "phantom", want: "revision 6 did not change the key (it changed put k/c=c1)",
			w: prefixWatcher(session(2, replace(3, events(130, 6, putEv("k/c", "c1", 6, 6, 1), putEv("k/d", "d1", 6, 6, 1)))...))},
		{name: "revision 1", rule: "phantom", want: "revision 1 is the empty store's",
			w: prefixWatcher(session(1, events(95, 1, putEv("k/a", "a0", 1, 1, 1))))},
		{name: "an event before its write", rule: "future", want: "put k/c=c1 @6 (create 6 version 1) was received at 35ns, before the write that created revision 6 was called, at 40ns",
			w: prefixWatcher(session(2, func() []WatchResponse {
				rs := good()
				for i, at := range []int64{31, 32, 33, 35, 36} {
					rs[i].At = at
				}
				return rs
			}()...))},
		{name: "a wrong value", rule: "event", want: `revision 5 wrote "a2"`,
			w: prefixWatcher(session(2, replace(2, events(120, 5, putEv("k/a", "a3", 5, 5, 1), withPrev(putEv("k/b", "b2", 5, 3, 2), b1)))...))},
		{name: "a re-created key that is not a create", rule: "event", want: "after revision 5 the key had create revision 5 and version 1",
			w: prefixWatcher(session(2, replace(2, events(120, 5, putEv("k/a", "a2", 5, 2, 2), withPrev(putEv("k/b", "b2", 5, 3, 2), b1)))...))},
		{name: "a put reported as a delete", rule: "event", want: "revision 6's change to the key was a put k/c=c1",
			w: prefixWatcher(session(2, replace(3, events(130, 6, delEv("k/c", 6)))...))},
		{name: "a delete with a value", rule: "event", want: "a delete's holds only the key",
			w: prefixWatcher(session(2, replace(1, events(110, 4, withPrev(WatchEvent{Type: KindDelete, Key: "k/a", Value: "a1", ModRevision: 4}, a1)))...))},
		{name: "prev_kv missing", rule: "prev_kv", want: "has none, but at revision 4 the key was \"b1\" mod 3",
			w: prefixWatcher(session(2, replace(2, events(120, 5, putEv("k/a", "a2", 5, 5, 1), putEv("k/b", "b2", 5, 3, 2)))...))},
		{name: "prev_kv wrong", rule: "prev_kv", want: `carries "b0" mod 3 create 3 version 1, but at revision 4 the key was "b1"`,
			w: prefixWatcher(session(2, replace(2, events(120, 5, putEv("k/a", "a2", 5, 5, 1),
				withPrev(putEv("k/b", "b2", 5, 3, 2), KV{Key: "k/b", Value: "b0", ModRevision: 3, CreateRevision: 3, Version: 1})))...))},
		{name: "prev_kv on a create", rule: "prev_kv", want: "but at revision 4 the key was absent",
			w: prefixWatcher(session(2, replace(2, events(120, 5, withPrev(putEv("k/a", "a2", 5, 5, 1), a1), withPrev(putEv("k/b", "b2", 5, 3, 2), b1)))...))},
		{name: "prev_kv not asked for", rule: "prev_kv", want: "carries a prev_kv the watcher did not ask for",
			w: Watcher{ID: 1, Key: "k/", End: "k0", Sessions: []WatchSession{session(2, good()...)}}},
		{name: "a filtered delete", rule: "filter", want: "delete k/a @4 reached a watcher that filters out deletes",
			w: Watcher{ID: 1, Key: "k/", End: "k0", PrevKV: true, NoDelete: true, Sessions: []WatchSession{session(2, good()...)}}},
		{name: "another key", rule: "range", want: "put k/b=b1 @3 (create 3 version 1) is for a key outside the range watched",
			w: Watcher{ID: 1, Key: "k/a", Sessions: []WatchSession{session(2, good()[0])}}},
		{name: "a compaction never asked for", rule: "compaction", want: "no compaction at 5 had been asked for by then",
			w: prefixWatcher(session(2, good()[0], WatchResponse{At: 113, Revision: 5, Canceled: true, CompactRevision: 5}))},
		{name: "a compaction asked for too late", rule: "compaction", want: "no compaction at 5 had been asked for by then",
			compactions: []Compaction{{Revision: 5, Call: 200}},
			w:           prefixWatcher(session(2, good()[0], WatchResponse{At: 113, Revision: 5, Canceled: true, CompactRevision: 5}))},
		{name: "a compaction below what the watch had", rule: "compaction", want: "it had reached revision 4, which that compaction keeps",
			compactions: []Compaction{{Revision: 3, Call: 50}},
			w:           prefixWatcher(session(2, good()[0], WatchResponse{At: 113, Revision: 5, Canceled: true, CompactRevision: 3}))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := checkWatch(t, watchOps(), tc.compactions, tc.w)
			if r.Verdict != VerdictIllegal {
				t.Fatalf("verdict %s (%s), want illegal by rule %s", r.Verdict, r.Reason, tc.rule)
			}
			if !strings.Contains(r.Reason, ": "+tc.rule+": ") || !strings.Contains(r.Reason, tc.want) ||
				!strings.HasPrefix(r.Reason, "watcher w1 (") {
				t.Fatalf("reason %q\nwant rule %q naming the watcher and %q", r.Reason, tc.rule, tc.want)
			}
			t.Log(r.Reason)
		})
	}
}

// TestCheckWatchesUndecided: without the operations' replay there is no
// verdict, rather than a wrong one.
func TestCheckWatchesUndecided(t *testing.T) {
	w := prefixWatcher(session(2, goodStream()...))
	bad := watchOps()
	bad[1].Revision = 2 // two writes claim revision 2
	h := History{Operations: bad, Watchers: []Watcher{w}}
	if r := CheckWatches(h, Check(h, Options{})); r.Verdict != VerdictUndecided || !strings.Contains(r.Reason, "not linearizable") {
		t.Fatalf("%s: %s", r.Verdict, r.Reason)
	}
	if r := CheckWatches(h, Result{}); r.Verdict != VerdictUndecided || !strings.Contains(r.Reason, "did not replay") {
		t.Fatalf("%s: %s", r.Verdict, r.Reason)
	}
}

func TestCheckWatchesCounts(t *testing.T) {
	r := checkWatch(t, watchOps(), []Compaction{{Revision: 5, Call: 112}},
		prefixWatcher(session(2, goodStream()[0], WatchResponse{At: 113, Revision: 5, Canceled: true, CompactRevision: 5}),
			WatchSession{Member: "n2", Open: 114, StartRevision: 5, Created: 5, Responses: goodStream()[2:]}))
	want := WatchResult{Verdict: VerdictOK, Watchers: 1, Sessions: 2, Responses: 5, Events: 5, Progress: 1, Compacted: 1}
	if r != want {
		t.Fatalf("got %+v, want %+v", r, want)
	}
}

// TestWatchersJSON: a history with watchers survives WriteJSON and
// ReadJSON, with one response per line.
func TestWatchersJSON(t *testing.T) {
	h := History{Operations: watchOps(), Compactions: []Compaction{{Revision: 5, Call: 112}}, Watchers: []Watcher{
		prefixWatcher(session(2, goodStream()...), WatchSession{Member: "n2", Open: 150, Close: 160, StartRevision: 7, Created: 6, End: "no leader"}),
		{ID: 2, Key: "k/a", NoPut: true, Sessions: []WatchSession{{Member: "n3", Open: 1, End: "connection refused"}}},
	}}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, h); err != nil {
		t.Fatal(err)
	}
	written := buf.String()
	got, err := ReadJSON(&buf)
	if err != nil {
		t.Fatalf("%v\n%s", err, written)
	}
	for i := range got.Watchers {
		for j := range got.Watchers[i].Sessions {
			if s := &got.Watchers[i].Sessions[j]; len(s.Responses) == 0 {
				s.Responses = nil // written as [], read as empty
			}
		}
	}
	if !reflect.DeepEqual(got, h) {
		t.Fatalf("read back\n%+v\nwant\n%+v", got, h)
	}
	for _, line := range strings.Split(written, "\n") {
		if strings.Count(line, `"at":`) > 1 || strings.Count(line, `"call":`) > 1 {
			t.Errorf("two responses or operations on one line: %s", line)
		}
	}
	if n := strings.Count(written, "\n"); n < len(h.Operations)+len(goodStream())+3 {
		t.Errorf("%d lines:\n%s", n, written)
	}
}

func TestWatchersValidate(t *testing.T) {
	ok := func() History {
		return History{Operations: watchOps(), Watchers: []Watcher{prefixWatcher(session(2, goodStream()...))}}
	}
	for _, tc := range []struct {
		name, want string
		edit       func(h *History)
	}{
		{"id twice", "id: 1 is also watcher 0's", func(h *History) { h.Watchers = append(h.Watchers, h.Watchers[0]) }},
		{"id zero", "id: 0 is not positive", func(h *History) { h.Watchers[0].ID = 0 }},
		{"no key", "key: empty", func(h *History) { h.Watchers[0].Key = "" }},
		{"end before key", `end: "k" is not after key "k/"`, func(h *History) { h.Watchers[0].End = "k" }},
		{"both filters", "both set", func(h *History) { h.Watchers[0].NoPut, h.Watchers[0].NoDelete = true, true }},
		{"responses before created", "never created", func(h *History) { h.Watchers[0].Sessions[0].Created = 0 }},
		{"close before open", "close: 1 is before open 90", func(h *History) { h.Watchers[0].Sessions[0].Close = 1 }},
		{"time going back", "is before the previous response's", func(h *History) { h.Watchers[0].Sessions[0].Responses[1].At = 1 }},
		{"events on a cancel", "events: set on a canceled response", func(h *History) { h.Watchers[0].Sessions[0].Responses[0].Canceled = true }},
		{"compact revision not canceled", "compact_revision: set on a response that is not canceled", func(h *History) {
			h.Watchers[0].Sessions[0].Responses[4].CompactRevision = 3
		}},
		{"responses after a cancel", "canceled, but responses follow it", func(h *History) {
			h.Watchers[0].Sessions[0].Responses[3] = WatchResponse{At: 130, Revision: 6, Canceled: true}
		}},
		{"event type", `type: "get" is not put or delete`, func(h *History) { h.Watchers[0].Sessions[0].Responses[0].Events[0].Type = KindGet }},
		{"event without key", "event 0: key: empty", func(h *History) { h.Watchers[0].Sessions[0].Responses[0].Events[0].Key = "" }},
		{"event without revision", "mod_revision: 0 is not positive", func(h *History) { h.Watchers[0].Sessions[0].Responses[0].Events[0].ModRevision = 0 }},
		{"event created after modified", "create_revision: 9 is after mod_revision 2", func(h *History) {
			h.Watchers[0].Sessions[0].Responses[0].Events[0].CreateRevision = 9
		}},
		{"prev_kv of another key", `prev_kv: key "k/b" is not the event's "k/a"`, func(h *History) {
			h.Watchers[0].Sessions[0].Responses[1].Events[0].PrevKV = &b1
		}},
		{"compaction at 0", "compaction 0: revision: 0 is not positive", func(h *History) { h.Compactions = []Compaction{{}} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := ok()
			if err := h.Validate(); err != nil {
				t.Fatal(err)
			}
			tc.edit(&h)
			if err := h.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ...%s...", err, tc.want)
			}
		})
	}
}
