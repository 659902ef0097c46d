package linearizability

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Leases. A run with lease holders keeps, beside its History, a record of
// their leases (Leases): each lease's grant and keep-alives as its holder
// saw them, which history operations wrote a key with which lease, and
// every revoke the cluster applied, the holders' own and the leader's of
// an expired lease, as the members' write ledger told it. Every revoke
// that deleted keys is also in the History, as an operation the revision
// pass replays (a txn of deletes of exactly the keys it deleted, at its
// revision), so that every revision is still created by some write there.
//
// CheckLeases judges the record against etcd's promises:
//
//	(a) early: no lease expires while its holder's keep-alives were
//	    acknowledged within its TTL: for every revoke of an expired lease,
//	    every acknowledged grant or keep-alive sent at s with TTL t has
//	    s + t <= the time the first member applied the revoke. The
//	    leader renews a lease when the keep-alive reaches it, after s, so
//	    s + t is the earliest the lease may run out;
//	(b) exact: a revoke deletes exactly the keys that held its lease at
//	    its revision, none missing (a key left behind with a lease that is
//	    gone) and none extra (a key of another lease, or none);
//	(c) after: no write with a lease succeeds at a revision after its
//	    lease's revoke, nor when called after the revoke was applied;
//	(d) late: every lease whose holder stopped keeping it alive long
//	    enough before the end was revoked by the end (see LeaseOptions for
//	    the bound, and how it is derived).
//
// Together with the revision pass, which replays the revokes with every
// other write, (b) means a leased key disappears only by a client's delete
// or its own lease's revoke.

// Leases is what a run's clients did with leases, and what the cluster did
// to them.
type Leases struct {
	// Leases are the leases the clients were granted, in the order they
	// learnt of them.
	Leases []Lease `json:"leases"`
	// Attached lists the history operations that wrote a key with a
	// lease (a put, or a cas's put), by index, in index order.
	Attached []Attached `json:"attached,omitempty"`
	// Revokes are the revokes the cluster applied, in the order a first
	// member applied them.
	Revokes []Revoke `json:"revokes,omitempty"`
}

// Lease is one lease as its holder saw it.
type Lease struct {
	ID int64 `json:"id"`
	// Holder names the client that held it ("lease-holder 2", "lock user 1").
	Holder string `json:"holder"`
	// TTL is the TTL it was granted, in seconds.
	TTL int64 `json:"ttl"`
	// Grant is the grant that created it, when its holder saw it succeed;
	// a grant learnt only from "lease already exists" (an earlier attempt
	// of unknown outcome took effect) is not an acknowledgement and has
	// Outcome "" here.
	Grant LeaseCall `json:"grant"`
	// Known is when the holder learnt that the lease exists.
	Known int64 `json:"known"`
	// KeepAlives are the keep-alives its holder sent, in order.
	KeepAlives []LeaseCall `json:"keep_alives,omitempty"`
	// Renewed is the last time a member acknowledged a keep-alive of it
	// (when the answer left the member: the leader had renewed it then,
	// whether or not the answer reached the holder); 0 if none did.
	Renewed int64 `json:"renewed,omitempty"`
	// Stopped is when its holder stopped keeping it alive on purpose, so
	// that it would expire; 0 if it never did.
	Stopped int64 `json:"stopped,omitempty"`
}

// LeaseCall is one grant or keep-alive: when it was sent, when it was
// answered, and the TTL the answer gave (0: the lease was not found).
type LeaseCall struct {
	Call    int64   `json:"call"`
	Return  int64   `json:"return,omitempty"`
	Outcome Outcome `json:"outcome,omitempty"`
	TTL     int64   `json:"ttl,omitempty"`
	Error   string  `json:"error,omitempty"`
}

// acked reports whether the call renewed its lease for TTL seconds, by
// its holder's account.
func (c *LeaseCall) acked() bool { return c.Outcome == OutcomeOK && c.TTL > 0 }

// Attached says that history operation Op wrote its key with Lease.
type Attached struct {
	Op    int   `json:"op"`
	Lease int64 `json:"lease"`
}

// Revoke is one revoke of a lease that the cluster applied.
type Revoke struct {
	Lease int64 `json:"lease"`
	// Expired: the leader revoked it because it ran out; otherwise a
	// client asked.
	Expired bool `json:"expired,omitempty"`
	// Revision is the revision it created, 0 if it deleted nothing.
	Revision int64 `json:"revision,omitempty"`
	// Deleted are the keys it deleted, as the member that applied it
	// first reported them, in key order.
	Deleted []string `json:"deleted,omitempty"`
	// Applied is when the first member applied it.
	Applied int64 `json:"applied"`
	// Op is the history operation that records it, -1 when it deleted
	// nothing (it created no revision).
	Op int `json:"op"`
}

// LeaseOptions are the lease check's inputs besides the history and the
// record.
//
// Rule (d)'s bound is derived from what plumb's leader does, as etcd's:
// the leader that acknowledges a keep-alive counts the lease down from
// then (Lease.Renewed, or when its holder learnt of the grant), and a
// member elected later starts every lease afresh with at most its TTL plus
// an election timeout. Counting in whole ticks, it proposes the revoke at
// most one tick after that; a revoke proposal that is lost is made again
// after RevokeRetry; and a leader that keeps its leadership (CheckQuorum:
// one that hears from no quorum for an election timeout steps down)
// commits it within another election timeout. So a lease last renewed at
// R must be revoked by
//
//	max(R + TTL, Elected + TTL + ElectionTimeout) + Tick + RevokeRetry + ElectionTimeout
//
// where Elected is when the leader the run ended with was elected.
type LeaseOptions struct {
	// Resolved resolves unknown writes, as Options.Resolved.
	Resolved map[int]Resolution
	// End is when the run ended.
	End int64
	// Elected is when the leader at the end was elected (the run's last
	// leader change).
	Elected int64
	// ElectionTimeout, Tick (one raft tick, the heartbeat interval) and
	// RevokeRetry (etcd's 3 s) in nanoseconds.
	ElectionTimeout, Tick, RevokeRetry int64
}

// LeaseResult is the lease check's verdict and what it judged.
type LeaseResult struct {
	// Reason is the first rule broken, "" if none.
	Reason string
	// Leases, KeepAlives (acknowledged), Expired and Revoked (by clients)
	// count what was checked; Stopped the leases whose holder stopped
	// keeping them alive, and Due those of them rule (d) held to.
	Leases, KeepAlives, Expired, Revoked, Stopped, Due int
	// Uncertain counts keys rule (b) could not judge at some revoke,
	// because a write whose revision is unknown may have touched them.
	Uncertain int
}

// Validate checks the record against its history: operation indices in
// range, leases named once.
func (l *Leases) Validate(h History) error {
	ids := make(map[int64]bool)
	for i, ls := range l.Leases {
		if ids[ls.ID] {
			return fmt.Errorf("leases[%d]: lease %x named twice", i, ls.ID)
		}
		ids[ls.ID] = true
	}
	inRange := func(op int) bool { return op >= 0 && op < len(h.Operations) }
	for i, a := range l.Attached {
		if !inRange(a.Op) || i > 0 && a.Op <= l.Attached[i-1].Op {
			return fmt.Errorf("attached[%d]: operation %d is out of range or out of order", i, a.Op)
		}
		if k := h.Operations[a.Op].Kind; k != KindPut && k != KindCAS {
			return fmt.Errorf("attached[%d]: operation %d is a %s, not a put or cas", i, a.Op, k)
		}
	}
	for i, r := range l.Revokes {
		switch {
		case r.Op == -1 && (r.Revision != 0 || len(r.Deleted) != 0):
			return fmt.Errorf("revokes[%d]: deleted keys at revision %d but names no operation", i, r.Revision)
		case r.Op != -1 && !inRange(r.Op):
			return fmt.Errorf("revokes[%d]: operation %d is out of range", i, r.Op)
		case r.Op != -1 && h.Operations[r.Op].Kind != KindTxn:
			return fmt.Errorf("revokes[%d]: operation %d is a %s, not a txn", i, r.Op, h.Operations[r.Op].Kind)
		case !slices.IsSorted(r.Deleted):
			return fmt.Errorf("revokes[%d]: deleted keys out of order", i)
		}
	}
	return nil
}

// CheckLeases checks the lease rules (see the top of this file) on a
// history and its lease record.
func CheckLeases(h History, l Leases, opts LeaseOptions) LeaseResult {
	if err := l.Validate(h); err != nil {
		return LeaseResult{Reason: "the lease record is invalid: " + err.Error()}
	}
	c := &leaseCheck{h: &h, l: &l, opts: opts, leases: make(map[int64]*Lease), revoked: make(map[int64]*Revoke)}
	for i := range l.Leases {
		c.leases[l.Leases[i].ID] = &l.Leases[i]
	}
	for i := range l.Revokes {
		r := &l.Revokes[i]
		if _, ok := c.revoked[r.Lease]; !ok {
			c.revoked[r.Lease] = r // the first; a second finds no lease and fails
		}
	}
	res := &c.res
	res.Leases = len(l.Leases)
	for _, ls := range l.Leases {
		for _, k := range ls.KeepAlives {
			if k.acked() {
				res.KeepAlives++
			}
		}
	}
	for _, r := range l.Revokes {
		if r.Expired {
			res.Expired++
		} else {
			res.Revoked++
		}
	}
	for _, rule := range []func() string{c.early, c.after, c.exact, c.late} {
		if res.Reason = rule(); res.Reason != "" {
			break
		}
	}
	return *res
}

type leaseCheck struct {
	h       *History
	l       *Leases
	opts    LeaseOptions
	leases  map[int64]*Lease
	revoked map[int64]*Revoke // each lease's first revoke
	res     LeaseResult
}

// early is rule (a): no lease expired before an acknowledged grant or
// keep-alive allowed.
func (c *leaseCheck) early() string {
	for _, r := range c.l.Revokes {
		ls := c.leases[r.Lease]
		if !r.Expired || ls == nil {
			continue
		}
		calls := append([]LeaseCall{ls.Grant}, ls.KeepAlives...)
		for i, k := range calls {
			if !k.acked() {
				continue
			}
			if until := k.Call + k.TTL*1e9; until > r.Applied {
				what := "its grant"
				if i > 0 {
					what = fmt.Sprintf("keep-alive %d", i)
				}
				return fmt.Sprintf("lease %x of %s expired early: its revoke was applied at %s, but %s, sent at %s, was acknowledged with TTL %ds, so it should have lived until %s",
					r.Lease, ls.Holder, atTime(r.Applied), what, atTime(k.Call), k.TTL, atTime(until))
			}
		}
	}
	return ""
}

// exact is rule (b): replaying the history's writes in revision order,
// each revoke deletes exactly the keys that hold its lease.
func (c *leaseCheck) exact() string {
	attached := make(map[int]int64, len(c.l.Attached))
	leasedKeys := make(map[string]bool)
	for _, a := range c.l.Attached {
		attached[a.Op] = a.Lease
		leasedKeys[c.h.Operations[a.Op].Key] = true
	}
	revokeAt := make(map[int]*Revoke)
	for i := range c.l.Revokes {
		if r := &c.l.Revokes[i]; r.Op >= 0 {
			revokeAt[r.Op] = r
			for _, k := range r.Deleted {
				leasedKeys[k] = true
			}
		}
	}
	rp := newReplay(c.h, c.opts.Resolved, func(k string) bool { return leasedKeys[k] })
	for _, w := range rp.writes {
		if r := revokeAt[w.op]; r != nil {
			if reason := c.checkRevoke(rp, r); reason != "" {
				return reason
			}
		}
		rp.apply(w, attached[w.op])
	}
	// A revoke that deleted nothing created no revision to find it at:
	// whatever still holds a revoked lease at the end was left behind by
	// it (or written after it, which rule (c) names).
	for _, k := range rp.sortedKeys() {
		s := rp.keys[k]
		if r := c.revoked[s.lease]; s.exists && r != nil && !rp.uncertain(k) {
			return fmt.Sprintf("%s of lease %x, applied at %s, left key %s behind: it still holds the lease at the end",
				revokeName(r), r.Lease, atTime(r.Applied), describeKey(k))
		}
	}
	return ""
}

// checkRevoke compares a revoke's deleted keys with the keys that hold its
// lease in the replay just before it.
func (c *leaseCheck) checkRevoke(rp *keyReplay, r *Revoke) string {
	var missing, extra []string
	for _, k := range rp.sortedKeys() {
		s := rp.keys[k]
		switch {
		case rp.uncertain(k):
			if slices.Contains(r.Deleted, k) || s.exists && s.lease == r.Lease {
				c.res.Uncertain++
			}
		case s.exists && s.lease == r.Lease && !slices.Contains(r.Deleted, k):
			missing = append(missing, k)
		}
	}
	for _, k := range r.Deleted {
		if rp.uncertain(k) {
			continue
		}
		if s := rp.keys[k]; s == nil || !s.exists || s.lease != r.Lease {
			extra = append(extra, fmt.Sprintf("%s (%s)", describeKey(k), s.describeLease()))
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s of lease %x at revision %d (history[%d])", revokeName(r), r.Lease, r.Revision, r.Op)
	if len(missing) > 0 {
		fmt.Fprintf(&b, " left behind %d keys that held the lease: %s", len(missing), strings.Join(quoteKeys(missing), ", "))
	}
	if len(extra) > 0 {
		if len(missing) > 0 {
			b.WriteString(", and")
		}
		fmt.Fprintf(&b, " deleted keys that did not hold it: %s", strings.Join(extra, ", "))
	}
	return b.String()
}

func revokeName(r *Revoke) string {
	if r.Expired {
		return "the expiry"
	}
	return "the revoke"
}

func quoteKeys(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = describeKey(k)
	}
	return out
}

// after is rule (c): no write with a lease took effect after the lease's
// revoke, by revision or in real time.
func (c *leaseCheck) after() string {
	for _, a := range c.l.Attached {
		r := c.revoked[a.Lease]
		if r == nil {
			continue
		}
		op := &c.h.Operations[a.Op]
		rev, known := writeRevision(op, a.Op, c.opts.Resolved)
		if !known || rev == 0 {
			continue
		}
		switch {
		case r.Revision != 0 && rev > r.Revision:
			return fmt.Sprintf("history[%d] (%s) wrote with lease %x at revision %d, after %s of the lease at revision %d",
				a.Op, Describe(op), a.Lease, rev, revokeName(r), r.Revision)
		case op.Call > r.Applied:
			return fmt.Sprintf("history[%d] (%s) wrote with lease %x, called at %s, after %s of the lease was applied at %s",
				a.Op, Describe(op), a.Lease, atTime(op.Call), revokeName(r), atTime(r.Applied))
		}
	}
	return ""
}

// late is rule (d): a lease whose holder stopped keeping it alive long
// enough before the end was revoked.
func (c *leaseCheck) late() string {
	o := c.opts
	for i := range c.l.Leases {
		ls := &c.l.Leases[i]
		if ls.Stopped == 0 {
			continue
		}
		c.res.Stopped++
		renewed := max(ls.Renewed, ls.Known)
		ttl := ls.TTL * 1e9
		due := max(renewed+ttl, o.Elected+ttl+o.ElectionTimeout) + o.Tick + o.RevokeRetry + o.ElectionTimeout
		if due > o.End {
			continue
		}
		c.res.Due++
		if c.revoked[ls.ID] == nil {
			return fmt.Sprintf("lease %x of %s was never revoked: its holder stopped keeping it alive at %s, it was last renewed at %s with TTL %ds, the last leader was elected at %s, so it should have been revoked by %s, before the end at %s",
				ls.ID, ls.Holder, atTime(ls.Stopped), atTime(renewed), ls.TTL, atTime(o.Elected), atTime(due), atTime(o.End))
		}
	}
	return ""
}

// writeRevision is the revision a write created: its own (an ok write
// that changed something), or its resolution's. known is false for an
// unknown write with no resolution.
func writeRevision(op *Operation, i int, resolved map[int]Resolution) (rev int64, known bool) {
	switch op.Outcome {
	case OutcomeOK:
		if changed(op) {
			return op.Revision, true
		}
		return 0, true
	case OutcomeUnknown:
		r, ok := resolved[i]
		return r.Revision, ok
	}
	return 0, true
}

// changed reports whether an ok write changed the store (created a
// revision).
func changed(op *Operation) bool {
	switch op.Kind {
	case KindPut:
		return true
	case KindCAS:
		return op.Succeeded
	case KindDelete:
		return op.Deleted > 0
	case KindTxn:
		for _, t := range op.Ops {
			if t.Kind == KindPut || t.Deleted > 0 {
				return true
			}
		}
	}
	return false
}

// keyReplay applies a history's writes in revision order to the keys it
// follows, for the lease and lock checks (the revision pass has its own,
// which checks reads against it too). Writes whose revision is not known
// make the keys they may touch uncertain for the whole replay.
type keyReplay struct {
	h      *History
	follow func(string) bool
	keys   map[string]*replayKey
	writes []replayWrite // in revision order
	// spans are the keys and ranges unresolved writes may have touched.
	spans [][2]string
}

type replayWrite struct {
	op  int
	rev int64
}

type replayKey struct {
	exists bool
	create int64
	lease  int64
}

func (s *replayKey) describeLease() string {
	switch {
	case s == nil || !s.exists:
		return "absent"
	case s.lease == 0:
		return "no lease"
	}
	return fmt.Sprintf("lease %x", s.lease)
}

func newReplay(h *History, resolved map[int]Resolution, follow func(string) bool) *keyReplay {
	rp := &keyReplay{h: h, follow: follow, keys: make(map[string]*replayKey)}
	for i := range h.Operations {
		op := &h.Operations[i]
		if !op.IsWrite() || op.Outcome == OutcomeFailed {
			continue
		}
		rev, known := writeRevision(op, i, resolved)
		switch {
		case !known:
			rp.spans = append(rp.spans, writeSpans(op)...)
		case rev != 0:
			rp.writes = append(rp.writes, replayWrite{op: i, rev: rev})
		}
	}
	slices.SortStableFunc(rp.writes, func(a, b replayWrite) int { return cmp.Compare(a.rev, b.rev) })
	return rp
}

// writeSpans lists the keys and ranges a write names.
func writeSpans(op *Operation) [][2]string {
	if op.Kind == KindTxn {
		spans := make([][2]string, len(op.Ops))
		for i, t := range op.Ops {
			spans[i] = [2]string{t.Key, t.End}
		}
		return spans
	}
	return [][2]string{{op.Key, op.End}}
}

// uncertain reports whether a write whose revision is not known may have
// touched k.
func (rp *keyReplay) uncertain(k string) bool {
	for _, s := range rp.spans {
		if InRange(k, s[0], s[1]) {
			return true
		}
	}
	return false
}

func (rp *keyReplay) sortedKeys() []string {
	keys := make([]string, 0, len(rp.keys))
	for k := range rp.keys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// apply applies one write that created revision w.rev; lease is the lease
// its put attached (0: none).
func (rp *keyReplay) apply(w replayWrite, lease int64) {
	op := &rp.h.Operations[w.op]
	put := func(k string) {
		if !rp.follow(k) {
			return
		}
		s := rp.keys[k]
		if s == nil {
			s = &replayKey{}
			rp.keys[k] = s
		}
		if !s.exists {
			s.exists, s.create = true, w.rev
		}
		s.lease = lease
	}
	del := func(key, end string) {
		if end == "" {
			if s := rp.keys[key]; s != nil {
				*s = replayKey{}
			}
			return
		}
		for k, s := range rp.keys {
			if InRange(k, key, end) {
				*s = replayKey{}
			}
		}
	}
	switch op.Kind {
	case KindPut, KindCAS:
		put(op.Key)
	case KindDelete:
		del(op.Key, op.End)
	case KindTxn:
		lease = 0 // a txn's puts carry no lease in these records
		for _, t := range op.Ops {
			if t.Kind == KindPut {
				put(t.Key)
				continue
			}
			del(t.Key, t.End)
		}
	}
}

// atTime renders a history time (nanoseconds) in seconds, for reasons.
func atTime(ns int64) string { return fmt.Sprintf("%.6fs", float64(ns)/1e9) }
