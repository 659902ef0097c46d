package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/soheilhy/cmux"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/plumbdb/plumb/node"
	"github.com/plumbdb/plumb/node/backend/bolt"
	"github.com/plumbdb/plumb/node/wal"
)

// Limits of the client port.
const (
	grpcOverheadBytes = 512 << 10 // etcd's allowance over --max-request-bytes for gRPC framing
	gracefulStopWait  = 2 * time.Second
	dataDirMode       = 0o700
)

// Options are what the command line hands the server besides its Config.
type Options struct {
	Version string // plumb's version, reported on /version
}

// Server is one production member: the node driven by a goroutine with
// the wall clock, on the WAL and bbolt in --data-dir, peers over HTTP on the
// peer URLs and etcd's v3 API (gRPC and HTTP) on the client URLs.
type Server struct {
	cfg     Config
	opts    Options
	logger  *slog.Logger
	metrics *metrics

	log  *node.DiskLog
	be   *bolt.Backend
	loop *loop
	tr   *transport

	clientGRPC *grpc.Server
	// self is the member's client of its own services (Lock, Election).
	self       *selfClient
	clientHTTP *http.Server
	// clientHTTPS serves gRPC and HTTP on https:// client URLs (tls.go),
	// only gRPC when --listen-client-http-urls is set; clientHTTPSOnly
	// serves HTTP on https:// --listen-client-http-urls. clientTLS is
	// their config, nil without one.
	clientHTTPS     *http.Server
	clientHTTPSOnly *http.Server
	clientTLS       *tls.Config
	// peerTLS serves https:// peer URLs, nil without one; peerDialTLS
	// dials other members' https:// peer URLs.
	peerTLS     *tls.Config
	peerDialTLS *tls.Config
	// gw is the JSON gateway (gateway.go), nil with
	// --enable-grpc-gateway=false.
	gw *gateway
	// metricsHTTP serves /metrics and /health on --listen-metrics-urls,
	// each of metricsListeners (TLS ones already wrapped).
	metricsHTTP      *http.Server
	metricsListeners []net.Listener
	// clientConns tracks the client listeners' connections (see closeAll).
	clientConns []*trackedListener
	listeners   []net.Listener
	wg          sync.WaitGroup
	stopOnce    sync.Once
}

// Start opens the member's storage, binds its listeners and starts serving.
// It returns once the member is ready (storage open, listeners bound) and
// has told systemd so (READY=1, when run under Type=notify). cfg must have
// passed Validate.
func Start(cfg Config, opts Options, logger *slog.Logger) (_ *Server, err error) {
	s := &Server{cfg: cfg, opts: opts, logger: logger, metrics: newMetrics(cfg.Metrics)}
	s.metrics.reg.MustRegister(featureCollector(cfg.FeatureGates))
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()
	// The TLS files are read first: a bad one stops the member before
	// it touches its data dir.
	if s.cfg.clientTLS() {
		if s.clientTLS, _, err = s.cfg.tlsSide(clientSide).configs(&s.cfg, logger); err != nil {
			return nil, err
		}
	}
	if s.peerTLS, s.peerDialTLS, err = peerTLSConfigs(&s.cfg, logger); err != nil {
		return nil, err
	}
	if err := discoverCluster(&s.cfg, logger); err != nil {
		return nil, err
	}
	if err := s.openStorage(); err != nil {
		return nil, err
	}
	if err := s.listen(); err != nil {
		return nil, err
	}
	s.serve()
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		logger.Warn("could not notify systemd", "err", err)
	}
	return s, nil
}

// openStorage opens the data dir and the node on it: a restart when the
// data dir holds a member, a new member of a new cluster otherwise.
func (s *Server) openStorage() error {
	cfg := &s.cfg
	if err := os.MkdirAll(cfg.DataDir, dataDirMode); err != nil {
		return fmt.Errorf("--data-dir %s: %w", cfg.DataDir, err)
	}
	// The WAL's fsyncs feed etcd_disk_wal_fsync_duration_seconds.
	fsys := timeSyncs(wal.OSFS(cfg.DataDir), node.WALDir, walObserver{
		sync: func(d time.Duration) { s.metrics.fsync.Observe(d.Seconds()) },
		write: func(d time.Duration, n int) {
			s.metrics.walWrite.Observe(d.Seconds())
			s.metrics.walWriteBytes.Add(float64(n))
		},
	})
	id, err := resolveIdentity(context.Background(), cfg, fsys, s.peerDialTLS, s.logger)
	if err != nil {
		return err
	}
	if !id.restart && !id.join {
		if err := writeToken(cfg.DataDir, cfg.InitialClusterToken); err != nil {
			return fmt.Errorf("--data-dir %s: %w", cfg.DataDir, err)
		}
	}
	if s.log, err = node.OpenDiskLog(fsys, id.memberID, id.clusterID, wal.Options{}); err != nil {
		return fmt.Errorf("--data-dir %s: %w", cfg.DataDir, err)
	}
	if repaired := s.log.Repaired(); repaired != "" {
		s.logger.Warn("the WAL ended in a torn write (a crash during a write); it was cut off", "repair", repaired)
	}
	memberID, clusterID := s.log.IDs()
	if id.restart {
		if err := checkToken(cfg, clusterID); err != nil {
			return err
		}
	}
	s.logger = s.logger.With("member", node.FormatID(memberID))
	if id.restart {
		s.logger.Info("restarting from the data dir; --initial-* settings are ignored",
			"data-dir", cfg.DataDir, "cluster", node.FormatID(clusterID))
	} else {
		s.logger.Info("starting a new member of a new cluster", "data-dir", cfg.DataDir,
			"cluster", node.FormatID(clusterID), "initial-cluster-token", cfg.InitialClusterToken)
	}
	dbPath := filepath.Join(cfg.DataDir, filepath.FromSlash(node.SnapDir), "db")
	if s.be, err = bolt.Open(dbPath, bolt.Options{}); err != nil {
		return fmt.Errorf("--data-dir %s: %w", cfg.DataDir, err)
	}
	n, err := node.New(node.Config{
		ID:                memberID,
		ClusterID:         clusterID,
		Name:              cfg.Name,
		ClientURLs:        cfg.AdvertiseClientURLs,
		InitialMembers:    id.initial,
		Join:              id.join,
		Log:               s.log,
		Backend:           timedBackend{Backend: s.be, observe: func(d time.Duration) { s.metrics.backendCommit.Observe(d.Seconds()) }},
		ElectionTicks:     int(cfg.ElectionTimeout / cfg.HeartbeatInterval),
		HeartbeatTicks:    1,
		TickMillis:        cfg.HeartbeatInterval.Milliseconds(),
		MaxTxnOps:         int(cfg.MaxTxnOps),
		MaxRequestBytes:   int(cfg.MaxRequestBytes),
		SnapshotCount:     int(cfg.SnapshotCount),
		QuotaBackendBytes: cfg.QuotaBackendBytes,
		MaxLearners:       int(cfg.MaxLearners),
		AuthTokenTTLTicks: max(1, int64(time.Duration(cmp.Or(cfg.AuthTokenTTL, 300))*time.Second/cfg.HeartbeatInterval)),
		SkipReconfigCheck: !cfg.StrictReconfigCheck,
		StartMillis:       time.Now().UnixMilli(),
		Logger:            raftLogger{s.logger},
		Stopwatch:         &stopwatch{t: &s.metrics.timings, base: time.Now(), logger: s.logger, slow: cfg.WarningApplyDuration},
	})
	if errors.Is(err, node.ErrIDRemoved) {
		return fmt.Errorf("--data-dir %s holds member %s, which was removed from cluster %s: a removed member never returns as itself (%w). "+
			"To bring this host back into the cluster: etcdctl member add %s --peer-urls=%s, then move this data dir away and start again "+
			"with an empty one and --initial-cluster-state existing",
			cfg.DataDir, node.FormatID(memberID), node.FormatID(clusterID), err, cfg.Name, strings.Join(cfg.InitialAdvertisePeerURLs, ","))
	}
	if err != nil {
		return fmt.Errorf("--data-dir %s: %w", cfg.DataDir, err)
	}
	if id.restart {
		if err := checkRestartedName(cfg, n); err != nil {
			return err
		}
	}
	s.metrics.serverID.WithLabelValues(node.FormatID(memberID)).Set(1)
	s.metrics.setLocal(node.FormatID(memberID))
	s.metrics.quotaBytes.Set(float64(s.quotaBytes()))
	s.tr = newTransport(memberID, clusterID, s.quotaBytes(), cfg.HeartbeatInterval, s.peerDialTLS, s.logger, s.metrics)
	s.loop = newLoop(n, s.be, s.tr, s.logger, s.metrics, cfg.HeartbeatInterval)
	s.loop.seed = id.seed
	s.loop.publishTimeout = 5*time.Second + 2*cfg.ElectionTimeout // etcd's request timeout
	s.loop.clientURLs = cfg.AdvertiseClientURLs
	if s.loop.auth, err = newAuthenticator(*cfg, s.logger, s.metrics); err != nil {
		return err
	}
	if id.restart && len(n.Members()) == 0 && n.Status().Commit == 0 {
		// A member that joined and stopped before it learned anything
		// knows no peer: ask the ones --initial-cluster names again. (A
		// member of a new cluster has its bootstrap entries committed in
		// its own log, and applies them at once.)
		s.loop.seed = s.refetchMembers(cfg, clusterID, s.peerDialTLS)
	}
	s.tr.mux.Handle(membersPath, membersHandler(s.loop))
	return nil
}

// listen binds every peer and client URL, or none.
func (s *Server) listen() error {
	s.clientGRPC = grpc.NewServer(
		grpc.MaxRecvMsgSize(int(s.cfg.MaxRequestBytes)+grpcOverheadBytes),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(math.MaxUint32),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(s.metrics.unaryInterceptor(), s.metrics.grpc.UnaryServerInterceptor(), learnerUnary(s.loop), authUnary(s.loop)),
		grpc.ChainStreamInterceptor(s.metrics.streamInterceptor(), s.metrics.grpc.StreamServerInterceptor(), learnerStream(s.loop), authStream(s.loop)),
	)
	pb.RegisterKVServer(s.clientGRPC, &kvServer{l: s.loop})
	fwd := &forwarder{l: s.loop, tr: s.tr, timeout: 5*time.Second + 2*s.cfg.ElectionTimeout}
	fwd.cluster = &clusterServer{l: s.loop, fwd: fwd}
	fwd.lease = &leaseServer{l: s.loop, fwd: fwd}
	s.tr.mux.HandleFunc("POST "+peerForwardPath, fwd.serveForward)
	pb.RegisterClusterServer(s.clientGRPC, fwd.cluster)
	pb.RegisterMaintenanceServer(s.clientGRPC, &maintenanceServer{l: s.loop, quota: s.quotaBytes()})
	pb.RegisterAuthServer(s.clientGRPC, &authServer{l: s.loop, a: s.loop.auth})
	pb.RegisterWatchServer(s.clientGRPC, &watchServer{l: s.loop, maxRequestBytes: int(s.cfg.MaxRequestBytes), progressInterval: s.cfg.WatchProgressNotifyInterval})
	pb.RegisterLeaseServer(s.clientGRPC, fwd.lease)
	s.metrics.reg.MustRegister(newLoopCollector(s.loop))
	var err error
	if s.self, err = newSelfClient(); err != nil {
		return err
	}
	s.clientGRPC.RegisterService(&lockServiceDesc, &lockServer{c: s.self.cli, act: s.loop.auth.act})
	s.clientGRPC.RegisterService(&electionServiceDesc, &electionServer{c: s.self.cli, act: s.loop.auth.act})
	s.metrics.grpc.InitializeMetrics(s.clientGRPC)
	if s.cfg.EnableGRPCGateway {
		maxBody := gatewayBodyFactor * (int64(s.cfg.MaxRequestBytes) + grpcOverheadBytes)
		if s.gw, err = newGateway(s.self.gatewayL, maxBody, s.metrics.gatewayRefused, s.logger); err != nil {
			return err
		}
	}
	httpHandler := s.newHTTPHandler()
	s.clientHTTP = &http.Server{Handler: httpHandler, ReadHeaderTimeout: 10 * time.Second}
	if s.clientTLS != nil {
		// etcd's split: with --listen-client-http-urls, the client URLs
		// serve gRPC alone. Each server has its own copy of the TLS
		// config: net/http writes to it when a server starts (the
		// handshakes are the TLS listener's, on clientTLS).
		var grpcSide http.Handler = grpcHandlerFunc(s.clientGRPC, httpHandler)
		if s.splitHTTP() {
			grpcSide = s.clientGRPC
			s.clientHTTPSOnly = &http.Server{Handler: httpHandler, TLSConfig: s.clientTLS.Clone(), ReadHeaderTimeout: 10 * time.Second}
		}
		s.clientHTTPS = &http.Server{Handler: grpcSide, TLSConfig: s.clientTLS.Clone(), ReadHeaderTimeout: 10 * time.Second}
	}
	for _, set := range []struct {
		flag string
		urls []string
	}{{"--listen-peer-urls", s.cfg.ListenPeerURLs}, {"--listen-client-urls", s.cfg.ListenClientURLs},
		{"--listen-client-http-urls", s.cfg.ListenClientHTTPURLs}} {
		for _, u := range set.urls {
			l, err := listenURL(u)
			if err != nil {
				return fmt.Errorf("%s %s: %w", set.flag, u, err)
			}
			s.listeners = append(s.listeners, l)
		}
	}
	if len(s.cfg.ListenMetricsURLs) > 0 {
		s.metricsHTTP = &http.Server{Handler: s.newMetricsHandler(), ReadHeaderTimeout: 10 * time.Second}
	}
	for _, u := range s.cfg.ListenMetricsURLs {
		l, err := listenURL(u)
		if err != nil {
			return fmt.Errorf("--listen-metrics-urls %s: %w", u, err)
		}
		if isHTTPS(u) {
			l = tls.NewListener(l, s.clientTLS)
		}
		s.metricsListeners = append(s.metricsListeners, l)
	}
	return nil
}

// quotaBytes is the effective --quota-backend-bytes: 0 means etcd's default.
func (s *Server) quotaBytes() int64 {
	if s.cfg.QuotaBackendBytes == 0 {
		return node.DefaultQuotaBackendBytes
	}
	return s.cfg.QuotaBackendBytes
}

// listenURL binds raw's address: host:port, or for unix:// and unixs://
// the socket file named by the host, as etcd's NewUnixListener does (a
// socket file left by a member that did not stop cleanly is removed;
// unlike etcd, a file there that is not a socket is left alone and the
// start refused).
func listenURL(raw string) (net.Listener, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "unix" || u.Scheme == "unixs" {
		path := unixSocketPath(u)
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a unix socket; not replacing it", path)
		} else if err == nil {
			if err := os.Remove(path); err != nil {
				return nil, err
			}
		}
		return net.Listen("unix", path)
	}
	return net.Listen("tcp", u.Host)
}

// splitHTTP reports whether HTTP has listeners of its own
// (--listen-client-http-urls), which leaves the client URLs to gRPC.
func (s *Server) splitHTTP() bool { return len(s.cfg.ListenClientHTTPURLs) > 0 }

// serve starts the loop and a server on every listener: the first
// len(ListenPeerURLs) are peer listeners, then len(ListenClientURLs) client
// listeners, then the HTTP-only client listeners.
func (s *Server) serve() {
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.loop.run() }()
	s.goServe("in-process client", s.self.l.Addr(), func() error { return s.clientGRPC.Serve(s.self.l) })
	s.goServe("in-process gateway client", s.self.gatewayL.Addr(), func() error { return s.clientGRPC.Serve(s.self.gatewayL) })
	if c := s.newCompactor(); c != nil {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); c.run(s.loop.done) }()
	}
	peers, clients := len(s.cfg.ListenPeerURLs), len(s.cfg.ListenClientURLs)
	for i, l := range s.listeners {
		switch {
		case i < peers:
			if isHTTPS(s.cfg.ListenPeerURLs[i]) {
				l = newTLSListener(l, s.peerTLS, peerSide, s.logger, s.rejected(peerSide))
			}
			s.goServe("peer", l.Addr(), func() error { return s.tr.serve(l) })
		case i < peers+clients:
			s.serveClient(l, s.cfg.ListenClientURLs[i-peers], true, !s.splitHTTP())
		default:
			s.serveClient(l, s.cfg.ListenClientHTTPURLs[i-peers-clients], false, true)
		}
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.logReady() }()
	for i, l := range s.metricsListeners {
		s.goServe("metrics", l.Addr(), func() error { return s.metricsHTTP.Serve(l) })
		s.logger.Info("serving metrics", "url", s.cfg.ListenMetricsURLs[i])
	}
	s.logger.Info("serving peers", "urls", s.cfg.ListenPeerURLs)
}

// logReady logs etcd's lines that tooling waits for, once the member has
// published itself through raft: "ready to serve client requests", then
// how each client URL is served.
func (s *Server) logReady() {
	select {
	case <-s.loop.ready:
	case <-s.loop.done:
		return
	}
	s.logger.Info("ready to serve client requests")
	traffic := "grpc+http"
	if s.splitHTTP() {
		traffic = "grpc"
	}
	for i, u := range s.cfg.ListenClientURLs {
		addr := s.listeners[len(s.cfg.ListenPeerURLs)+i].Addr().String()
		if isHTTPS(u) {
			s.logger.Info("serving client traffic securely", "traffic", traffic, "address", addr)
		} else {
			s.logger.Info("serving client traffic insecurely; this is strongly discouraged!", "traffic", traffic, "address", addr)
		}
	}
}

// serveClient serves gRPC, HTTP or both on client listener l of URL u,
// where cmux splits gRPC from HTTP as etcd does on one port.
func (s *Server) serveClient(l net.Listener, u string, grpcOn, httpOn bool) {
	traffic := "grpc+http"
	switch {
	case !httpOn:
		traffic = "grpc"
	case !grpcOn:
		traffic = "http"
	}
	tl := &trackedListener{Listener: l, conns: map[net.Conn]struct{}{}}
	s.clientConns = append(s.clientConns, tl)
	m := cmux.New(tl)
	switch {
	case strings.HasPrefix(strings.ToLower(u), "https://"):
		// etcd's embed/serve.go: every connection is TLS, and one
		// server answers gRPC and HTTP on it (what the split leaves).
		srv := s.clientHTTPS
		if !grpcOn {
			srv = s.clientHTTPSOnly
		}
		tlsL := newTLSListener(m.Match(cmux.Any()), s.clientTLS, clientSide, s.logger, s.rejected(clientSide))
		s.goServe("client HTTPS", l.Addr(), func() error { return srv.Serve(tlsL) })
	case !httpOn:
		grpcL := m.Match(cmux.Any())
		s.goServe("client gRPC", l.Addr(), func() error { return s.clientGRPC.Serve(grpcL) })
	case !grpcOn:
		httpL := m.Match(cmux.HTTP1()) // as etcd: an HTTP/2 connection is not served
		s.goServe("client HTTP", l.Addr(), func() error { return s.clientHTTP.Serve(httpL) })
	default:
		grpcL := m.MatchWithWriters(cmux.HTTP2MatchHeaderFieldSendSettings("content-type", "application/grpc"))
		httpL := m.Match(cmux.Any())
		s.goServe("client gRPC", l.Addr(), func() error { return s.clientGRPC.Serve(grpcL) })
		s.goServe("client HTTP", l.Addr(), func() error { return s.clientHTTP.Serve(httpL) })
	}
	s.goServe("client", l.Addr(), m.Serve)
	s.logger.Info("serving clients", "url", u, "traffic", traffic)
}

// rejected counts a connection refused in its TLS handshake on listener.
func (s *Server) rejected(listener string) func(reason string) {
	return func(reason string) { s.metrics.tlsRejected.WithLabelValues(listener, reason).Inc() }
}

func (s *Server) goServe(what string, addr net.Addr, serve func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := serve()
		if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) &&
			!errors.Is(err, grpc.ErrServerStopped) && !errors.Is(err, cmux.ErrListenerClosed) && !errors.Is(err, cmux.ErrServerClosed) {
			s.logger.Error("listener failed", "listener", what, "addr", addr.String(), "err", err)
		}
	}()
}

// Done is closed when the member stopped on its own (storage failed, or it
// was removed); Err then says why.
func (s *Server) Done() <-chan struct{} { return s.loop.done }

// Err is why the member stopped on its own, once Done is closed.
func (s *Server) Err() error { return s.loop.err }

// ID and ClusterID are the member's identity.
func (s *Server) ID() uint64        { return s.tr.self }
func (s *Server) ClusterID() uint64 { return s.tr.clusterID }

// Stop shuts the member down: new client requests are refused, those in
// flight get up to gracefulStopWait to finish, then the loop, the peers and
// the storage are closed. Every write it acknowledged is already durable.
func (s *Server) Stop() error {
	var err error
	s.stopOnce.Do(func() {
		if _, nerr := daemon.SdNotify(false, daemon.SdNotifyStopping); nerr != nil {
			s.logger.Warn("could not notify systemd", "err", nerr)
		}
		s.handOverLeadership()
		// The member's own client first: its streams (a lease keep-alive
		// stream, Observe's watches) would hold the graceful stop.
		if err := s.self.close(); err != nil {
			s.logger.Warn("could not close the member's in-process client", "err", err)
		}
		if s.gw != nil {
			s.gw.endStreams() // the JSON gateway's streams, for the same reason
		}
		stopped := make(chan struct{})
		go func() { s.clientGRPC.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(gracefulStopWait):
			s.clientGRPC.Stop()
		}
		err = s.closeAll()
		s.logger.Info("stopped")
	})
	return err
}

// handOverLeadership moves leadership to the most caught-up follower
// before a leader stops, and waits (up to two election timeouts) for it to
// take over, so the cluster goes on without waiting for an election.
func (s *Server) handOverLeadership() {
	wait := 2 * s.cfg.ElectionTimeout
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var target uint64
	err := s.loop.exec(ctx, func(n *node.Node) {
		if target = n.TransferTarget(); target != 0 {
			n.TransferLeadership(target)
		}
	})
	if err != nil || target == 0 {
		return
	}
	for ctx.Err() == nil {
		var lead uint64
		if s.loop.exec(ctx, func(n *node.Node) { lead = n.Lead() }) != nil {
			return
		}
		if lead != 0 && lead != s.ID() {
			s.logger.Info("handed leadership over before stopping", "leader", node.FormatID(lead))
			return
		}
		time.Sleep(s.cfg.HeartbeatInterval)
	}
	s.logger.Warn("leadership was not handed over before stopping", "target", node.FormatID(target), "waited", wait)
}

// closeAll closes whatever was opened, in the reverse order.
func (s *Server) closeAll() error {
	var errs []error
	if s.self != nil {
		errs = append(errs, s.self.close())
	}
	if s.clientHTTP != nil {
		errs = append(errs, ignoreClosed(s.clientHTTP.Close()))
	}
	if s.clientHTTPS != nil {
		errs = append(errs, ignoreClosed(s.clientHTTPS.Close()))
	}
	if s.clientHTTPSOnly != nil {
		errs = append(errs, ignoreClosed(s.clientHTTPSOnly.Close()))
	}
	if s.gw != nil {
		errs = append(errs, s.gw.close())
	}
	if s.metricsHTTP != nil {
		errs = append(errs, ignoreClosed(s.metricsHTTP.Close()))
	}
	for _, l := range slices.Concat(s.listeners, s.metricsListeners) {
		errs = append(errs, ignoreClosed(l.Close()))
	}
	// A client connection cmux is still matching (connected, no request
	// yet) belongs to no server that would close it, and cmux waits for
	// it: close what is left.
	for _, tl := range s.clientConns {
		tl.closeAll()
	}
	if s.loop != nil {
		close(s.loop.stop) // a loop that already ended on its own ignores it
	}
	if s.clientGRPC != nil {
		s.clientGRPC.Stop()
	}
	s.wg.Wait()
	if s.tr != nil {
		s.tr.stop()
	}
	if s.log != nil {
		errs = append(errs, s.log.Close())
	}
	if s.be != nil {
		errs = append(errs, s.be.Close())
	}
	return errors.Join(errs...)
}

func ignoreClosed(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// trackedListener remembers its open connections, so that stopping can
// close those that no server has taken over yet.
type trackedListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	l.conns[tc] = struct{}{}
	l.mu.Unlock()
	return tc, nil
}

func (l *trackedListener) closeAll() {
	l.mu.Lock()
	conns := make([]net.Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// trackedConn leaves its listener's set when closed.
type trackedConn struct {
	net.Conn
	l    *trackedListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
