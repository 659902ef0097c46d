package e2e_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	t    *testing.T
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate, PEM
}

var serial int64

func nextSerial() *big.Int { serial++; return big.NewInt(serial) }

func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{t: t, dir: dir, cert: cert, key: key, file: filepath.Join(dir, name+".crt")}
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue makes a certificate for cn, good for servers on ips and for
// clients, valid until notAfter; it returns the certificate and key files.
func (ca *testCA) issue(cn string, ips []string, notAfter time.Time) (certFile, keyFile string) {
	t := ca.t
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(ca.dir, cn+".crt"), filepath.Join(ca.dir, cn+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// ctlTLS runs etcdctl with TLS flags; it returns stdout, stderr and the
// error.
func ctlTLS(bin string, eps []string, tlsFlags []string, args ...string) (string, string, error) {
	cmd := exec.Command(bin, append(append([]string{"--endpoints", strings.Join(eps, ","), "--dial-timeout", "3s", "--command-timeout", "5s"}, tlsFlags...), args...)...)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	return string(out), stderr.String(), err
}

// TestClientTLS: a 3-member cluster serving clients on https:// with
// --cert-file, --key-file, --trusted-ca-file and --client-cert-auth (from
// the command line and from ETCD_* variables), where real etcdctl with
// --cacert/--cert/--key runs put, get, member list and endpoint health,
// and a client without a certificate, with one from another CA, or with
// an expired one is refused at the handshake and logged.
func TestClientTLS(t *testing.T) {
	bin := etcdctl(t)
	c := &cluster{t: t, token: "e2e-client-tls"}
	c.base = t.TempDir()
	ca := newTestCA(t, c.base, "ca")
	other := newTestCA(t, c.base, "other-ca")
	var ips []string
	for i := range 3 {
		m := c.newMember("n"+string(rune('1'+i)), "127.0.0."+string(rune('1'+i)))
		c.members = append(c.members, m)
		ips = append(ips, m.ip)
	}
	serverCert, serverKey := ca.issue("member", ips, time.Now().Add(24*time.Hour))
	clientCert, clientKey := ca.issue("client", nil, time.Now().Add(24*time.Hour))
	strangerCert, strangerKey := other.issue("stranger", nil, time.Now().Add(24*time.Hour))
	expiredCert, expiredKey := ca.issue("expired", nil, time.Now().Add(-time.Hour))

	var eps []string
	for i, m := range c.members {
		url := "https://" + m.endpoint()
		eps = append(eps, url)
		args := c.args(m)
		for j, a := range args {
			if a == m.clientURL() {
				args[j] = url
			}
		}
		tls := []string{"--cert-file", serverCert, "--key-file", serverKey, "--trusted-ca-file", ca.file, "--client-cert-auth"}
		var env []string
		if i == 2 { // etcd's variables work as its flags do
			tls, env = nil, []string{"ETCD_CERT_FILE=" + serverCert, "ETCD_KEY_FILE=" + serverKey,
				"ETCD_TRUSTED_CA_FILE=" + ca.file, "ETCD_CLIENT_CERT_AUTH=true"}
		}
		c.run(m, append(args, tls...), env)
	}
	t.Cleanup(c.stopAll)

	good := []string{"--cacert", ca.file, "--cert", clientCert, "--key", clientKey}
	deadline := time.Now().Add(startTimeout)
	for {
		out, errOut, err := ctlTLS(bin, eps, good, "endpoint", "health")
		if err == nil && strings.Count(out, "is healthy") == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint health over TLS did not pass within %v: %v\n%s%s", startTimeout, err, out, errOut)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ok := func(args ...string) string {
		t.Helper()
		out, errOut, err := ctlTLS(bin, eps, good, args...)
		if err != nil {
			t.Fatalf("etcdctl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}
	if out := ok("put", "foo", "bar"); strings.TrimSpace(out) != "OK" {
		t.Errorf("put printed %q", out)
	}
	for _, ep := range eps { // every member answers over TLS
		out, errOut, err := ctlTLS(bin, []string{ep}, good, "get", "foo")
		if err != nil || out != "foo\nbar\n" {
			t.Errorf("get foo from %s: %v %q %s", ep, err, out, errOut)
		}
	}
	list := ok("member", "list")
	for _, ep := range eps {
		if !strings.Contains(list, ep) {
			t.Errorf("member list lacks the client URL %s:\n%s", ep, list)
		}
	}
	// A lease goes through the leader's client URL from a follower: the
	// members dial each other with TLS and their certificate.
	for _, ep := range eps {
		if out, errOut, err := ctlTLS(bin, []string{ep}, good, "lease", "grant", "60"); err != nil || !strings.Contains(out, "granted") {
			t.Errorf("lease grant on %s: %v %q %s", ep, err, out, errOut)
		}
	}

	for _, bad := range []struct {
		what, why string // why: what the member's log says
		flags     []string
	}{
		{"no client certificate", "client didn't provide a certificate", []string{"--cacert", ca.file}},
		{"a certificate from another CA", "certificate signed by unknown authority", []string{"--cacert", ca.file, "--cert", strangerCert, "--key", strangerKey}},
		{"an expired certificate", "certificate has expired", []string{"--cacert", ca.file, "--cert", expiredCert, "--key", expiredKey}},
	} {
		out, errOut, err := ctlTLS(bin, eps[:1], append(bad.flags, "--dial-timeout=1s", "--command-timeout=1s"), "get", "foo")
		if err == nil {
			t.Errorf("a client with %s read %q", bad.what, out)
			continue
		}
		if strings.Contains(out, "bar") {
			t.Errorf("a client with %s got the value: %q", bad.what, out)
		}
		if !logContains(t, c.members[0], bad.why) {
			t.Errorf("a client with %s: %q is not in the member's log (etcdctl: %s)", bad.what, bad.why, errOut)
		}
	}
	// Plain text on the TLS port gets nothing either.
	if out, _, err := ctlTLS(bin, []string{"http://" + c.members[0].endpoint()}, []string{"--dial-timeout=1s", "--command-timeout=1s"}, "get", "foo"); err == nil {
		t.Errorf("a plain-text client read %q from a TLS port", out)
	}
	if !logContains(t, c.members[0], "rejected connection on client endpoint") {
		t.Error("the refused handshakes were not logged as rejected connections")
	}
	c.members[0].clientHTTPS = true // as it was started, for metric's URL
	tc := &tlsCluster{cluster: c, ca: ca, clientCert: clientCert, ckey: clientKey}
	for _, reason := range []string{"no-certificate", "unknown-authority", "expired", "not-tls"} {
		if n := tc.metric(c.members[0], fmt.Sprintf(`plumb_tls_rejected_connections_total{listener="client",reason="%s"}`, reason)); n < 1 {
			t.Errorf("plumb_tls_rejected_connections_total{listener=\"client\",reason=%q} is %v, want at least 1", reason, n)
		}
	}
}

// TestClientTLSRefusals: https:// without a certificate, and a certificate
// without its key, are refused at start with messages naming the flags.
func TestClientTLSRefusals(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	cert, _ := ca.issue("member", []string{"127.0.0.1"}, time.Now().Add(time.Hour))
	client := fmt.Sprintf("https://127.0.0.1:%d", freePort(t, "127.0.0.1"))
	peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t, "127.0.0.1"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen-client-urls", client, "--advertise-client-urls", client},
			"TLS key/cert (--cert-file, --key-file) must be provided for client url " + client + " with HTTPS scheme"},
		{[]string{"--cert-file", cert}, "--cert-file and --key-file must be set together"},
		{[]string{"--listen-client-urls", client, "--advertise-client-urls", client,
			"--cert-file", cert, "--key-file", filepath.Join(dir, "missing.key")}, "--key-file " + filepath.Join(dir, "missing.key")},
		{[]string{"--listen-client-urls", client, "--advertise-client-urls", client,
			"--cert-file", cert, "--key-file", cert}, "--cert-file " + cert},
	} {
		args := append([]string{"node", "serve", "--data-dir", filepath.Join(dir, "data"), "--listen-peer-urls", peer,
			"--initial-advertise-peer-urls", peer}, tc.args...)
		out, err := plumbCommand(args, nil).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("plumb %s: %v, want an error with %q:\n%s", strings.Join(tc.args, " "), err, tc.want, out)
		}
	}
}

// TestAutoTLS: with --auto-tls and ETCD_SELF_SIGNED_CERT_VALIDITY, a member
// serves its https:// client URL with a self-signed certificate that real
// etcdctl reaches with --insecure-skip-tls-verify, as it reaches etcd's.
func TestAutoTLS(t *testing.T) {
	bin := etcdctl(t)
	c := &cluster{t: t, token: "e2e-auto-tls"}
	c.base = t.TempDir()
	m := c.newMember("n1", "127.0.0.1")
	c.members = append(c.members, m)
	url := "https://" + m.endpoint()
	args := c.args(m)
	for j, a := range args {
		if a == m.clientURL() {
			args[j] = url
		}
	}
	c.run(m, append(args, "--auto-tls"), []string{"ETCD_SELF_SIGNED_CERT_VALIDITY=2"})
	t.Cleanup(c.stopAll)
	flags := []string{"--insecure-skip-tls-verify"}
	deadline := time.Now().Add(startTimeout)
	for {
		out, errOut, err := ctlTLS(bin, []string{url}, flags, "put", "foo", "bar")
		if err == nil && strings.TrimSpace(out) == "OK" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("put over --auto-tls did not succeed within %v: %v\n%s%s", startTimeout, err, out, errOut)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, _, err := ctlTLS(bin, []string{url}, []string{"--dial-timeout=1s", "--command-timeout=1s"}, "get", "foo"); err == nil {
		t.Error("etcdctl verifying the self-signed certificate reached the member")
	}
	if _, err := os.Stat(filepath.Join(m.dataDir, "fixtures", "client", "cert.pem")); err != nil {
		t.Errorf("the self-signed certificate is not in the data dir: %v", err)
	}
}
