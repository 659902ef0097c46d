package sim

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/faults"
	"github.com/plumbdb/plumb/node"
	"github.com/plumbdb/plumb/node/backend"
	"github.com/plumbdb/plumb/node/wal"
)

// The operator's membership changes: the faults member_add,
// member_promote, member_remove, member_replace and ip_reuse, made as the
// seeds' day-two procedures make them with etcdctl. Each is a job of the
// operator (an app: its requests cross client links as a client's do, and
// the run does not settle while one is in progress). A job sends one
// request at a time to the member the operator talks to, which forwards
// it to the leader it knows if it does not lead (node answers member add,
// remove and promote on the leader alone: forward.go, as for lease
// requests); on a timeout, no leader or a refused connection the operator
// moves to the next member, and on any failure it tries again
// operatorRetryNs later, as a person would, up to memberJobAttemptsMax:
//
//   - member add: once acknowledged, the new member starts on its fresh
//     address with an empty disk and node.Config.Join (etcd's
//     initial-cluster-state existing). An add whose answer was lost and
//     whose retry finds its peer URL taken is looked up with member list,
//     as an operator would, and the member it added is started;
//   - member promote: retried while the leader answers that the learner is
//     not in sync;
//   - member remove: once acknowledged, the member's host is stopped and
//     never runs again (stateRemoved); no check counts it after;
//   - member replace: remove, then wipe the disk, add the member back at
//     the same address (so under a new ID) and start it;
//   - ip_reuse: a new member added at an address a removed or moved member
//     left, or the one member of another cluster started there.

const (
	// operatorCommandTimeoutNs is etcdctl's --command-timeout.
	operatorCommandTimeoutNs = int64(5e9)
	// memberJobAttemptsMax bounds a job's attempts (a minute of retries).
	memberJobAttemptsMax = 120
)

type jobKind uint8

const (
	jobAdd jobKind = iota
	jobPromote
	jobRemove
)

var jobNames = [...]string{jobAdd: "member add", jobPromote: "member promote", jobRemove: "member remove"}

// memberJob is one membership change in progress.
type memberJob struct {
	id       uint64
	kind     jobKind
	m        *member
	learner  bool // an add: of a learner
	replace  bool // a remove: then wipe the disk and add the member back
	attempts int
	seq      uint64 // the request awaiting an answer, 0 if none
	listing  bool   // that request is a member list, after "Peer URLs already exists"
}

// operator runs the jobs. It talks to one member at a time (via, an index
// into named), as etcdctl does with its first endpoint, and moves on when
// that one fails it.
type operator struct {
	w     *world
	idx   int // its app number
	jobs  []*memberJob
	bySeq map[uint64]*memberJob
	next  uint64 // the last job's number
	seq   uint64 // the last request's number
	via   int
	// lastRemoved and lastMoved are the members an ip_reuse's removed and
	// moved name.
	lastRemoved, lastMoved *member
	foreign                int             // hosts of other clusters started
	removedIDs             map[uint64]bool // the IDs its removes took out
}

// Timer kinds of the operator.
const (
	opTimerRetry   uint8 = iota + 1 // payload: the job
	opTimerTimeout                  // payload: the request
)

func (w *world) newOperator() {
	o := &operator{w: w, bySeq: make(map[uint64]*memberJob), removedIDs: make(map[uint64]bool)}
	o.idx = w.addApp(o)
	w.ops = o
}

// memberFault starts the job a membership fault asks for.
func (w *world) memberFault(f faults.Fault) {
	o := w.ops
	switch {
	case f.MemberAdd != nil:
		m := w.newMember(w.allocIP())
		kind := "voter"
		if f.MemberAdd.Learner {
			kind = "learner"
		}
		w.record(TraceEvent{Kind: "fault", Node: m.name, Detail: fmt.Sprintf("member add (%s) at %s", kind, m.ip)})
		o.start(&memberJob{kind: jobAdd, m: m, learner: f.MemberAdd.Learner})
	case f.MemberPromote != nil:
		m := w.named[f.MemberPromote.Member-1]
		w.record(TraceEvent{Kind: "fault", Node: m.name, Detail: "member promote"})
		o.start(&memberJob{kind: jobPromote, m: m})
	case f.MemberRemove != nil, f.MemberReplace != nil:
		t := cmpTarget(f.MemberRemove, f.MemberReplace)
		m, note := w.resolve(*t)
		what := "member remove"
		if f.MemberReplace != nil {
			what = "member replace"
		}
		if !m.counts() || o.busyWith(m) {
			w.record(TraceEvent{Kind: "fault", Node: m.name, Detail: joinNote(what+" "+t.String(), note) + ": not done, not a member now or a change of it is in progress"})
			return
		}
		w.record(TraceEvent{Kind: "fault", Node: m.name, Detail: joinNote(what+" "+t.String(), note)})
		o.start(&memberJob{kind: jobRemove, m: m, replace: f.MemberReplace != nil})
	case f.IPReuse != nil:
		w.ipReuse(f.IPReuse)
	}
}

func cmpTarget(a, b *faults.Target) *faults.Target {
	if a != nil {
		return a
	}
	return b
}

// newMember creates the next named host, at ip, waiting for its add.
// Clients and watchers are told its endpoint (nothing answers there until
// it starts), as the operator tells them of a member update.
func (w *world) newMember(ip string) *member {
	m := &member{idx: len(w.members), name: fmt.Sprintf("n%d", len(w.named)+1), ip: ip,
		disk: wal.NewMemFS(), be: backend.NewMemory(), state: statePending, join: true}
	w.addHost(m)
	w.named = append(w.named, m)
	return m
}

// addHost puts a new host on the network, at its address.
func (w *world) addHost(m *member) {
	w.members = append(w.members, m)
	w.net.grow(len(w.members))
	w.bindAddrs(m)
	url := m.clientURL()
	if m.foreign {
		url = "" // not this cluster's: no client of it ever has it
	}
	for _, c := range w.clients {
		c.endpoints = append(c.endpoints, url)
	}
	for _, wt := range w.watchers {
		wt.endpoints = append(wt.endpoints, url)
	}
	for _, a := range w.apps {
		a.moved(len(w.members)-1, url)
	}
}

// ipReuse gives an address a member left to a new member, or to a member
// of another cluster started with the same cluster token.
func (w *world) ipReuse(r *faults.IPReuse) {
	o := w.ops
	var from *member
	switch {
	case r.Removed:
		from = o.lastRemoved
	case r.Moved:
		from = o.lastMoved
	default:
		from = w.named[r.AddressOf.Member-1]
	}
	ip, why := w.leftAddress(from)
	if ip == "" {
		ip = w.allocIP()
	}
	if r.NewMember {
		m := w.newMember(ip)
		w.record(TraceEvent{Kind: "fault", Node: m.name, Detail: joinNote("ip reuse: member add at "+ip, why)})
		o.start(&memberJob{kind: jobAdd, m: m})
		return
	}
	o.foreign++
	m := &member{idx: len(w.members), name: fmt.Sprintf("x%d", o.foreign), ip: ip,
		disk: wal.NewMemFS(), be: backend.NewMemory(), foreign: true}
	// The same cluster token and peer URL give the same member ID as the
	// bootstrap member that had the address: only the cluster ID differs.
	m.id = node.MemberID([]string{m.peerURL()}, clusterToken, "")
	w.addHost(m)
	// It listens on the peer port only. On the client port it would
	// serve this cluster's clients that still have the old address: they
	// do not check a response's cluster ID (clientv3 does not), and would
	// write to the other cluster. That hazard is the operator's, not the
	// members'; the peer messages are what this fault tests.
	delete(w.byAddr, m.clientURL())
	w.record(TraceEvent{Kind: "fault", Node: m.name, Detail: joinNote(fmt.Sprintf("ip reuse: member %s of another cluster starts at %s", node.FormatID(m.id), ip), why)})
	w.start(m, []node.Member{{ID: m.id, Name: m.name, PeerURLs: []string{m.peerURL()}}})
	w.drive(m)
}

// leftAddress is the address member m left: its own once removed, the
// one before its last IP change otherwise; "" and why when there is none
// free.
func (w *world) leftAddress(m *member) (ip, why string) {
	switch {
	case m == nil:
		return "", "no member was removed or moved yet; a fresh address"
	case m.state == stateRemoved:
		ip = m.ip
	case m.formerIP != "":
		ip = m.formerIP
	default:
		return "", m.name + " left no address; a fresh address"
	}
	if idx, ok := w.byAddr[fmt.Sprintf("http://%s:%d", ip, peerPort)]; ok && w.members[idx].state != stateRemoved {
		return "", fmt.Sprintf("%s's old address %s is held by %s; a fresh address", m.name, ip, w.members[idx].name)
	}
	return ip, fmt.Sprintf("%s's old address", m.name)
}

// busyWith reports whether a job for m is in progress.
func (o *operator) busyWith(m *member) bool {
	return slices.ContainsFunc(o.jobs, func(j *memberJob) bool { return j.m == m })
}

func (o *operator) start(j *memberJob) {
	o.next++
	j.id = o.next
	o.jobs = append(o.jobs, j)
	o.attempt(j)
}

func (o *operator) finishJob(j *memberJob, why string) {
	o.w.record(TraceEvent{Kind: "operator", Node: j.m.name, Detail: jobNames[j.kind] + ": " + why})
	o.jobs = slices.DeleteFunc(o.jobs, func(x *memberJob) bool { return x == j })
}

// endpoint is the member the operator talks to: the one it last used, or
// the next that is a member.
func (o *operator) endpoint() *member { return o.w.countingMember(&o.via) }

// countingMember is the member an operator sends to next: the one *via
// names, round robin over the named members, or the next that counts.
func (w *world) countingMember(via *int) *member {
	named := w.named
	for range named {
		m := named[*via%len(named)]
		if m.counts() {
			return m
		}
		*via++
	}
	return named[0]
}

// attempt sends a job's next request.
func (o *operator) attempt(j *memberJob) {
	w := o.w
	if !slices.Contains(o.jobs, j) || j.seq != 0 {
		return
	}
	j.attempts++
	if j.attempts > memberJobAttemptsMax {
		o.finishJob(j, fmt.Sprintf("gave up after %d attempts", memberJobAttemptsMax))
		return
	}
	switch {
	case j.kind == jobPromote && j.m.state == stateRemoved:
		o.finishJob(j, "not done: the member was removed")
		return
	case j.kind == jobPromote && j.m.state != stateMember:
		o.retry(j, "not added yet")
		return
	}
	req, what := o.request(j)
	o.seq++
	j.seq, j.listing = o.seq, false
	o.bySeq[o.seq] = j
	via := o.endpoint()
	// A member that does not lead forwards it to the leader (forward.go).
	req.ID = replyID(appCallerBase+o.idx, o.seq)
	w.fwd.requests[req.ID] = req
	w.record(TraceEvent{Kind: "operator", Node: j.m.name, Detail: fmt.Sprintf("%s via %s (attempt %d)", what, via.name, j.attempts)})
	w.appRequest(o.idx, o.seq, via.clientURL(), req)
	w.appTimer(o.idx, w.now+operatorCommandTimeoutNs, timerKind(opTimerTimeout, o.seq))
}

// request builds a job's request, and says it as etcdctl would be told.
func (o *operator) request(j *memberJob) (node.Request, string) {
	m := j.m
	switch j.kind {
	case jobAdd:
		what := "member add " + m.name + " --peer-urls=" + m.peerURL()
		if j.learner {
			what += " --learner"
		}
		return node.Request{Creds: rootCreds, MemberAdd: &pb.MemberAddRequest{PeerURLs: []string{m.peerURL()}, IsLearner: j.learner},
			MemberAddUnix: o.w.now / 1e9}, what
	case jobPromote:
		return node.Request{Creds: rootCreds, MemberPromote: &pb.MemberPromoteRequest{ID: m.id}}, "member promote " + node.FormatID(m.id)
	default:
		return node.Request{Creds: rootCreds, MemberRemove: &pb.MemberRemoveRequest{ID: m.id}}, "member remove " + node.FormatID(m.id)
	}
}

// retry tries a job again operatorRetryNs later.
func (o *operator) retry(j *memberJob, why string) {
	o.w.record(TraceEvent{Kind: "operator", Node: j.m.name, Detail: jobNames[j.kind] + " failed: " + why})
	o.w.appTimer(o.idx, o.w.now+operatorRetryNs, timerKind(opTimerRetry, j.id))
}

func (o *operator) timer(kind uint64) {
	k, payload := splitTimer(kind)
	switch k {
	case opTimerRetry:
		for _, j := range o.jobs {
			if j.id == payload {
				o.attempt(j)
			}
		}
	case opTimerTimeout:
		j := o.take(payload)
		if j == nil {
			return
		}
		o.via++
		o.retry(j, "timed out")
	}
}

// take ends request seq of its job, if that job still waits for it.
func (o *operator) take(seq uint64) *memberJob {
	j := o.bySeq[seq]
	delete(o.bySeq, seq)
	o.w.leaseAnswered(o.idx, seq)
	if j == nil || j.seq != seq {
		return nil
	}
	j.seq = 0
	return j
}

func (o *operator) reply(seq uint64, rep node.Reply) {
	j := o.take(seq)
	if j == nil {
		return // late: the operator gave up on it
	}
	err := rep.Err
	switch {
	case j.listing:
		o.listed(j, rep)
	case err == nil:
		o.succeeded(j, rep)
	case j.kind == jobRemove && errors.Is(err, node.ErrIDRemoved):
		// An earlier attempt took effect (the removed set is checked
		// before anything else).
		o.removed(j, "done by an earlier attempt")
	case j.kind == jobPromote && errors.Is(err, node.ErrMemberNotLearner):
		j.m.learner = false
		o.finishJob(j, "done by an earlier attempt")
	case j.kind == jobAdd && errors.Is(err, node.ErrPeerURLExist):
		o.list(j)
	default:
		if failoverOn(err) {
			o.via++
		}
		o.retry(j, err.Error())
	}
}

func (o *operator) succeeded(j *memberJob, rep node.Reply) {
	switch j.kind {
	case jobAdd:
		j.m.seed = rep.MemberAdd.GetMembers()
		o.added(j, rep.MemberAdd.GetMember().GetID(), "added")
	case jobPromote:
		j.m.learner = false
		o.finishJob(j, "promoted")
	default:
		o.removed(j, "removed")
	}
}

// added starts the member the cluster added, with an empty disk and Join.
func (o *operator) added(j *memberJob, id uint64, why string) {
	w, m := o.w, j.m
	m.id, m.state, m.learner = id, stateMember, j.learner
	o.finishJob(j, fmt.Sprintf("%s as %s; starting it with initial-cluster-state existing", why, node.FormatID(id)))
	w.restart(m)
}

// removed stops a removed member's host for good, or, for a replace,
// wipes its disk and adds it back at the same address.
func (o *operator) removed(j *memberJob, why string) {
	w, m := o.w, j.m
	o.removedIDs[m.id] = true
	if m.alive() {
		w.crash(m, "stopped by the operator: removed from the cluster")
	}
	if !j.replace {
		m.state = stateRemoved
		o.lastRemoved = m
		o.finishJob(j, why+"; its host is stopped")
		return
	}
	m.state = statePending
	m.disk, m.be = wal.NewMemFS(), backend.NewMemory()
	m.tornArmed, m.killPending = false, false
	m.join, m.learner = true, false
	w.record(TraceEvent{Kind: "operator", Node: m.name, Detail: "member replace: " + why + "; data dir wiped, adding it back"})
	j.kind, j.attempts, j.replace = jobAdd, 0, false
	o.attempt(j)
}

// list asks for the members after an add found its peer URL taken: an
// earlier attempt that timed out may have added it.
func (o *operator) list(j *memberJob) {
	w := o.w
	o.seq++
	j.seq, j.listing = o.seq, true
	o.bySeq[o.seq] = j
	via := o.endpoint()
	w.record(TraceEvent{Kind: "operator", Node: j.m.name, Detail: "member add: peer URL exists; member list via " + via.name})
	w.appRequest(o.idx, o.seq, via.clientURL(), node.Request{Creds: rootCreds, MemberList: &pb.MemberListRequest{}})
	w.appTimer(o.idx, w.now+operatorCommandTimeoutNs, timerKind(opTimerTimeout, o.seq))
}

// listed adopts the member that holds the job's peer URL if no other
// simulated member is it; otherwise the URL is still another's (a moved
// member not yet updated) and the add is tried again later.
func (o *operator) listed(j *memberJob, rep node.Reply) {
	if rep.Err != nil {
		o.retry(j, "member list: "+rep.Err.Error())
		return
	}
	for _, mb := range rep.MemberList.GetMembers() {
		if !slices.Contains(mb.PeerURLs, j.m.peerURL()) {
			continue
		}
		if o.removedIDs[mb.ID] || slices.ContainsFunc(o.w.named, func(x *member) bool { return x.id == mb.ID }) {
			// Another member's, or a removed one's that the member asked
			// has not applied the removal of yet.
			o.retry(j, "peer URL held by "+node.FormatID(mb.ID))
			return
		}
		j.learner, j.m.seed = mb.IsLearner, rep.MemberList.GetMembers()
		o.added(j, mb.ID, "added by an earlier attempt")
		return
	}
	o.retry(j, "peer URL exists, but no member lists it")
}

func (o *operator) moved(int, string) {}
func (o *operator) finish()           {}

func (o *operator) inFlight() string {
	if len(o.jobs) == 0 {
		return ""
	}
	j := o.jobs[0]
	return fmt.Sprintf("the operator's %s of %s is in progress", jobNames[j.kind], j.m.name)
}

// noteLeader records that member m saw lead lead term term, for the
// one-leader check.
func (w *world) noteLeader(m *member, lead, term uint64) {
	if m.foreign || lead == 0 {
		return
	}
	prev, seen := w.leaders[term]
	switch {
	case !seen:
		w.leaders[term] = lead
	case prev != lead && w.twoLeaders == "":
		w.twoLeaders = fmt.Sprintf("term %d has two leaders: %s, and %s as %s saw at %v",
			term, w.nameOf(prev), w.nameOf(lead), m.name, nsString(w.now))
		w.record(TraceEvent{Kind: "violation", Node: m.name, Term: term, Detail: w.twoLeaders})
	}
}

// countRejected counts a peer message Step refused, by reason.
func (w *world) countRejected(err error) {
	w.stats.rejectedMsgs++
	switch {
	case errors.Is(err, node.ErrClusterMismatch):
		w.stats.rejectedCluster++
	case errors.Is(err, node.ErrWrongMember):
		w.stats.rejectedMember++
	case errors.Is(err, node.ErrRemovedMember):
		w.stats.rejectedRemoved++
	}
}

// step hands a peer message to host m's node. A message that is not for
// m (sent in another cluster, or to another member: m holds an address
// that member had) must be refused; if Step takes it, that is noted for
// the peer-identity check, and if raft panics on it (another cluster's
// log makes no sense to it), m's process dies of it, as it would in
// production: the check fails, and the run goes on. A panic on a message
// that was for m is a bug the run cannot judge, and is not caught here.
func (w *world) step(m *member, e *event) (err error, crashed bool) {
	env := e.env
	if env.ClusterID == m.node.ClusterID() && env.Message.GetTo() == m.id {
		return m.node.Step(env), false
	}
	defer func() {
		r := recover()
		if err != nil {
			return // refused, as it must be
		}
		why := ""
		if r != nil {
			why = fmt.Sprintf(", and panicked: %v", r)
		}
		w.misdeliver(m, e, why)
		if r != nil {
			w.crash(m, fmt.Sprintf("panic on another cluster's or member's message: %v", r))
			crashed = true
		}
	}()
	return m.node.Step(env), false
}

// misdeliver notes the first peer message a host took that was not for it.
func (w *world) misdeliver(m *member, e *event, why string) {
	if w.misdelivered != "" {
		return
	}
	env := e.env
	w.misdelivered = fmt.Sprintf("%s (member %s of cluster %s) at %s took a %s from %s meant for member %s of cluster %s%s",
		m.name, node.FormatID(m.id), node.FormatID(m.node.ClusterID()), m.ip, msgTypeName(env.Message.GetType()),
		w.members[e.from].name, node.FormatID(env.Message.GetTo()), node.FormatID(env.ClusterID), why)
	w.record(TraceEvent{Kind: "violation", Node: m.name, Detail: w.misdelivered})
}

// membershipNote compares a member's applied membership with the members
// the operator's acknowledged changes leave (IDs and learners; a member
// that moved and was never updated keeps its old peer URL): "" when they
// agree.
func (w *world) membershipNote(m *member) string {
	var want, got []string
	for _, x := range w.named {
		if x.counts() {
			want = append(want, describeMember(x.id, x.learner))
		}
	}
	for _, mb := range m.node.Members() {
		got = append(got, describeMember(mb.ID, mb.IsLearner))
	}
	slices.Sort(want)
	slices.Sort(got)
	if slices.Equal(want, got) {
		return ""
	}
	return fmt.Sprintf("%s's membership is [%s], the operator's changes leave [%s]", m.name,
		strings.Join(got, " "), strings.Join(want, " "))
}

func describeMember(id uint64, learner bool) string {
	s := node.FormatID(id)
	if learner {
		s += "(learner)"
	}
	return s
}

func nsString(ns int64) string { return fmt.Sprintf("%.3fs", float64(ns)/1e9) }

// oneLeaderCheck: no term had two leaders, as every member (this
// cluster's) saw its leader change over the whole run, the members added,
// removed and replaced included.
func (w *world) oneLeaderCheck() Check {
	c := Check{Name: "one-leader", OK: w.twoLeaders == "", Detail: w.twoLeaders}
	if c.OK {
		c.Detail = fmt.Sprintf("%d terms had a leader, each one only", len(w.leaders))
	}
	return c
}

// peerIdentityCheck: no host took a peer message meant for another member
// or sent in another cluster; node.Step refuses them (counted here by
// reason), which an address taken over by a new member or another
// cluster's member puts to the test.
func (w *world) peerIdentityCheck() Check {
	c := Check{Name: "peer-identity", OK: w.misdelivered == "", Detail: w.misdelivered}
	if c.OK {
		c.Detail = fmt.Sprintf("every peer message stepped was this cluster's and for its recipient; refused: %d from another cluster, %d for another member, %d from a removed member",
			w.stats.rejectedCluster, w.stats.rejectedMember, w.stats.rejectedRemoved)
	}
	return c
}

// seedURL finds a peer's address in the membership a joining member was
// given, while it has applied none of its own (the server's transport
// does the same with the membership it fetched when it joined).
func seedURL(m *member, id uint64) (string, bool) {
	if len(m.seed) == 0 || len(m.node.Members()) > 0 {
		return "", false
	}
	for _, mb := range m.seed {
		if mb.ID == id && len(mb.PeerURLs) > 0 {
			return mb.PeerURLs[0], true
		}
	}
	return "", false
}
