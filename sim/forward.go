package sim

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/plumbdb/plumb/node"
)

// Lease forwarding, as the production server does it (server/api_lease.go):
// keep-alive and time-to-live are the leader's alone, and a member that is
// not the leader answers them with node.ErrNotLeader. The member a client
// talks to then forwards the request to the leader it knows, over the
// network between members (production dials the leader's client URL from
// the member), and retries every forwardRetryNs while the leader is
// unknown, unreachable or has moved on, until forwardTimeout: so a
// partition between the two members keeps a keep-alive from the leader
// exactly as it would in production. A forwarded request that reaches a
// member that does not lead fails there; it is forwarded once. The answer
// goes back to the forwarding member, and from it to the client.

const (
	// forwardRetryNs is the server's forwardRetryWait.
	forwardRetryNs = int64(50e6)
	// forwardBaseNs plus two election timeouts is the server's
	// forwardTimeout (etcd's request timeout).
	forwardBaseNs = int64(5e9)
)

// forwarder is the members' forwarding of lease requests, one app for the
// whole cluster: each forwarded request is a job, named by its number.
type forwarder struct {
	w    *world
	idx  int
	jobs map[uint64]*forwardJob
	next uint64
	// requests are the lease requests apps sent that a member may have to
	// forward, by request ID, until their answer reaches the app.
	requests map[uint64]node.Request
}

// forwardJob is one request a member forwards to the leader.
type forwardJob struct {
	id       uint64
	member   int    // the forwarding member
	inc      uint32 // its incarnation: a crash ends the job
	req      node.Request
	deadline int64
	last     error // the last attempt's failure
}

func (w *world) newForwarder() {
	f := &forwarder{w: w, jobs: make(map[uint64]*forwardJob), requests: make(map[uint64]node.Request)}
	f.idx = w.addApp(f)
	w.fwd = f
}

// leaseRequest sends app a's keep-alive or time-to-live request, which
// the member it reaches forwards to the leader if it does not lead.
func (w *world) leaseRequest(a int, seq uint64, addr string, req node.Request) {
	req.ID = replyID(appCallerBase+a, seq)
	if req.Creds == (node.Credentials{}) {
		req.Creds = w.appCreds() // kept for the forward too
	}
	w.fwd.requests[req.ID] = req
	w.appRequest(a, seq, addr, req)
}

// leaseAnswered forgets a lease request once its answer reached its app
// (or the app gave up on it).
func (w *world) leaseAnswered(a int, seq uint64) {
	delete(w.fwd.requests, replyID(appCallerBase+a, seq))
}

// intercept looks at a reply leaving member m before it goes to its
// caller. It notes the renewals of leases; it forwards a lease request the
// member cannot answer because it does not lead; and it sends the leader's
// answer to a forwarded request back to the member that forwarded it. It
// reports whether it took the reply.
func (f *forwarder) intercept(m *member, rep node.Reply) bool {
	w := f.w
	if ka := rep.LeaseKeepAlive; ka != nil && ka.TTL > 0 && rep.Err == nil {
		w.leaseRec.renewed(ka.ID, w.now)
	}
	if a, seq, ok := w.appOf(rep.ID); ok && a == f.idx {
		f.fromLeader(m, seq, rep)
		return true
	}
	req, ok := f.requests[rep.ID]
	if !ok || !errors.Is(rep.Err, node.ErrNotLeader) && !errors.Is(rep.Err, node.ErrLeaderChanged) {
		return false
	}
	f.next++
	job := &forwardJob{id: f.next, member: m.idx, inc: m.inc, req: req,
		deadline: w.now + forwardBaseNs + 2*int64(w.sc.Cluster.ElectionTimeout), last: rep.Err}
	f.jobs[job.id] = job
	w.record(TraceEvent{Kind: "forward", Node: m.name, Detail: fmt.Sprintf("job %d: %s", job.id, describeLeaseRequest(req))})
	f.attempt(job)
	return true
}

// attempt sends a job's request to the leader the forwarding member knows,
// or waits forwardRetryNs and tries again when it cannot.
func (f *forwarder) attempt(job *forwardJob) {
	w := f.w
	fm := w.members[job.member]
	if !fm.alive() || fm.inc != job.inc {
		delete(f.jobs, job.id) // the member crashed: the client's stream broke
		return
	}
	req := job.req
	req.ID = replyID(appCallerBase+f.idx, job.id)
	switch {
	case fm.lead == 0:
		job.last = node.ErrNoLeader
	case fm.lead == fm.id:
		// Elected meanwhile: it answers the request itself.
		if w.busy(fm) {
			w.schedule(&event{at: fm.ioUntil, kind: evRequest, addr: fm.clientURL(), req: &req})
			return
		}
		fm.node.Submit(req)
		w.drive(fm)
		return
	default:
		addr, dst, why := f.leaderAddr(fm)
		if why == "" {
			w.record(TraceEvent{Kind: "forward", Node: fm.name, Peer: w.members[dst].name, Detail: fmt.Sprintf("job %d sent", job.id)})
			w.schedule(&event{at: w.now + w.net.latency(), kind: evRequest, addr: addr, req: &req})
			return
		}
		job.last = fmt.Errorf("%w: %s", errConnRefused, why)
	}
	f.retry(job)
}

// leaderAddr finds where the forwarding member reaches its leader: the
// client URL its membership has for it. why says why it cannot.
func (f *forwarder) leaderAddr(fm *member) (addr string, dst int, why string) {
	w := f.w
	for _, mb := range fm.node.Members() {
		if mb.ID == fm.lead && len(mb.ClientURLs) > 0 {
			addr = mb.ClientURLs[0]
		}
	}
	if addr == "" {
		return "", 0, "the leader has no client URL yet"
	}
	dst, bound := w.byAddr[addr]
	switch {
	case !bound || !w.members[dst].alive():
		return "", 0, "nobody listens at " + addr
	case w.net.isCut(fm.idx, dst) || w.net.isCut(dst, fm.idx):
		return "", 0, "the link to the leader is cut"
	}
	return addr, dst, ""
}

// retry tries a job again after forwardRetryNs, or gives up at its
// deadline with etcd's answer: no leader, or a timeout.
func (f *forwarder) retry(job *forwardJob) {
	w := f.w
	if w.now+forwardRetryNs <= job.deadline {
		w.record(TraceEvent{Kind: "forward", Node: w.members[job.member].name,
			Detail: fmt.Sprintf("job %d: %v; again in %v", job.id, job.last, time.Duration(forwardRetryNs))})
		w.appTimer(f.idx, w.now+forwardRetryNs, job.id)
		return
	}
	err := node.ErrTimeout
	if errors.Is(job.last, node.ErrNoLeader) {
		err = node.ErrNoLeader
	}
	f.answer(job, node.Reply{Err: err})
}

// fromLeader takes the answer to a forwarded request as it leaves the
// member that answered it: back over the network to the forwarding member,
// unless the link between them is cut by then (the call fails, and is
// retried).
func (f *forwarder) fromLeader(m *member, seq uint64, rep node.Reply) {
	w := f.w
	job := f.jobs[seq]
	if job == nil {
		return
	}
	switch {
	case m.idx == job.member:
		f.reply(seq, rep)
	case w.net.isCut(m.idx, job.member) || w.net.isCut(job.member, m.idx):
		job.last = fmt.Errorf("%w: the link from the leader is cut", errConnRefused)
		f.retry(job)
	default:
		w.schedule(&event{at: w.now + w.net.latency(), kind: evReply, rep: &rep})
	}
}

// reply takes the leader's answer at the forwarding member: a final one
// goes to the client, one that says the leader moved is tried again.
func (f *forwarder) reply(seq uint64, rep node.Reply) {
	job := f.jobs[seq]
	if job == nil {
		return
	}
	if fm := f.w.members[job.member]; !fm.alive() || fm.inc != job.inc {
		delete(f.jobs, job.id)
		return
	}
	if forwardRetryable(rep.Err) {
		job.last = rep.Err
		f.retry(job)
		return
	}
	f.answer(job, rep)
}

// answer sends a job's final answer from the forwarding member to the
// client.
func (f *forwarder) answer(job *forwardJob, rep node.Reply) {
	w := f.w
	delete(f.jobs, job.id)
	rep.ID = job.req.ID
	w.record(TraceEvent{Kind: "forward", Node: w.members[job.member].name, Detail: fmt.Sprintf("job %d answered: %v", job.id, errOrOK(rep.Err))})
	w.schedule(&event{at: w.now + w.net.clientDelay(), kind: evReply, rep: &rep})
}

// forwardRetryable: the leader was unknown, could not be reached, or moved
// on (the server's retryable: not leader, and gRPC's unavailable).
func forwardRetryable(err error) bool {
	return errors.Is(err, node.ErrNotLeader) || errors.Is(err, node.ErrNoLeader) ||
		errors.Is(err, node.ErrLeaderChanged) || errors.Is(err, errConnRefused) || errors.Is(err, node.ErrStopped)
}

func (f *forwarder) timer(kind uint64) {
	if job := f.jobs[kind]; job != nil {
		f.attempt(job)
	}
}

func (f *forwarder) moved(int, string) {}
func (f *forwarder) inFlight() string  { return "" }
func (f *forwarder) finish()           {}

func errOrOK(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func describeLeaseRequest(req node.Request) string {
	switch {
	case req.LeaseKeepAlive != nil:
		return fmt.Sprintf("keep-alive %x", req.LeaseKeepAlive.ID)
	case req.LeaseTimeToLive != nil:
		return fmt.Sprintf("time-to-live %x", req.LeaseTimeToLive.ID)
	case req.MemberAdd != nil:
		return "member add " + strings.Join(req.MemberAdd.PeerURLs, ",")
	case req.MemberRemove != nil:
		return "member remove " + node.FormatID(req.MemberRemove.ID)
	case req.MemberPromote != nil:
		return "member promote " + node.FormatID(req.MemberPromote.ID)
	}
	return "lease request"
}
