package sim

import (
	"encoding/base64"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/node"
)

// Authentication in the simulator (faults.Auth): the operator's admin app
// sets up root and the users, each with a role of its own that may read
// and write every key, and enables authentication; then every ToggleEvery
// it revokes one user's permission, or grants it back, through raft, as
// root (one user at a time: its revoke, then its grant, then the next
// user's). Workload client i acts as user i mod Users: its requests carry the
// user as a verified identity (a client certificate's common name); the
// watchers, lease holders and lock users act as appUser.
//
// The auth check holds the clients' answers to the admin's changes, each
// known by when it was first asked for and when it was acknowledged. A
// user's permission is surely off from a revoke's acknowledgement to the
// next grant's first attempt, and surely on from a grant's
// acknowledgement (or authentication's enabling) to the next revoke's
// first attempt. A linearizable operation that lies wholly inside an off
// span must not succeed: its linearization point is there, and plumb
// checks permissions against the state as of the write's raft index or the
// read's read index. One wholly inside an on span must not be refused with
// "permission denied". Serializable reads are served from a member's own
// state, which may predate a change, as etcd's are; they are not judged.

// rootCreds are what the operator's requests carry: root, as an identity
// the driver verified. With authentication disabled they are ignored.
var rootCreds = node.Credentials{User: "root"}

// appUser is who the watchers, lease holders and lock users act as when
// authentication is on: a user whose role may read and write every key,
// set up before authentication is enabled and never changed, so that
// their checks judge what they judge without authentication, through the
// permission checks.
const appUser = "app"

// appCreds are what the watchers', lease holders' and lock users'
// requests carry (nothing in a scenario without authentication).
func (w *world) appCreds() node.Credentials {
	if w.sc.Auth.Users == 0 {
		return node.Credentials{}
	}
	return node.Credentials{User: appUser}
}

// noteAppAuth records an app's request (or watch) refused for want of
// permission: appUser may read and write every key from before
// authentication is enabled to the end, so the auth check counts every
// such refusal against plumb, for requests sent once the enable was
// acknowledged (one sent before may be applied after it without a user:
// etcd refuses it with ErrUserEmpty too). A refusal for an old auth
// revision is not one: the state changed between the request's check and
// its apply, and the client retries, as etcd's does.
func (w *world) noteAppAuth(err error, what string) {
	if w.auth == nil || !(errors.Is(err, node.ErrPermissionDenied) || errors.Is(err, node.ErrUserEmpty)) {
		return
	}
	w.appRefusals++
	if w.appRefused == "" {
		w.appRefused = fmt.Sprintf("%s at %s: %v", what, fmtNs(w.now), err)
	}
}

func authUser(i int) string { return fmt.Sprintf("u%d", i+1) }
func authRole(i int) string { return fmt.Sprintf("r%d", i+1) }

// everyKey is a permission over the whole keyspace.
var everyKey = &authpb.Permission{PermType: authpb.READWRITE, Key: []byte{}, RangeEnd: []byte{0}}

// authChange is one of the admin's permission changes.
type authChange struct {
	user    int
	granted bool
	invoke  int64 // first attempt
	ack     int64 // acknowledged; 0 if never
}

// authOp is a client operation as the auth check sees it.
type authOp struct {
	user         int
	call, ret    int64
	ok, denied   bool
	serializable bool
	desc         string
}

type authAdmin struct {
	w   *world
	idx int
	via int

	setup   []node.Request // what sets authentication up, in order
	step    int
	seq     uint64 // the number of the last request sent
	waiting bool   // it is in flight
	enabled int64  // when auth enable was acknowledged; 0 before

	next    int // the user the next change is for
	granted []bool
	cur     *authChange
	changes []authChange
}

const (
	authTimerStep = iota + 1
	authTimerTimeout
)

func (w *world) newAuthAdmin() {
	n := w.sc.Auth.Users
	if n == 0 {
		return
	}
	a := &authAdmin{w: w, granted: make([]bool, n)}
	a.idx = w.addApp(a)
	// The node stores whatever hash it is given: no bcrypt in the simulator.
	hashed := func(pw string) string { return base64.StdEncoding.EncodeToString([]byte("simulated:" + pw)) }
	a.setup = append(a.setup,
		node.Request{Auth: &pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: "root", HashedPassword: hashed("root")}}},
		node.Request{Auth: &pb.InternalRaftRequest{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "root", Role: "root"}}})
	for i := range n {
		a.setup = append(a.setup,
			node.Request{Auth: &pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: authUser(i), HashedPassword: hashed(authUser(i))}}},
			node.Request{Auth: &pb.InternalRaftRequest{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: authRole(i)}}},
			node.Request{Auth: &pb.InternalRaftRequest{AuthRoleGrantPermission: &pb.AuthRoleGrantPermissionRequest{Name: authRole(i), Perm: everyKey}}},
			node.Request{Auth: &pb.InternalRaftRequest{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: authUser(i), Role: authRole(i)}}})
		a.granted[i] = true
	}
	if w.sc.Watchers.Count > 0 || w.sc.Leases.Holders > 0 || w.sc.Locks.Users > 0 {
		a.setup = append(a.setup,
			node.Request{Auth: &pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: appUser, HashedPassword: hashed(appUser)}}},
			node.Request{Auth: &pb.InternalRaftRequest{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: appUser}}},
			node.Request{Auth: &pb.InternalRaftRequest{AuthRoleGrantPermission: &pb.AuthRoleGrantPermissionRequest{Name: appUser, Perm: everyKey}}},
			node.Request{Auth: &pb.InternalRaftRequest{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: appUser, Role: appUser}}})
	}
	a.setup = append(a.setup, node.Request{Auth: &pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}}})
	w.auth = a
	w.appCalls = map[uint64]int64{}
	w.appTimer(a.idx, 0, timerKind(authTimerStep, 0))
}

// endpoint is a member to send to: the next that counts, round robin.
func (a *authAdmin) endpoint() *member { return a.w.countingMember(&a.via) }

// send sends the setup step or the current change.
func (a *authAdmin) send() {
	w := a.w
	if w.now >= w.endNs {
		return // the run is over: the clients have stopped
	}
	var req node.Request
	var what string
	if a.step < len(a.setup) {
		req = a.setup[a.step]
		what = fmt.Sprintf("auth setup %d/%d", a.step+1, len(a.setup))
	} else {
		if a.cur == nil {
			// Revoke the next user's permission, then grant it back, then
			// the next user's: the others keep theirs meanwhile.
			i := a.next
			if !a.granted[i] {
				a.next = (a.next + 1) % len(a.granted)
			}
			a.cur = &authChange{user: i, granted: !a.granted[i], invoke: w.now}
		}
		c := a.cur
		if c.granted {
			req = node.Request{Auth: &pb.InternalRaftRequest{AuthRoleGrantPermission: &pb.AuthRoleGrantPermissionRequest{Name: authRole(c.user), Perm: everyKey}}}
			what = "grant " + authUser(c.user) + " every key"
		} else {
			req = node.Request{Auth: &pb.InternalRaftRequest{AuthRoleRevokePermission: &pb.AuthRoleRevokePermissionRequest{Role: authRole(c.user), Key: everyKey.Key, RangeEnd: everyKey.RangeEnd}}}
			what = "revoke " + authUser(c.user) + "'s every key"
		}
	}
	a.seq++
	a.waiting = true
	req.Creds = rootCreds
	via := a.endpoint()
	w.record(TraceEvent{Kind: "operator", Node: via.name, Detail: what})
	w.appRequest(a.idx, a.seq, via.clientURL(), req)
	w.appTimer(a.idx, w.now+operatorCommandTimeoutNs, timerKind(authTimerTimeout, a.seq))
}

func (a *authAdmin) timer(kind uint64) {
	k, seq := splitTimer(kind)
	switch k {
	case authTimerStep:
		a.send()
	case authTimerTimeout:
		if a.waiting && seq == a.seq {
			a.failed("no answer")
		}
	}
}

func (a *authAdmin) reply(seq uint64, rep node.Reply) {
	if !a.waiting || seq != a.seq {
		return // late: given up on
	}
	w := a.w
	err := rep.Err
	// A retry after an attempt of unknown outcome may find it done.
	if errors.Is(err, node.ErrUserAlreadyExist) || errors.Is(err, node.ErrRoleAlreadyExist) ||
		(a.cur != nil && !a.cur.granted && errors.Is(err, node.ErrPermissionNotGranted)) {
		err = nil
	}
	if err != nil {
		a.failed(err.Error())
		return
	}
	a.waiting = false
	a.via++
	if a.step < len(a.setup) {
		a.step++
		if a.step < len(a.setup) {
			a.send()
			return
		}
		a.enabled = w.now
		w.record(TraceEvent{Kind: "operator", Detail: "authentication enabled"})
	} else {
		a.cur.ack = w.now
		a.granted[a.cur.user] = a.cur.granted
		a.changes = append(a.changes, *a.cur)
		a.cur = nil
	}
	w.appTimer(a.idx, w.now+w.sc.Auth.ToggleEvery.Nanoseconds(), timerKind(authTimerStep, 0))
}

// failed tries the same step again after operatorRetryNs, elsewhere.
func (a *authAdmin) failed(why string) {
	a.waiting = false
	a.via++
	a.w.record(TraceEvent{Kind: "operator", Detail: "auth: " + why + "; trying again"})
	a.w.appTimer(a.idx, a.w.now+operatorRetryNs, timerKind(authTimerStep, 0))
}

func (a *authAdmin) moved(int, string) {}
func (a *authAdmin) inFlight() string  { return "" }

// finish keeps a change still in flight, never acknowledged: the
// permission was unsure from its first attempt on.
func (a *authAdmin) finish() {
	if a.cur != nil {
		a.changes = append(a.changes, *a.cur)
		a.cur = nil
	}
}

// noteAuthOp records a finished client operation for the auth check.
func (w *world) noteAuthOp(c *client, serializable bool, ok bool, err error, call, ret int64, desc string) {
	if w.auth == nil {
		return
	}
	w.authOps = append(w.authOps, authOp{user: c.idx % w.sc.Auth.Users, call: call, ret: ret, ok: ok,
		denied: errors.Is(err, node.ErrPermissionDenied), serializable: serializable, desc: desc})
}

// clientCreds are what workload client c's requests carry.
func (w *world) clientCreds(c *client) node.Credentials {
	if w.sc.Auth.Users == 0 {
		return node.Credentials{}
	}
	return node.Credentials{User: authUser(c.idx % w.sc.Auth.Users)}
}

// span is a stretch of time in which a user's permission was surely on
// or surely off; end 0 is the end of the run.
type permSpan struct {
	from, to int64
	on       bool
	why      string
}

// spans are user i's sure spans.
func (a *authAdmin) spans(i int) []permSpan {
	if a.enabled == 0 {
		return nil
	}
	var out []permSpan
	cur := permSpan{from: a.enabled, on: true, why: "authentication enabled"}
	for _, c := range a.changes {
		if c.user != i {
			continue
		}
		cur.to = c.invoke
		out = append(out, cur)
		if c.ack == 0 {
			return out // unsure from here on
		}
		verb := "revoked"
		if c.granted {
			verb = "granted"
		}
		cur = permSpan{from: c.ack, on: c.granted, why: fmt.Sprintf("%s at %s", verb, fmtNs(c.ack))}
	}
	return append(out, cur)
}

func fmtNs(ns int64) string { return fmt.Sprintf("%.3fs", float64(ns)/1e9) }

// authCheck judges the clients' operations against the admin's changes.
func (w *world) authCheck() Check {
	a := w.auth
	c := Check{Name: "auth", OK: true}
	if a.enabled == 0 {
		c.Skipped, c.Detail = true, "authentication was never enabled"
		return c
	}
	judged, okOff, deniedOn := 0, 0, 0
	var first string
	for i := range a.granted {
		spans := a.spans(i)
		for _, op := range w.authOps {
			if op.user != i || op.serializable {
				continue
			}
			for _, s := range spans {
				if op.call < s.from || (s.to != 0 && op.ret > s.to) {
					continue
				}
				judged++
				switch {
				case op.ok && !s.on:
					okOff++
					if first == "" {
						first = fmt.Sprintf("%s's %s (called %s, answered %s) succeeded while its permission was off (%s)",
							authUser(i), op.desc, fmtNs(op.call), fmtNs(op.ret), s.why)
					}
				case op.denied && s.on:
					deniedOn++
					if first == "" {
						first = fmt.Sprintf("%s's %s (called %s, answered %s) was refused with permission denied while its permission was on (%s)",
							authUser(i), op.desc, fmtNs(op.call), fmtNs(op.ret), s.why)
					}
				}
				break
			}
		}
	}
	c.Detail = fmt.Sprintf("%d operations of %d users judged against %d permission changes", judged, len(a.granted), len(a.changes))
	if w.sc.Watchers.Count > 0 || w.sc.Leases.Holders > 0 || w.sc.Locks.Users > 0 {
		c.Detail += fmt.Sprintf("; %s's watches, leases and locks refused for permission: %d", appUser, w.appRefusals)
	}
	switch {
	case okOff+deniedOn > 0:
		c.OK = false
		c.Detail = fmt.Sprintf("%d served without permission, %d refused with it; first: %s", okOff, deniedOn, first)
	case w.appRefusals > 0:
		c.OK = false
		c.Detail = fmt.Sprintf("%d requests and watches of %s, who may read and write every key, refused; first: %s", w.appRefusals, appUser, w.appRefused)
	}
	return c
}
