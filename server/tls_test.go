package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// pki is a CA made for one test, and what it issues, written to dir.
type pki struct {
	t      *testing.T
	dir    string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	caFile string
	serial int64
}

func newPKI(t *testing.T, dir, name string) *pki {
	t.Helper()
	p := &pki{t: t, dir: dir}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p.cert, _ = x509.ParseCertificate(der)
	p.key = key
	p.caFile = filepath.Join(dir, name+".crt")
	p.write(p.caFile, "CERTIFICATE", der)
	return p
}

func (p *pki) write(path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
}

// issue writes a server-and-client certificate for cn on 127.0.0.1 to
// cn.crt and cn.key.
func (p *pki) issue(cn string) (certFile, keyFile string) {
	p.t.Helper()
	p.serial++
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.serial + 1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(p.dir, cn+".crt"), filepath.Join(p.dir, cn+".key")
	p.write(certFile, "CERTIFICATE", der)
	p.write(keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func leafCN(t *testing.T, c *tls.Certificate) string {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.Subject.CommonName
}

// TestKeyPairReload: a renewed certificate is served once the files
// change, looked at no more than once per certRecheck; a pair that does not
// load leaves the last good one in use.
func TestKeyPairReload(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir, "ca")
	certA, keyA := p.issue("a")
	kp, err := newKeyPair("cert-file", certA, "key-file", keyA, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	certB, keyB := p.issue("b")
	copyFile(t, certB, certA)
	copyFile(t, keyB, keyA)
	if c, _ := kp.get(); leafCN(t, c) != "a" {
		t.Errorf("the files were read again within %v", certRecheck)
	}
	time.Sleep(certRecheck + 50*time.Millisecond)
	if c, _ := kp.get(); leafCN(t, c) != "b" {
		t.Errorf("after %v, the renewed certificate is not served: %s", certRecheck, leafCN(t, c))
	}
	if err := os.WriteFile(certA, []byte("half-written"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(certRecheck + 50*time.Millisecond)
	if c, err := kp.get(); err != nil || leafCN(t, c) != "b" {
		t.Errorf("a broken renewal replaced the good pair: %v", err)
	}
	if _, err := newKeyPair("cert-file", certA, "key-file", keyA, quietLogger()); err == nil ||
		!strings.Contains(err.Error(), "--cert-file "+certA+", --key-file "+keyA) {
		t.Errorf("a bad pair at start: %v, want an error naming the flags", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	// A later modification time than the file it replaces, even on a
	// coarse clock.
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Second)
	if err := os.Chtimes(to, later, later); err != nil {
		t.Fatal(err)
	}
}

// TestClientTLSServe: one member on an https:// client URL with
// --client-cert-auth answers gRPC and HTTP on the one TLS port to a client
// with a certificate from --trusted-ca-file, and refuses one without.
func TestClientTLSServe(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir, "ca")
	certFile, keyFile := p.issue("member")
	cfg := oneMember(t, filepath.Join(dir, "data"))
	https := "https://" + strings.TrimPrefix(cfg.ListenClientURLs[0], "http://")
	cfg.ListenClientURLs, cfg.AdvertiseClientURLs = []string{https}, []string{https}
	cfg.CertFile, cfg.KeyFile, cfg.TrustedCAFile, cfg.ClientCertAuth = certFile, keyFile, p.caFile, true
	if errs := cfg.validateTLS(); len(errs) > 0 {
		t.Fatal(errs)
	}
	s := startT(t, cfg)
	defer s.Stop()

	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(mustRead(t, p.caFile))
	good := &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{https}, TLS: good, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	putRetrying(t, cli, "k", "v")

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: good}, Timeout: 5 * time.Second}
	resp, err := hc.Get(https + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "true") {
		t.Errorf("GET /health over TLS: %s %s", resp.Status, body)
	}

	bad := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	if resp, err := bad.Get(https + "/health"); err == nil {
		resp.Body.Close()
		t.Errorf("a client without a certificate got %s", resp.Status)
	}
	nocert, err := clientv3.New(clientv3.Config{Endpoints: []string{https}, TLS: &tls.Config{RootCAs: pool},
		DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer nocert.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := nocert.Get(ctx, "k"); err == nil {
		t.Error("a gRPC client without a certificate read a key")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTLSVersionsAndSuites: --tls-min-version, --tls-max-version and
// --cipher-suites reach the handshake: a TLS 1.2 client is refused under
// --tls-min-version TLS1.3, and a suite outside --cipher-suites is too.
func TestTLSVersionsAndSuites(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir, "ca")
	certFile, keyFile := p.issue("member")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(mustRead(t, p.caFile))
	handshake := func(c Config, client *tls.Config) error {
		t.Helper()
		c.ListenClientURLs = []string{"https://127.0.0.1:2379"}
		c.CertFile, c.KeyFile = certFile, keyFile
		server, _, err := c.tlsSide(clientSide).configs(&c, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		go func() { _ = tls.Server(a, server).Handshake(); a.Close() }()
		client.RootCAs, client.ServerName = pool, "127.0.0.1"
		return tls.Client(b, client).Handshake()
	}
	if err := handshake(Config{TLSMinVersion: "TLS1.3"}, &tls.Config{MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("a TLS 1.2 client was served under --tls-min-version TLS1.3")
	}
	if err := handshake(Config{TLSMinVersion: "TLS1.3"}, &tls.Config{}); err != nil {
		t.Errorf("a TLS 1.3 client under --tls-min-version TLS1.3: %v", err)
	}
	if err := handshake(Config{TLSMaxVersion: "TLS1.2"}, &tls.Config{MinVersion: tls.VersionTLS13}); err == nil {
		t.Error("a TLS 1.3 client was served under --tls-max-version TLS1.2")
	}
	suites := Config{TLSMaxVersion: "TLS1.2", CipherSuites: []string{"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}}
	if err := handshake(suites, &tls.Config{CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}); err == nil {
		t.Error("a cipher suite outside --cipher-suites was accepted")
	}
	if err := handshake(suites, &tls.Config{CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}}); err != nil {
		t.Errorf("the cipher suite --cipher-suites names: %v", err)
	}
}

// TestAutoTLS: --auto-tls serves an https:// client URL with a self-signed
// certificate kept in the data dir (reused at a restart), as etcd does;
// a client that skips verification reaches it.
func TestAutoTLS(t *testing.T) {
	dir := t.TempDir()
	cfg := oneMember(t, filepath.Join(dir, "data"))
	https := "https://" + strings.TrimPrefix(cfg.ListenClientURLs[0], "http://")
	cfg.ListenClientURLs, cfg.AdvertiseClientURLs = []string{https}, []string{https}
	cfg.AutoTLS, cfg.SelfSignedCertValidity = true, 2
	if errs := cfg.validateTLS(); len(errs) > 0 {
		t.Fatal(errs)
	}
	s := startT(t, cfg)
	defer s.Stop()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{https}, TLS: &tls.Config{InsecureSkipVerify: true},
		DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	putRetrying(t, cli, "k", "v")
	certFile := filepath.Join(cfg.DataDir, "fixtures", "client", "cert.pem")
	block, _ := pem.Decode(mustRead(t, certFile))
	if block == nil {
		t.Fatalf("no certificate in %s", certFile)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("the certificate is for %v, want the listen URL's 127.0.0.1", leaf.IPAddresses)
	}
	if years := leaf.NotAfter.Sub(leaf.NotBefore).Hours() / 24 / 365; years < 1.9 || years > 2.1 {
		t.Errorf("valid for %.1f years, want --self-signed-cert-validity 2", years)
	}
	again, _, err := selfCert(filepath.Dir(certFile), cfg.ListenClientURLs, 1)
	if err != nil || string(mustRead(t, again)) != string(pem.EncodeToMemory(block)) {
		t.Errorf("the certificate in the data dir was not reused: %v", err)
	}
}

// issueFor writes a certificate for cn valid for ips and dns (names
// name.crt and name.key) and returns the files and its serial.
func (p *pki) issueFor(name, cn string, ips []string, dns []string) (certFile, keyFile string, serial *big.Int) {
	p.t.Helper()
	p.serial++
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial = big.NewInt(1000 + p.serial)
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, DNSNames: dns}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(p.dir, name+".crt"), filepath.Join(p.dir, name+".key")
	p.write(certFile, "CERTIFICATE", der)
	p.write(keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile, serial
}

// crl writes the CA's revocation list of serials to name.crl.
func (p *pki) crl(name string, serials ...*big.Int) string {
	p.t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now(),
		NextUpdate: time.Now().Add(time.Hour), RevokedCertificateEntries: entries}, p.cert, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	file := filepath.Join(p.dir, name+".crl")
	p.write(file, "X509 CRL", der)
	return file
}

// TestTLSRules: the rules on the other side's certificate, each checked in
// the handshake on a real TCP listener (the SAN check needs the address a
// connection comes from), and each refusal counted under its reason: the
// peer side's --peer-cert-allowed-cn, --peer-cert-allowed-hostname,
// --peer-crl-file and SAN check (off with
// --peer-skip-client-san-verification), the client side's
// --client-crl-file and --client-cert-allowed-hostname.
func TestTLSRules(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir, "ca")
	p.cert.KeyUsage |= x509.KeyUsageCRLSign // CreateRevocationList asks for it; the CA's signature is not re-checked
	serverCert, serverKey, _ := p.issueFor("server", "member", []string{"127.0.0.1"}, nil)
	good, goodKey, _ := p.issueFor("good", "member", []string{"127.0.0.1"}, []string{"good.example.com"})
	wrongCN, wrongCNKey, _ := p.issueFor("wrongcn", "intruder", []string{"127.0.0.1"}, nil)
	elsewhere, elsewhereKey, _ := p.issueFor("elsewhere", "member", []string{"10.9.9.9"}, nil)
	revoked, revokedKey, revokedSerial := p.issueFor("revoked", "member", []string{"127.0.0.1"}, nil)
	crl := p.crl("peer", revokedSerial)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(mustRead(t, p.caFile))

	for _, tc := range []struct {
		name       string
		side       string
		cfg        func(c *Config)
		cert, key  string
		wantReason string // "" accepted
	}{
		{"peer, allowed CN", peerSide, func(c *Config) { c.PeerCertAllowedCNs = []string{"other", "member"} }, good, goodKey, ""},
		{"peer, CN not allowed", peerSide, func(c *Config) { c.PeerCertAllowedCNs = []string{"member"} }, wrongCN, wrongCNKey, "not-allowed"},
		{"peer, allowed hostname", peerSide, func(c *Config) { c.PeerCertAllowedHostnames = []string{"good.example.com"} }, good, goodKey, ""},
		{"peer, hostname not allowed", peerSide, func(c *Config) { c.PeerCertAllowedHostnames = []string{"good.example.com"} }, wrongCN, wrongCNKey, "not-allowed"},
		{"peer, revoked", peerSide, func(c *Config) { c.PeerCRLFile = crl }, revoked, revokedKey, "revoked"},
		{"peer, not revoked", peerSide, func(c *Config) { c.PeerCRLFile = crl }, good, goodKey, ""},
		{"peer, certificate for another address", peerSide, func(c *Config) {}, elsewhere, elsewhereKey, "san-mismatch"},
		{"peer, SAN check off", peerSide, func(c *Config) { c.PeerSkipClientSANVerification = true }, elsewhere, elsewhereKey, ""},
		{"peer, no certificate", peerSide, func(c *Config) {}, "", "", "no-certificate"},
		{"client, revoked", clientSide, func(c *Config) { c.ClientCRLFile = crl }, revoked, revokedKey, "revoked"},
		{"client, hostname not allowed", clientSide, func(c *Config) { c.ClientCertAllowedHostnames = []string{"good.example.com"} }, wrongCN, wrongCNKey, "not-allowed"},
		{"client, allowed hostname", clientSide, func(c *Config) { c.ClientCertAllowedHostnames = []string{"good.example.com"} }, good, goodKey, ""},
		{"client, no SAN check", clientSide, func(c *Config) {}, elsewhere, elsewhereKey, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{DataDir: dir, CertFile: serverCert, KeyFile: serverKey, TrustedCAFile: p.caFile,
				PeerCertFile: serverCert, PeerKeyFile: serverKey, PeerTrustedCAFile: p.caFile,
				ListenClientURLs: []string{"https://127.0.0.1:2379"}, ListenPeerURLs: []string{"https://127.0.0.1:2380"},
				InitialAdvertisePeerURLs: []string{"https://127.0.0.1:2380"}}
			tc.cfg(&c)
			if errs := c.validateTLS(); len(errs) > 0 {
				t.Fatal(errs)
			}
			server, _, err := c.tlsSide(tc.side).configs(&c, quietLogger())
			if err != nil {
				t.Fatal(err)
			}
			raw, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			reasons := make(chan string, 1)
			l := newTLSListener(raw, server, tc.side, quietLogger(), func(r string) { reasons <- r })
			defer l.Close()
			accepted := make(chan net.Conn, 1)
			go func() {
				if c, err := l.Accept(); err == nil {
					accepted <- c
				}
			}()
			client := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
			if tc.cert != "" {
				pair, err := tls.LoadX509KeyPair(tc.cert, tc.key)
				if err != nil {
					t.Fatal(err)
				}
				client.Certificates = []tls.Certificate{pair}
			}
			conn, err := tls.Dial("tcp", raw.Addr().String(), client)
			if err == nil {
				// TLS 1.3: the client learns of a refusal on its first read.
				_ = conn.SetReadDeadline(time.Now().Add(time.Second))
				_, err = conn.Read(make([]byte, 1))
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					err = nil
				}
				conn.Close()
			}
			select {
			case r := <-reasons:
				if r != tc.wantReason {
					t.Errorf("refused as %q (client: %v), want %q", r, err, tc.wantReason)
				}
			case c := <-accepted:
				c.Close()
				if tc.wantReason != "" {
					t.Errorf("accepted, want refused as %q", tc.wantReason)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("neither accepted nor refused")
			}
		})
	}
}

// TestDialCertificate: a member dials with --client-cert-file's pair (or
// --peer-client-cert-file's) when set, and with the serving pair
// otherwise.
func TestDialCertificate(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir, "ca")
	serverCert, serverKey := p.issue("server")
	dialCert, dialKey := p.issue("dialer")
	for _, tc := range []struct {
		name string
		side string
		cfg  func(c *Config)
		want string
	}{
		{"client, serving pair", clientSide, func(c *Config) {}, "server"},
		{"client, --client-cert-file", clientSide, func(c *Config) { c.ClientCertFile, c.ClientKeyFile = dialCert, dialKey }, "dialer"},
		{"peer, serving pair", peerSide, func(c *Config) {}, "server"},
		{"peer, --peer-client-cert-file", peerSide, func(c *Config) { c.PeerClientCertFile, c.PeerClientKeyFile = dialCert, dialKey }, "dialer"},
	} {
		c := Config{DataDir: dir, CertFile: serverCert, KeyFile: serverKey, PeerCertFile: serverCert, PeerKeyFile: serverKey}
		tc.cfg(&c)
		_, dial, err := c.tlsSide(tc.side).configs(&c, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		cert, err := dial.GetClientCertificate(nil)
		if err != nil || leafCN(t, cert) != tc.want {
			t.Errorf("%s: dials with %v, %v; want %s", tc.name, leafCN(t, cert), err, tc.want)
		}
	}
}

// TestListenUnix: a unix:// URL binds the socket file its host names,
// replacing a stale socket but never another file.
func TestListenUnix(t *testing.T) {
	t.Chdir(t.TempDir())
	l, err := listenURL("unix://n1:2380")
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false) // leave a stale socket behind
	l.Close()
	if l, err = listenURL("unix://n1:2380"); err != nil {
		t.Fatalf("a stale socket was not replaced: %v", err)
	}
	l.Close()
	if err := os.WriteFile("data:1", []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := listenURL("unixs://data:1"); err == nil || !strings.Contains(err.Error(), "is not a unix socket") {
		t.Errorf("a regular file in the way: %v", err)
	}
	if b, _ := os.ReadFile("data:1"); string(b) != "keep" {
		t.Error("the regular file was replaced")
	}
}
