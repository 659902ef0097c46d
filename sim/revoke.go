package sim

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/plumbdb/plumb/linearizability"
	"github.com/plumbdb/plumb/node"
)

// The lease record: what the lease holders and lock users did with their
// leases, and every revoke the members reported applying, which becomes
// part of the history (see linearizability.Leases).

// leaseRevokeRetryNs is how long the leader waits before proposing again
// the revoke of an expired lease that has not applied (etcd's
// expiredLeaseRetryInterval, node's leaseRevokeRetrySeconds): part of the
// lease check's bound on when a stopped lease must be gone.
const leaseRevokeRetryNs = int64(3e9)

// leaseRecord builds the run's linearizability.Leases.
type leaseRecord struct {
	rec     linearizability.Leases
	byID    map[int64]int                     // lease -> index in rec.Leases
	keys    map[int64][]string                // lease -> every key a write with it named, in order
	calls   []revokeCall                      // the apps' revoke requests
	applied []appliedRevoke                   // revokes, in the order a first member applied them
	seen    map[node.ProposalID]bool          // revoke proposals some member applied for good
	maybe   map[node.ProposalID]appliedRevoke // revoke proposals applied only in steps a crash cut
}

// revokeCall is an app's revoke request and what its caller saw.
type revokeCall struct {
	requestID uint64
	lease     int64
	call, ret int64
	outcome   linearizability.Outcome
}

// appliedRevoke is a revoke a member applied.
type appliedRevoke struct {
	proposal node.ProposalID
	lease    int64
	rev      int64
	deleted  []string
	at       int64
}

func newLeaseRecord() *leaseRecord {
	return &leaseRecord{byID: make(map[int64]int), keys: make(map[int64][]string),
		seen: make(map[node.ProposalID]bool), maybe: make(map[node.ProposalID]appliedRevoke)}
}

// granted records a lease its holder learnt of, and returns its index.
func (r *leaseRecord) granted(l linearizability.Lease) int {
	r.rec.Leases = append(r.rec.Leases, l)
	r.byID[l.ID] = len(r.rec.Leases) - 1
	return len(r.rec.Leases) - 1
}

func (r *leaseRecord) lease(i int) *linearizability.Lease { return &r.rec.Leases[i] }

// renewed notes that a member acknowledged a keep-alive of lease id.
func (r *leaseRecord) renewed(id int64, at int64) {
	if i, ok := r.byID[id]; ok {
		r.rec.Leases[i].Renewed = at
	}
}

// attached notes that history operation op wrote key with lease id.
func (r *leaseRecord) attached(op int, key string, id int64) {
	r.rec.Attached = append(r.rec.Attached, linearizability.Attached{Op: op, Lease: id})
	if !slices.Contains(r.keys[id], key) {
		r.keys[id] = append(r.keys[id], key)
	}
}

// noteRevokes takes in the revokes among a member's applies, once their
// step's I/O completed.
func (w *world) noteRevokes(as []node.AppliedWrite) {
	r := w.leaseRec
	for _, a := range as {
		if a.RevokedLease == 0 || r.seen[a.Proposal] {
			continue
		}
		r.seen[a.Proposal] = true
		r.applied = append(r.applied, appliedRevoke{proposal: a.Proposal, lease: a.RevokedLease, rev: a.Revision,
			deleted: slices.Clone(a.Deleted), at: w.now})
	}
}

// cutRevokes takes in the revokes among the applies of a step whose I/O a
// crash cut: they may or may not have taken effect.
func (w *world) cutRevokes(as []node.AppliedWrite) {
	for _, a := range as {
		if a.RevokedLease != 0 {
			w.leaseRec.maybe[a.Proposal] = appliedRevoke{proposal: a.Proposal, lease: a.RevokedLease, deleted: slices.Clone(a.Deleted)}
		}
	}
}

// recordRevokes puts every revoke into the history after the run, as a
// txn that deletes the keys it deleted (see linearizability.Leases), and
// into the lease record:
//
//   - a revoke a member applied whose proposal was an app's request: called
//     and returning when the app saw it; if the app never learnt its
//     outcome, unknown, and the write ledger resolves it to its revision;
//   - one the leader proposed for an expired lease: called when its lease
//     was granted (the earliest it can have been proposed), returning when
//     the first member applied it;
//   - an app's revoke nobody applied for good, or an expiry a crash cut:
//     unknown, deleting every key written with the lease (which of them
//     it would delete is not known), left for the ledger or the check to
//     settle.
func (w *world) recordRevokes() {
	r := w.leaseRec
	byProposal := make(map[node.ProposalID]int) // proposal -> index in r.calls
	for i, c := range r.calls {
		for _, p := range w.writes.proposals[c.requestID] {
			byProposal[p] = i
		}
	}
	done := make(map[int]bool) // calls recorded
	for _, a := range r.applied {
		rv := linearizability.Revoke{Lease: a.lease, Revision: a.rev, Deleted: a.deleted, Applied: a.at, Op: -1}
		ci, byApp := byProposal[a.proposal]
		rv.Expired = !byApp
		if len(a.deleted) > 0 {
			op := revokeOp(a.deleted, linearizability.OutcomeOK)
			op.Call, op.Return, op.Revision = w.grantCall(a.lease), a.at, a.rev
			if byApp {
				c := r.calls[ci]
				op.Call = c.call
				if c.outcome == linearizability.OutcomeOK {
					op.Return = c.ret
				} else {
					op = revokeOp(a.deleted, linearizability.OutcomeUnknown)
					op.Call = c.call
				}
			}
			rv.Op = w.addSynthetic(op, byApp, r.calls, ci)
		}
		if byApp {
			done[ci] = true
		}
		r.rec.Revokes = append(r.rec.Revokes, rv)
	}
	for i, c := range r.calls {
		if done[i] || c.outcome != linearizability.OutcomeUnknown || len(r.keys[c.lease]) == 0 {
			continue
		}
		op := revokeOp(sortedKeys(r.keys[c.lease]), linearizability.OutcomeUnknown)
		op.Call = c.call
		w.addSynthetic(op, true, r.calls, i)
	}
	for _, p := range sortedProposals(r.maybe) {
		a := r.maybe[p]
		if r.seen[p] || byProposalHas(byProposal, p) || len(r.keys[a.lease]) == 0 {
			continue
		}
		op := revokeOp(sortedKeys(r.keys[a.lease]), linearizability.OutcomeUnknown)
		op.Call = w.grantCall(a.lease)
		w.addSynthetic(op, false, nil, 0)
	}
}

// revokeOp is a revoke as a txn of deletes of keys.
func revokeOp(keys []string, outcome linearizability.Outcome) linearizability.Operation {
	op := linearizability.Operation{Kind: linearizability.KindTxn, Outcome: outcome}
	for _, k := range keys {
		t := linearizability.TxnOp{Kind: linearizability.KindDelete, Key: k}
		if outcome == linearizability.OutcomeOK {
			t.Deleted = 1
		}
		op.Ops = append(op.Ops, t)
	}
	return op
}

// addSynthetic adds a revoke's operation to the history under a client ID
// of its own, and returns its index. An unknown one of an app's request
// goes to the write ledger, which resolves it as it resolves the clients'.
func (w *world) addSynthetic(op linearizability.Operation, byApp bool, calls []revokeCall, ci int) int {
	op.Client = w.newHistID()
	i := len(w.history.Operations)
	if op.Outcome == linearizability.OutcomeUnknown && byApp {
		w.writes.unknown = append(w.writes.unknown, unknownWrite{index: i, requestID: calls[ci].requestID})
	}
	w.history.Add(op)
	return i
}

// grantCall is when the lease's grant was called, the earliest its revoke
// can have been proposed; 0 for a lease no app learnt of.
func (w *world) grantCall(id int64) int64 {
	if i, ok := w.leaseRec.byID[id]; ok {
		return w.leaseRec.rec.Leases[i].Grant.Call
	}
	return 0
}

func byProposalHas(m map[node.ProposalID]int, p node.ProposalID) bool {
	_, ok := m[p]
	return ok
}

func sortedKeys(keys []string) []string {
	out := slices.Clone(keys)
	slices.Sort(out)
	return out
}

func sortedProposals(m map[node.ProposalID]appliedRevoke) []node.ProposalID {
	ps := make([]node.ProposalID, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b node.ProposalID) int {
		return cmp.Or(cmp.Compare(a.Member, b.Member), cmp.Compare(a.Seq, b.Seq))
	})
	return ps
}

// leaseCheck runs linearizability.CheckLeases on the run.
func (w *world) leaseCheck() Check {
	r := linearizability.CheckLeases(w.history, w.leaseRec.rec, linearizability.LeaseOptions{
		Resolved: w.resolved, End: w.now, Elected: w.stats.elected,
		ElectionTimeout: int64(w.sc.Cluster.ElectionTimeout), Tick: w.tickNs, RevokeRetry: leaseRevokeRetryNs,
	})
	c := Check{Name: "lease", OK: r.Reason == ""}
	c.Detail = fmt.Sprintf("%d leases, %d keep-alives acknowledged, %d expired, %d revoked by their holders, %d stopped (%d due by the end at %v)",
		r.Leases, r.KeepAlives, r.Expired, r.Revoked, r.Stopped, r.Due, time.Duration(w.now).Round(time.Millisecond))
	if r.Uncertain > 0 {
		c.Detail += fmt.Sprintf("; %d keys not judged at a revoke (a write of unknown revision)", r.Uncertain)
	}
	if r.Reason != "" {
		c.Detail = r.Reason
	}
	return c
}
