package node_test

import (
	"encoding/base64"
	"errors"
	"testing"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/internal/plant"
	"github.com/plumbdb/plumb/node"
)

// The node stores whatever hash the driver gives it; these tests need no
// bcrypt.
func hashed(pw string) string { return base64.StdEncoding.EncodeToString([]byte("hash:" + pw)) }

func authReq(r *pb.InternalRaftRequest, creds node.Credentials) node.Request {
	return node.Request{Auth: r, Creds: creds}
}

var rootCreds = node.Credentials{User: "root"} // a verified identity: a certificate's CN

// mustAuth runs an auth request and fails the test on an error.
func (c *cluster) mustAuth(id uint64, r *pb.InternalRaftRequest, creds node.Credentials) node.Reply {
	c.t.Helper()
	rep := c.do(id, authReq(r, creds))
	if rep.Err != nil {
		c.t.Fatalf("%v: %v", r, rep.Err)
	}
	return rep
}

// enableAuth makes root (with the root role) and alice, with role reader
// that may read the prefix /a/, and enables authentication.
func (c *cluster) enableAuth(id uint64) {
	c.t.Helper()
	for _, r := range []*pb.InternalRaftRequest{
		{AuthUserAdd: &pb.AuthUserAddRequest{Name: "root", HashedPassword: hashed("rootpw")}},
		{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "root", Role: "root"}},
		{AuthUserAdd: &pb.AuthUserAddRequest{Name: "alice", HashedPassword: hashed("alicepw")}},
		{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: "reader"}},
		{AuthRoleGrantPermission: &pb.AuthRoleGrantPermissionRequest{Name: "reader",
			Perm: &authpb.Permission{PermType: authpb.READ, Key: []byte("/a/"), RangeEnd: []byte("/a0")}}},
		{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "alice", Role: "reader"}},
		{AuthEnable: &pb.AuthEnableRequest{}},
	} {
		c.mustAuth(id, r, node.Credentials{})
	}
}

// login authenticates user as a driver does: the hash after a
// linearizable read, then Authenticate with a simple token prefix.
func (c *cluster) login(id uint64, user, prefix string) string {
	c.t.Helper()
	h := c.do(id, node.Request{PasswordOf: user})
	if h.Err != nil {
		c.t.Fatalf("password of %s: %v", user, h.Err)
	}
	rep := c.do(id, node.Request{Auth: &pb.InternalRaftRequest{Authenticate: &pb.InternalAuthenticateRequest{Name: user, SimpleToken: prefix}},
		AuthRevision: h.Password.Revision})
	if rep.Err != nil {
		c.t.Fatalf("authenticate %s: %v", user, rep.Err)
	}
	return rep.Auth.(*pb.AuthenticateResponse).Token
}

func TestAuthEnableNeedsRoot(t *testing.T) {
	c := newCluster(t, 1)
	lead := c.leader()
	rep := c.do(lead, authReq(&pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}}, node.Credentials{}))
	if !errors.Is(rep.Err, node.ErrRootUserNotExist) {
		t.Fatalf("enable without root: %v, want %v", rep.Err, node.ErrRootUserNotExist)
	}
	c.mustAuth(lead, &pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: "root", HashedPassword: hashed("x")}}, node.Credentials{})
	rep = c.do(lead, authReq(&pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}}, node.Credentials{}))
	if !errors.Is(rep.Err, node.ErrRootRoleNotExist) {
		t.Fatalf("enable with a root lacking the root role: %v, want %v", rep.Err, node.ErrRootRoleNotExist)
	}
	rep = c.do(lead, authReq(&pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: "bob", Password: "clear"}}, node.Credentials{}))
	if rep.Err == nil {
		t.Fatal("a clear-text password was accepted into the raft log")
	}
}

// TestAuthPermissions: etcd's rules, on every member: no user is refused,
// a user reads and writes only what its roles allow, root everything,
// admin requests only root.
func TestAuthPermissions(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader()
	if r := c.do(lead, put("/a/1", "v")); r.Err != nil {
		t.Fatal(r.Err)
	}
	c.enableAuth(lead)
	f := c.follower()
	alice := node.Credentials{User: "alice"}
	cases := []struct {
		name string
		id   uint64
		req  node.Request
		want error
	}{
		{"put without a user", lead, put("/a/1", "x"), node.ErrUserEmpty},
		{"get without a user", f, get("/a/1"), node.ErrUserEmpty},
		{"alice reads her prefix", f, node.Request{Range: &pb.RangeRequest{Key: []byte("/a/"), RangeEnd: []byte("/a0")}, Creds: alice}, nil},
		{"alice reads one key in it", f, node.Request{Range: &pb.RangeRequest{Key: []byte("/a/1")}, Creds: alice}, nil},
		{"alice reads past her prefix", f, node.Request{Range: &pb.RangeRequest{Key: []byte("/a/"), RangeEnd: []byte("/b")}, Creds: alice}, node.ErrPermissionDenied},
		{"alice reads everything", f, node.Request{Range: &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}, Creds: alice}, node.ErrPermissionDenied},
		{"alice writes", f, node.Request{Put: &pb.PutRequest{Key: []byte("/a/1"), Value: []byte("x")}, Creds: alice}, node.ErrPermissionDenied},
		{"alice's txn compares in her prefix and puts", lead, node.Request{Txn: &pb.TxnRequest{
			Compare: []*pb.Compare{{Key: []byte("/a/1"), Target: pb.Compare_VERSION, Result: pb.Compare_GREATER}},
			Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("/a/2")}}}}}, Creds: alice}, node.ErrPermissionDenied},
		{"alice lists users", lead, authReq(&pb.InternalRaftRequest{AuthUserList: &pb.AuthUserListRequest{}}, alice), node.ErrPermissionDenied},
		{"alice gets herself", lead, authReq(&pb.InternalRaftRequest{AuthUserGet: &pb.AuthUserGetRequest{Name: "alice"}}, alice), nil},
		{"alice gets root", lead, authReq(&pb.InternalRaftRequest{AuthUserGet: &pb.AuthUserGetRequest{Name: "root"}}, alice), node.ErrPermissionDenied},
		{"alice gets her role", lead, authReq(&pb.InternalRaftRequest{AuthRoleGet: &pb.AuthRoleGetRequest{Role: "reader"}}, alice), nil},
		{"alice adds a member", lead, node.Request{MemberAdd: &pb.MemberAddRequest{PeerURLs: []string{"http://127.0.0.9:2380"}}, MemberAddUnix: 1, Creds: alice}, node.ErrPermissionDenied},
		{"alice grants a lease", lead, node.Request{LeaseGrant: &pb.LeaseGrantRequest{TTL: 10}, Creds: alice}, nil},
		{"nobody grants a lease", lead, node.Request{LeaseGrant: &pb.LeaseGrantRequest{TTL: 10}}, node.ErrUserEmpty},
		{"root writes anywhere", f, node.Request{Put: &pb.PutRequest{Key: []byte("/z"), Value: []byte("x")}, Creds: rootCreds}, nil},
		{"root deletes root", lead, authReq(&pb.InternalRaftRequest{AuthUserDelete: &pb.AuthUserDeleteRequest{Name: "root"}}, rootCreds), node.ErrInvalidAuthMgmt},
		{"root revokes root's root role", lead, authReq(&pb.InternalRaftRequest{AuthUserRevokeRole: &pb.AuthUserRevokeRoleRequest{Name: "root", Role: "root"}}, rootCreds), node.ErrInvalidAuthMgmt},
		{"an unknown token", f, node.Request{Range: &pb.RangeRequest{Key: []byte("/a/1")}, Creds: node.Credentials{Token: "nope.1"}}, node.ErrInvalidAuthToken},
	}
	for _, tc := range cases {
		rep := c.do(tc.id, tc.req)
		if !errors.Is(rep.Err, tc.want) || (tc.want == nil && rep.Err != nil) {
			t.Errorf("%s: %v, want %v", tc.name, rep.Err, tc.want)
		}
	}
	list := c.mustAuth(lead, &pb.InternalRaftRequest{AuthUserList: &pb.AuthUserListRequest{}}, rootCreds).Auth.(*pb.AuthUserListResponse)
	if len(list.Users) != 2 || list.Users[0] != "alice" || list.Users[1] != "root" || list.Header.GetRevision() == 0 {
		t.Errorf("user list %v", list)
	}
}

// TestAuthTokens: a simple token made on one member works on every member
// (each learns it by applying the Authenticate entry), expires unused after
// its TTL, and dies with auth disable and with its user's password change.
func TestAuthTokens(t *testing.T) {
	c := newClusterTuned(t, 3, func(cfg *node.Config) { cfg.AuthTokenTTLTicks = 30 })
	lead := c.leader()
	c.enableAuth(lead)
	f := c.follower()
	tok := c.login(f, "alice", "abcdefghijklmnop")
	readA := func(id uint64, tok string) error {
		return c.do(id, node.Request{Range: &pb.RangeRequest{Key: []byte("/a/1")}, Creds: node.Credentials{Token: tok}}).Err
	}
	for _, id := range c.ids {
		if err := readA(id, tok); err != nil {
			t.Fatalf("token on member %x: %v", id, err)
		}
	}
	// Wrong passwords are the driver's to see; a user without a password
	// or unknown gets no hash.
	if h := c.do(f, node.Request{PasswordOf: "mallory"}); !errors.Is(h.Err, node.ErrAuthFailed) {
		t.Fatalf("hash of an unknown user: %v", h.Err)
	}
	c.tick(31)
	if err := readA(f, tok); !errors.Is(err, node.ErrInvalidAuthToken) {
		t.Fatalf("token unused past its TTL: %v, want %v", err, node.ErrInvalidAuthToken)
	}
	tok = c.login(f, "alice", "qrstuvwxyzabcdef")
	c.mustAuth(lead, &pb.InternalRaftRequest{AuthUserChangePassword: &pb.AuthUserChangePasswordRequest{Name: "alice", HashedPassword: hashed("new")}}, rootCreds)
	if err := readA(f, tok); !errors.Is(err, node.ErrInvalidAuthToken) {
		t.Fatalf("token after a password change: %v", err)
	}
	// A password checked before the change cannot log in after it.
	h := c.do(f, node.Request{PasswordOf: "alice"})
	c.mustAuth(lead, &pb.InternalRaftRequest{AuthUserChangePassword: &pb.AuthUserChangePasswordRequest{Name: "alice", HashedPassword: hashed("newer")}}, rootCreds)
	rep := c.do(f, node.Request{Auth: &pb.InternalRaftRequest{Authenticate: &pb.InternalAuthenticateRequest{Name: "alice", SimpleToken: "p"}}, AuthRevision: h.Password.Revision})
	if !errors.Is(rep.Err, node.ErrAuthOldRevision) {
		t.Fatalf("authenticate with a password checked before a change: %v", rep.Err)
	}
	rootTok := c.login(lead, "root", "rootrootrootroot")
	c.mustAuth(lead, &pb.InternalRaftRequest{AuthDisable: &pb.AuthDisableRequest{}}, node.Credentials{Token: rootTok})
	c.mustAuth(lead, &pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}}, node.Credentials{})
	if err := c.do(lead, authReq(&pb.InternalRaftRequest{AuthUserList: &pb.AuthUserListRequest{}}, node.Credentials{Token: rootTok})).Err; !errors.Is(err, node.ErrInvalidAuthToken) {
		t.Fatalf("root's token after auth disable and enable: %v", err)
	}
}

// TestAuthStaleRevisionRefused: a read and a write authorized before a
// revocation, and served after it, are refused with etcd's "revision of
// auth store is old"; the planted AuthIgnoresRevision serves them.
func TestAuthStaleRevisionRefused(t *testing.T) {
	for _, planted := range []bool{false, true} {
		c := newClusterTuned(t, 3, func(cfg *node.Config) { cfg.Planted = plant.Bugs{AuthIgnoresRevision: planted} })
		lead := c.leader()
		c.enableAuth(lead)
		c.mustAuth(lead, &pb.InternalRaftRequest{AuthRoleGrantPermission: &pb.AuthRoleGrantPermissionRequest{Name: "reader",
			Perm: &authpb.Permission{PermType: authpb.READWRITE, Key: []byte("/a/"), RangeEnd: []byte("/a0")}}}, rootCreds)
		before := c.nodes[lead].AuthRevision()
		// Another grant: alice keeps her permission on /a/, but the
		// revision moves on.
		c.mustAuth(lead, &pb.InternalRaftRequest{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: "other"}}, rootCreds)
		stale := node.Credentials{User: "alice", Revision: before}
		w := c.do(c.follower(), node.Request{Put: &pb.PutRequest{Key: []byte("/a/1"), Value: []byte("stale")}, Creds: stale})
		r := c.do(c.follower(), node.Request{Range: &pb.RangeRequest{Key: []byte("/a/1")}, Creds: stale})
		if planted {
			if w.Err != nil || r.Err != nil {
				t.Fatalf("planted AuthIgnoresRevision: write %v, read %v; the bug should have served both", w.Err, r.Err)
			}
			continue
		}
		if !errors.Is(w.Err, node.ErrAuthOldRevision) || !errors.Is(r.Err, node.ErrAuthOldRevision) {
			t.Fatalf("write %v, read %v under revision %d after %d: want %v", w.Err, r.Err, before, c.nodes[lead].AuthRevision(), node.ErrAuthOldRevision)
		}
		fresh := node.Credentials{User: "alice"}
		if w := c.do(c.follower(), node.Request{Put: &pb.PutRequest{Key: []byte("/a/1"), Value: []byte("ok")}, Creds: fresh}); w.Err != nil {
			t.Fatalf("write under the current revision: %v", w.Err)
		}
	}
}

// TestAuthSurvivesRestartAndSnapshot: the auth state is the backend's,
// so a restarted member and one caught up by a snapshot enforce it.
func TestAuthSurvivesRestartAndSnapshot(t *testing.T) {
	c := newClusterTuned(t, 3, func(cfg *node.Config) { cfg.SnapshotCount, cfg.SnapshotCatchUpEntries = 10, 2 })
	lead := c.leader()
	f := c.follower()
	c.cut[f] = true
	c.enableAuth(lead)
	for i := range 20 {
		c.do(lead, node.Request{Put: &pb.PutRequest{Key: []byte("/z"), Value: []byte{byte(i)}}, Creds: rootCreds})
	}
	delete(c.cut, f)
	c.tick(10)
	if c.nodes[f].Status().SnapshotsInstalled == 0 {
		t.Fatal("the follower caught up without a snapshot; the test needs one")
	}
	check := func(id uint64, when string) {
		t.Helper()
		n := c.nodes[id]
		if !n.AuthEnabled() || n.AuthRevision() != c.nodes[lead].AuthRevision() {
			t.Fatalf("%s: enabled %v at revision %d, leader at %d", when, n.AuthEnabled(), n.AuthRevision(), c.nodes[lead].AuthRevision())
		}
		if r := c.do(id, node.Request{Range: &pb.RangeRequest{Key: []byte("/z"), Serializable: true}, Creds: node.Credentials{User: "alice"}}); !errors.Is(r.Err, node.ErrPermissionDenied) {
			t.Fatalf("%s: alice reads /z: %v", when, r.Err)
		}
		if h, err := n.PasswordHash("alice"); err != nil || string(h.Hash) != "hash:alicepw" {
			t.Fatalf("%s: alice's hash %q, %v", when, h.Hash, err)
		}
	}
	check(f, "after the snapshot")
	delete(c.nodes, f)
	c.start(f)
	c.tick(3)
	check(f, "after a restart")
}
