package linearizability

import (
	"strings"
	"testing"
)

const (
	sec      = int64(1e9)
	testTTL  = 5
	leaseA   = int64(0x10)
	leaseB   = int64(0x20)
	keyA0    = "lease/1/1/0"
	keyA1    = "lease/1/1/1"
	keyB0    = "lease/2/1/0"
	plainKey = "key-000"
)

// leaseRun is a small run with two leases, A (expired at 9 s) and B (kept
// alive to the end), that passes every lease rule; each test case breaks
// it in one way.
type leaseRun struct {
	h    History
	l    Leases
	opts LeaseOptions
}

func newLeaseRun() *leaseRun {
	r := &leaseRun{opts: LeaseOptions{End: 30 * sec, Elected: sec / 2, ElectionTimeout: sec, Tick: sec / 10, RevokeRetry: 3 * sec}}
	put := func(key, value string, call, rev int64, lease int64) {
		r.add(Operation{Kind: KindPut, Key: key, Value: value, Call: call, Return: call + sec/10, Outcome: OutcomeOK, Revision: rev}, lease)
	}
	put(keyA0, "h1-1", 11*sec/10, 2, leaseA)
	put(keyA1, "h1-2", 12*sec/10, 3, leaseA)
	put(plainKey, "c1-1", 13*sec/10, 4, 0)
	put(keyB0, "h2-1", 14*sec/10, 5, leaseB)
	// A's expiry, as the simulator records it: called when its grant was,
	// returning when the first member applied it.
	r.revoke(Revoke{Lease: leaseA, Expired: true, Revision: 6, Deleted: []string{keyA0, keyA1}, Applied: 9 * sec}, sec)
	r.get(keyA0, 10*sec, 6, false)
	r.get(keyB0, 10*sec, 6, true)
	r.l.Leases = []Lease{
		{ID: leaseA, Holder: "lease-holder 1", TTL: testTTL, Known: sec + sec/100,
			Grant:      LeaseCall{Call: sec, Return: sec + sec/100, Outcome: OutcomeOK, TTL: testTTL},
			KeepAlives: []LeaseCall{{Call: 2 * sec, Return: 2*sec + sec/100, Outcome: OutcomeOK, TTL: testTTL}},
			Renewed:    2*sec + sec/200, Stopped: 3 * sec},
		{ID: leaseB, Holder: "lease-holder 2", TTL: testTTL, Known: sec,
			Grant:      LeaseCall{Call: sec - sec/100, Return: sec, Outcome: OutcomeOK, TTL: testTTL},
			KeepAlives: []LeaseCall{{Call: 20 * sec, Return: 20*sec + sec/100, Outcome: OutcomeOK, TTL: testTTL}},
			Renewed:    20*sec + sec/200},
	}
	return r
}

func (r *leaseRun) add(op Operation, lease int64) int {
	op.Client = len(r.h.Operations) + 1
	r.h.Add(op)
	i := len(r.h.Operations) - 1
	if lease != 0 {
		r.l.Attached = append(r.l.Attached, Attached{Op: i, Lease: lease})
	}
	return i
}

// revoke records a revoke and the txn that replays it.
func (r *leaseRun) revoke(rv Revoke, call int64) {
	rv.Op = -1
	if len(rv.Deleted) > 0 {
		op := Operation{Kind: KindTxn, Call: call, Return: rv.Applied, Outcome: OutcomeOK, Revision: rv.Revision}
		for _, k := range rv.Deleted {
			op.Ops = append(op.Ops, TxnOp{Kind: KindDelete, Key: k, Deleted: 1})
		}
		rv.Op = r.add(op, 0)
	}
	r.l.Revokes = append(r.l.Revokes, rv)
}

func (r *leaseRun) get(key string, call, rev int64, found bool) {
	op := Operation{Kind: KindGet, Key: key, Call: call, Return: call + sec/10, Outcome: OutcomeOK, Revision: rev}
	if found {
		op.Found, op.Result, op.ModRevision, op.CreateRevision, op.Version = true, "h2-1", 5, 5, 1
	}
	r.add(op, 0)
}

func TestCheckLeasesPasses(t *testing.T) {
	r := newLeaseRun()
	if res := Check(r.h, Options{}); res.Verdict != VerdictOK {
		t.Fatalf("the base history is not linearizable: %s", res.Reason)
	}
	res := CheckLeases(r.h, r.l, r.opts)
	if res.Reason != "" {
		t.Fatal(res.Reason)
	}
	if res.Leases != 2 || res.KeepAlives != 2 || res.Expired != 1 || res.Stopped != 1 || res.Due != 1 {
		t.Errorf("counts: %+v", res)
	}
}

// TestCheckLeasesFails breaks each rule in turn: the check must name it.
func TestCheckLeasesFails(t *testing.T) {
	for _, tt := range []struct {
		name    string
		breakIt func(r *leaseRun)
		want    string
	}{
		{"a: expired while a keep-alive was acknowledged", func(r *leaseRun) {
			ls := &r.l.Leases[0]
			ls.KeepAlives = append(ls.KeepAlives, LeaseCall{Call: 5 * sec, Return: 5*sec + sec/100, Outcome: OutcomeOK, TTL: testTTL})
		}, "expired early"},
		{"a: expired before its grant's TTL", func(r *leaseRun) {
			r.l.Revokes[0].Applied = 5 * sec
			r.h.Operations[r.l.Revokes[0].Op].Return = 5 * sec
		}, "its grant, sent at 1.000000s"},
		{"b: a key left behind", func(r *leaseRun) {
			rv := &r.l.Revokes[0]
			rv.Deleted = []string{keyA0}
			r.h.Operations[rv.Op].Ops = r.h.Operations[rv.Op].Ops[:1]
		}, "left behind 1 keys that held the lease: " + keyA1},
		{"b: a key of no lease deleted", func(r *leaseRun) {
			rv := &r.l.Revokes[0]
			rv.Deleted = append([]string{plainKey}, rv.Deleted...)
			op := &r.h.Operations[rv.Op]
			op.Ops = append(op.Ops, TxnOp{Kind: KindDelete, Key: plainKey, Deleted: 1})
		}, "deleted keys that did not hold it: key-000 (no lease)"},
		{"b: a key of another lease deleted", func(r *leaseRun) {
			rv := &r.l.Revokes[0]
			rv.Deleted = append(rv.Deleted, keyB0)
			op := &r.h.Operations[rv.Op]
			op.Ops = append(op.Ops, TxnOp{Kind: KindDelete, Key: keyB0, Deleted: 1})
		}, "deleted keys that did not hold it: lease/2/1/0 (lease 20)"},
		{"b: a revoke that deleted nothing left a key behind", func(r *leaseRun) {
			// B is revoked by its holder at 25 s and deletes nothing.
			r.l.Revokes = append(r.l.Revokes, Revoke{Lease: leaseB, Applied: 25 * sec, Op: -1})
		}, "left key lease/2/1/0 behind"},
		{"c: a put with the lease after its revoke's revision", func(r *leaseRun) {
			r.add(Operation{Kind: KindPut, Key: keyA0, Value: "h1-3", Call: 8 * sec, Return: 11 * sec, Outcome: OutcomeOK, Revision: 7}, leaseA)
		}, "wrote with lease 10 at revision 7, after the expiry of the lease at revision 6"},
		{"c: a put with the lease called after its revoke applied", func(r *leaseRun) {
			r.l.Revokes = append(r.l.Revokes, Revoke{Lease: leaseB, Applied: 25 * sec, Op: -1})
			r.add(Operation{Kind: KindPut, Key: "lease/2/1/1", Value: "h2-2", Call: 26 * sec, Return: 27 * sec, Outcome: OutcomeOK, Revision: 7}, leaseB)
		}, "called at 26.000000s, after the revoke of the lease was applied at 25.000000s"},
		{"c: an unknown put with the lease resolved after its revoke", func(r *leaseRun) {
			i := r.add(Operation{Kind: KindPut, Key: keyA0, Value: "h1-3", Call: 8 * sec, Outcome: OutcomeUnknown}, leaseA)
			r.opts.Resolved = map[int]Resolution{i: {Revision: 7}}
		}, "at revision 7, after the expiry"},
		{"d: a stopped lease never revoked", func(r *leaseRun) {
			r.l.Revokes = nil
			r.h.Operations[len(r.h.Operations)-3] = Operation{Kind: KindGet, Key: plainKey, Call: sec, Return: sec, Outcome: OutcomeFailed}
		}, "was never revoked"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newLeaseRun()
			tt.breakIt(r)
			res := CheckLeases(r.h, r.l, r.opts)
			if !strings.Contains(res.Reason, tt.want) {
				t.Fatalf("reason %q, want it to say %q", res.Reason, tt.want)
			}
		})
	}
}

// TestCheckLeasesBounds: the cases that must pass near each rule's edge.
func TestCheckLeasesBounds(t *testing.T) {
	for _, tt := range []struct {
		name    string
		change  func(r *leaseRun)
		wantDue int
	}{
		{"a keep-alive acknowledged exactly TTL before the expiry", func(r *leaseRun) {
			ls := &r.l.Leases[0]
			ls.KeepAlives = append(ls.KeepAlives, LeaseCall{Call: 4 * sec, Return: 4*sec + sec/100, Outcome: OutcomeOK, TTL: testTTL})
		}, 1},
		{"a keep-alive that was not acknowledged does not count", func(r *leaseRun) {
			ls := &r.l.Leases[0]
			ls.KeepAlives = append(ls.KeepAlives, LeaseCall{Call: 6 * sec, Outcome: OutcomeUnknown},
				LeaseCall{Call: 7 * sec, Return: 7 * sec, Outcome: OutcomeOK, TTL: 0})
		}, 1},
		{"a stopped lease not due by the end", func(r *leaseRun) {
			r.l.Revokes = nil
			r.h.Operations[len(r.h.Operations)-3] = Operation{Kind: KindGet, Key: plainKey, Call: sec, Return: sec, Outcome: OutcomeFailed}
			r.opts.End = 11 * sec // due at 2.005 + 5 + 0.1 + 3 + 1 = 11.105 s
		}, 0},
		{"a late election moves the bound", func(r *leaseRun) {
			r.l.Revokes = nil
			r.h.Operations[len(r.h.Operations)-3] = Operation{Kind: KindGet, Key: plainKey, Call: sec, Return: sec, Outcome: OutcomeFailed}
			r.opts.Elected = 21 * sec // due at 21 + 5 + 1 + 0.1 + 3 + 1 = 31.1 s
		}, 0},
		{"a key an unresolved write touched is not judged", func(r *leaseRun) {
			rv := &r.l.Revokes[0]
			rv.Deleted = []string{keyA0}
			r.h.Operations[rv.Op].Ops = r.h.Operations[rv.Op].Ops[:1]
			r.add(Operation{Kind: KindDelete, Key: keyA1, Call: 3 * sec, Outcome: OutcomeUnknown}, 0)
		}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newLeaseRun()
			tt.change(r)
			res := CheckLeases(r.h, r.l, r.opts)
			if res.Reason != "" {
				t.Fatal(res.Reason)
			}
			if res.Due != tt.wantDue {
				t.Errorf("%d leases due, want %d", res.Due, tt.wantDue)
			}
		})
	}
}

func TestLeasesValidate(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(r *leaseRun)
		want   string
	}{
		{"a lease twice", func(r *leaseRun) { r.l.Leases = append(r.l.Leases, r.l.Leases[0]) }, "named twice"},
		{"attached out of range", func(r *leaseRun) { r.l.Attached = append(r.l.Attached, Attached{Op: 99, Lease: leaseA}) }, "out of range"},
		{"attached to a get", func(r *leaseRun) {
			r.l.Attached = append(r.l.Attached, Attached{Op: len(r.h.Operations) - 1, Lease: leaseA})
		}, "not a put or cas"},
		{"a revoke with keys but no operation", func(r *leaseRun) { r.l.Revokes[0].Op = -1 }, "names no operation"},
		{"a revoke on a put", func(r *leaseRun) { r.l.Revokes[0].Op = 0 }, "not a txn"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newLeaseRun()
			tt.change(r)
			res := CheckLeases(r.h, r.l, r.opts)
			if !strings.Contains(res.Reason, tt.want) {
				t.Fatalf("reason %q, want it to say %q", res.Reason, tt.want)
			}
		})
	}
}
