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
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/tlsutil"
	"google.golang.org/grpc"
)

// Client TLS, as etcd's: an https:// client URL is served with --cert-file
// and --key-file; --trusted-ca-file or --client-cert-auth make a client
// certificate required (etcd's TLSInfo.ServerConfig). gRPC and HTTP share
// the TLS port as in etcd's embed/serve.go: cmux hands every connection to
// the TLS listener, and one HTTP/2-capable server passes gRPC requests to
// the gRPC server's ServeHTTP and the rest to the HTTP handler.

const (
	// certRecheck bounds how often the certificate files are looked at
	// again: a handshake within it of the last look uses the pair in
	// memory.
	certRecheck = time.Second
	// tlsHandshakeWait is how long a client gets to finish its handshake.
	tlsHandshakeWait = 10 * time.Second
)

// validateTLS checks the TLS settings together, as etcd's embed
// does at start: an https:// listen URL needs a certificate and its key,
// neither goes alone, and a rule on the other side's certificate (allowed
// CN or hostname, revocation list) needs that certificate to be asked for.
func (c *Config) validateTLS() []error {
	var errs []error
	minV, _ := tlsutil.GetTLSVersion(c.TLSMinVersion)
	maxV, _ := tlsutil.GetTLSVersion(c.TLSMaxVersion)
	if maxV != 0 && minV > maxV { // as etcd's embed: 0 is Go's highest
		errs = append(errs, &crossError{[]string{"tls-min-version", "tls-max-version"},
			fmt.Sprintf("min version (%s) is greater than max version (%s)", c.TLSMinVersion, c.TLSMaxVersion)})
	}
	if minV == tls.VersionTLS13 && len(c.CipherSuites) > 0 {
		errs = append(errs, &crossError{[]string{"cipher-suites", "tls-min-version"},
			"cipher suites cannot be configured when only TLS1.3 is enabled"})
	}
	client := c.tlsSide(clientSide)
	errs = append(errs, client.validate(client.urls)...)
	peer := c.tlsSide(peerSide)
	errs = append(errs, peer.validate(append(slices.Clone(c.ListenPeerURLs), c.InitialAdvertisePeerURLs...))...)
	if len(c.ListenPeerURLs) > 0 && len(c.InitialAdvertisePeerURLs) > 0 && isHTTPS(c.ListenPeerURLs[0]) != isHTTPS(c.InitialAdvertisePeerURLs[0]) {
		errs = append(errs, &crossError{[]string{"listen-peer-urls", "initial-advertise-peer-urls"},
			fmt.Sprintf("a member's peer URLs must be all http:// or all https://: it listens on %s and advertises %s",
				c.ListenPeerURLs[0], c.InitialAdvertisePeerURLs[0])})
	}
	return errs
}

// The two sides a member serves TLS on, as the metrics and logs name them.
const (
	clientSide = "client"
	peerSide   = "peer"
)

// tlsSide is one side's TLS settings (etcd's TLSInfo) with the flags that
// set them, for messages.
type tlsSide struct {
	name                       string // clientSide or peerSide
	prefix                     string // "" or "peer-": the flags' prefix
	certFile, keyFile          string
	dialCertFile, dialKeyFile  string // the pair presented when dialling (--[peer-]client-cert-file); "" for certFile's
	trustedCAFile              string
	certAuth, autoTLS, skipSAN bool
	allowedCNs, allowedHosts   []string
	crlFile                    string
	urls                       []string // the URLs whose hosts a self-signed certificate names
	httpURLs                   []string // the client side's --listen-client-http-urls (also in urls)
	metricsURLs                []string // the client side's --listen-metrics-urls (also in urls), served with its certificate as etcd's
}

func (c *Config) tlsSide(name string) tlsSide {
	if name == clientSide {
		return tlsSide{name: clientSide, certFile: c.CertFile, keyFile: c.KeyFile,
			dialCertFile: c.ClientCertFile, dialKeyFile: c.ClientKeyFile, trustedCAFile: c.TrustedCAFile,
			certAuth: c.ClientCertAuth, autoTLS: c.AutoTLS, allowedHosts: c.ClientCertAllowedHostnames,
			crlFile: c.ClientCRLFile, skipSAN: true, urls: slices.Concat(c.ListenClientURLs, c.ListenClientHTTPURLs, c.ListenMetricsURLs),
			httpURLs: c.ListenClientHTTPURLs, metricsURLs: c.ListenMetricsURLs}
	}
	return tlsSide{name: peerSide, prefix: "peer-", certFile: c.PeerCertFile, keyFile: c.PeerKeyFile,
		dialCertFile: c.PeerClientCertFile, dialKeyFile: c.PeerClientKeyFile, trustedCAFile: c.PeerTrustedCAFile,
		certAuth: c.PeerClientCertAuth, autoTLS: c.PeerAutoTLS, allowedCNs: c.PeerCertAllowedCNs,
		allowedHosts: c.PeerCertAllowedHostnames, crlFile: c.PeerCRLFile, skipSAN: c.PeerSkipClientSANVerification,
		urls: c.ListenPeerURLs}
}

func (s tlsSide) flag(name string) string { return s.prefix + name }

// allowedHostFlag is the flag of allowedHosts.
func (s tlsSide) allowedHostFlag() string {
	if s.name == clientSide {
		return "client-cert-allowed-hostname"
	}
	return "peer-cert-allowed-hostname"
}

func (s tlsSide) crlFlag() string { return s.name + "-crl-file" }

// validate checks the side's settings; urls are the side's URLs, whose
// https:// ones need a certificate.
func (s tlsSide) validate(urls []string) []error {
	var errs []error
	pair := func(cert, key, certFile, keyFile string) {
		if (certFile == "") != (keyFile == "") {
			set := cert
			if keyFile != "" {
				set = key
			}
			errs = append(errs, &crossError{[]string{set}, fmt.Sprintf("--%s and --%s must be set together", cert, key)})
		}
	}
	pair(s.flag("cert-file"), s.flag("key-file"), s.certFile, s.keyFile)
	pair(s.flag("client-cert-file"), s.flag("client-key-file"), s.dialCertFile, s.dialKeyFile)
	if (s.certFile == "" || s.keyFile == "") && !s.autoTLS {
		for _, u := range urls {
			if isHTTPS(u) {
				errs = append(errs, &crossError{[]string{s.urlFlag(u)},
					fmt.Sprintf("TLS key/cert (--%s, --%s) must be provided for %s url %s with HTTPS scheme",
						s.flag("cert-file"), s.flag("key-file"), s.name, u)})
				break
			}
		}
	}
	if len(s.allowedCNs) > 0 && len(s.allowedHosts) > 0 {
		errs = append(errs, &crossError{[]string{"peer-cert-allowed-cn", "peer-cert-allowed-hostname"},
			fmt.Sprintf("--peer-cert-allowed-cn and --peer-cert-allowed-hostname are mutually exclusive (cns=%q, hostnames=%q)",
				s.allowedCNs, s.allowedHosts)})
	}
	asked := s.trustedCAFile != "" || s.certAuth
	for _, rule := range []struct {
		flag string
		set  bool
	}{{s.flag("cert-allowed-cn"), len(s.allowedCNs) > 0}, {s.allowedHostFlag(), len(s.allowedHosts) > 0}, {s.crlFlag(), s.crlFile != ""}} {
		if rule.set && !asked {
			errs = append(errs, &crossError{[]string{rule.flag}, fmt.Sprintf(
				"--%s checks %s certificates, which are asked for only with --%s or --%s; set one of them",
				rule.flag, s.name, s.flag("trusted-ca-file"), s.certAuthFlag())})
		}
	}
	return errs
}

func (s tlsSide) certAuthFlag() string {
	if s.name == clientSide {
		return "client-cert-auth"
	}
	return "peer-client-cert-auth"
}

// urlFlag is the flag that sets u, for an error about it.
func (s tlsSide) urlFlag(u string) string {
	if s.name == clientSide {
		if slices.Contains(s.httpURLs, u) {
			return "listen-client-http-urls"
		}
		if slices.Contains(s.metricsURLs, u) {
			return "listen-metrics-urls"
		}
		return "listen-client-urls"
	}
	if slices.Contains(s.urls, u) {
		return "listen-peer-urls"
	}
	return "initial-advertise-peer-urls"
}

// clientTLS reports whether any client URL (or metrics URL, served with
// the client certificate as etcd's) is served with TLS.
func (c *Config) clientTLS() bool {
	return slices.ContainsFunc(slices.Concat(c.ListenClientURLs, c.ListenClientHTTPURLs, c.ListenMetricsURLs), isHTTPS)
}

// peerTLS reports whether the member's peer URLs are https://.
func (c *Config) peerTLS() bool {
	return slices.ContainsFunc(c.ListenPeerURLs, isHTTPS) || slices.ContainsFunc(c.InitialAdvertisePeerURLs, isHTTPS)
}

// keyPair is a certificate and its key read from files, read again when
// either file changes (looked at no more than once per certRecheck), so a
// renewed certificate is served from the next handshake on, as etcd's
// GetCertificate does. A pair that no longer loads (a half-written
// renewal) leaves the last good one in use.
type keyPair struct {
	certFile, keyFile string
	logger            *slog.Logger

	mu      sync.Mutex
	checked time.Time
	stamp   string
	cert    *tls.Certificate
}

// newKeyPair loads the pair; an error names the flags.
func newKeyPair(certFlag, certFile, keyFlag, keyFile string, logger *slog.Logger) (*keyPair, error) {
	k := &keyPair{certFile: certFile, keyFile: keyFile, logger: logger}
	stamp, err := k.fileStamp()
	if err == nil {
		var cert tls.Certificate
		if cert, err = tls.LoadX509KeyPair(certFile, keyFile); err == nil {
			k.cert, k.stamp, k.checked = &cert, stamp, time.Now()
			return k, nil
		}
	}
	return nil, fmt.Errorf("--%s %s, --%s %s: %w", certFlag, certFile, keyFlag, keyFile, err)
}

// fileStamp is what changes when either file is rewritten.
func (k *keyPair) fileStamp() (string, error) {
	var b strings.Builder
	for _, f := range []string{k.certFile, k.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return b.String(), nil
}

// get returns the pair to present now.
func (k *keyPair) get() (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	if now.Sub(k.checked) < certRecheck {
		return k.cert, nil
	}
	k.checked = now
	stamp, err := k.fileStamp()
	if err == nil && stamp == k.stamp {
		return k.cert, nil
	}
	if err == nil {
		var cert tls.Certificate
		if cert, err = tls.LoadX509KeyPair(k.certFile, k.keyFile); err == nil {
			k.cert, k.stamp = &cert, stamp
			k.logger.Info("reloaded the TLS certificate", "cert-file", k.certFile, "key-file", k.keyFile)
			return k.cert, nil
		}
	}
	k.logger.Warn("could not reload the TLS certificate; the previous one stays in use",
		"cert-file", k.certFile, "key-file", k.keyFile, "err", err)
	return k.cert, nil
}

// loadCAPool reads a PEM file of CA certificates.
func loadCAPool(flag, file string) (*x509.CertPool, error) {
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("--%s %s: no PEM certificate in it", flag, file)
	}
	return pool, nil
}

// configs builds the side's server config and the config the member
// dials the same side of other members with (peers, or the leader's client
// URL for leases). The server config asks for a certificate from
// --trusted-ca-file (or the system's CAs) when --trusted-ca-file or
// --client-cert-auth is set, and checks it against the side's rules (see
// verifier) during the handshake, so that a refused certificate never
// gets a request read. The dial config trusts the same CAs and presents
// the member's certificate (--[peer-]client-cert-file's when set); on the
// peer side it holds the other member's certificate to the CN and
// hostname rules too, as etcd's does.
func (s tlsSide) configs(c *Config, logger *slog.Logger) (server, dial *tls.Config, err error) {
	kp, dialKP, self, err := s.keyPairs(c, logger)
	if err != nil {
		return nil, nil, err
	}
	var pool *x509.CertPool
	if s.trustedCAFile != "" {
		if pool, err = loadCAPool(s.flag("trusted-ca-file"), s.trustedCAFile); err != nil {
			return nil, nil, err
		}
	}
	if s.crlFile != "" {
		if _, err := readCRL(s.crlFile); err != nil {
			return nil, nil, fmt.Errorf("--%s: %w", s.crlFlag(), err)
		}
	}
	minV, maxV, suites := tlsLimits(c)
	// The peer port speaks HTTP/1.1 only: a message stream takes its
	// connection over (see transport_stream.go).
	protos := []string{"http/1.1"}
	if s.name == clientSide {
		protos = []string{"h2", "http/1.1"}
	}
	server = &tls.Config{
		MinVersion:     minV,
		MaxVersion:     maxV,
		CipherSuites:   suites,
		NextProtos:     protos,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get() },
		ClientCAs:      pool,
	}
	if s.trustedCAFile != "" || s.certAuth {
		server.ClientAuth = tls.RequireAndVerifyClientCert
		server.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			// A copy per connection, so that the check knows the address
			// the certificate must name.
			cfg := server.Clone()
			cfg.GetConfigForClient = nil
			cfg.VerifyPeerCertificate = s.verifier(hello.Conn.RemoteAddr(), true)
			return cfg, nil
		}
	}
	dial = &tls.Config{
		InsecureSkipVerify:   self, // as etcd's: a self-signed certificate proves nothing
		MinVersion:           minV,
		MaxVersion:           maxV,
		CipherSuites:         suites,
		RootCAs:              pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return dialKP.get() },
	}
	if s.name == peerSide && !self {
		dial.VerifyPeerCertificate = s.verifier(nil, false)
	}
	return server, dial, nil
}

// peerTLSConfigs builds the peer port's server config (nil when no peer
// URL is https://) and the config every peer request is dialled with: the
// raft streams, snapshots and GET /members. Without any peer TLS setting,
// another member's https:// URL is still dialled, trusting the system's
// CAs and presenting no certificate.
func peerTLSConfigs(c *Config, logger *slog.Logger) (server, dial *tls.Config, err error) {
	side := c.tlsSide(peerSide)
	if !c.peerTLS() && side.certFile == "" && !side.autoTLS {
		if side.trustedCAFile != "" || side.certAuth {
			logger.Warn("the peer URLs are http://: ignoring --peer-trusted-ca-file and --peer-client-cert-auth")
		}
		return nil, &tls.Config{MinVersion: tls.VersionTLS12}, nil
	}
	if !c.peerTLS() {
		logger.Warn("the peer URLs are http:// while a peer certificate is set: it is presented only when dialling https:// peers")
	}
	server, dial, err = side.configs(c, logger)
	if !c.peerTLS() {
		server = nil
	}
	return server, dial, err
}

// keyPairs loads the side's certificate pair, or makes a self-signed one
// (self) with --[peer-]auto-tls, and the pair it dials with.
func (s tlsSide) keyPairs(c *Config, logger *slog.Logger) (kp, dialKP *keyPair, self bool, err error) {
	certFile, keyFile := s.certFile, s.keyFile
	if s.autoTLS && certFile == "" {
		if certFile, keyFile, err = selfCert(filepath.Join(c.DataDir, "fixtures", s.name), s.urls, c.SelfSignedCertValidity); err != nil {
			return nil, nil, false, fmt.Errorf("--%s: %w", s.flag("auto-tls"), err)
		}
		self = true
		logger.Info("serving with a self-signed certificate", "side", s.name, "flag", "--"+s.flag("auto-tls"), "cert-file", certFile)
	} else if s.autoTLS {
		logger.Warn("ignoring --"+s.flag("auto-tls")+", since --"+s.flag("cert-file")+" and --"+s.flag("key-file")+" are given", "side", s.name)
	}
	if kp, err = newKeyPair(s.flag("cert-file"), certFile, s.flag("key-file"), keyFile, logger); err != nil {
		return nil, nil, false, err
	}
	dialKP = kp
	if s.dialCertFile != "" {
		if dialKP, err = newKeyPair(s.flag("client-cert-file"), s.dialCertFile, s.flag("client-key-file"), s.dialKeyFile, logger); err != nil {
			return nil, nil, false, err
		}
	}
	return kp, dialKP, self, nil
}

// tlsLimits are the TLS versions and TLS 1.2 suites allowed, from
// --tls-min-version, --tls-max-version and --cipher-suites (checked by
// validate): at least TLS 1.2, and Go's suites when none are given.
func tlsLimits(c *Config) (minV, maxV uint16, suites []uint16) {
	minV, _ = tlsutil.GetTLSVersion(c.TLSMinVersion)
	maxV, _ = tlsutil.GetTLSVersion(c.TLSMaxVersion)
	if len(c.CipherSuites) > 0 {
		suites, _ = tlsutil.GetCipherSuites(c.CipherSuites)
	}
	return max(minV, tls.VersionTLS12), maxV, suites
}

// Why a certificate that verified against the CAs is refused anyway.
var (
	errCertNotAllowed = errors.New("client certificate authentication failed") // etcd's words
	errCertRevoked    = errors.New("certificate revoked")
	errCertSAN        = errors.New("certificate does not name the address it connects from")
)

// verifier checks a verified certificate against the side's rules, as
// etcd's TLSInfo and tlsListener do: its CN is one of --peer-cert-allowed-cn,
// or it is valid for one of the allowed hostnames; on a listener (serving)
// its serial is not in the revocation list (read at each handshake, as
// etcd's is, so that a revocation applies at once), and on the peer
// listener it names the address it connects from (remote), unless
// --peer-skip-client-san-verification.
func (s tlsSide) verifier(remote net.Addr, serving bool) func([][]byte, [][]*x509.Certificate) error {
	return func(_ [][]byte, chains [][]*x509.Certificate) error {
		if len(chains) == 0 || len(chains[0]) == 0 {
			return nil // nothing verified: nothing was asked for
		}
		leaf := chains[0][0]
		if len(s.allowedCNs) > 0 && !slices.Contains(s.allowedCNs, leaf.Subject.CommonName) {
			return fmt.Errorf("%w: CN %q is not one of --%s %s", errCertNotAllowed, leaf.Subject.CommonName,
				s.flag("cert-allowed-cn"), strings.Join(s.allowedCNs, ","))
		}
		if len(s.allowedHosts) > 0 && !slices.ContainsFunc(s.allowedHosts, func(h string) bool { return leaf.VerifyHostname(h) == nil }) {
			return fmt.Errorf("%w: the certificate is valid for none of --%s %s", errCertNotAllowed,
				s.allowedHostFlag(), strings.Join(s.allowedHosts, ","))
		}
		if !serving {
			return nil
		}
		if s.crlFile != "" {
			if err := checkCRL(s.crlFile, chains[0]); err != nil {
				return err
			}
		}
		// A unix socket's peer has no address for the certificate to name.
		if _, tcp := remote.(*net.TCPAddr); s.name == peerSide && !s.skipSAN && tcp {
			return checkCertSAN(leaf, remote.String())
		}
		return nil
	}
}

// readCRL reads and parses a certificate revocation list (PEM or DER).
func readCRL(file string) (*x509.RevocationList, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if block, _ := pem.Decode(b); block != nil {
		b = block.Bytes
	}
	return x509.ParseRevocationList(b)
}

// checkCRL refuses a chain holding a certificate whose serial the list at
// file names. A list that can no longer be read refuses every connection:
// the member cannot tell who was revoked.
func checkCRL(file string, chain []*x509.Certificate) error {
	crl, err := readCRL(file)
	if err != nil {
		return fmt.Errorf("%w: cannot read the revocation list %s: %v", errCertRevoked, file, err)
	}
	for _, c := range chain {
		for _, r := range crl.RevokedCertificateEntries {
			if r.SerialNumber.Cmp(c.SerialNumber) == 0 {
				return fmt.Errorf("%w: serial %x (CN %q) is in %s", errCertRevoked, c.SerialNumber, c.Subject.CommonName, file)
			}
		}
	}
	return nil
}

// sanLookupWait bounds the DNS lookups of checkCertSAN.
const sanLookupWait = 5 * time.Second

// checkCertSAN checks, as etcd's peer listener does, that a certificate
// with IP or DNS SANs names the address remote connects from: one of its
// IPs, or a DNS name that resolves to it (or that the address's reverse
// lookup gives).
func checkCertSAN(cert *x509.Certificate, remote string) error {
	if len(cert.IPAddresses) == 0 && len(cert.DNSNames) == 0 {
		return nil
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return err
	}
	if len(cert.IPAddresses) > 0 && cert.VerifyHostname(host) == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), sanLookupWait)
	defer cancel()
	names, _ := net.DefaultResolver.LookupAddr(ctx, host)
	for _, n := range names {
		if cert.VerifyHostname(strings.TrimSuffix(n, ".")) == nil {
			return nil
		}
	}
	for _, n := range cert.DNSNames {
		if strings.HasPrefix(n, "*.") {
			continue
		}
		addrs, _ := net.DefaultResolver.LookupHost(ctx, n)
		if slices.Contains(addrs, host) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is not among its IP addresses %v nor DNS names %q (--peer-skip-client-san-verification turns this check off)",
		errCertSAN, host, cert.IPAddresses, cert.DNSNames)
}

// selfCert makes a self-signed certificate and its key in dir for the
// hosts of urls, valid for years, as etcd's transport.SelfCert does, or
// reuses the pair already there.
func selfCert(dir string, urls []string, years uint64) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_, cerr := os.Stat(certFile)
	_, kerr := os.Stat(keyFile)
	if cerr == nil && kerr == nil {
		return certFile, keyFile, nil
	}
	if years == 0 {
		years = 1
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	tmpl := x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"etcd"}},
		NotBefore:             now,
		NotAfter:              now.AddDate(int(years), 0, 0),
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			return "", "", err
		}
		if ip := net.ParseIP(u.Hostname()); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, u.Hostname())
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, dataDirMode); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// grpcHandlerFunc sends gRPC requests (HTTP/2, application/grpc) to gs and
// the rest to other, as etcd's embed/serve.go does on a TLS port.
func grpcHandlerFunc(gs *grpc.Server, other http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			gs.ServeHTTP(w, r)
			return
		}
		other.ServeHTTP(w, r)
	})
}

// tlsListener hands out connections whose TLS handshake succeeded. A
// client that fails it (no certificate when one is required, one from
// another CA, an expired, revoked or not allowed one) is logged as etcd
// logs it, "rejected connection on client endpoint" (or peer), counted by
// reason, and closed before any request is read.
type tlsListener struct {
	net.Listener
	cfg    *tls.Config
	what   string // clientSide or peerSide
	logger *slog.Logger
	onFail func(reason string)

	conns chan net.Conn
	errc  chan error
	done  chan struct{}
	once  sync.Once
}

func newTLSListener(l net.Listener, cfg *tls.Config, what string, logger *slog.Logger, onFail func(reason string)) *tlsListener {
	t := &tlsListener{Listener: l, cfg: cfg, what: what, logger: logger, onFail: onFail,
		conns: make(chan net.Conn), errc: make(chan error, 1), done: make(chan struct{})}
	go t.acceptLoop()
	return t
}

func (t *tlsListener) acceptLoop() {
	for {
		c, err := t.Listener.Accept()
		if err != nil {
			t.errc <- err
			return
		}
		go t.handshake(c)
	}
}

func (t *tlsListener) handshake(c net.Conn) {
	tc := tls.Server(c, t.cfg)
	_ = tc.SetDeadline(time.Now().Add(tlsHandshakeWait))
	if err := tc.Handshake(); err != nil {
		attrs := []any{"remote-addr", c.RemoteAddr().String(), "server-name", tc.ConnectionState().ServerName}
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) && len(verr.UnverifiedCertificates) > 0 {
			leaf := verr.UnverifiedCertificates[0]
			attrs = append(attrs, "ip-addresses", leaf.IPAddresses, "dns-names", leaf.DNSNames, "common-name", leaf.Subject.CommonName)
		}
		// etcd's message and fields (embed's logTLSHandshakeFailure).
		t.logger.Warn("rejected connection on "+t.what+" endpoint", append(attrs, "reason", rejectReason(err), "err", err)...)
		if t.onFail != nil {
			t.onFail(rejectReason(err))
		}
		tc.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	select {
	case t.conns <- tc:
	case <-t.done:
		tc.Close()
	}
}

// rejectReason sorts a failed handshake for the metric
// plumb_tls_rejected_connections_total: a small fixed set of labels.
func rejectReason(err error) string {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var hostErr x509.HostnameError
	var recordErr tls.RecordHeaderError
	var netErr net.Error
	switch {
	case errors.Is(err, errCertNotAllowed):
		return "not-allowed"
	case errors.Is(err, errCertRevoked):
		return "revoked"
	case errors.Is(err, errCertSAN):
		return "san-mismatch"
	case errors.As(err, &unknown):
		return "unknown-authority"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return "expired"
	case errors.As(err, &invalid), errors.As(err, &hostErr):
		return "invalid-certificate"
	case strings.Contains(err.Error(), "didn't provide a certificate"):
		return "no-certificate"
	case errors.As(err, &recordErr):
		return "not-tls"
	case strings.Contains(err.Error(), "remote error"):
		return "refused-by-remote" // the other side did not accept this member's certificate
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	}
	return "other"
}

// Accept returns the next connection that completed its handshake.
func (t *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-t.conns:
		return c, nil
	case err := <-t.errc:
		t.errc <- err // for later calls
		return nil, err
	case <-t.done:
		return nil, net.ErrClosed
	}
}

func (t *tlsListener) Close() error {
	t.once.Do(func() { close(t.done) })
	err := t.Listener.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
