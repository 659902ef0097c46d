package sim

import (
	"fmt"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/faults"
	"github.com/plumbdb/plumb/node"
)

const (
	operatorRetryNs     = int64(500e6) // the operator retries a failed member update after 0.5s
	operatorAttemptsMax = 40           // and gives up after this many attempts
)

// scheduleFaults puts every scenario fault on the queue.
func (w *world) scheduleFaults() {
	for i, f := range w.sc.Faults {
		w.schedule(&event{at: int64(f.At), kind: evFault, index: i})
	}
}

// fault applies scenario fault i.
func (w *world) fault(i int) {
	f := w.sc.Faults[i]
	switch {
	case f.Partition != nil:
		w.partition(f)
	case f.Heal != nil:
		w.net.heal()
		w.record(TraceEvent{Kind: "fault", Detail: "heal all"})
	case f.Kill != nil && f.Kill.Target.All:
		w.record(TraceEvent{Kind: "fault", Detail: "kill all"})
		for _, m := range w.members {
			if m.counts() {
				w.kill(m, "killed with every other member", int64(f.Kill.RestartAfter))
			}
		}
	case f.Kill != nil:
		m, note := w.resolve(f.Kill.Target)
		w.record(TraceEvent{Kind: "fault", Node: m.name, Detail: joinNote("kill "+f.Kill.Target.String(), note)})
		w.kill(m, "killed", int64(f.Kill.RestartAfter))
	case f.Restart != nil:
		m, note := w.resolve(*f.Restart)
		w.record(TraceEvent{Kind: "fault", Node: m.name, Detail: joinNote("restart "+f.Restart.String(), note)})
		w.restart(m)
	case f.ChangeIP != nil:
		w.changeIP(f)
	case f.Disk != nil:
		w.diskFault(f)
	case f.Network != nil:
		w.nextCutID++
		w.net.applyChange(w.nextCutID, f.Network)
		w.record(TraceEvent{Kind: "fault", Detail: fmt.Sprintf("network %+v", w.net.cur)})
		if f.Network.For > 0 {
			w.schedule(&event{at: w.now + int64(f.Network.For), kind: evRestoreNetwork, id: w.nextCutID})
		}
	case f.MemberAdd != nil, f.MemberPromote != nil, f.MemberRemove != nil, f.MemberReplace != nil, f.IPReuse != nil:
		w.memberFault(f)
	default:
		panic(fmt.Sprintf("sim: fault %d (line %d) has no kind", i, f.Line))
	}
}

func joinNote(s, note string) string {
	if note == "" {
		return s
	}
	return s + " (" + note + ")"
}

// partition cuts links as the fault says, resolving leader/follower targets
// now. Cuts are directed; "isolate" and "groups" cut both directions.
func (w *world) partition(f faults.Fault) {
	p := f.Partition
	w.nextCutID++
	c := cut{id: w.nextCutID}
	var desc string
	switch {
	case p.Isolate != nil:
		m, note := w.resolve(*p.Isolate)
		for _, o := range w.members {
			if o != m {
				c.pairs = append(c.pairs, [2]int{m.idx, o.idx}, [2]int{o.idx, m.idx})
			}
		}
		desc = joinNote("isolate "+m.name, note)
	case len(p.Groups) > 0:
		group := make([]int, len(w.members)) // 0: the implicit group of the unnamed
		var names []string
		for gi, g := range p.Groups {
			var gn []string
			for _, t := range g {
				m, _ := w.resolve(t)
				if group[m.idx] != 0 {
					// faults rejects a member named twice; leader and
					// follower are only known now.
					panic(fmt.Sprintf("sim: fault at line %d: %s resolves to %s, already in another group of the partition",
						f.Line, t, m.name))
				}
				group[m.idx] = gi + 1
				gn = append(gn, m.name)
			}
			names = append(names, "["+strings.Join(gn, " ")+"]")
		}
		for _, a := range w.members {
			for _, b := range w.members {
				if group[a.idx] != group[b.idx] {
					c.pairs = append(c.pairs, [2]int{a.idx, b.idx})
				}
			}
		}
		desc = "groups " + strings.Join(names, " ")
	case p.OneWay != nil:
		from, to := w.resolveAll(p.OneWay.From), w.resolveAll(p.OneWay.To)
		for _, a := range from {
			for _, b := range to {
				if a != b {
					c.pairs = append(c.pairs, [2]int{a.idx, b.idx})
				}
			}
		}
		desc = fmt.Sprintf("one-way %v -> %v", w.memberNames(from), w.memberNames(to))
	}
	w.net.addCut(c)
	w.record(TraceEvent{Kind: "fault", Detail: "partition " + desc})
	if p.For > 0 {
		w.schedule(&event{at: w.now + int64(p.For), kind: evHealCut, id: c.id})
	}
}

func (w *world) resolveAll(ts []faults.Target) []*member {
	var out []*member
	for _, t := range ts {
		m, _ := w.resolve(t)
		out = append(out, m)
	}
	return out
}

// changeIP moves a member to a new address: its process restarts there
// (a new IP means new listeners), keeping its disk. The rest of the cluster
// still sends to the old address until the operator runs member update;
// clients learn the new endpoint from the operator too.
func (w *world) changeIP(f faults.Fault) {
	m, note := w.resolve(f.ChangeIP.Target)
	old := m.ip
	m.formerIP = old
	w.ops.lastMoved = m
	delete(w.byAddr, m.peerURL())
	delete(w.byAddr, m.clientURL())
	wasAlive := m.alive()
	if wasAlive {
		w.crash(m, "restarting on a new address")
	}
	m.ip = w.allocIP()
	m.moved = true
	w.bindAddrs(m)
	w.record(TraceEvent{Kind: "fault", Node: m.name, Detail: joinNote("change ip "+old+" -> "+m.ip, note)})
	if wasAlive {
		w.restart(m)
	}
	if f.ChangeIP.MemberUpdateAfter > 0 {
		w.schedule(&event{at: w.now + int64(f.ChangeIP.MemberUpdateAfter), kind: evMemberUpdate, index: m.idx})
	}
}

// updateJob is the operator's member update for one moved member, run the
// way a person with etcdctl would: one request at a time to a live member,
// retried until it works.
type updateJob struct {
	attempts int
	inFlight uint64 // operation number of the attempt awaiting an answer, 0 if none
}

// operatorOp numbers an attempt: the member index and the attempt count, so
// that replies and timeouts find their job.
func operatorOp(idx, attempt int) uint64 { return uint64(idx)<<20 | uint64(attempt) }

// memberUpdateEvent starts or retries a member update (e.op == 0), or
// notices that attempt e.op went unanswered.
func (w *world) memberUpdateEvent(e *event) {
	m := w.members[e.index]
	if m.update == nil {
		m.update = &updateJob{}
	}
	switch {
	case e.op == 0 && m.update.inFlight == 0:
		w.operatorAttempt(m)
	case e.op != 0 && m.update.inFlight == e.op:
		m.update.inFlight = 0
		w.record(TraceEvent{Kind: "operator", Node: m.name, Detail: "member update timed out"})
		w.operatorAttempt(m)
	}
}

// operatorAttempt sends member update for the moved member to the leader
// (or another live member): the moved member itself cannot hear the
// cluster's answers until the update is applied.
func (w *world) operatorAttempt(m *member) {
	job := m.update
	job.attempts++
	if job.attempts > operatorAttemptsMax {
		w.record(TraceEvent{Kind: "operator", Node: m.name, Detail: "member update: gave up"})
		return
	}
	via, ok := w.leader()
	if !ok || via == m {
		via = nil
		for _, o := range w.members {
			if o.alive() && o != m {
				via = o
				break
			}
		}
	}
	if via == nil {
		w.schedule(&event{at: w.now + operatorRetryNs, kind: evMemberUpdate, index: m.idx})
		return
	}
	job.inFlight = operatorOp(m.idx, job.attempts)
	req := node.Request{ID: replyID(len(w.clients), job.inFlight), Creds: rootCreds,
		MemberUpdate: &pb.MemberUpdateRequest{ID: m.id, PeerURLs: []string{m.peerURL()}}}
	w.record(TraceEvent{Kind: "operator", Node: m.name, Detail: fmt.Sprintf("member update %s --peer-urls=%s via %s (attempt %d)",
		m.name, m.peerURL(), via.name, job.attempts)})
	w.schedule(&event{at: w.now + w.net.clientDelay(), kind: evRequest, addr: via.clientURL(), req: &req})
	w.schedule(&event{at: w.now + int64(w.sc.Workload.Timeout), kind: evMemberUpdate, index: m.idx, op: job.inFlight})
}

// operatorReply handles the answer to one of the operator's requests: a
// member update attempt, a compaction, or an alarm disarm (op 0, whose
// answer it does not wait for).
func (w *world) operatorReply(op uint64, rep node.Reply) {
	switch {
	case op == 0:
		return
	case op&compactOp != 0:
		w.compactReply(op, rep)
		return
	}
	m := w.members[op>>20]
	if m.update == nil || m.update.inFlight != op {
		return
	}
	m.update.inFlight = 0
	if rep.Err != nil {
		w.record(TraceEvent{Kind: "operator", Node: m.name, Detail: "member update failed: " + rep.Err.Error()})
		w.schedule(&event{at: w.now + operatorRetryNs, kind: evMemberUpdate, index: m.idx})
		return
	}
	m.moved = false
	w.record(TraceEvent{Kind: "operator", Node: m.name, Detail: "member update done; clients told the new endpoint"})
	for _, c := range w.clients {
		c.endpoints[m.idx] = m.clientURL()
	}
	for _, wt := range w.watchers {
		wt.endpoints[m.idx] = m.clientURL()
	}
	for _, a := range w.apps {
		a.moved(m.idx, m.clientURL())
	}
}
