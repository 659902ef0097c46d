package e2e_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/metadata"
)

// TestAuthEtcdctl: the seeds' commands with real etcdctl 3.7.3, with
// --cacert/--cert/--key and --user, against a 3-member plumb cluster
// with peer and client TLS: users, roles and prefix permissions, auth
// enable, what each user may and may not do on every member, the common
// name of a client certificate as the user, and auth disable.
func TestAuthEtcdctl(t *testing.T) {
	bin := etcdctl(t)
	c := &cluster{t: t, token: "e2e-auth"}
	c.base = t.TempDir()
	ca := newTestCA(t, c.base, "ca")
	var ips []string
	for i := range 3 {
		m := c.newMember(fmt.Sprintf("n%d", i+1), fmt.Sprintf("127.0.0.%d", i+1))
		c.members = append(c.members, m)
		ips = append(ips, m.ip)
	}
	serverCert, serverKey := ca.issue("member", ips, time.Now().Add(24*time.Hour))
	clientCert, clientKey := ca.issue("client", nil, time.Now().Add(24*time.Hour))
	rootCert, rootKey := ca.issue("root", nil, time.Now().Add(24*time.Hour))
	var eps []string
	for _, m := range c.members {
		m.peerHTTPS, m.clientHTTPS = true, true
		eps = append(eps, m.clientURL())
	}
	for _, m := range c.members {
		c.run(m, append(c.args(m), "--cert-file", serverCert, "--key-file", serverKey, "--trusted-ca-file", ca.file, "--client-cert-auth",
			"--peer-cert-file", serverCert, "--peer-key-file", serverKey, "--peer-trusted-ca-file", ca.file, "--peer-client-cert-auth"), nil)
	}
	t.Cleanup(c.stopAll)
	tlsFlags := []string{"--cacert", ca.file, "--cert", clientCert, "--key", clientKey}
	deadline := time.Now().Add(startTimeout)
	for {
		out, errOut, err := ctlTLS(bin, eps, tlsFlags, "endpoint", "health")
		if err == nil && strings.Count(out, "is healthy") == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint health did not pass within %v: %v\n%s%s", startTimeout, err, out, errOut)
		}
		time.Sleep(200 * time.Millisecond)
	}
	run := func(eps []string, args ...string) (string, error) {
		out, errOut, err := ctlTLS(bin, eps, tlsFlags, args...)
		return out + errOut, err
	}
	ok := func(args ...string) string { // stdout
		t.Helper()
		out, errOut, err := ctlTLS(bin, eps, tlsFlags, args...)
		if err != nil {
			t.Fatalf("etcdctl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}
	refused := func(want string, eps []string, args ...string) {
		t.Helper()
		out, err := run(eps, args...)
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("etcdctl %s: %v %q, want refused with %q", strings.Join(args, " "), err, out, want)
		}
	}
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"user", "add", "root:rootpw"}, "User root created"},
		{[]string{"user", "grant-role", "root", "root"}, "Role root is granted to user root"},
		{[]string{"role", "add", "reader"}, "Role reader created"},
		{[]string{"role", "grant-permission", "reader", "read", "/app/", "--prefix=true"}, "Role reader updated"},
		{[]string{"user", "add", "alice:alicepw"}, "User alice created"},
		{[]string{"user", "grant-role", "alice", "reader"}, "Role reader is granted to user alice"},
		{[]string{"put", "/app/config", "v1"}, "OK"},
		{[]string{"auth", "enable"}, "Authentication Enabled"},
	} {
		if out := ok(step.args...); !strings.Contains(out, step.want) {
			t.Fatalf("etcdctl %s printed %q, want %q", strings.Join(step.args, " "), out, step.want)
		}
	}
	root, alice := "--user=root:rootpw", "--user=alice:alicepw"
	// The certificate's common name ("client") is the user when no
	// password is given: no such user may do nothing.
	refused("permission denied", eps, "get", "/app/config")
	if out := ok(root, "put", "/app/config", "v1.5"); !strings.Contains(out, "OK") {
		t.Errorf("root's put printed %q", out)
	}
	// The seeds' other commands, as root: del, get --prefix, watch,
	// endpoint health.
	ok(root, "put", "/app/gone", "x")
	if out := ok(root, "del", "/app/gone"); strings.TrimSpace(out) != "1" {
		t.Errorf("del printed %q", out)
	}
	if out := ok(root, "endpoint", "health"); strings.Count(out, "is healthy") != 3 {
		t.Errorf("endpoint health with authentication on printed %q", out)
	}
	watch := exec.Command(bin, append([]string{"--endpoints", eps[1]}, append(tlsFlags, alice, "watch", "/app/", "--prefix")...)...)
	var watched strings.Builder
	watch.Stdout = &watched
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	ok(root, "put", "/app/config", "v2")
	time.Sleep(time.Second)
	_ = watch.Process.Kill()
	_ = watch.Wait()
	if !strings.Contains(watched.String(), "PUT\n/app/config\nv2\n") {
		t.Errorf("alice's etcdctl watch printed %q", watched.String())
	}
	for _, ep := range eps { // alice reads on every member
		if out, err := run([]string{ep}, alice, "get", "/app/", "--prefix"); err != nil || !strings.Contains(out, "/app/config\nv2") {
			t.Errorf("alice's get on %s: %v %q", ep, err, out)
		}
	}
	refused("permission denied", eps, alice, "put", "/app/config", "v3")
	refused("permission denied", eps, alice, "get", "/other")
	refused("permission denied", eps, alice, "user", "list")
	refused("authentication failed, invalid user ID or password", eps, "--user=alice:wrong", "get", "/app/config")
	refused("authentication failed, invalid user ID or password", eps, "--user=mallory:x", "get", "/app/config")
	if out := ok(root, "user", "list"); out != "alice\nroot\n" {
		t.Errorf("user list printed %q", out)
	}
	if out := ok(root, "role", "get", "reader"); !strings.Contains(out, "[/app/, /app0) (prefix /app/)") {
		t.Errorf("role get reader printed %q", out)
	}
	if out := ok(root, "auth", "status"); !strings.Contains(out, "Authentication Status: true") {
		t.Errorf("auth status printed %q", out)
	}
	// A certificate whose common name is root is root, without a password.
	rootTLS := []string{"--cacert", ca.file, "--cert", rootCert, "--key", rootKey}
	if out, errOut, err := ctlTLS(bin, eps, rootTLS, "user", "get", "alice"); err != nil || !strings.Contains(out, "Roles: reader") {
		t.Errorf("user get alice as the root certificate: %v %q %s", err, out, errOut)
	}
	// The root certificate on every member, so on the followers too: a
	// lock (the Lock service calls the member's own client for the
	// caller), a lease kept alive and asked for its TTL (forwarded to
	// the leader), and a learner added and removed (answered by the
	// leader alone): each acts as the certificate's user wherever it goes.
	asRoot := func(ep string, args ...string) string {
		t.Helper()
		out, errOut, err := ctlTLS(bin, []string{ep}, rootTLS, args...)
		if err != nil {
			t.Fatalf("etcdctl %s on %s as the root certificate: %v\n%s%s", strings.Join(args, " "), ep, err, out, errOut)
		}
		return out
	}
	learnerPeer := fmt.Sprintf("https://127.0.0.4:%d", freePort(t, "127.0.0.4"))
	// The client certificate names no user: a member change is refused on
	// every member alike, never made as the forwarding member's own
	// certificate (whose common name is "member").
	var refusals []string
	for _, ep := range eps {
		out, err := run([]string{ep}, "member", "add", "cert-learner", "--learner", "--peer-urls", learnerPeer)
		if err == nil {
			t.Fatalf("member add on %s as the client certificate: accepted: %s", ep, out)
		}
		refusals = append(refusals, out[strings.LastIndex(out, "Error:"):])
	}
	if refusals[0] != refusals[1] || refusals[0] != refusals[2] || !strings.Contains(refusals[0], "user name not found") {
		t.Errorf("member add as the client certificate was refused with %q, want etcd's user name not found on every member", refusals)
	}
	for _, ep := range eps {
		// A peer URL of its own each time: a member's ID is its peer URLs
		// salted with the second it was added, and a removed ID never
		// returns (etcd's "member not found" within the same second).
		learnerPeer := fmt.Sprintf("https://127.0.0.4:%d", freePort(t, "127.0.0.4"))
		if out := asRoot(ep, "lock", "cert-lock", "--", "echo", "held"); !strings.Contains(out, "held") {
			t.Errorf("lock on %s as the root certificate printed %q", ep, out)
		}
		grant := asRoot(ep, "lease", "grant", "60")
		id := strings.Fields(grant)[1]
		if out := asRoot(ep, "lease", "keep-alive", "--once", id); !strings.Contains(out, "keepalived with TTL(") {
			t.Errorf("lease keep-alive on %s printed %q", ep, out)
		}
		if out := asRoot(ep, "lease", "timetolive", id); !strings.Contains(out, "granted with TTL(60s)") {
			t.Errorf("lease timetolive on %s printed %q", ep, out)
		}
		added := asRoot(ep, "member", "add", "cert-learner", "--learner", "--peer-urls", learnerPeer)
		f := strings.Fields(added)
		if len(f) < 2 || f[0] != "Member" {
			t.Fatalf("member add on %s printed %q", ep, added)
		}
		if out := asRoot(ep, "member", "remove", f[1]); !strings.Contains(out, "removed from cluster") {
			t.Errorf("member remove on %s printed %q", ep, out)
		}
	}
	if out := ok(root, "member", "list"); strings.Count(out, "started") != 3 {
		t.Errorf("member list as root printed %q", out)
	}
	if out := ok(root, "auth", "disable"); !strings.Contains(out, "Authentication Disabled") {
		t.Errorf("auth disable printed %q", out)
	}
	if out := ok("get", "/app/config"); out != "/app/config\nv2\n" {
		t.Errorf("get after auth disable printed %q", out)
	}
}

// authCluster is a 3-member cluster with root (role root) and alice (role
// reader: read and write /app/), and authentication enabled.
func authCluster(t *testing.T, flags ...string) (*cluster, *clientv3.Client) {
	t.Helper()
	c := newCluster(t, 3, flags...)
	cli := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	steps := []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "reader"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "reader", "/app/", clientv3.GetPrefixRangeEnd("/app/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := cli.UserAdd(ctx, "alice", "alicepw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "alice", "reader"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("auth setup step %d: %v", i, err)
		}
	}
	return c, c.userClient("root", "rootpw")
}

func (c *cluster) userClient(user, pw string, eps ...string) *clientv3.Client {
	c.t.Helper()
	if len(eps) == 0 {
		eps = c.endpoints()
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop(), Username: user, Password: pw})
	if err != nil {
		c.t.Fatalf("client as %s: %v", user, err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// TestAuthAttacks: the refusals the issue lists, each with etcd's error,
// logged and counted, losing nothing: many wrong passwords (one bcrypt
// comparison each, nothing written to raft), a token used after auth
// disable and enable, and a user whose role loses its permission while a
// watch is open on the range.
func TestAuthAttacks(t *testing.T) {
	c, root := authCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := root.Put(ctx, "/app/keep", "acknowledged"); err != nil {
		t.Fatal(err)
	}
	m := c.members[0]
	raw := c.client(m.endpoint())

	t.Run("wrong passwords", func(t *testing.T) {
		// Status needs a user with authentication enabled, as in etcd 3.7.
		before, err := root.Status(ctx, m.endpoint())
		if err != nil {
			t.Fatal(err)
		}
		const attempts = 40
		var wg sync.WaitGroup
		errs := make(chan error, attempts)
		start := time.Now()
		for i := range attempts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				user := "alice"
				if i%4 == 0 {
					user = "nobody" // an unknown user costs a comparison too
				}
				_, err := raw.Auth.Authenticate(ctx, user, fmt.Sprintf("guess-%d", i))
				errs <- err
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		close(errs)
		for err := range errs {
			if !errors.Is(err, rpctypes.ErrAuthFailed) {
				t.Errorf("a wrong password: %v, want %v", err, rpctypes.ErrAuthFailed)
			}
		}
		after, err := root.Status(ctx, m.endpoint())
		if err != nil {
			t.Fatal(err)
		}
		// A wrong password is checked before anything is proposed: the
		// raft log does not grow with the attempts.
		if grown := after.RaftIndex - before.RaftIndex; grown > 1 { // 1: a leader change
			t.Errorf("%d wrong passwords grew the raft log by %d entries", attempts, grown)
		}
		t.Logf("%d wrong passwords refused in %v (%v each, one bcrypt comparison at cost 10 per attempt, at most one per core at a time)",
			attempts, elapsed, elapsed/attempts)
		if !logContains(t, m, "invalid authentication was requested") {
			t.Error("wrong passwords were not logged")
		}
		body, _ := httpGet(t, m.clientURL()+"/metrics")
		if !strings.Contains(body, `plumb_auth_refusals_total{error="authentication failed, invalid user ID or password"} `) {
			t.Error("/metrics does not count the refused passwords")
		}
	})

	t.Run("token after auth disable and enable", func(t *testing.T) {
		resp, err := raw.Auth.Authenticate(ctx, "root", "rootpw")
		if err != nil {
			t.Fatal(err)
		}
		withToken := metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, resp.Token)
		kv := pb.NewKVClient(raw.ActiveConnection())
		if _, err := kv.Range(withToken, &pb.RangeRequest{Key: []byte("/app/keep")}); err != nil {
			t.Fatalf("the fresh token: %v", err)
		}
		authc := pb.NewAuthClient(raw.ActiveConnection())
		if _, err := authc.AuthDisable(withToken, &pb.AuthDisableRequest{}); err != nil {
			t.Fatal(err)
		}
		if _, err := authc.AuthEnable(ctx, &pb.AuthEnableRequest{}); err != nil {
			t.Fatal(err)
		}
		_, err = kv.Range(withToken, &pb.RangeRequest{Key: []byte("/app/keep")})
		if !errors.Is(rpctypes.Error(err), rpctypes.ErrInvalidAuthToken) {
			t.Fatalf("the token from before auth disable: %v, want %v", err, rpctypes.ErrInvalidAuthToken)
		}
		if _, err := kv.Range(metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, "forged.12"), &pb.RangeRequest{Key: []byte("/app/keep")}); !errors.Is(rpctypes.Error(err), rpctypes.ErrInvalidAuthToken) {
			t.Fatalf("a forged token: %v", err)
		}
	})

	t.Run("permission revoked while watching", func(t *testing.T) {
		alice := c.userClient("alice", "alicepw", c.members[1].endpoint())
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		wch := alice.Watch(wctx, "/app/", clientv3.WithPrefix())
		if _, err := root.Put(ctx, "/app/w", "1"); err != nil {
			t.Fatal(err)
		}
		if ev := nextEvent(t, wch); ev == nil || string(ev.Kv.Value) != "1" {
			t.Fatalf("alice's watch before the revoke: %v", ev)
		}
		if _, err := root.RoleRevokePermission(ctx, "reader", "/app/", clientv3.GetPrefixRangeEnd("/app/")); err != nil {
			t.Fatal(err)
		}
		if _, err := root.Put(ctx, "/app/w", "secret"); err != nil {
			t.Fatal(err)
		}
		select {
		case wr, ok := <-wch:
			if ok && len(wr.Events) > 0 {
				t.Fatalf("alice saw %q after her permission was revoked", wr.Events[0].Kv.Value)
			}
			if ok && !strings.Contains(wr.Err().Error(), "permission denied") {
				t.Fatalf("alice's watch ended with %v, want permission denied", wr.Err())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("alice's watch was neither canceled nor closed after the revoke")
		}
		if _, err := alice.Get(ctx, "/app/w"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
			t.Fatalf("alice's get after the revoke: %v", err)
		}
	})

	t.Run("through the JSON gateway", func(t *testing.T) {
		// As etcd's docs show it with curl: a token from
		// /v3/auth/authenticate, then the Authorization header.
		g := gwTarget{url: m.clientURL()}
		login := g.call(t, "", "/v3/auth/authenticate", `{"name":"root","password":"rootpw"}`)
		tok, _ := login.json.(map[string]any)["token"].(string)
		if login.code != 200 || tok == "" {
			t.Fatalf("authenticate through the gateway: %d %s", login.code, login.raw)
		}
		put := `{"key":"` + b64("/app/gw") + `","value":"` + b64("v") + `"}`
		if a := g.call(t, "", "/v3/kv/put", put); a.code == 200 || !strings.Contains(a.raw, "user name is empty") {
			t.Errorf("a put without the header: %d %s", a.code, a.raw)
		}
		withTok := gwTarget{url: g.url, flags: []string{"-H", "Authorization: " + tok}}
		if a := withTok.call(t, "", "/v3/kv/put", put); a.code != 200 {
			t.Errorf("a put with root's token: %d %s", a.code, a.raw)
		}
		bad := gwTarget{url: g.url, flags: []string{"-H", "Authorization: forged.7"}}
		if a := bad.call(t, "", "/v3/kv/range", `{"key":"`+b64("/app/gw")+`"}`); a.code == 200 || !strings.Contains(a.raw, "invalid auth token") {
			t.Errorf("a range with a forged token: %d %s", a.code, a.raw)
		}
		if a := g.call(t, "", "/v3/auth/authenticate", `{"name":"root","password":"wrong"}`); a.code == 200 || !strings.Contains(a.raw, "authentication failed") {
			t.Errorf("a wrong password through the gateway: %d %s", a.code, a.raw)
		}
	})

	t.Run("a restarted member enforces it", func(t *testing.T) {
		m := c.members[2]
		c.stop(m)
		c.start(m)
		deadline := time.Now().Add(startTimeout)
		for {
			_, err := c.userClient("root", "rootpw", m.endpoint()).Get(ctx, "/app/keep", clientv3.WithSerializable())
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("root on the restarted member: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if _, err := c.client(m.endpoint()).Get(ctx, "/app/keep", clientv3.WithSerializable()); !errors.Is(err, rpctypes.ErrUserEmpty) {
			t.Fatalf("no user on the restarted member: %v, want %v", err, rpctypes.ErrUserEmpty)
		}
	})

	// Nothing acknowledged was lost on the way.
	for _, ep := range c.endpoints() {
		r, err := c.userClient("root", "rootpw", ep).Get(ctx, "/app/keep", clientv3.WithSerializable())
		if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "acknowledged" {
			t.Errorf("/app/keep on %s: %v %v", ep, err, r)
		}
	}
}

func nextEvent(t *testing.T, wch clientv3.WatchChan) *clientv3.Event {
	t.Helper()
	select {
	case wr := <-wch:
		if err := wr.Err(); err != nil {
			t.Fatalf("watch: %v", err)
		}
		if len(wr.Events) == 0 {
			return nil
		}
		return wr.Events[0]
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event within 10s")
		return nil
	}
}

// TestAuthJWT: --auth-token jwt with an RSA key: tokens are JWTs that every
// member verifies, a tampered one is refused, and a change to the auth
// state makes older tokens stale (clientv3 logs in again by itself).
func TestAuthJWT(t *testing.T) {
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub := filepath.Join(dir, "jwt.key"), filepath.Join(dir, "jwt.pub")
	writePEM(t, priv, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, pub, "PUBLIC KEY", pubDER)
	c, root := authCluster(t, "--auth-token", "jwt,pub-key="+pub+",priv-key="+priv+",sign-method=RS256,ttl=10m")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	raw := c.client(c.members[0].endpoint())
	resp, err := raw.Auth.Authenticate(ctx, "alice", "alicepw")
	if err != nil {
		t.Fatal(err)
	}
	if parts := strings.Split(resp.Token, "."); len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", resp.Token)
	}
	for _, m := range c.members { // any member verifies it
		kv := pb.NewKVClient(c.client(m.endpoint()).ActiveConnection())
		if _, err := kv.Range(metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, resp.Token), &pb.RangeRequest{Key: []byte("/app/x")}); err != nil {
			t.Errorf("alice's JWT on %s: %v", m.name, err)
		}
	}
	tampered := resp.Token[:len(resp.Token)-4] + "AAAA"
	kv := pb.NewKVClient(raw.ActiveConnection())
	if _, err := kv.Range(metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, tampered), &pb.RangeRequest{Key: []byte("/app/x")}); !errors.Is(rpctypes.Error(err), rpctypes.ErrInvalidAuthToken) {
		t.Errorf("a tampered JWT: %v, want %v", err, rpctypes.ErrInvalidAuthToken)
	}
	if _, err := root.RoleAdd(ctx, "another"); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Range(metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, resp.Token), &pb.RangeRequest{Key: []byte("/app/x")}); !errors.Is(rpctypes.Error(err), rpctypes.ErrAuthOldRevision) {
		t.Errorf("a JWT from before an auth change: %v, want %v", err, rpctypes.ErrAuthOldRevision)
	}
	alice := c.userClient("alice", "alicepw")
	if _, err := alice.Put(ctx, "/app/x", "1"); err != nil {
		t.Errorf("clientv3 as alice: %v", err)
	}
}
