package sim

import (
	"cmp"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/faults"
	"github.com/plumbdb/plumb/internal/plant"
	"github.com/plumbdb/plumb/linearizability"
)

// The bugs Options.PlantBug plants, to prove that each check can fail:
// each makes exactly the check it names fail (sim's tests show it), while
// the members stay startable. See package plant for what each does.
const (
	// BugStaleReads: members answer linearizable reads from local state,
	// without ReadIndex. The linearizable check fails.
	BugStaleReads = "stale-reads"
	// BugLazyFsync: the WAL fsyncs appends only at the next tick, after the
	// member acknowledged them. A power cut of the whole cluster loses
	// acknowledged writes: the durable check fails.
	BugLazyFsync = "lazy-fsync"
	// BugStuckApply: n1 stops applying committed entries after index
	// stuckApplyIndex. The converge check fails.
	BugStuckApply = "stuck-apply"
	// BugNoFailover: a member that has seen a second leader drops every
	// proposal while it leads. The liveness check fails.
	BugNoFailover = "no-failover"
	// BugWatchSkip: the watch hub loses the first revision published after
	// a watcher catches up from the history. The watch check fails.
	BugWatchSkip = "watch-skip"
	// BugFollowerLeaseExpiry: followers count lease time too and revoke
	// leases they never hear renewed. The lease check fails.
	BugFollowerLeaseExpiry = "follower-lease-expiry"
	// BugRevokeLeavesKey: a lease's revoke leaves its first key behind.
	// The lease check fails.
	BugRevokeLeavesKey = "revoke-leaves-key"
	// BugLockMaxCreate: a range's max_create_revision filter compares mod
	// revisions, so a lock waiter misses a predecessor that wrote since it
	// was created and takes the lock while it is held. The lock check
	// fails.
	BugLockMaxCreate = "lock-max-create"
	// BugSkipClusterCheck: members step peer messages from another
	// cluster. A member of another cluster at an address this cluster's
	// member left, with that member's ID, takes its messages. The
	// peer-identity check fails.
	BugSkipClusterCheck = "skip-cluster-check"
	// BugKeepRemovedMember: a removed member stays in the membership
	// (raft no longer counts it). The converge check fails: the members'
	// membership is not the one the operator's removals left.
	BugKeepRemovedMember = "keep-removed-member"
	// BugAuthCheckAtSubmit: linearizable reads are authorized when a
	// member takes them, not when they are answered, so a member that has
	// not applied a revocation serves reads issued after it was
	// acknowledged. The auth check fails.
	BugAuthCheckAtSubmit = "auth-check-at-submit"
	// BugLeaseGrantNeedsRoot: granting or revoking a lease needs root, so
	// the lease holders and lock users, logged in as a user that may
	// read and write every key, are refused. The auth check fails.
	BugLeaseGrantNeedsRoot = "lease-grant-needs-root"
)

// stuckApplyIndex is where BugStuckApply stops n1.
const stuckApplyIndex = 200

// Bugs lists the bugs Options.PlantBug accepts.
var Bugs = []string{BugStaleReads, BugLazyFsync, BugStuckApply, BugNoFailover, BugWatchSkip,
	BugFollowerLeaseExpiry, BugRevokeLeavesKey, BugLockMaxCreate, BugSkipClusterCheck,
	BugKeepRemovedMember, BugAuthCheckAtSubmit, BugLeaseGrantNeedsRoot}

// planted returns the bugs Options.PlantBug plants in member idx.
func planted(bug string, idx int) plant.Bugs {
	var b plant.Bugs
	switch bug {
	case BugStaleReads:
		b.LocalReads = true
	case BugLazyFsync:
		b.LazyFsync = true
	case BugStuckApply:
		if idx == 0 {
			b.StopApplyingAt = stuckApplyIndex
		}
	case BugNoFailover:
		b.RefuseAfterFailover = true
	case BugWatchSkip:
		b.WatchSkipAfterCatchUp = true
	case BugFollowerLeaseExpiry:
		b.FollowerLeaseExpiry = true
	case BugRevokeLeavesKey:
		b.RevokeLeavesKey = true
	case BugLockMaxCreate:
		b.MaxCreateFiltersMod = true
	case BugSkipClusterCheck:
		b.SkipClusterIDCheck = true
	case BugKeepRemovedMember:
		b.KeepRemovedMember = true
	case BugAuthCheckAtSubmit:
		b.AuthReadsCheckedAtSubmit = true
	case BugLeaseGrantNeedsRoot:
		b.LeaseGrantNeedsRoot = true
	}
	return b
}

// Options are a run's inputs besides the scenario.
type Options struct {
	Seed uint64
	// Trace, if set, receives every event as a JSON line (TraceEvent).
	Trace io.Writer
	// PlantBug names a bug to plant (see Bugs); "" runs plumb as it is.
	PlantBug string
	// CheckTimeout bounds the linearizability check; 0 means no bound.
	CheckTimeout time.Duration
}

// Verdict is a run's outcome.
type Verdict string

const (
	VerdictOK        Verdict = "ok"        // every expectation held
	VerdictViolation Verdict = "violation" // a check failed: a bug found
	VerdictError     Verdict = "error"     // the run could not be judged (bad input, a panic, a check that could not decide)
)

// Check is one check's verdict and the evidence for it.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	// Skipped: the check could not be judged (say, durability of a history
	// that is not linearizable to begin with). It counts neither way.
	Skipped bool `json:"skipped,omitempty"`
}

// Result summarises a run. Everything in it is a pure function of the
// scenario, the options and the code: the same inputs give the same Result,
// trace hash included.
type Result struct {
	Scenario     string
	Seed         uint64
	Verdict      Verdict
	Error        string // for VerdictError
	Checks       []Check
	Linearizable bool
	Ops          int
	OpsOK        int
	OpsFailed    int
	OpsUnknown   int
	Elections    int
	Crashes      int
	RejectedMsgs int // peer messages refused for a wrong cluster, member or a removed sender
	// RejectedCluster, RejectedMember and RejectedRemoved count them by
	// reason: sent in another cluster, to another member (at an address
	// it had), by a removed member.
	RejectedCluster, RejectedMember, RejectedRemoved int
	// Snapshots taken, and received from a leader and installed, by all
	// members over the run.
	Snapshots, SnapshotsInstalled int
	// RefusedStarts counts starts refused because a member's disk failed
	// its checks.
	RefusedStarts int
	// TornRepaired counts starts whose WAL cut a torn write off its tail.
	TornRepaired       int
	LongestUnavailable time.Duration
	SimTime            time.Duration
	Events             int
	TraceHash          string
	History            linearizability.History
	// Resolved is what the members' write ledger told of the history's
	// unknown writes (see linearizability.Options.Resolved): checking
	// History again with it gives Check again.
	Resolved map[int]linearizability.Resolution
	Check    linearizability.Result
	// Leases is the lease holders' and lock users' lease record, beside
	// History (empty without them); Locks the lock users' record.
	Leases linearizability.Leases
	Locks  linearizability.Locks
}

const (
	settleCheckNs = int64(100e6) // how often the settle phase looks for convergence
	settleMinNs   = int64(10e9)  // the settle phase lasts at least this long before giving up
)

// Run simulates sc once with opts and checks the history. It never reads the
// wall clock, starts goroutines or uses global randomness: all randomness
// comes from opts.Seed. Only one Run may be in progress per process.
func Run(sc *faults.Scenario, opts Options) (res *Result) {
	res = &Result{Scenario: sc.Name, Seed: opts.Seed}
	if opts.PlantBug != "" && !slices.Contains(Bugs, opts.PlantBug) {
		res.Verdict, res.Error = VerdictError, fmt.Sprintf("unknown bug %q (known: %v)", opts.PlantBug, Bugs)
		return res
	}
	var w *world
	withRaftRandomness(newStream(opts.Seed, streamRaft), func() {
		defer func() {
			if r := recover(); r != nil {
				res.Verdict = VerdictError
				res.Error = fmt.Sprintf("panic: %v\n%s", r, debug.Stack())
			}
		}()
		w = newWorld(sc, opts)
		w.newClients()
		w.newWatchers()
		w.newForwarder()
		w.newLeaseHolders()
		w.newLockUsers()
		w.newOperator()
		w.newAuthAdmin()
		w.scheduleCompactor()
		w.scheduleFaults()
		w.schedule(&event{at: w.endNs, kind: evSettleCheck})
		w.loop()
		w.finishApps()
	})
	if w == nil {
		return res
	}
	w.summarise(res)
	if res.Verdict == VerdictError {
		return res
	}
	w.check(res)
	return res
}

// loop runs events in (time, sequence) order until the settle phase ends.
func (w *world) loop() {
	for w.q.len() > 0 {
		e := w.q.pop()
		w.now = e.at
		w.stats.events++
		done := w.dispatch(e)
		w.q.release(e)
		if done {
			return
		}
	}
}

// dispatch runs one event; it reports whether the run is over.
func (w *world) dispatch(e *event) bool {
	switch e.kind {
	case evTick:
		w.tick(e)
	case evDeliver:
		w.deliver(e)
	case evClientNext:
		w.clientNext(w.clients[e.index])
	case evRequest:
		w.requestArrives(e)
	case evReply:
		w.replyArrives(e)
	case evClientTimeout:
		w.clientTimeout(e)
	case evFault:
		w.fault(e.index)
	case evRestart:
		m := w.members[e.index]
		w.record(TraceEvent{Kind: "fault", Node: m.name, Detail: "restart after kill"})
		w.restart(m)
	case evHealCut:
		if w.net.removeCut(e.id) {
			w.record(TraceEvent{Kind: "fault", Detail: "partition healed (for elapsed)"})
		}
	case evRestoreNetwork:
		if w.net.restore(e.id) {
			w.record(TraceEvent{Kind: "fault", Detail: "network restored (for elapsed)"})
		}
	case evMemberUpdate:
		w.memberUpdateEvent(e)
	case evSettleCheck:
		return w.settleCheck()
	case evIODone:
		w.ioDone(e)
	case evKillDeadline:
		w.killDeadline(e)
	case evDiskRestore:
		w.diskRestore(e)
	case evAlarmDisarm:
		w.alarmDisarm(e)
	case evWatchNext:
		w.watchNext(w.watchers[e.index])
	case evWatchCall:
		w.watchCallArrives(e)
	case evWatchReply:
		w.watchReplyArrives(e.wreply)
	case evWatchTimer:
		w.watchTimer(e)
	case evCompact:
		w.compact()
	case evAppTimer:
		w.apps[e.index].timer(e.op)
	case evLater:
		e.fn()
	default:
		panic(fmt.Sprintf("sim: unknown event kind %d", e.kind))
	}
	return false
}

// settleCheck runs after the scenario's duration: the first time it heals
// the network and restarts every crashed member (clients have stopped
// starting operations); then, every settleCheckNs, it looks for convergence
// and ends the run once found or once the settle time is over.
func (w *world) settleCheck() bool {
	if w.settleEndNs == 0 {
		w.net.heal()
		w.record(TraceEvent{Kind: "fault", Detail: "end of scenario: heal all, restart crashed members"})
		for _, m := range w.members {
			if !m.alive() && m.counts() {
				w.restart(m)
			}
		}
		limit := max(settleMinNs, 10*int64(w.sc.Cluster.ElectionTimeout)+2*int64(w.sc.Workload.Timeout))
		w.settleEndNs = w.now + limit
	}
	note, converged := w.converged()
	w.settleNote = note
	if converged {
		w.settled = true
		w.record(TraceEvent{Kind: "settled", Detail: note})
		w.finalReads()
		return true
	}
	if w.now >= w.settleEndNs {
		w.record(TraceEvent{Kind: "unsettled", Detail: note})
		w.finalReads()
		return true
	}
	w.schedule(&event{at: w.now + settleCheckNs, kind: evSettleCheck})
	return false
}

// finalReads reads every key once the run is over, from every live member
// that has applied everything the cluster committed, as operations that
// follow every other in the history. The durable check is linearizability
// with them: an acknowledged write that was lost shows as a stale read.
// A member still behind is not read (its state is stale, not lost): the
// converge check reports it.
//
// Every member of the cluster as the operator's acknowledged changes left
// it is read, the members added during the run included; a removed member
// is not, and cannot hide a lost write: the converge check holds every
// member's applied membership to the operator's, so a member the cluster
// still counts is never taken for removed.
func (w *world) finalReads() {
	var commit uint64
	for _, m := range w.members {
		if m.alive() && m.counts() {
			commit = max(commit, m.node.Status().Commit)
		}
	}
	var behind []string
	for _, m := range w.members {
		if !m.counts() {
			continue
		}
		if !m.alive() {
			behind = append(behind, m.name+" is down")
			continue
		}
		if st := m.node.Status(); st.Applied < commit {
			behind = append(behind, fmt.Sprintf("%s applied %d of %d", m.name, st.Applied, commit))
			continue
		}
		reads := finalRead{member: m.name}
		client := w.newHistID()
		for k := range w.sc.Workload.Keys {
			key := keyName(k)
			resp, err := m.node.Read(&pb.RangeRequest{Key: []byte(key)})
			if err != nil {
				reads.err = fmt.Sprintf("final read of %s on %s: %v", key, m.name, err)
				break
			}
			op := linearizability.Operation{Client: client, Kind: linearizability.KindGet, Key: key,
				Call: w.now, Return: w.now, Outcome: linearizability.OutcomeOK, Revision: resp.GetHeader().GetRevision()}
			if len(resp.Kvs) > 0 {
				kv := resp.Kvs[0]
				op.Found, op.Result = true, string(kv.Value)
				op.ModRevision, op.CreateRevision, op.Version = kv.ModRevision, kv.CreateRevision, kv.Version
			}
			reads.ops = append(reads.ops, op)
		}
		w.final = append(w.final, reads)
	}
	if len(behind) > 0 {
		w.finalNote = "not read: " + strings.Join(behind, ", ")
	}
}

// finalRead is one member's reads of every key at the end of the run.
type finalRead struct {
	member string
	ops    []linearizability.Operation
	err    string
}

// converged reports whether every member runs, has applied the same index,
// holds the same key-value hash and the membership the operator's changes
// left, and no client operation is in flight. Members are those the
// operator's acknowledged changes leave: neither removed ones nor hosts of
// another cluster.
func (w *world) converged() (string, bool) {
	for _, c := range w.clients {
		if c.op != nil {
			return fmt.Sprintf("client %d has an operation in flight", c.idx+1), false
		}
	}
	if s := w.appsInFlight(); s != "" {
		return s, false
	}
	var members []*member
	for _, m := range w.members {
		if m.counts() {
			members = append(members, m)
		}
	}
	first := members[0]
	if !first.alive() {
		return first.name + " is down", false
	}
	st0 := first.node.Status()
	h0, _, rev0 := first.node.HashKV()
	for _, m := range members {
		if !m.alive() {
			return m.name + " is down", false
		}
		if note := w.membershipNote(m); note != "" {
			return note, false
		}
		st := m.node.Status()
		h, _, rev := m.node.HashKV()
		switch {
		case st.Lead == 0:
			return m.name + " has no leader", false
		case st.Lead == m.id && st.CommitTerm != st.Term:
			// Until then its commit index may be behind what the cluster
			// committed before a crash (the hard state's commit index is
			// saved lazily): reading now would report acknowledged writes
			// as lost.
			return fmt.Sprintf("the leader %s has not committed an entry of its term %d yet", m.name, st.Term), false
		case st.Applied != st.Commit:
			return fmt.Sprintf("%s applied %d of %d committed", m.name, st.Applied, st.Commit), false
		case st.Applied != st0.Applied:
			return fmt.Sprintf("%s applied %d, %s applied %d", first.name, st0.Applied, m.name, st.Applied), false
		case h != h0 || rev != rev0:
			return fmt.Sprintf("%s has hash %08x at revision %d, %s has %08x at %d", first.name, h0, rev0, m.name, h, rev), false
		}
	}
	moved := ""
	for _, m := range members {
		if m.moved {
			moved = fmt.Sprintf("; %s moved and was never updated", m.name)
		}
	}
	return fmt.Sprintf("all %d members at applied index %d, revision %d, hash %08x%s",
		len(members), st0.Applied, rev0, h0, moved), true
}

// summarise fills the counters of res from the world.
func (w *world) summarise(res *Result) {
	w.history.Compactions = w.compactions
	w.history.Watchers = w.watchRecords()
	res.History = w.history
	res.Leases = w.leaseRec.rec
	res.Locks = w.locks
	for _, op := range w.history.Operations {
		res.Ops++
		switch op.Outcome {
		case linearizability.OutcomeOK:
			res.OpsOK++
		case linearizability.OutcomeFailed:
			res.OpsFailed++
		default:
			res.OpsUnknown++
		}
	}
	res.Elections = w.stats.elections
	res.Crashes = w.stats.crashes
	res.RejectedMsgs = w.stats.rejectedMsgs
	res.RejectedCluster, res.RejectedMember, res.RejectedRemoved = w.stats.rejectedCluster, w.stats.rejectedMember, w.stats.rejectedRemoved
	res.RefusedStarts, res.TornRepaired = w.stats.refusedStarts, w.stats.tornRepaired
	for _, m := range w.members {
		if m.alive() {
			w.stats.countSnapshots(m)
		}
	}
	res.Snapshots, res.SnapshotsInstalled = w.stats.snapshots, w.stats.snapshotsInstalled
	res.LongestUnavailable = time.Duration(w.longestGap())
	res.SimTime = time.Duration(w.now)
	res.Events = w.stats.events
	res.TraceHash = w.trace.sum()
	if w.trace.err != nil {
		res.Verdict, res.Error = VerdictError, w.trace.err.Error()
	}
}

// longestGap is the longest stretch of the scenario without a successful
// write, counted from the first one (the first election is not downtime).
func (w *world) longestGap() int64 {
	ok := w.stats.okWrites
	if len(ok) == 0 {
		return w.endNs
	}
	var longest int64
	prev := ok[0]
	for _, t := range ok[1:] {
		if t > w.endNs {
			break
		}
		longest = max(longest, t-prev)
		prev = t
	}
	return max(longest, w.endNs-prev)
}

// check judges the run against the scenario's expectations. A panic in a
// check is a bug in the checker, never a verdict on the cluster: it makes
// the run's verdict an error, with the stack.
func (w *world) check(res *Result) {
	defer func() {
		if r := recover(); r != nil {
			res.Verdict = VerdictError
			res.Error = fmt.Sprintf("panic in the checks: %v\n%s", r, debug.Stack())
		}
	}()
	exp := w.sc.Expect
	w.resolved = w.writes.resolutions(w.settled)
	res.Resolved = w.resolved
	lin := linearizability.Check(w.history, w.checkOptions())
	w.lin = lin
	res.Check = lin
	res.Linearizable = lin.Verdict == linearizability.VerdictOK
	undecided := false
	if exp.Linearizable {
		c := Check{Name: "linearizable", OK: res.Linearizable,
			Detail: fmt.Sprintf("%s: %d operations over %d keys, %d with revisions, %d unknown writes resolved",
				lin.Verdict, lin.Operations, lin.Keys, lin.Revisions, lin.Resolved)}
		if lin.Reason != "" {
			c.Detail += ": " + lin.Reason
		}
		if lin.DecidedBy != "" {
			c.Detail += "; decided by " + lin.DecidedBy
		}
		undecided = lin.Verdict == linearizability.VerdictUndecided
		res.Checks = append(res.Checks, c)
	}
	if exp.Converge {
		res.Checks = append(res.Checks, w.convergeCheck())
	}
	if exp.LivenessWithin > 0 {
		res.Checks = append(res.Checks, w.livenessCheck(exp.LivenessWithin))
	}
	res.Checks = append(res.Checks, w.oneLeaderCheck(), w.peerIdentityCheck())
	if exp.Durable {
		res.Checks = append(res.Checks, w.durableCheck(res.Linearizable))
		if w.durableResult != nil {
			res.Check = *w.durableResult // the view worth saving is the one that failed
		}
	}
	if exp.Watch && len(w.watchers) > 0 {
		res.Checks = append(res.Checks, w.watchCheck())
	}
	if exp.Lease && (w.sc.Leases.Holders > 0 || w.sc.Locks.Users > 0) {
		res.Checks = append(res.Checks, w.leaseCheck())
	}
	if exp.Lock && w.sc.Locks.Users > 0 {
		res.Checks = append(res.Checks, w.lockCheck())
	}
	if exp.Auth && w.auth != nil {
		res.Checks = append(res.Checks, w.authCheck())
	}
	res.Verdict = VerdictOK
	for _, c := range res.Checks {
		if !c.OK && !c.Skipped {
			res.Verdict = VerdictViolation
		}
	}
	if undecided && res.Verdict == VerdictViolation {
		res.Verdict = VerdictError
		res.Error = "the linearizability check could not decide: " + lin.Reason
	}
}

func (w *world) checkOptions() linearizability.Options {
	return linearizability.Options{Timeout: w.opts.CheckTimeout, Resolved: w.resolved}
}

// convergeCheck: once the scenario is over, every member runs, has applied
// the same index and holds the same state (hash and revision), and no two
// members applied one write at different revisions.
func (w *world) convergeCheck() Check {
	c := Check{Name: "converge", OK: w.settled, Detail: w.settleNote}
	if w.writes.conflict != "" {
		c.OK, c.Detail = false, w.writes.conflict
	}
	return c
}

// durableCheck: for every member read at the end, the history with that
// member's final reads appended is linearizable too, so no acknowledged
// write was lost there. It is judged only on a history that is linearizable
// by itself, so the two checks say different things.
func (w *world) durableCheck(linearizable bool) Check {
	c := Check{Name: "durable"}
	switch {
	case len(w.final) == 0:
		c.Detail = cmp.Or(w.finalNote, "no member could be read at the end")
		return c
	case !linearizable:
		c.Skipped = true
		c.Detail = "not judged: the history is not linearizable by itself"
		return c
	}
	var members []string
	for _, f := range w.final {
		if f.err != "" {
			c.Detail = f.err
			return c
		}
		// The history is checked already: its replayed end state answers
		// the final reads, unless some revision was unknown.
		if reason, decided := linearizability.CheckAfter(w.lin, f.ops); decided && reason == "" {
			members = append(members, f.member)
			continue
		}
		h := linearizability.History{Operations: append(slices.Clone(w.history.Operations), f.ops...)}
		r := linearizability.Check(h, w.checkOptions())
		if r.Verdict != linearizability.VerdictOK {
			c.Detail = fmt.Sprintf("%s: the final state on %s cannot follow the acknowledged writes: %s", r.Verdict, f.member, r.Reason)
			w.durableResult = &r
			return c
		}
		members = append(members, f.member)
	}
	c.OK = true
	c.Detail = fmt.Sprintf("every acknowledged write explains the final state of %d keys on %s", w.sc.Workload.Keys, strings.Join(members, ", "))
	if w.finalNote != "" {
		c.Detail += "; " + w.finalNote
	}
	return c
}

// watchCheck: every watcher's stream agrees with the revisions the
// history's revision pass replayed (linearizability.CheckWatches); judged
// only when that pass replayed the history to its end.
func (w *world) watchCheck() Check {
	r := linearizability.CheckWatches(w.history, w.lin)
	c := Check{Name: "watch", OK: r.Verdict == linearizability.VerdictOK}
	switch r.Verdict {
	case linearizability.VerdictOK:
		c.Detail = fmt.Sprintf("%d watchers, %d watches, %d responses, %d events, %d progress notifications, %d compacted: every event agrees with the history's revisions",
			r.Watchers, r.Sessions, r.Responses, r.Events, r.Progress, r.Compacted)
	case linearizability.VerdictUndecided:
		c.Skipped, c.Detail = true, r.Reason
	default:
		c.Detail = r.Reason
	}
	return c
}

// livenessCheck: after the last fault's effect ends, a write must succeed
// within bound.
func (w *world) livenessCheck(bound time.Duration) Check {
	from := int64(w.sc.LastFaultEnd())
	c := Check{Name: "liveness"}
	if from+int64(bound) > w.endNs {
		c.Detail = fmt.Sprintf("the last fault ends at %v, too late to see %v of writes before the end (%v)",
			time.Duration(from), bound, time.Duration(w.endNs))
		return c
	}
	for _, t := range w.stats.okWrites {
		if t < from {
			continue
		}
		wait := time.Duration(t - from)
		c.OK = wait <= bound
		c.Detail = fmt.Sprintf("first write acknowledged %v after the last fault ended at %v (bound %v)",
			wait.Round(time.Millisecond), time.Duration(from), bound)
		return c
	}
	c.Detail = fmt.Sprintf("no write succeeded after the last fault ended at %v", time.Duration(from))
	return c
}
