package server

import (
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

// validateClientTLS checks the client TLS settings together, as etcd's
// embed does at start: an https:// listen URL needs a certificate and its
// key, and neither goes alone.
func (c *Config) validateClientTLS() []error {
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
	if (c.CertFile == "") != (c.KeyFile == "") {
		set := "cert-file"
		if c.KeyFile != "" {
			set = "key-file"
		}
		errs = append(errs, &crossError{[]string{set}, "--cert-file and --key-file must be set together"})
	}
	if (c.CertFile == "" || c.KeyFile == "") && !c.AutoTLS {
		for _, set := range []struct {
			name string
			urls []string
		}{{"listen-client-urls", c.ListenClientURLs}, {"listen-metrics-urls", c.ListenMetricsURLs}} {
			for _, u := range set.urls {
				if strings.HasPrefix(strings.ToLower(u), "https://") {
					errs = append(errs, &crossError{[]string{set.name},
						fmt.Sprintf("TLS key/cert (--cert-file, --key-file) must be provided for client url %s with HTTPS scheme", u)})
					break
				}
			}
		}
	}
	return errs
}

// clientTLS reports whether any client URL (or metrics URL, served with
// the client certificate as etcd's) is served with TLS.
func (c *Config) clientTLS() bool {
	for _, u := range slices.Concat(c.ListenClientURLs, c.ListenMetricsURLs) {
		if strings.HasPrefix(strings.ToLower(u), "https://") {
			return true
		}
	}
	return false
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

// clientTLSConfigs builds the client port's server config and the config
// the member dials other members' client URLs with (the leader, for
// leases): it trusts --trusted-ca-file (or the system's CAs) and presents
// the member's own certificate, which a --client-cert-auth peer asks for.
// Both are nil when no client URL is https://.
func clientTLSConfigs(c *Config, logger *slog.Logger) (server, dial *tls.Config, err error) {
	if !c.clientTLS() {
		return nil, nil, nil
	}
	certFile, keyFile, self := c.CertFile, c.KeyFile, false
	if c.AutoTLS && certFile == "" {
		if certFile, keyFile, err = selfCert(filepath.Join(c.DataDir, "fixtures", "client"), c.ListenClientURLs, c.SelfSignedCertValidity); err != nil {
			return nil, nil, fmt.Errorf("--auto-tls: %w", err)
		}
		self = true
		logger.Info("serving clients with a self-signed certificate (--auto-tls)", "cert-file", certFile)
	} else if c.AutoTLS {
		logger.Warn("ignoring --auto-tls, since --cert-file and --key-file are given")
	}
	kp, err := newKeyPair("cert-file", certFile, "key-file", keyFile, logger)
	if err != nil {
		return nil, nil, err
	}
	var pool *x509.CertPool
	if c.TrustedCAFile != "" {
		if pool, err = loadCAPool("trusted-ca-file", c.TrustedCAFile); err != nil {
			return nil, nil, err
		}
	}
	minV, _ := tlsutil.GetTLSVersion(c.TLSMinVersion)
	maxV, _ := tlsutil.GetTLSVersion(c.TLSMaxVersion)
	var suites []uint16 // nil: Go's
	if len(c.CipherSuites) > 0 {
		suites, _ = tlsutil.GetCipherSuites(c.CipherSuites)
	}
	if minV == 0 {
		minV = tls.VersionTLS12
	}
	server = &tls.Config{
		MinVersion:     minV,
		MaxVersion:     maxV,
		CipherSuites:   suites,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get() },
		ClientCAs:      pool,
	}
	if c.TrustedCAFile != "" || c.ClientCertAuth {
		server.ClientAuth = tls.RequireAndVerifyClientCert
	}
	dial = &tls.Config{
		InsecureSkipVerify:   self, // as etcd's: a self-signed certificate proves nothing
		MinVersion:           minV,
		MaxVersion:           maxV,
		CipherSuites:         suites,
		RootCAs:              pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() },
	}
	return server, dial, nil
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
// another CA, an expired one) is logged as etcd logs it, "rejected
// connection", and closed before any request is read.
type tlsListener struct {
	net.Listener
	cfg    *tls.Config
	what   string
	logger *slog.Logger
	onFail func()

	conns chan net.Conn
	errc  chan error
	done  chan struct{}
	once  sync.Once
}

func newTLSListener(l net.Listener, cfg *tls.Config, what string, logger *slog.Logger, onFail func()) *tlsListener {
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
		t.logger.Warn("rejected connection", "endpoint", t.what, "remote-addr", c.RemoteAddr().String(),
			"server-name", tc.ConnectionState().ServerName, "err", err)
		if t.onFail != nil {
			t.onFail()
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
