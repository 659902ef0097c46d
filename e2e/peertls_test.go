package e2e_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// tlsCluster is a cluster whose members serve peers and clients on
// https://, with certificates from one CA, and the etcdctl flags that
// reach it.
type tlsCluster struct {
	*cluster
	ca               *testCA
	ctl              string   // etcdctl
	ctlFlags         []string // --cacert, --cert, --key
	cert, key        string   // the members' certificate (CN "member")
	clientCert, ckey string
	peerFlags        []string // every member's peer rules beyond the CA
}

// ips are the addresses a member's certificate names: every member's, and
// 127.0.0.1, where loopback connections come from.
func tlsIPs(n int) []string {
	ips := []string{"127.0.0.1"}
	for i := 2; i <= n+1; i++ {
		ips = append(ips, fmt.Sprintf("127.0.0.%d", i))
	}
	return ips
}

// startTLS starts m with its TLS settings given the i-th way (0 flags, 1
// environment, 2 config file).
func (c *tlsCluster) startTLS(m *member, i int) {
	t := c.t
	args := c.args(m)
	switch i % 3 {
	case 0:
		args = append(args, "--cert-file", c.cert, "--key-file", c.key, "--trusted-ca-file", c.ca.file, "--client-cert-auth",
			"--peer-cert-file", c.cert, "--peer-key-file", c.key, "--peer-trusted-ca-file", c.ca.file, "--peer-client-cert-auth")
		c.run(m, append(args, c.peerFlags...), m.joinEnv)
	case 1:
		env := []string{"ETCD_CERT_FILE=" + c.cert, "ETCD_KEY_FILE=" + c.key, "ETCD_TRUSTED_CA_FILE=" + c.ca.file,
			"ETCD_CLIENT_CERT_AUTH=true", "ETCD_PEER_CERT_FILE=" + c.cert, "ETCD_PEER_KEY_FILE=" + c.key,
			"ETCD_PEER_TRUSTED_CA_FILE=" + c.ca.file, "ETCD_PEER_CLIENT_CERT_AUTH=true"}
		c.run(m, append(args, c.peerFlags...), append(env, m.joinEnv...))
	default:
		file := filepath.Join(c.base, m.name+".yaml")
		yaml := fmt.Sprintf("client-transport-security:\n  cert-file: %s\n  key-file: %s\n  trusted-ca-file: %s\n  client-cert-auth: true\n"+
			"peer-transport-security:\n  cert-file: %s\n  key-file: %s\n  trusted-ca-file: %s\n  client-cert-auth: true\n",
			c.cert, c.key, c.ca.file, c.cert, c.key, c.ca.file)
		if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		c.run(m, append(append(args, "--config-file", file), c.peerFlags...), m.joinEnv)
	}
}

func (c *tlsCluster) eps(ms []*member) []string {
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.clientURL())
	}
	return eps
}

// waitHealthy waits until etcdctl finds every member of ms healthy over
// TLS.
func (c *tlsCluster) waitHealthy(ms []*member) {
	c.t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		out, errOut, err := ctlTLS(c.ctl, c.eps(ms), c.ctlFlags, "endpoint", "health")
		if err == nil && strings.Count(out, "is healthy") == len(ms) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("endpoint health over TLS did not pass within %v: %v\n%s%s", startTimeout, err, out, errOut)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *tlsCluster) ok(eps []string, args ...string) string {
	c.t.Helper()
	out, errOut, err := ctlTLS(c.ctl, eps, c.ctlFlags, args...)
	if err != nil {
		c.t.Fatalf("etcdctl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// tlsConfig is a client's TLS config: the cluster's CA and the client
// certificate.
func (c *tlsCluster) tlsConfig() *tls.Config {
	c.t.Helper()
	pair, err := tls.LoadX509KeyPair(c.clientCert, c.ckey)
	if err != nil {
		c.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(c.ca.file)
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}
}

// metric returns the value of the sample of /metrics on m whose name and
// labels start with sample, 0 when it has none.
func (c *tlsCluster) metric(m *member, sample string) float64 {
	c.t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: c.tlsConfig()}}
	resp, err := hc.Get(m.clientURL() + "/metrics")
	if err != nil {
		c.t.Fatalf("GET /metrics on %s: %v", m.name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, sample) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return v
		}
	}
	return 0
}

// rejected sums plumb_tls_rejected_connections_total{listener="peer",
// reason} over the members.
func (c *tlsCluster) rejected(reason string) float64 {
	sum := 0.0
	for _, m := range c.members {
		sum += c.metric(m, fmt.Sprintf(`plumb_tls_rejected_connections_total{listener="peer",reason="%s"}`, reason))
	}
	return sum
}

// raftState is what must not change when an intruder knocks: the leader
// and its term, from endpoint status.
func (c *tlsCluster) raftState() string {
	c.t.Helper()
	out := c.ok(c.eps(c.members), "endpoint", "status", "-w", "fields")
	var leader, term string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, `"Leader" : `); ok {
			leader = v
		}
		if v, ok := strings.CutPrefix(line, `"RaftTerm" : `); ok {
			term = v
		}
	}
	return "leader " + leader + " term " + term
}

// TestPeerTLS: a 3-member cluster with peer and client TLS (etcd's flags,
// ETCD_* variables and config-file blocks) serves real etcdctl with
// --cacert/--cert/--key, survives a member restart over TLS, and refuses
// every peer that must not be one: a certificate from another CA, an
// expired one, one whose CN is not --peer-cert-allowed-cn, a revoked one
// (--peer-crl-file), each refused in the TLS handshake, logged and
// counted, with the cluster's leader, term and data unchanged; and a
// member of another cluster with a good certificate, refused on its
// cluster ID.
func TestPeerTLS(t *testing.T) {
	dir := t.TempDir()
	crl := filepath.Join(dir, "peer.crl")
	c := newTLSCluster(t, "e2e-peer-tls", crl)

	eps := c.eps(c.members)
	if out := c.ok(eps, "put", "foo", "bar"); strings.TrimSpace(out) != "OK" {
		t.Fatalf("put printed %q", out)
	}
	c.ok(eps, "put", "foo2", "bar2")
	if out := c.ok(eps, "get", "foo", "--prefix"); out != "foo\nbar\nfoo2\nbar2\n" {
		t.Errorf("get --prefix: %q", out)
	}
	if out := c.ok(eps, "del", "foo2"); strings.TrimSpace(out) != "1" {
		t.Errorf("del printed %q", out)
	}
	list := c.ok(eps, "member", "list")
	for _, m := range c.members {
		if !strings.Contains(list, m.peerURL()) || !strings.HasPrefix(m.peerURL(), "https://") {
			t.Errorf("member list lacks the https peer URL %s:\n%s", m.peerURL(), list)
		}
	}
	status := c.ok(eps[:1], "endpoint", "status", "--cluster")
	if strings.Count(status, "https://") != 3 {
		t.Errorf("endpoint status --cluster reached %d members, want 3:\n%s", strings.Count(status, "https://"), status)
	}

	// A restart over TLS: the member rejoins and catches up, from a
	// snapshot, since more was written meanwhile than the leader's log
	// keeps (--snapshot-count 100).
	c.stop(c.members[0])
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.eps(c.members[1:]), TLS: c.tlsConfig(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := cli.Put(ctx, fmt.Sprintf("bulk/%03d", i), "x")
		cancel()
		if err != nil {
			t.Fatalf("put while n1 is down: %v", err)
		}
	}
	cli.Close()
	c.ok(c.eps(c.members[1:]), "put", "during", "restart")
	c.startTLS(c.members[0], 0)
	c.waitHealthy(c.members)
	deadline := time.Now().Add(joinTimeout)
	for {
		out, _, err := ctlTLS(c.ctl, eps[:1], c.ctlFlags, "get", "during", "--consistency=s", "--print-value-only")
		if err == nil && strings.TrimSpace(out) == "restart" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted member never served what was written while it was down: %q %v", out, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A scrape goes without the node's counts when the loop is busy past
	// scrapeLoopWait (catching up, in a race-built member): ask again.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		n := c.metric(c.members[0], "plumb_server_snapshots_installed_total")
		if n >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the restarted member installed %v snapshots, want one sent over TLS", n)
			break
		}
	}

	// Intruders: each tries to join as the member just added.
	out := c.ok(eps, "member", "add", "n4", "--peer-urls", "https://127.0.0.5:"+strconv.Itoa(freePort(t, "127.0.0.5")))
	_, joinEnv := memberAdded(t, out)
	other := newTestCA(t, dir, "other-ca")
	strangerCert, strangerKey := issueAs(t, other, "stranger", "member", time.Now().Add(24*time.Hour))
	expiredCert, expiredKey := issueAs(t, c.ca, "expired", "member", time.Now().Add(-time.Hour))
	wrongCNCert, wrongCNKey := issueAs(t, c.ca, "intruder", "intruder", time.Now().Add(24*time.Hour))
	revokedCert, revokedKey := issueAs(t, c.ca, "revoked", "member", time.Now().Add(24*time.Hour))
	writeCRL(t, c.ca, crl, []string{revokedCert})
	before := c.raftState()
	for i, in := range []struct {
		what, cert, key, reason, logged string
	}{
		{"a certificate from another CA", strangerCert, strangerKey, "unknown-authority", "certificate signed by unknown authority"},
		{"an expired certificate", expiredCert, expiredKey, "expired", "certificate has expired"},
		{"a CN not in --peer-cert-allowed-cn", wrongCNCert, wrongCNKey, "not-allowed", `CN \"intruder\" is not one of --peer-cert-allowed-cn member`},
		{"a revoked certificate", revokedCert, revokedKey, "revoked", "certificate revoked"},
	} {
		n4 := c.newMember(fmt.Sprintf("n4-%d", i), "127.0.0.5")
		n4.peerHTTPS, n4.clientHTTPS, n4.joinEnv, n4.peerPort = true, true, joinEnv, addedPort(joinEnv)
		args := append(c.args(n4), "--cert-file", in.cert, "--key-file", in.key, "--trusted-ca-file", c.ca.file,
			"--peer-cert-file", in.cert, "--peer-key-file", in.key, "--peer-trusted-ca-file", c.ca.file)
		was := c.rejected(in.reason)
		c.run(n4, args, joinEnv)
		deadline := time.Now().Add(10 * time.Second)
		for c.rejected(in.reason) == was && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		c.kill(n4)
		if got := c.rejected(in.reason); got == was {
			t.Errorf("a peer with %s: plumb_tls_rejected_connections_total{listener=\"peer\",reason=%q} stayed at %v", in.what, in.reason, got)
		}
		if b, _ := os.ReadFile(n4.logPath); strings.Contains(string(b), "joining a running cluster") {
			t.Errorf("a peer with %s got the membership:\n%s", in.what, tail(b, 4096))
		}
		found := false
		for _, m := range c.members {
			found = found || logContains(t, m, in.logged)
		}
		if !found || !logContains(t, c.members[0], "rejected connection on peer endpoint") {
			t.Errorf("a peer with %s: no member logged a rejected connection with %q", in.what, in.logged)
		}
	}
	if after := c.raftState(); after != before {
		t.Errorf("the intruders changed the cluster: %s, then %s", before, after)
	}
	if out := c.ok(eps, "get", "foo", "--print-value-only"); strings.TrimSpace(out) != "bar" {
		t.Errorf("after the intruders, foo is %q", out)
	}

	// A member of another cluster, with a good certificate from the same
	// CA, that counts n1 among its peers: n1 refuses its messages on the
	// cluster ID, before raft sees them.
	refusedBefore := c.metric(c.members[0], "plumb_network_peer_refused_messages_total")
	x := c.newMember("x1", "127.0.0.6")
	x.peerHTTPS, x.clientHTTPS = true, true
	xargs := c.serveArgs(x)
	xargs = append(xargs, "--name", "x1", "--initial-advertise-peer-urls", x.peerURL(),
		"--initial-cluster", "x1="+x.peerURL()+",ghost="+c.members[0].peerURL(), "--initial-cluster-token", "another-cluster",
		"--cert-file", c.cert, "--key-file", c.key, "--peer-cert-file", c.cert, "--peer-key-file", c.key,
		"--peer-trusted-ca-file", c.ca.file)
	c.run(x, xargs, nil)
	deadline = time.Now().Add(15 * time.Second)
	for c.metric(c.members[0], "plumb_network_peer_refused_messages_total") == refusedBefore && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	c.kill(x)
	if c.metric(c.members[0], "plumb_network_peer_refused_messages_total") == refusedBefore {
		t.Error("a member of another cluster was not refused")
	}
	if !logContains(t, c.members[0], "refused a peer message") || !logContains(t, c.members[0], "the request is from cluster") {
		t.Error("the refusal of another cluster's member is not logged")
	}
	if after := c.raftState(); after != before {
		t.Errorf("another cluster's member changed the cluster: %s, then %s", before, after)
	}
	if out := c.ok(eps, "get", "foo", "--print-value-only"); strings.TrimSpace(out) != "bar" {
		t.Errorf("after another cluster's member, foo is %q", out)
	}

	// The member added above joins with a good certificate: it gets the
	// membership (GET /members) and the log over TLS.
	n4 := c.newMember("n4", "127.0.0.5")
	n4.peerHTTPS, n4.clientHTTPS, n4.joinEnv, n4.peerPort = true, true, joinEnv, addedPort(joinEnv)
	c.members = append(c.members, n4)
	c.startTLS(n4, 0)
	deadline = time.Now().Add(joinTimeout)
	for {
		out, _, err := ctlTLS(c.ctl, []string{n4.clientURL()}, c.ctlFlags, "get", "foo", "--consistency=s", "--print-value-only")
		if err == nil && strings.TrimSpace(out) == "bar" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the member that joined over TLS never served foo: %q %v", out, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !logContains(t, n4, "joining a running cluster") {
		t.Error("n4 did not join through GET /members")
	}
}

// addedPort is the peer port in the ETCD_INITIAL_ADVERTISE_PEER_URLS
// member add printed.
func addedPort(joinEnv []string) int {
	for _, kv := range joinEnv {
		if v, ok := strings.CutPrefix(kv, "ETCD_INITIAL_ADVERTISE_PEER_URLS=https://127.0.0.5:"); ok {
			port, _ := strconv.Atoi(v)
			return port
		}
	}
	return 0
}

// newTLSCluster starts 3 members with peer and client TLS (n1 from flags,
// n2 from etcd's ETCD_* variables, n3 from etcd's config-file blocks),
// --peer-cert-allowed-cn member and --peer-crl-file crl, which is written
// empty, signed by the cluster's CA.
func newTLSCluster(t *testing.T, token, crl string) *tlsCluster {
	c := &tlsCluster{cluster: &cluster{t: t, token: token}, ctl: etcdctl(t),
		peerFlags: []string{"--peer-cert-allowed-cn", "member", "--peer-crl-file", crl, "--snapshot-count", "100"}}
	c.base = t.TempDir()
	c.ca = newTestCA(t, c.base, "ca")
	writeCRL(t, c.ca, crl, nil)
	c.cert, c.key = issueAs(t, c.ca, "member", "member", time.Now().Add(24*time.Hour))
	c.clientCert, c.ckey = c.ca.issue("client", nil, time.Now().Add(24*time.Hour))
	c.ctlFlags = []string{"--cacert", c.ca.file, "--cert", c.clientCert, "--key", c.ckey}
	for i := range 3 {
		m := c.newMember(fmt.Sprintf("n%d", i+1), fmt.Sprintf("127.0.0.%d", i+2))
		m.peerHTTPS, m.clientHTTPS = true, true
		c.members = append(c.members, m)
	}
	for i, m := range c.members {
		c.startTLS(m, i)
	}
	t.Cleanup(c.stopAll)
	c.waitHealthy(c.members)
	return c
}

// issueAs issues a certificate for cn on the members' addresses into
// name.crt and name.key (issue names its files after cn, and several
// certificates here share one).
func issueAs(t *testing.T, ca *testCA, name, cn string, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	cert, key := ca.issue(cn, tlsIPs(4), notAfter)
	certFile, keyFile = filepath.Join(t.TempDir(), name+".crt"), filepath.Join(t.TempDir(), name+".key")
	for from, to := range map[string]string{cert: certFile, key: keyFile} {
		if err := os.Rename(from, to); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// writeCRL writes ca's revocation list of the certificates in files to
// path.
func writeCRL(t *testing.T, ca *testCA, path string, files []string) {
	t.Helper()
	var revoked []x509.RevocationListEntry
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(b)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		revoked = append(revoked, x509.RevocationListEntry{SerialNumber: cert.SerialNumber, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(time.Now().UnixNano()),
		ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour), RevokedCertificateEntries: revoked}, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, path, "X509 CRL", der)
}

// TestPeerAutoTLS: members with --peer-auto-tls and https:// peer URLs
// form a cluster over self-signed certificates, as etcd's do.
func TestPeerAutoTLS(t *testing.T) {
	c := &cluster{t: t, token: "e2e-peer-auto-tls", flags: []string{"--peer-auto-tls"}}
	c.base = t.TempDir()
	for i := range 3 {
		m := c.newMember(fmt.Sprintf("n%d", i+1), fmt.Sprintf("127.0.0.%d", i+1))
		m.peerHTTPS = true
		c.members = append(c.members, m)
	}
	for _, m := range c.members {
		c.start(m)
	}
	t.Cleanup(c.stopAll)
	c.waitLeader(startTimeout)
	bin := etcdctl(t)
	ctl(t, bin, c.endpoints(), "put", "k", "v")
	for _, m := range c.members {
		waitRead(t, bin, m, "k", "v")
		if _, err := os.Stat(filepath.Join(m.dataDir, "fixtures", "peer", "cert.pem")); err != nil {
			t.Errorf("%s has no self-signed peer certificate: %v", m.name, err)
		}
	}
	if !regexp.MustCompile(`serving peers.*https://`).MatchString(readLog(t, c.members[0])) {
		t.Error("n1 does not say it serves https:// peers")
	}
}

func readLog(t *testing.T, m *member) string {
	t.Helper()
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPeerTLSRefusals: peer TLS settings that cannot work are refused at
// start, naming the flags.
func TestPeerTLSRefusals(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	cert, key := ca.issue("member", []string{"127.0.0.1"}, time.Now().Add(time.Hour))
	https := fmt.Sprintf("https://127.0.0.1:%d", freePort(t, "127.0.0.1"))
	http := fmt.Sprintf("http://127.0.0.1:%d", freePort(t, "127.0.0.1"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen-peer-urls", https, "--initial-advertise-peer-urls", https},
			"TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url " + https + " with HTTPS scheme"},
		{[]string{"--listen-peer-urls", https + "," + http, "--initial-advertise-peer-urls", https, "--peer-cert-file", cert, "--peer-key-file", key},
			"a member's peer URLs must be all http:// or all https://"},
		{[]string{"--listen-peer-urls", https, "--initial-advertise-peer-urls", https, "--peer-cert-file", cert, "--peer-key-file", key,
			"--peer-cert-allowed-cn", "member"}, "--peer-cert-allowed-cn checks peer certificates, which are asked for only with --peer-trusted-ca-file or --peer-client-cert-auth"},
		{[]string{"--listen-peer-urls", https, "--initial-advertise-peer-urls", https, "--peer-cert-file", cert, "--peer-key-file", cert},
			"--peer-cert-file " + cert + ", --peer-key-file " + cert},
		{[]string{"--listen-peer-urls", https, "--initial-advertise-peer-urls", https, "--peer-cert-file", cert, "--peer-key-file", key,
			"--peer-trusted-ca-file", ca.file, "--peer-crl-file", filepath.Join(dir, "missing.crl")}, "--peer-crl-file: open " + filepath.Join(dir, "missing.crl")},
	} {
		args := append([]string{"node", "serve", "--data-dir", filepath.Join(dir, "data")}, tc.args...)
		out, err := plumbCommand(args, nil).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("plumb %s: %v, want an error with %q:\n%s", strings.Join(tc.args, " "), err, tc.want, out)
		}
	}
}

// TestPeerUnixSockets: members whose peer URLs are unix sockets, as etcd
// allows (unix://NAME:PORT, the socket file NAME:PORT in the working
// directory), form a cluster and replicate; with unixs:// the sockets
// carry TLS (here --peer-auto-tls).
func TestPeerUnixSockets(t *testing.T) {
	for _, tc := range []struct {
		scheme string
		tls    bool
	}{{"unix", false}, {"unixs", true}} {
		t.Run(tc.scheme, func(t *testing.T) {
			c := &cluster{t: t, token: "e2e-peer-" + tc.scheme}
			if tc.tls {
				c.flags = []string{"--peer-auto-tls"}
			}
			c.base = t.TempDir()
			for i := range 3 {
				m := c.newMember(fmt.Sprintf("n%d", i+1), fmt.Sprintf("127.0.0.%d", i+1))
				m.peerUnix, m.peerHTTPS = true, tc.tls
				c.members = append(c.members, m)
			}
			for _, m := range c.members {
				c.start(m)
			}
			t.Cleanup(c.stopAll)
			c.waitLeader(startTimeout)
			bin := etcdctl(t)
			ctl(t, bin, c.endpoints(), "put", "k", "v")
			for _, m := range c.members {
				waitRead(t, bin, m, "k", "v")
				if fi, err := os.Stat(filepath.Join(c.base, fmt.Sprintf("%s:%d", m.name, m.peerPort))); err != nil || fi.Mode()&os.ModeSocket == 0 {
					t.Errorf("%s has no peer socket file: %v", m.name, err)
				}
			}
			if list := ctl(t, bin, c.endpoints(), "member", "list"); !strings.Contains(list, tc.scheme+"://n1:") {
				t.Errorf("member list lacks the %s:// peer URLs:\n%s", tc.scheme, list)
			}
		})
	}
}
