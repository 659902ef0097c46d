package node

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/plumbdb/plumb/node/backend"
	"github.com/plumbdb/plumb/node/mvcc"
)

// Authentication and authorization, etcd's model: users, roles and
// key-range permissions, replicated through raft like any write and kept in
// the backend in etcd's own buckets and encoding, so that they survive
// restarts, travel in snapshots, and come back from an etcd snapshot.
//
// Every change bumps the auth revision. A request carries the revision of
// the auth state it was authorized under (etcd's auth_revision): a write
// in its raft header, checked when applied; a read when it is answered. A
// request issued under an older revision fails with ErrAuthOldRevision and
// the client authenticates again, so a permission revoked on one member is
// never honoured by a member that has not applied the revocation yet.
//
// What the node does not do: check passwords (bcrypt is slow and salted;
// the driver checks a password against PasswordHash's answer and hashes new
// ones before submitting them) and sign tokens (a JWT is the driver's). The
// node keeps etcd's simple tokens, which every member learns when it
// applies the Authenticate entry that made them, and expires them after
// Config.AuthTokenTTLTicks without use.

// Errors of authentication and authorization, with etcd's messages.
var (
	ErrAuthNotEnabled       = errors.New("etcdserver: authentication is not enabled")
	ErrAuthFailed           = errors.New("etcdserver: authentication failed, invalid user ID or password")
	ErrRootUserNotExist     = errors.New("etcdserver: root user does not exist")
	ErrRootRoleNotExist     = errors.New("etcdserver: root user does not have root role")
	ErrUserAlreadyExist     = errors.New("etcdserver: user name already exists")
	ErrUserEmpty            = errors.New("etcdserver: user name is empty")
	ErrUserNotFound         = errors.New("etcdserver: user name not found")
	ErrRoleAlreadyExist     = errors.New("etcdserver: role name already exists")
	ErrRoleNotFound         = errors.New("etcdserver: role name not found")
	ErrRoleEmpty            = errors.New("etcdserver: role name is empty")
	ErrPermissionNotGiven   = errors.New("etcdserver: permission not given")
	ErrPermissionDenied     = errors.New("etcdserver: permission denied")
	ErrRoleNotGranted       = errors.New("etcdserver: role is not granted to the user")
	ErrPermissionNotGranted = errors.New("etcdserver: permission is not granted to the role")
	ErrInvalidAuthToken     = errors.New("etcdserver: invalid auth token")
	ErrInvalidAuthMgmt      = errors.New("etcdserver: invalid auth management")
	ErrAuthOldRevision      = errors.New("etcdserver: revision of auth store is old")
	// ErrNoPasswordUser: a password was given for a user added with
	// --no-password. Clients see ErrAuthFailed: which users have no
	// password is nobody's business.
	ErrNoPasswordUser = errors.New("auth: authentication failed, password was given for no password user")
)

// etcd's buckets and keys (server/storage/schema/auth*.go).
var (
	bucketAuth      = []byte("auth")
	bucketAuthUsers = []byte("authUsers")
	bucketAuthRoles = []byte("authRoles")
	keyAuthEnabled  = []byte("authEnabled")
	keyAuthRevision = []byte("authRevision")
)

const (
	rootUser = "root"
	rootRole = "root"
	// DefaultAuthTokenTTLTicks is etcd's --auth-token-ttl, 300 s, at the
	// default 100 ms tick.
	DefaultAuthTokenTTLTicks = 3000
)

// Credentials say who sent a request, as the driver learnt it from the
// request's metadata and connection. The node turns them into an AuthInfo
// when the request is submitted; with authentication disabled they are
// ignored, as etcd ignores them.
type Credentials struct {
	// Token is a simple token (etcd's "token" or "authorization" metadata).
	Token string
	// User is an identity the driver verified itself: a JWT's user with
	// the auth revision it was signed under, or the common name of a
	// verified client certificate with Revision 0 (the current revision).
	User     string
	Revision uint64
	// BadToken: the request carried a token the driver could not verify
	// (a JWT with a bad signature, expired, or of another key).
	BadToken bool
}

// AuthInfo is a request's user and the auth revision it was authorized
// under; the zero AuthInfo is nobody.
type AuthInfo struct {
	User     string
	Revision uint64
}

// PasswordHash is what a driver checks a password against: the user's
// bcrypt hash, and the auth revision it was read at.
type PasswordHash struct {
	Hash     []byte
	Revision uint64
}

type authState struct {
	enabled  bool
	revision uint64
	users    map[string]*authpb.User
	roles    map[string]*authpb.Role
	perms    map[string]*userPerms // cache: cleared by every change
	tokens   map[string]*simpleToken
	// ignoreRevision and checkAtSubmit are the planted
	// AuthIgnoresRevision and AuthReadsCheckedAtSubmit.
	ignoreRevision, checkAtSubmit bool
}

type simpleToken struct {
	user    string
	expires int64 // tick
}

// userPerms are a user's permissions merged over its roles: spans of keys
// it may read and write.
type userPerms struct{ read, write []span }

// span is a range of keys [begin, end); a nil end is the end of the
// keyspace.
type span struct{ begin, end []byte }

func loadAuth(r backend.Reader) (authState, error) {
	a := authState{users: map[string]*authpb.User{}, roles: map[string]*authpb.Role{}, tokens: map[string]*simpleToken{}}
	if v, ok := r.Get(bucketAuth, keyAuthEnabled); ok {
		a.enabled = len(v) == 1 && v[0] == 1
	}
	if v, ok := r.Get(bucketAuth, keyAuthRevision); ok && len(v) == 8 {
		a.revision = binary.BigEndian.Uint64(v)
	}
	// etcd writes revision 1 when it first opens its auth store; plumb
	// counts from 1 too, so that a revision of 0 always means "no user".
	a.revision = max(a.revision, 1)
	err := r.ForEach(bucketAuthUsers, func(k, v []byte) error {
		u := &authpb.User{}
		if err := proto.Unmarshal(v, u); err != nil {
			return fmt.Errorf("user %q: %w", k, err)
		}
		a.users[string(k)] = u
		return nil
	})
	if err == nil {
		err = r.ForEach(bucketAuthRoles, func(k, v []byte) error {
			ro := &authpb.Role{}
			if err := proto.Unmarshal(v, ro); err != nil {
				return fmt.Errorf("role %q: %w", k, err)
			}
			a.roles[string(k)] = ro
			return nil
		})
	}
	if err != nil {
		return a, fmt.Errorf("load auth: %w", err)
	}
	return a, nil
}

// AuthEnabled reports whether authentication is enabled.
func (n *Node) AuthEnabled() bool { return n.auth.enabled }

// AuthRevision is the revision of the auth state this member applied.
func (n *Node) AuthRevision() uint64 { return n.auth.revision }

// ResolveAuth returns who c names, as Submit does, for requests the driver
// answers itself (watch, maintenance). Resolving a simple token keeps it
// alive for another Config.AuthTokenTTLTicks.
func (n *Node) ResolveAuth(c Credentials) (AuthInfo, error) {
	a := &n.auth
	if !a.enabled {
		return AuthInfo{}, nil
	}
	switch {
	case c.BadToken:
		return AuthInfo{}, ErrInvalidAuthToken
	case c.Token != "":
		t, ok := a.tokens[c.Token]
		if !ok || t.expires <= n.ticks {
			delete(a.tokens, c.Token)
			return AuthInfo{}, ErrInvalidAuthToken
		}
		t.expires = n.ticks + n.cfg.AuthTokenTTLTicks
		return AuthInfo{User: t.user, Revision: a.revision}, nil
	case c.User != "":
		return AuthInfo{User: c.User, Revision: cmp.Or(c.Revision, a.revision)}, nil
	}
	return AuthInfo{}, nil
}

// RequireUser is etcd's requireAuthInfo: with authentication enabled, a
// request must name a user (ErrUserEmpty).
func (n *Node) RequireUser(ai AuthInfo) error {
	if n.auth.enabled && ai.User == "" {
		return ErrUserEmpty
	}
	return nil
}

// CheckAdmin is etcd's IsAdminPermitted: with authentication enabled,
// only users with the root role.
func (n *Node) CheckAdmin(ai AuthInfo) error { return n.auth.admin(ai) }

// CheckRead reports whether ai may read [key, end) now (etcd's
// IsRangePermitted, with its revision check).
func (n *Node) CheckRead(ai AuthInfo, key, end []byte) error {
	return n.auth.permitted(ai, key, end, authpb.READ)
}

// AuthorizeWatch resolves c and checks that it may read [key, end), for
// a watch about to be created (etcd checks a watch's range when it is
// created); it returns the user, for MayStillRead's checks later.
func (n *Node) AuthorizeWatch(c Credentials, key, end []byte) (user string, err error) {
	ai, err := n.ResolveAuth(c)
	if err == nil {
		err = n.CheckRead(ai, key, end)
	}
	return ai.User, err
}

// MayStillRead reports whether user may read [key, end) under the
// current auth state, whatever revision it was authorized at: for a watch
// created earlier, which must stop once its user loses the permission.
func (n *Node) MayStillRead(user string, key, end []byte) error {
	return n.auth.permitted(AuthInfo{User: user, Revision: n.auth.revision}, key, end, authpb.READ)
}

// PasswordHash returns user's password hash, at the current auth revision,
// for the driver to check a password against (etcd's CheckPassword, less
// the bcrypt). Call it after a linearizable read (Request.AuthSync), as
// etcd does, so that a changed password is seen.
func (n *Node) PasswordHash(user string) (PasswordHash, error) {
	a := &n.auth
	if !a.enabled {
		return PasswordHash{}, ErrAuthNotEnabled
	}
	u, ok := a.users[user]
	if !ok {
		return PasswordHash{}, ErrAuthFailed
	}
	if u.Options.GetNoPassword() {
		return PasswordHash{}, ErrNoPasswordUser
	}
	return PasswordHash{Hash: slices.Clone(u.Password), Revision: a.revision}, nil
}

func (a *authState) admin(ai AuthInfo) error {
	if !a.enabled {
		return nil
	}
	if ai.User == "" {
		return ErrUserEmpty
	}
	u, ok := a.users[ai.User]
	if !ok {
		return ErrUserNotFound
	}
	if !hasRootRole(u) {
		return ErrPermissionDenied
	}
	return nil
}

func hasRootRole(u *authpb.User) bool {
	_, found := slices.BinarySearch(u.Roles, rootRole)
	return found
}

// permitted is etcd's isOpPermitted.
func (a *authState) permitted(ai AuthInfo, key, end []byte, t authpb.Permission_Type) error {
	if !a.enabled {
		return nil
	}
	if ai.Revision == 0 {
		return ErrUserEmpty
	}
	if ai.Revision < a.revision && !a.ignoreRevision {
		return ErrAuthOldRevision
	}
	u, ok := a.users[ai.User]
	if !ok {
		return ErrPermissionDenied
	}
	if hasRootRole(u) {
		return nil
	}
	p := a.permsOf(ai.User, u)
	spans := p.read
	if t == authpb.WRITE {
		spans = p.write
	}
	if len(end) == 0 {
		if containsKey(spans, key) {
			return nil
		}
	} else if covers(spans, key, openEnd(end)) {
		return nil
	}
	return ErrPermissionDenied
}

// openEnd turns etcd's "\x00" range end ("to the end of the keyspace")
// into nil.
func openEnd(end []byte) []byte {
	if len(end) == 1 && end[0] == 0 {
		return nil
	}
	return end
}

func (a *authState) permsOf(name string, u *authpb.User) *userPerms {
	if p, ok := a.perms[name]; ok {
		return p
	}
	p := &userPerms{}
	for _, rn := range u.Roles {
		r, ok := a.roles[rn]
		if !ok {
			continue
		}
		for _, perm := range r.KeyPermission {
			s := span{begin: perm.Key, end: openEnd(perm.RangeEnd)}
			if len(perm.RangeEnd) == 0 { // one key
				s.end = append(slices.Clone(perm.Key), 0)
			}
			switch perm.PermType {
			case authpb.READ:
				p.read = append(p.read, s)
			case authpb.WRITE:
				p.write = append(p.write, s)
			case authpb.READWRITE:
				p.read = append(p.read, s)
				p.write = append(p.write, s)
			}
		}
	}
	for _, ss := range [][]span{p.read, p.write} {
		slices.SortFunc(ss, func(x, y span) int { return bytes.Compare(x.begin, y.begin) })
	}
	if a.perms == nil {
		a.perms = map[string]*userPerms{}
	}
	a.perms[name] = p
	return p
}

// endAfter reports whether a span's end e lies beyond key k (nil: the end
// of the keyspace).
func endAfter(e, k []byte) bool { return e == nil || bytes.Compare(e, k) > 0 }

func containsKey(spans []span, k []byte) bool {
	for _, s := range spans {
		if bytes.Compare(s.begin, k) <= 0 && endAfter(s.end, k) {
			return true
		}
	}
	return false
}

// covers reports whether spans (sorted by begin) together cover every key
// of [begin, end), end nil for the end of the keyspace. An empty or
// inverted range is refused: it names no key a permission could be for.
func covers(spans []span, begin, end []byte) bool {
	if end != nil && bytes.Compare(begin, end) >= 0 {
		return false
	}
	cur := begin
	for _, s := range spans {
		if bytes.Compare(s.begin, cur) > 0 {
			return false // a gap before s
		}
		if s.end == nil {
			return true
		}
		if bytes.Compare(s.end, cur) > 0 {
			cur = s.end
		}
		if end != nil && bytes.Compare(cur, end) >= 0 {
			return true
		}
	}
	return false
}

// checkTxn is etcd's checkTxnPermission: read on every compare and every
// range, write on every put and delete, read too on a delete that returns
// the previous values, and on a put that does; nested transactions alike.
func (a *authState) checkTxn(ai AuthInfo, t *pb.TxnRequest, leaseKeys func(int64) []string) error {
	for _, c := range t.Compare {
		if err := a.permitted(ai, c.Key, c.RangeEnd, authpb.READ); err != nil {
			return err
		}
	}
	for _, ops := range [][]*pb.RequestOp{t.Success, t.Failure} {
		for _, op := range ops {
			var err error
			switch {
			case op.GetRequestRange() != nil:
				r := op.GetRequestRange()
				err = a.permitted(ai, r.Key, r.RangeEnd, authpb.READ)
			case op.GetRequestPut() != nil:
				err = a.checkPut(ai, op.GetRequestPut(), leaseKeys)
			case op.GetRequestDeleteRange() != nil:
				err = a.checkDelete(ai, op.GetRequestDeleteRange())
			case op.GetRequestTxn() != nil:
				err = a.checkTxn(ai, op.GetRequestTxn(), leaseKeys)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *authState) checkPut(ai AuthInfo, p *pb.PutRequest, leaseKeys func(int64) []string) error {
	if err := a.permitted(ai, p.Key, nil, authpb.WRITE); err != nil {
		return err
	}
	if err := a.checkLeaseKeys(ai, leaseKeys(p.Lease), authpb.WRITE); err != nil {
		// The lease holds a key this user may not write, so it could not
		// revoke the lease: attaching to it is refused too (etcd's rule).
		return err
	}
	if p.PrevKv {
		return a.permitted(ai, p.Key, nil, authpb.READ)
	}
	return nil
}

func (a *authState) checkDelete(ai AuthInfo, d *pb.DeleteRangeRequest) error {
	if err := a.permitted(ai, d.Key, d.RangeEnd, authpb.WRITE); err != nil {
		return err
	}
	if d.PrevKv {
		return a.permitted(ai, d.Key, d.RangeEnd, authpb.READ)
	}
	return nil
}

// checkLeaseKeys: ai may do t on every key of a lease (admins may always).
func (a *authState) checkLeaseKeys(ai AuthInfo, keys []string, t authpb.Permission_Type) error {
	if len(keys) == 0 || a.admin(ai) == nil {
		return nil
	}
	for _, k := range keys {
		if err := a.permitted(ai, []byte(k), nil, t); err != nil {
			return err
		}
	}
	return nil
}

// leaseKeys returns the keys attached to lease id, sorted (none for 0 or
// an unknown lease).
func (n *Node) leaseKeys(id int64) []string {
	if id == 0 {
		return nil
	}
	l, ok := n.lessor.leases[id]
	if !ok {
		return nil
	}
	return slices.Sorted(maps.Keys(l.keys))
}

// checkRead authorizes a read when it is answered: etcd's doSerialize, with
// the revision check first (a read authorized under an older auth state
// is refused, whatever it asks).
func (n *Node) checkRead(req Request) error {
	a := &n.auth
	if !a.enabled || a.checkAtSubmit {
		return nil
	}
	ai := req.auth
	switch {
	case req.Range != nil:
		return a.permitted(ai, req.Range.Key, req.Range.RangeEnd, authpb.READ)
	case req.Txn != nil:
		return a.checkTxn(ai, req.Txn, n.leaseKeys)
	case req.LeaseTimeToLive != nil && req.LeaseTimeToLive.Keys:
		return a.leaseReadable(ai, n.leaseKeys(req.LeaseTimeToLive.ID))
	case req.LeaseLeases != nil:
		if err := a.leaseReadable(ai, nil); err != nil {
			return err
		}
		for _, id := range n.lessor.sortedIDs() {
			if err := a.leaseReadable(ai, n.leaseKeys(id)); err != nil {
				return err
			}
		}
	case req.LeaseKeepAlive != nil:
		// etcd's checkLeaseRenew: write on every key of the lease.
		if ai.User == "" {
			return ErrUserEmpty
		}
		if err := a.checkLeaseKeys(ai, n.leaseKeys(req.LeaseKeepAlive.ID), authpb.WRITE); err != nil {
			return err
		}
		if ai.Revision != a.revision {
			return ErrAuthOldRevision
		}
	}
	return nil
}

// leaseReadable is etcd's checkLeaseTimeToLive for one lease's keys.
func (a *authState) leaseReadable(ai AuthInfo, keys []string) error {
	if ai.User == "" {
		return ErrUserEmpty
	}
	if err := a.checkLeaseKeys(ai, keys, authpb.READ); err != nil {
		return err
	}
	if ai.Revision != a.revision {
		return ErrAuthOldRevision
	}
	return nil
}

// submitChecks authorizes a request when it is submitted: who must be
// named at all (etcd's requireAuthInfo) and what only an admin may do
// (member changes, raising and clearing alarms). Writes and auth
// management are checked again when applied, where it counts.
func (n *Node) submitChecks(req Request) error {
	if !n.auth.enabled {
		return nil
	}
	ai := req.auth
	if n.auth.checkAtSubmit && (req.Range != nil || (req.Txn != nil && mvcc.IsTxnReadOnly(req.Txn))) {
		// The planted AuthReadsCheckedAtSubmit: authorized against this
		// member's state now, not when the read index is applied.
		n.auth.checkAtSubmit = false
		err := n.checkRead(req)
		n.auth.checkAtSubmit = true
		if err != nil {
			return err
		}
	}
	switch {
	case req.MemberAdd != nil, req.MemberRemove != nil, req.MemberUpdate != nil, req.MemberPromote != nil:
		return n.auth.admin(ai)
	case req.Alarm != nil && req.Alarm.Action != pb.AlarmRequest_GET:
		return n.auth.admin(ai)
	case (req.LeaseGrant != nil || req.LeaseRevoke != nil) && n.cfg.Planted.LeaseGrantNeedsRoot:
		return n.auth.admin(ai)
	case req.LeaseGrant != nil, req.LeaseRevoke != nil, req.LeaseTimeToLive != nil, req.MemberList != nil, req.Alarm != nil:
		return n.RequireUser(ai)
	}
	return nil
}

// authHeader fills a proposal's header with who proposed it.
func authHeader(h *pb.RequestHeader, ai AuthInfo) {
	h.Username, h.AuthRevision = ai.User, ai.Revision
}

// internalAuth is who the member's own proposals (a lease's expiry) act
// as: root, as etcd's WithRoot. Root always exists with the root role while
// authentication is enabled.
var internalAuth = AuthInfo{User: rootUser}

// needsAdmin is etcd's needAdminPermission.
func needsAdmin(r *pb.InternalRaftRequest) bool {
	return r.AuthEnable != nil || r.AuthDisable != nil || r.AuthUserAdd != nil || r.AuthUserDelete != nil ||
		r.AuthUserChangePassword != nil || r.AuthUserGrantRole != nil || r.AuthUserRevokeRole != nil ||
		r.AuthRoleAdd != nil || r.AuthRoleGrantPermission != nil || r.AuthRoleRevokePermission != nil ||
		r.AuthRoleDelete != nil || r.AuthUserList != nil || r.AuthRoleList != nil
}

// checkApply authorizes a committed request against the auth state as of
// its index, as etcd's authApplierV3 does: every member decides the same.
func (n *Node) checkApply(r *pb.InternalRaftRequest) error {
	a := &n.auth
	if !a.enabled {
		return nil
	}
	ai := AuthInfo{User: r.Header.GetUsername(), Revision: r.Header.GetAuthRevision()}
	if needsAdmin(r) {
		return a.admin(ai)
	}
	switch {
	case r.Put != nil:
		return a.checkPut(ai, r.Put, n.leaseKeys)
	case r.DeleteRange != nil:
		return a.checkDelete(ai, r.DeleteRange)
	case r.Txn != nil:
		return a.checkTxn(ai, r.Txn, n.leaseKeys)
	case r.LeaseRevoke != nil:
		return a.checkLeaseKeys(ai, n.leaseKeys(r.LeaseRevoke.ID), authpb.WRITE)
	case r.AuthUserGet != nil:
		if err := a.admin(ai); err != nil && r.AuthUserGet.Name != ai.User {
			return err
		}
	case r.AuthRoleGet != nil:
		if err := a.admin(ai); err != nil {
			if u, ok := a.users[ai.User]; !ok || !slices.Contains(u.Roles, r.AuthRoleGet.Role) {
				return err
			}
		}
	}
	return nil
}

// isAuthRequest reports whether r is one of etcd's auth requests.
func isAuthRequest(r *pb.InternalRaftRequest) bool {
	return needsAdmin(r) || r.AuthStatus != nil || r.Authenticate != nil || r.AuthUserGet != nil || r.AuthRoleGet != nil
}

// submitAuth takes an auth request: all go through raft, as in etcd, so
// that every member applies them at the same index.
func (n *Node) submitAuth(req Request) {
	r := req.Auth
	if !isAuthRequest(r) || r.Put != nil || r.Range != nil || r.Txn != nil || r.DeleteRange != nil {
		n.fail(req, ErrEmptyRequest)
		return
	}
	ops := 0
	r.ProtoReflect().Range(func(protoreflect.FieldDescriptor, protoreflect.Value) bool { ops++; return true })
	if ops != 1 {
		n.fail(req, fmt.Errorf("node: an auth request sets exactly one operation, not %d", ops))
		return
	}
	if a := r.AuthUserAdd; a != nil && a.Password != "" {
		n.fail(req, errors.New("node: a user's password must come hashed (HashedPassword), never in the raft log in clear"))
		return
	}
	if c := r.AuthUserChangePassword; c != nil && c.Password != "" {
		n.fail(req, errors.New("node: a user's password must come hashed (HashedPassword), never in the raft log in clear"))
		return
	}
	if r.Authenticate != nil && r.Authenticate.Password != "" {
		n.fail(req, errors.New("node: authenticate carries no password: the driver checked it"))
		return
	}
	n.propose(req, proto.CloneOf(r))
}

// applyAuth applies a committed auth request, as etcd's auth store does.
// checked is the revision a password was checked at, for Authenticate.
func (n *Node) applyAuth(b backend.Batch, r *pb.InternalRaftRequest, index uint64) (proto.Message, error) {
	a := &n.auth
	switch {
	case r.AuthEnable != nil:
		if a.enabled {
			return &pb.AuthEnableResponse{}, nil
		}
		u, ok := a.users[rootUser]
		if !ok {
			return nil, ErrRootUserNotExist
		}
		if !hasRootRole(u) {
			return nil, ErrRootRoleNotExist
		}
		a.enabled = true
		b.Put(bucketAuth, keyAuthEnabled, []byte{1})
		return &pb.AuthEnableResponse{}, nil
	case r.AuthDisable != nil:
		if !a.enabled {
			return &pb.AuthDisableResponse{}, nil
		}
		a.enabled = false
		b.Put(bucketAuth, keyAuthEnabled, []byte{0})
		a.bump(b)
		clear(a.tokens)
		return &pb.AuthDisableResponse{}, nil
	case r.AuthStatus != nil:
		return &pb.AuthStatusResponse{Enabled: a.enabled, AuthRevision: a.revision}, nil
	case r.Authenticate != nil:
		return a.authenticate(r, index, n.ticks+n.cfg.AuthTokenTTLTicks)
	case r.AuthUserAdd != nil:
		return a.userAdd(b, r.AuthUserAdd)
	case r.AuthUserDelete != nil:
		name := r.AuthUserDelete.Name
		if a.enabled && name == rootUser {
			return nil, ErrInvalidAuthMgmt
		}
		if _, ok := a.users[name]; !ok {
			return nil, ErrUserNotFound
		}
		delete(a.users, name)
		b.Delete(bucketAuthUsers, []byte(name))
		a.bump(b)
		a.dropTokens(name)
		return &pb.AuthUserDeleteResponse{}, nil
	case r.AuthUserChangePassword != nil:
		c := r.AuthUserChangePassword
		u, ok := a.users[c.Name]
		if !ok {
			return nil, ErrUserNotFound
		}
		nu := proto.CloneOf(u)
		if !u.Options.GetNoPassword() {
			hash, err := base64.StdEncoding.DecodeString(c.HashedPassword)
			if err != nil {
				return nil, ErrNoPasswordUser
			}
			nu.Password = hash
		}
		a.putUser(b, nu)
		a.bump(b)
		a.dropTokens(c.Name)
		return &pb.AuthUserChangePasswordResponse{}, nil
	case r.AuthUserGrantRole != nil:
		g := r.AuthUserGrantRole
		u, ok := a.users[g.User]
		if !ok {
			return nil, ErrUserNotFound
		}
		if _, ok := a.roles[g.Role]; !ok && g.Role != rootRole {
			return nil, ErrRoleNotFound
		}
		i, found := slices.BinarySearch(u.Roles, g.Role)
		if found {
			return &pb.AuthUserGrantRoleResponse{}, nil // etcd: ignored, no new revision
		}
		nu := proto.CloneOf(u)
		nu.Roles = slices.Insert(nu.Roles, i, g.Role)
		a.putUser(b, nu)
		a.bump(b)
		return &pb.AuthUserGrantRoleResponse{}, nil
	case r.AuthUserGet != nil:
		u, ok := a.users[r.AuthUserGet.Name]
		if !ok {
			return nil, ErrUserNotFound
		}
		return &pb.AuthUserGetResponse{Roles: slices.Clone(u.Roles)}, nil
	case r.AuthUserList != nil:
		return &pb.AuthUserListResponse{Users: slices.Sorted(maps.Keys(a.users))}, nil
	case r.AuthUserRevokeRole != nil:
		rv := r.AuthUserRevokeRole
		if a.enabled && rv.Name == rootUser && rv.Role == rootRole {
			return nil, ErrInvalidAuthMgmt
		}
		u, ok := a.users[rv.Name]
		if !ok {
			return nil, ErrUserNotFound
		}
		i, found := slices.BinarySearch(u.Roles, rv.Role)
		if !found {
			return nil, ErrRoleNotGranted
		}
		nu := proto.CloneOf(u)
		nu.Roles = slices.Delete(nu.Roles, i, i+1)
		a.putUser(b, nu)
		a.bump(b)
		return &pb.AuthUserRevokeRoleResponse{}, nil
	case r.AuthRoleAdd != nil:
		name := r.AuthRoleAdd.Name
		if name == "" {
			return nil, ErrRoleEmpty
		}
		if _, ok := a.roles[name]; ok {
			return nil, ErrRoleAlreadyExist
		}
		a.putRole(b, &authpb.Role{Name: []byte(name)})
		a.bump(b)
		return &pb.AuthRoleAddResponse{}, nil
	case r.AuthRoleGet != nil:
		ro, ok := a.roles[r.AuthRoleGet.Role]
		if !ok {
			return nil, ErrRoleNotFound
		}
		if r.AuthRoleGet.Role == rootRole {
			return &pb.AuthRoleGetResponse{Perm: []*authpb.Permission{{PermType: authpb.READWRITE, Key: []byte{}, RangeEnd: []byte{0}}}}, nil
		}
		resp := &pb.AuthRoleGetResponse{}
		for _, p := range ro.KeyPermission {
			resp.Perm = append(resp.Perm, proto.CloneOf(p))
		}
		return resp, nil
	case r.AuthRoleList != nil:
		return &pb.AuthRoleListResponse{Roles: slices.Sorted(maps.Keys(a.roles))}, nil
	case r.AuthRoleGrantPermission != nil:
		g := r.AuthRoleGrantPermission
		if g.Perm == nil {
			return nil, ErrPermissionNotGiven
		}
		ro, ok := a.roles[g.Name]
		if !ok {
			return nil, ErrRoleNotFound
		}
		nr := proto.CloneOf(ro)
		i := slices.IndexFunc(nr.KeyPermission, func(p *authpb.Permission) bool {
			return bytes.Equal(p.Key, g.Perm.Key) && bytes.Equal(p.RangeEnd, g.Perm.RangeEnd)
		})
		if i >= 0 {
			nr.KeyPermission[i].PermType = g.Perm.PermType
		} else {
			nr.KeyPermission = append(nr.KeyPermission, &authpb.Permission{Key: g.Perm.Key, RangeEnd: g.Perm.RangeEnd, PermType: g.Perm.PermType})
			slices.SortStableFunc(nr.KeyPermission, func(x, y *authpb.Permission) int { return bytes.Compare(x.Key, y.Key) })
		}
		a.putRole(b, nr)
		a.bump(b)
		return &pb.AuthRoleGrantPermissionResponse{}, nil
	case r.AuthRoleRevokePermission != nil:
		rv := r.AuthRoleRevokePermission
		ro, ok := a.roles[rv.Role]
		if !ok {
			return nil, ErrRoleNotFound
		}
		nr := &authpb.Role{Name: ro.Name}
		for _, p := range ro.KeyPermission {
			if !bytes.Equal(p.Key, rv.Key) || !bytes.Equal(p.RangeEnd, rv.RangeEnd) {
				nr.KeyPermission = append(nr.KeyPermission, p)
			}
		}
		if len(nr.KeyPermission) == len(ro.KeyPermission) {
			return nil, ErrPermissionNotGranted
		}
		a.putRole(b, nr)
		a.bump(b)
		return &pb.AuthRoleRevokePermissionResponse{}, nil
	case r.AuthRoleDelete != nil:
		name := r.AuthRoleDelete.Role
		if a.enabled && name == rootRole {
			return nil, ErrInvalidAuthMgmt
		}
		if _, ok := a.roles[name]; !ok {
			return nil, ErrRoleNotFound
		}
		delete(a.roles, name)
		b.Delete(bucketAuthRoles, []byte(name))
		for _, un := range slices.Sorted(maps.Keys(a.users)) {
			u := a.users[un]
			if i, found := slices.BinarySearch(u.Roles, name); found {
				nu := proto.CloneOf(u)
				nu.Roles = slices.Delete(nu.Roles, i, i+1)
				a.putUser(b, nu)
			}
		}
		a.bump(b)
		return &pb.AuthRoleDeleteResponse{}, nil
	}
	panic("node: applyAuth given a request that is not an auth request")
}

func (a *authState) userAdd(b backend.Batch, r *pb.AuthUserAddRequest) (proto.Message, error) {
	if r.Name == "" {
		return nil, ErrUserEmpty
	}
	if _, ok := a.users[r.Name]; ok {
		return nil, ErrUserAlreadyExist
	}
	opts := r.Options
	if opts == nil {
		opts = &authpb.UserAddOptions{}
	}
	u := &authpb.User{Name: []byte(r.Name), Options: proto.CloneOf(opts)}
	if !opts.NoPassword {
		hash, err := base64.StdEncoding.DecodeString(r.HashedPassword)
		if err != nil {
			return nil, ErrNoPasswordUser
		}
		u.Password = hash
	}
	a.putUser(b, u)
	a.bump(b)
	return &pb.AuthUserAddResponse{}, nil
}

// authenticate applies etcd's InternalAuthenticateRequest. The driver
// checked the password at the auth revision in the header; if the auth
// state has changed since (the password, the user), it must check again.
func (a *authState) authenticate(r *pb.InternalRaftRequest, index uint64, expires int64) (proto.Message, error) {
	if !a.enabled {
		return nil, ErrAuthNotEnabled
	}
	name := r.Authenticate.Name
	u, ok := a.users[name]
	if !ok || u.Options.GetNoPassword() {
		return nil, ErrAuthFailed
	}
	if r.Header.GetAuthRevision() != a.revision {
		return nil, ErrAuthOldRevision
	}
	resp := &pb.AuthenticateResponse{}
	if st := r.Authenticate.SimpleToken; st != "" {
		resp.Token = st + "." + strconv.FormatUint(index, 10)
		a.tokens[resp.Token] = &simpleToken{user: name, expires: expires}
	}
	return resp, nil
}

func (a *authState) bump(b backend.Batch) {
	a.revision++
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], a.revision)
	b.Put(bucketAuth, keyAuthRevision, v[:])
	a.perms = nil
}

func (a *authState) putUser(b backend.Batch, u *authpb.User) {
	a.users[string(u.Name)] = u
	b.Put(bucketAuthUsers, u.Name, mustMarshal(u))
}

func (a *authState) putRole(b backend.Batch, r *authpb.Role) {
	a.roles[string(r.Name)] = r
	b.Put(bucketAuthRoles, r.Name, mustMarshal(r))
}

func mustMarshal(m proto.Message) []byte {
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("node: encode %T: %v", m, err))
	}
	return v
}

// dropTokens forgets user's simple tokens (its password changed, or it is
// gone), as etcd's invalidateUser.
func (a *authState) dropTokens(user string) {
	for tok, t := range a.tokens {
		if t.user == user {
			delete(a.tokens, tok)
		}
	}
}

// expireTokens forgets the simple tokens unused for their TTL; Tick calls
// it now and then, so that the table does not grow with abandoned tokens
// (ResolveAuth refuses an expired one even before).
func (n *Node) expireTokens() {
	if len(n.auth.tokens) == 0 || n.ticks%int64(n.cfg.ElectionTicks) != 0 {
		return
	}
	for tok, t := range n.auth.tokens {
		if t.expires <= n.ticks {
			delete(n.auth.tokens, tok)
		}
	}
}

// setAuthHeader sets the header of one of etcd's auth responses.
func setAuthHeader(m proto.Message, h *pb.ResponseHeader) {
	r := m.ProtoReflect()
	if fd := r.Descriptor().Fields().ByName("header"); fd != nil {
		r.Set(fd, protoreflect.ValueOfMessage(h.ProtoReflect()))
	}
}
