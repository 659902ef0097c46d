package linearizability

import (
	"strings"
	"testing"
)

// Helpers for histories with revisions. @r in a comment is the header
// revision.

// at sets op's header revision.
func at(op Operation, r int64) Operation {
	op.Revision = r
	return op
}

// getRev is a get that found value with the given mod and create revisions
// and version, at header revision r.
func getRev(client int, key string, call, ret, r int64, value string, mod, create, version int64) Operation {
	op := get(client, key, call, ret, value)
	op.ModRevision, op.CreateRevision, op.Version, op.Revision = mod, create, version, r
	return op
}

func kv(key, value string, mod, create, version int64) KV {
	return KV{Key: key, Value: value, ModRevision: mod, CreateRevision: create, Version: version}
}

// rangeRead reads [key, end) at header revision r and found kvs.
func rangeRead(client int, key, end string, call, ret, r int64, kvs ...KV) Operation {
	return Operation{Client: client, Kind: KindRange, Key: key, End: end, Call: call, Return: ret, Outcome: OutcomeOK, Revision: r, KVs: kvs}
}

// delRange deletes [key, end), reporting deleted keys, at header revision r.
func delRange(client int, key, end string, call, ret, deleted, r int64) Operation {
	op := del(client, key, call, ret, deleted)
	op.End, op.Revision = end, r
	return op
}

func txn(client int, call, ret, r int64, ops ...TxnOp) Operation {
	return Operation{Client: client, Kind: KindTxn, Ops: ops, Call: call, Return: ret, Outcome: OutcomeOK, Revision: r}
}

func tput(key, value string) TxnOp { return TxnOp{Kind: KindPut, Key: key, Value: value} }

func tdel(key string, deleted int64) TxnOp {
	return TxnOp{Kind: KindDelete, Key: key, Deleted: deleted}
}

func serializable(op Operation) Operation {
	op.Serializable = true
	return op
}

// revisionCase is one rule of the revision pass (or of the model's share of
// revisions) shown to hold on a correct history and to fail on the one
// thing it is named for.
type revisionCase struct {
	name     string
	ops      []Operation
	resolved map[int]Resolution
	want     Verdict
	reason   string // a substring of Result.Reason; "" for ok
	// revisions and resolvedN are Result.Revisions and Result.Resolved;
	// nil does not check.
	revisions, resolvedN *int
}

func n(i int) *int { return &i }

func runRevisionCases(t *testing.T, tests []revisionCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := History{Operations: tt.ops}
			if err := h.Validate(); err != nil {
				t.Fatalf("test history is invalid: %v", err)
			}
			r := Check(h, Options{Resolved: tt.resolved})
			if r.Verdict != tt.want {
				t.Fatalf("verdict %q (%s), want %q", r.Verdict, r.Reason, tt.want)
			}
			switch {
			case tt.reason == "" && r.Reason != "":
				t.Errorf("reason %q, want none", r.Reason)
			case !strings.Contains(r.Reason, tt.reason):
				t.Errorf("reason %q, want one containing %q", r.Reason, tt.reason)
			}
			if tt.revisions != nil && r.Revisions != *tt.revisions {
				t.Errorf("%d revisions checked, want %d", r.Revisions, *tt.revisions)
			}
			if tt.resolvedN != nil && r.Resolved != *tt.resolvedN {
				t.Errorf("%d resolved, want %d", r.Resolved, *tt.resolvedN)
			}
		})
	}
}

// TestCheckRevisions proves each rule of the revision pass, by name: a
// correct history passes, and one that breaks only that rule fails with
// that rule's reason. Most broken histories here are fine key by key, so
// only the revisions can tell.
func TestCheckRevisions(t *testing.T) {
	runRevisionCases(t, []revisionCase{
		// (a) Two writes never share a revision; a txn's ops do.
		{name: "unique: distinct revisions", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			at(put(1, "y", "b", 20, 30), 3),
			getRev(2, "x", 40, 50, 3, "a", 2, 2, 1),
		}, want: VerdictOK, revisions: n(3), resolvedN: n(0)},
		{name: "unique: two writes given one revision", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			at(put(1, "y", "b", 20, 30), 2),
		}, want: VerdictIllegal, reason: "revision 2 was created twice: by history[0] (put x=a: ok @2) and by history[1]", revisions: n(2), resolvedN: n(0)},
		{name: "unique: a txn's ops share its revision", ops: []Operation{
			txn(0, 0, 10, 2, tput("a", "1"), tput("b", "2"), tdel("c", 0)),
			getRev(1, "a", 20, 30, 2, "1", 2, 2, 1),
			getRev(1, "b", 30, 40, 2, "2", 2, 2, 1),
			rangeRead(2, "a", EndAll, 20, 30, 2, kv("a", "1", 2, 2, 1), kv("b", "2", 2, 2, 1)),
		}, want: VerdictOK, revisions: n(4)},
		{name: "unique: a write that changed nothing reports the current revision", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			at(cas(1, "x", "z", "b", 20, 30, false), 2),
			at(del(1, "y", 40, 50, 0), 2),
			at(casAbsent(1, "x", "c", 60, 70, false), 2),
		}, want: VerdictOK, revisions: n(4)},
		{name: "unique: a txn and a put given one revision", ops: []Operation{
			txn(0, 0, 10, 2, tput("a", "1"), tput("b", "2")),
			at(put(1, "c", "3", 0, 10), 2),
		}, want: VerdictIllegal, reason: "revision 2 was created twice"},

		// (b) Revisions never go back in real time.
		{name: "real time: a read concurrent with a newer write may see the older revision", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			at(put(0, "x", "b", 20, 30), 3),
			getRev(1, "x", 25, 50, 2, "a", 2, 2, 1),
		}, want: VerdictOK},
		{name: "real time: a read after a write went back", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			at(put(0, "x", "b", 20, 30), 3),
			getRev(1, "x", 40, 50, 2, "a", 2, 2, 1),
		}, want: VerdictIllegal, reason: "revisions went back in real time: history[1] (put x=b: ok @3) returned at 30 having seen revision 3, then history[2] (get x: ok a mod 2 create 2 version 1 @2), called at 40, saw revision 2"},
		{name: "real time: a read of another key after a write went back", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			at(getAbsent(1, "y", 20, 30), 1),
		}, want: VerdictIllegal, reason: "went back in real time"},
		{name: "real time: a write after a read went back", ops: []Operation{
			at(put(0, "y", "b", 0, 25), 3), // still running when x is put
			getRev(1, "y", 10, 12, 3, "b", 3, 3, 1),
			at(put(2, "x", "a", 20, 30), 2),
		}, want: VerdictIllegal, reason: "history[1] (get y: ok b mod 3 create 3 version 1 @3) returned at 12 having seen revision 3, then history[2] (put x=a: ok @2), called at 20, saw revision 1"},
		{name: "real time: a write concurrent with a read may have an older revision", ops: []Operation{
			at(put(0, "y", "b", 0, 8), 3),
			getRev(1, "y", 10, 12, 3, "b", 3, 3, 1),
			at(put(2, "x", "a", 0, 30), 2),
		}, want: VerdictOK},

		// (c) A read returns the revision its write was given.
		{name: "mod revision: the write's", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			at(put(1, "y", "b", 20, 30), 3),
			getRev(2, "x", 40, 50, 3, "a", 2, 2, 1),
		}, want: VerdictOK},
		{name: "mod revision: not the write's", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			at(put(1, "y", "b", 20, 30), 3),
			getRev(2, "x", 40, 50, 3, "a", 3, 2, 1),
		}, want: VerdictIllegal, reason: `history[2] (get x: ok a mod 3 create 2 version 1 @3) read key x as "a" mod 3 create 2 version 1, but at revision 3 it was "a" mod 2 create 2 version 1`},
		{name: "mod revision: a range read's, not the write's", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			at(put(1, "y", "b", 20, 30), 3),
			rangeRead(2, "x", "z", 40, 50, 3, kv("x", "a", 2, 2, 1), kv("y", "b", 2, 2, 1)),
		}, want: VerdictIllegal, reason: `read key y as "b" mod 2 create 2 version 1, but at revision 3 it was "b" mod 3 create 3 version 1`},

		// (d) A key's version counts its writes since it was created.
		{name: "version: reset by a delete", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			at(del(0, "x", 20, 30, 1), 3),
			at(put(0, "x", "b", 40, 50), 4),
			at(put(0, "y", "z", 60, 70), 5),
			at(put(0, "x", "c", 80, 90), 6),
			getRev(1, "x", 100, 110, 6, "c", 6, 4, 2),
		}, want: VerdictOK, revisions: n(6)},
		{name: "version: not reset after a delete and re-create", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			at(del(0, "x", 20, 30, 1), 3),
			at(put(0, "x", "b", 40, 50), 4),
			at(put(0, "y", "z", 60, 70), 5),
			at(put(0, "x", "c", 80, 90), 6),
			getRev(1, "x", 100, 110, 6, "c", 6, 4, 3),
		}, want: VerdictIllegal, reason: `read key x as "c" mod 6 create 4 version 3, but at revision 6 it was "c" mod 6 create 4 version 2`},

		// (e) A key's create revision is the write that created it.
		{name: "create revision: the creating write's", ops: []Operation{
			at(put(0, "y", "z", 0, 10), 2),
			at(put(0, "x", "a", 20, 30), 3),
			at(put(0, "x", "b", 40, 50), 4),
			getRev(1, "x", 60, 70, 4, "b", 4, 3, 2),
		}, want: VerdictOK},
		{name: "create revision: wrong", ops: []Operation{
			at(put(0, "y", "z", 0, 10), 2),
			at(put(0, "x", "a", 20, 30), 3),
			at(put(0, "x", "b", 40, 50), 4),
			getRev(1, "x", 60, 70, 4, "b", 4, 2, 2),
		}, want: VerdictIllegal, reason: `read key x as "b" mod 4 create 2 version 2, but at revision 4 it was "b" mod 4 create 3 version 2`},

		// (f) A txn is atomic: a range read at its revision sees all of it.
		{name: "atomicity: a range read sees all of a txn", ops: []Operation{
			txn(0, 0, 100, 2, tput("a", "1"), tput("b", "2")),
			rangeRead(1, "a", "c", 10, 20, 2, kv("a", "1", 2, 2, 1), kv("b", "2", 2, 2, 1)),
			rangeRead(2, "a", "c", 10, 20, 1),
		}, want: VerdictOK},
		{name: "atomicity: a range read sees half of a txn", ops: []Operation{
			txn(0, 0, 100, 2, tput("a", "1"), tput("b", "2")),
			rangeRead(1, "a", "c", 10, 20, 2, kv("a", "1", 2, 2, 1)),
		}, want: VerdictIllegal, reason: `history[1] (range a..c: ok 1 keys @2) read key b as absent, but at revision 2 it was "2" mod 2 create 2 version 1`},

		// (g) A range delete deletes exactly the keys that existed.
		{name: "delete count: every key that existed", ops: []Operation{
			at(put(0, "a", "1", 0, 10), 2),
			at(put(0, "b", "2", 20, 30), 3),
			at(put(0, "c", "3", 40, 50), 4),
			delRange(1, "a", "c", 60, 70, 2, 5),
			delRange(1, "a", "c", 80, 90, 0, 5),
			rangeRead(2, "a", EndAll, 100, 110, 5, kv("c", "3", 4, 4, 1)),
		}, want: VerdictOK},
		{name: "delete count: fewer than existed", ops: []Operation{
			at(put(0, "a", "1", 0, 10), 2),
			at(put(0, "b", "2", 20, 30), 3),
			delRange(1, "a", "c", 40, 50, 1, 4),
		}, want: VerdictIllegal, reason: "history[2] (delete a..c: ok 1 @4) deleted 1 keys, but 2 existed at revision 3"},
		{name: "delete count: none when some existed", ops: []Operation{
			at(put(0, "a", "1", 0, 10), 2),
			at(put(0, "b", "2", 20, 30), 3),
			delRange(1, "a", "c", 0, 50, 0, 3),
		}, want: VerdictIllegal, reason: "deleted 0 keys, but 2 existed at revision 3"},
		{name: "delete count: a txn's delete", ops: []Operation{
			at(put(0, "a", "1", 0, 10), 2),
			txn(1, 20, 30, 3, tput("b", "2"), tdel("a", 0)),
		}, want: VerdictIllegal, reason: "deleted 0 keys, but 1 existed at revision 2"},

		// (h) A cas's compare held exactly when it says it did.
		{name: "cas: compares at its revision", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			at(cas(1, "x", "a", "b", 0, 30, true), 3),
			at(casAbsent(1, "y", "c", 40, 50, true), 4),
			getRev(2, "x", 60, 70, 4, "b", 3, 2, 2),
		}, want: VerdictOK},
		{name: "cas: succeeded when its compare could not hold", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			at(cas(1, "x", "z", "b", 0, 30, true), 3),
		}, want: VerdictIllegal, reason: `history[1] (cas x z->b: ok true @3) reported succeeded=true, but at revision 2 the key was "a" mod 2 create 2 version 1`},
		{name: "cas: failed when its compare held", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			at(cas(1, "x", "a", "b", 0, 30, false), 2),
		}, want: VerdictIllegal, reason: `reported succeeded=false, but at revision 2 the key was "a"`},
		{name: "cas: expecting absent succeeded on a key that existed", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			at(casAbsent(1, "x", "b", 0, 30, true), 3),
		}, want: VerdictIllegal, reason: `reported succeeded=true, but at revision 2 the key was "a"`},

		// (i) A serializable read may be stale, never from the future, and
		// always a state the store was in.
		{name: "serializable: stale but consistent", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			at(put(0, "x", "b", 20, 30), 3),
			serializable(getRev(1, "x", 40, 50, 2, "a", 2, 2, 1)),
			serializable(at(getAbsent(1, "x", 60, 70), 1)),
			serializable(rangeRead(1, "a", EndAll, 80, 90, 3, kv("x", "b", 3, 2, 2))),
		}, want: VerdictOK},
		{name: "serializable: a revision from the future", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			serializable(getRev(1, "x", 20, 30, 3, "b", 3, 2, 2)),
			at(put(0, "x", "b", 40, 50), 3),
		}, want: VerdictIllegal, reason: "history[1] (serializable get x: ok b mod 3 create 2 version 2 @3), which returned at 30, saw revision 3, created by history[2] (put x=b: ok @3) called later, at 40"},
		{name: "serializable: a revision before its own from the future", ops: []Operation{
			at(put(0, "y", "1", 0, 100), 3),
			serializable(getRev(1, "x", 10, 20, 3, "a", 2, 2, 1)),
			at(put(2, "x", "a", 30, 40), 2),
		}, want: VerdictIllegal, reason: "saw revision 3, so revision 2 before it, created by history[2] (put x=a: ok @2) called later, at 30"},
		{name: "serializable: stale, then a linearizable read older still", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			at(put(0, "x", "b", 20, 100), 3),
			serializable(getRev(1, "x", 30, 40, 3, "b", 3, 2, 2)),
			getRev(1, "x", 50, 60, 2, "a", 2, 2, 1),
		}, want: VerdictIllegal, reason: "revisions went back in real time: history[2] (serializable get x: ok b mod 3 create 2 version 2 @3) returned at 40 having seen revision 3, then history[3] (get x: ok a mod 2 create 2 version 1 @2), called at 50"},
		{name: "serializable: stale, then a serializable read older still", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			at(put(0, "x", "b", 20, 30), 3),
			serializable(getRev(1, "x", 40, 50, 3, "b", 3, 2, 2)),
			serializable(getRev(1, "x", 60, 70, 2, "a", 2, 2, 1)),
		}, want: VerdictOK},
		{name: "serializable: values that disagree with its revision", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			at(put(0, "x", "b", 20, 30), 3),
			serializable(getRev(1, "x", 40, 50, 3, "a", 2, 2, 1)),
		}, want: VerdictIllegal, reason: `history[2] (serializable get x: ok a mod 2 create 2 version 1 @3) read key x as "a" mod 2 create 2 version 1, but at revision 3 it was "b" mod 3 create 2 version 2`},

		// (j) Every revision up to the newest seen was created by some
		// write: a known one, or one whose outcome is unknown.
		{name: "gap: created by nothing", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			at(put(0, "x", "b", 20, 30), 4),
			getRev(1, "x", 40, 50, 4, "b", 4, 2, 2),
		}, want: VerdictIllegal, reason: "revision 3 was created by no operation in the history"},
		{name: "gap: a read from beyond the last write", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			getRev(1, "x", 40, 50, 3, "a", 2, 2, 1),
		}, want: VerdictIllegal, reason: "revision 3 was created by no operation in the history"},
		{name: "gap: explained by an unknown write", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			unknown(put(2, "y", "c", 5, 0)),
			at(put(0, "x", "b", 20, 30), 4),
			getRev(1, "x", 40, 50, 4, "b", 4, 2, 2),
		}, want: VerdictOK, revisions: n(3), resolvedN: n(0)},

		{name: "gap: two, explained by two unknown writes", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			unknown(put(2, "y", "c", 5, 0)),
			unknown(delRange(3, "a", EndAll, 5, 0, 0, 0)),
			at(put(0, "x", "b", 20, 30), 4),
			at(put(0, "x", "c", 40, 50), 6),
		}, want: VerdictOK},
		{name: "gap: two, and one unknown write to explain them", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			unknown(put(2, "y", "c", 5, 0)),
			at(put(0, "x", "b", 20, 30), 4),
			at(put(0, "x", "c", 40, 50), 6),
		}, want: VerdictIllegal, reason: "revision 5 was created by no operation in the history, and no write whose revision is unknown is left to explain it: history[3] (put x=c: ok @6) returned at 50 having seen it, when 1 such writes had been called, and it is the 2nd revision created by none"},
		{name: "gap: seen before the unknown write that might explain it was called", ops: []Operation{
			at(put(0, "x", "a", 0, 10), 2),
			at(put(0, "x", "b", 20, 30), 4),
			unknown(put(2, "y", "c", 100, 0)),
		}, want: VerdictIllegal, reason: "revision 3 was created by no operation in the history, and no write whose revision is unknown is left to explain it: history[1] (put x=b: ok @4) returned at 30 having seen it, when 0 such writes had been called"},
		{name: "gap: explained by an ok write whose revision was not recorded", ops: []Operation{
			put(0, "x", "a", 0, 10),
			getRev(1, "x", 20, 30, 2, "a", 2, 2, 1),
			at(put(0, "x", "b", 40, 50), 3),
			getRev(1, "x", 60, 70, 3, "b", 3, 2, 2),
		}, want: VerdictOK, revisions: n(3)},
		{name: "gap: an ok write without a revision explains one, not two", ops: []Operation{
			put(0, "x", "a", 0, 10),
			getRev(1, "x", 20, 30, 3, "a", 3, 3, 1),
		}, want: VerdictIllegal, reason: "revision 3 was created by no operation"},

		// (k) What the recorder learnt about an unknown write is checked
		// like what a client saw.
		{name: "resolved: at R, and a read at R sees it", ops: []Operation{
			unknown(put(0, "x", "a", 0, 0)),
			getRev(1, "x", 10, 20, 2, "a", 2, 2, 1),
		}, resolved: map[int]Resolution{0: {Revision: 2}}, want: VerdictOK, revisions: n(2), resolvedN: n(1)},
		{name: "resolved: at R, and a read after it does not see it", ops: []Operation{
			unknown(put(0, "x", "a", 0, 0)),
			at(put(1, "y", "b", 10, 20), 3),
			at(getAbsent(1, "x", 30, 40), 3),
		}, resolved: map[int]Resolution{0: {Revision: 2}}, want: VerdictIllegal,
			reason: `history[2] (get x: ok (none) @3) read key x as absent, but at revision 3 it was "a" mod 2 create 2 version 1`, revisions: n(3), resolvedN: n(1)},
		{name: "resolved: at R, and a read without revisions after it does not see it", ops: []Operation{
			unknown(put(0, "x", "a", 0, 0)),
			at(put(1, "y", "b", 10, 20), 3),
			getAbsent(1, "x", 30, 40),
		}, resolved: map[int]Resolution{0: {Revision: 2}}, want: VerdictIllegal, reason: "key x: no order of its 2 operations", revisions: n(2), resolvedN: n(1)},
		{name: "resolved: never, but a later read sees it", ops: []Operation{
			unknown(put(0, "x", "a", 0, 0)),
			getRev(1, "x", 10, 20, 2, "a", 2, 2, 1),
		}, resolved: map[int]Resolution{0: {Revision: 0}}, want: VerdictIllegal, reason: "revision 2 was created by no operation", revisions: n(1), resolvedN: n(1)},
		{name: "resolved: never, but a later read without revisions sees it", ops: []Operation{
			unknown(put(0, "x", "a", 0, 0)),
			get(1, "x", 10, 20, "a"),
		}, resolved: map[int]Resolution{0: {Revision: 0}}, want: VerdictIllegal, reason: "key x: no order of its 1 operations", revisions: n(0), resolvedN: n(1)},
		{name: "resolved: never, another unknown write explains the revision, not the value", ops: []Operation{
			unknown(put(0, "x", "a", 0, 0)),
			unknown(put(2, "y", "b", 0, 0)),
			getRev(1, "x", 10, 20, 2, "a", 2, 2, 1),
		}, resolved: map[int]Resolution{0: {Revision: 0}}, want: VerdictIllegal, reason: `read key x as "a" mod 2 create 2 version 1, but at revision 2 it was absent`},
		{name: "resolved: from a read of its unique value", ops: []Operation{
			unknown(put(0, "x", "a", 0, 0)),
			getRev(1, "x", 10, 20, 2, "a", 2, 2, 1),
			getRev(1, "x", 30, 40, 2, "a", 2, 2, 1),
		}, want: VerdictOK, revisions: n(3), resolvedN: n(1)},
		{name: "resolved: from a read, so it took effect before that read returned", ops: []Operation{
			unknown(put(0, "x", "a", 0, 0)),
			getRev(1, "x", 10, 20, 2, "a", 2, 2, 1),
			getAbsent(1, "x", 30, 40),
		}, want: VerdictIllegal, reason: "key x: no order of its 3 operations", resolvedN: n(1)},
		{name: "resolved: from a read, at a revision another write created", ops: []Operation{
			unknown(put(0, "x", "a", 0, 0)),
			at(put(2, "y", "b", 0, 5), 2),
			getRev(1, "x", 10, 20, 2, "a", 2, 2, 1),
		}, want: VerdictIllegal, reason: "revision 2 was created twice", resolvedN: n(1)},
		{name: "resolved: from a range read of a txn's value", ops: []Operation{
			unknown(txn(0, 0, 0, 0, tput("a", "1"), tput("b", "2"))),
			rangeRead(1, "a", EndAll, 10, 20, 2, kv("a", "1", 2, 2, 1), kv("b", "2", 2, 2, 1)),
		}, want: VerdictOK, revisions: n(2), resolvedN: n(1)},
		{name: "resolved: a txn from one key, so the other is seen too", ops: []Operation{
			unknown(txn(0, 0, 0, 0, tput("a", "1"), tput("b", "2"))),
			getRev(1, "a", 10, 20, 2, "1", 2, 2, 1),
			at(getAbsent(1, "b", 30, 40), 2),
		}, want: VerdictIllegal, reason: `read key b as absent, but at revision 2 it was "2"`, resolvedN: n(1)},

		// (l) An unknown write whose revision is not learnt: the first read
		// that shows it fills in its revisions, and later reads must agree.
		// The client retried its put after a timeout, so its value is not
		// unique and no read resolves it.
		{name: "unresolved: a read fills in its mod revision", ops: []Operation{
			unknown(put(0, "x", "a", 0, 0)),
			unknown(put(1, "x", "a", 5, 0)),
			at(put(2, "y", "b", 0, 10), 2),
			at(put(2, "y", "c", 20, 30), 4),
			getRev(2, "x", 40, 50, 4, "a", 3, 3, 1),
			getRev(2, "x", 60, 70, 4, "a", 3, 3, 1),
		}, want: VerdictOK, revisions: n(4), resolvedN: n(0)},
		{name: "unresolved: a later read disagrees with the filled-in mod revision", ops: []Operation{
			unknown(put(0, "x", "a", 0, 0)),
			unknown(put(1, "x", "a", 5, 0)),
			at(put(2, "y", "b", 0, 10), 2),
			at(put(2, "y", "c", 20, 30), 4),
			getRev(2, "x", 40, 50, 4, "a", 3, 3, 1),
			getRev(2, "x", 60, 70, 4, "a", 2, 2, 1),
		}, want: VerdictIllegal, reason: "key x: no order of its 4 operations", revisions: n(4), resolvedN: n(0)},
		{name: "unresolved: a later read disagrees with the filled-in create revision and version", ops: []Operation{
			unknown(put(0, "x", "a", 0, 0)),
			unknown(put(1, "x", "a", 5, 0)),
			at(put(2, "y", "b", 0, 10), 2),
			at(put(2, "y", "c", 20, 30), 4),
			getRev(2, "x", 40, 50, 4, "a", 3, 3, 1),
			getRev(2, "x", 60, 70, 4, "a", 3, 2, 2),
		}, want: VerdictIllegal, reason: "key x: no order of its 4 operations"},
	})
}
