package linearizability

import (
	"strings"
	"testing"
)

// lockRun builds a history of lock users on the prefix "lock/".
type lockRun struct {
	h History
	l Locks
}

func newLockRun() *lockRun {
	return &lockRun{l: Locks{Prefix: "lock/", Holds: []LockHold{
		{User: "lock user 1", Lease: 1, Key: "lock/1", Release: -1},
		{User: "lock user 2", Lease: 2, Key: "lock/2", Release: -1},
	}}}
}

func (r *lockRun) add(op Operation) int {
	op.Client = len(r.h.Operations) + 1
	if op.Outcome == "" {
		op.Outcome = OutcomeOK
	}
	op.Call = int64(len(r.h.Operations)) * sec
	if op.Outcome != OutcomeUnknown {
		op.Return = op.Call + sec/2
	}
	r.h.Add(op)
	return len(r.h.Operations) - 1
}

// acquire, fenced and release record user u's (1-based) operations.
func (r *lockRun) acquire(u int, value string, rev int64) {
	hd := &r.l.Holds[u-1]
	i := r.add(Operation{Kind: KindCAS, Key: hd.Key, ExpectAbsent: true, Value: value, Succeeded: true, Revision: rev})
	hd.Acquires = append(hd.Acquires, i)
}

func (r *lockRun) fenced(u int, from, to string, succeeded bool, rev int64) {
	hd := &r.l.Holds[u-1]
	i := r.add(Operation{Kind: KindCAS, Key: hd.Key, Expect: from, Value: to, Succeeded: succeeded, Revision: rev})
	hd.Fenced = append(hd.Fenced, i)
	if succeeded {
		hd.Owned = 1
	}
}

func (r *lockRun) release(u int, rev int64) {
	hd := &r.l.Holds[u-1]
	hd.Release = r.add(Operation{Kind: KindDelete, Key: hd.Key, Deleted: 1, Revision: rev})
}

func TestCheckLocks(t *testing.T) {
	for _, tt := range []struct {
		name string
		run  func(r *lockRun)
		want string // "" passes
		// fenced, refused and undecided writes counted, when it passes
		fenced, refused, undecided int
		resolved                   map[int]Resolution
	}{
		{"one after the other", func(r *lockRun) {
			r.acquire(1, "u1-1", 2)
			r.acquire(2, "u2-1", 3)
			r.fenced(1, "u1-1", "u1-2", true, 4)
			r.release(1, 5)
			r.fenced(2, "u2-1", "u2-2", true, 6)
			r.release(2, 7)
		}, "", 2, 0, 0, nil},
		{"two holders", func(r *lockRun) {
			r.acquire(1, "u1-1", 2)
			r.acquire(2, "u2-1", 3)
			r.fenced(2, "u2-1", "u2-2", true, 4) // lock/1 is older and alive
		}, "two holders: history[2] (cas lock/2 u2-1->u2-2: ok true @4), a fenced write of lock user 2, succeeded at revision 4, when its key lock/2 (created at revision 3) did not own the lock: lock user 1's key lock/1, created at revision 2, did", 0, 0, 0, nil},
		{"a holder whose session expired is refused by the fence", func(r *lockRun) {
			r.acquire(1, "u1-1", 2)
			r.acquire(2, "u2-1", 3)
			r.fenced(1, "u1-1", "u1-2", true, 4)
			// lock user 1's session expires: its revoke deletes lock/1.
			r.add(Operation{Kind: KindTxn, Ops: []TxnOp{{Kind: KindDelete, Key: "lock/1", Deleted: 1}}, Revision: 5})
			r.fenced(2, "u2-1", "u2-2", true, 6)
			r.fenced(1, "u1-2", "u1-3", false, 6)
		}, "", 2, 1, 0, nil},
		{"a resolved fenced write is judged at its revision", func(r *lockRun) {
			r.acquire(1, "u1-1", 2)
			r.acquire(2, "u2-1", 3)
			r.fenced(2, "u2-1", "u2-2", false, 0)
			op := &r.h.Operations[2]
			op.Outcome, op.Succeeded, op.Return = OutcomeUnknown, false, 0
		}, "succeeded at revision 4", 0, 0, 0, map[int]Resolution{2: {Revision: 4}}},
		{"an unresolved acquire leaves the owner unknown", func(r *lockRun) {
			r.acquire(1, "u1-1", 2)
			r.add(Operation{Kind: KindCAS, Key: "lock/3", ExpectAbsent: true, Value: "u3-1", Outcome: OutcomeUnknown})
			r.fenced(1, "u1-1", "u1-2", true, 3)
		}, "", 0, 0, 1, nil},
		{"another prefix does not count", func(r *lockRun) {
			r.add(Operation{Kind: KindPut, Key: "locks", Value: "x", Revision: 2})
			r.acquire(1, "u1-1", 3)
			r.fenced(1, "u1-1", "u1-2", true, 4)
		}, "", 1, 0, 0, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newLockRun()
			tt.run(r)
			resolved := tt.resolved
			if res := Check(r.h, Options{Resolved: resolved}); res.Verdict != VerdictOK {
				t.Fatalf("the history is not linearizable: %s", res.Reason)
			}
			res := CheckLocks(r.h, r.l, resolved)
			switch {
			case tt.want == "" && res.Reason != "":
				t.Fatal(res.Reason)
			case !strings.Contains(res.Reason, tt.want):
				t.Fatalf("reason %q, want it to say %q", res.Reason, tt.want)
			case tt.want == "" && (res.Fenced != tt.fenced || res.Refused != tt.refused || res.Undecided != tt.undecided):
				t.Errorf("fenced %d, refused %d, undecided %d; want %d, %d, %d",
					res.Fenced, res.Refused, res.Undecided, tt.fenced, tt.refused, tt.undecided)
			}
		})
	}
}

func TestLocksValidate(t *testing.T) {
	r := newLockRun()
	r.acquire(1, "u1-1", 2)
	r.add(Operation{Kind: KindPut, Key: "lock/2", Value: "u2-1", Revision: 3})
	for _, tt := range []struct {
		name   string
		change func(l *Locks)
		want   string
	}{
		{"a key outside the prefix", func(l *Locks) { l.Holds[0].Key = "other/1" }, "not under the prefix"},
		{"an acquire out of range", func(l *Locks) { l.Holds[0].Acquires = []int{7} }, "out of range"},
		{"a fenced write on another key", func(l *Locks) { l.Holds[1].Fenced = []int{0} }, "is not a cas of lock/2"},
		{"a release that is a put", func(l *Locks) { l.Holds[1].Release = 1 }, "is not a delete of lock/2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newLockRun().l
			l.Holds[0].Acquires = r.l.Holds[0].Acquires
			tt.change(&l)
			if res := CheckLocks(r.h, l, nil); !strings.Contains(res.Reason, tt.want) {
				t.Fatalf("reason %q, want it to say %q", res.Reason, tt.want)
			}
		})
	}
}
