package server

import "time"

// Config is a member's configuration, resolved from flags, environment
// variables and a config file (see Resolve) and checked by Validate. The
// names are etcd's flags; so are the defaults.
type Config struct {
	Name    string // --name
	DataDir string // --data-dir; default "<name>.etcd"

	ListenPeerURLs           []string // --listen-peer-urls
	ListenClientURLs         []string // --listen-client-urls
	AdvertiseClientURLs      []string // --advertise-client-urls
	InitialAdvertisePeerURLs []string // --initial-advertise-peer-urls
	// ListenClientHTTPURLs is --listen-client-http-urls: client URLs that
	// serve only HTTP (/health, /metrics, the JSON gateway, ...). When any
	// is set, as in etcd, ListenClientURLs serve only gRPC.
	ListenClientHTTPURLs []string

	// InitialCluster is --initial-cluster: member name to its peer URLs.
	// A name may appear more than once, one URL each time (etcd's form
	// "n1=http://a:2380,n1=http://b:2380"); the URLs collect in order.
	InitialCluster      map[string][]string
	InitialClusterState string // --initial-cluster-state: "new" or "existing"
	InitialClusterToken string // --initial-cluster-token

	// DNS discovery (see discovery_srv.go): the initial cluster comes from
	// the SRV records _etcd-server[-NAME]._tcp.DOMAIN, as etcd builds it,
	// instead of --initial-cluster.
	DiscoverySRV     string // --discovery-srv: DOMAIN
	DiscoverySRVName string // --discovery-srv-name: NAME, the records' suffix
	// DiscoverySRVResolver is plumb's --discovery-srv-resolver, HOST:PORT
	// of the DNS server asked instead of /etc/resolv.conf's, for the SRV
	// records and for every host name the member resolves (peer URLs
	// included). "" means the system's resolver.
	DiscoverySRVResolver string

	// v3 discovery (see discovery.go): the members of a new cluster find
	// each other through the keys of an existing cluster, as etcd 3.7's
	// --discovery-token and --discovery-endpoints do. The token is also the
	// new cluster's --initial-cluster-token, as in etcd.
	DiscoveryEndpoints []string // --discovery-endpoints: the existing cluster's client URLs
	DiscoveryToken     string   // --discovery-token
	// The discovery client's timeouts; 0 means etcd's default (2s, 5s, 2s
	// and 6s).
	DiscoveryDialTimeout      time.Duration // --discovery-dial-timeout
	DiscoveryRequestTimeout   time.Duration // --discovery-request-timeout
	DiscoveryKeepAliveTime    time.Duration // --discovery-keepalive-time
	DiscoveryKeepAliveTimeout time.Duration // --discovery-keepalive-timeout

	HeartbeatInterval time.Duration // --heartbeat-interval, in ms on the command line
	ElectionTimeout   time.Duration // --election-timeout, in ms on the command line

	SnapshotCount     uint64 // --snapshot-count
	MaxRequestBytes   uint64 // --max-request-bytes
	MaxTxnOps         uint64 // --max-txn-ops
	QuotaBackendBytes int64  // --quota-backend-bytes; 0 means etcd's default, 2 GiB

	// Automatic compaction (compactor.go): --auto-compaction-mode, periodic
	// or revision, and --auto-compaction-retention, as etcd takes them ("0"
	// or "": off).
	AutoCompactionMode      string
	AutoCompactionRetention string

	// Client TLS (tls.go): an https:// client URL is served with
	// CertFile and KeyFile, reloaded when they change; TrustedCAFile or
	// ClientCertAuth require a client certificate (from TrustedCAFile's
	// CAs, or the system's), as etcd's do.
	CertFile       string // --cert-file
	KeyFile        string // --key-file
	TrustedCAFile  string // --trusted-ca-file
	ClientCertAuth bool   // --client-cert-auth
	// AutoTLS is --auto-tls: without CertFile and KeyFile, an https://
	// client URL is served with a self-signed certificate kept in
	// DataDir/fixtures/client, valid SelfSignedCertValidity years
	// (--self-signed-cert-validity), as etcd makes it.
	AutoTLS                bool
	SelfSignedCertValidity uint64
	// The TLS versions and TLS 1.2 cipher suites accepted, etcd's names
	// ("TLS1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"); "" and none
	// leave them to Go.
	TLSMinVersion string   // --tls-min-version
	TLSMaxVersion string   // --tls-max-version
	CipherSuites  []string // --cipher-suites
	// ClientCRLFile is --client-crl-file: a client certificate whose
	// serial it lists is refused. ClientCertAllowedHostnames is
	// --client-cert-allowed-hostname: a client certificate must be valid
	// for one of them.
	ClientCRLFile              string
	ClientCertAllowedHostnames []string
	// ClientCertFile and ClientKeyFile (--client-cert-file,
	// --client-key-file) are the pair the member presents when it dials
	// another member's client URL (the leader's, for leases); CertFile's
	// when unset.
	ClientCertFile string
	ClientKeyFile  string

	// Peer TLS (tls.go): https:// peer URLs are served with PeerCertFile
	// and PeerKeyFile (or a self-signed pair with PeerAutoTLS), and
	// dialled presenting PeerClientCertFile and PeerClientKeyFile when
	// set, the serving pair otherwise. PeerTrustedCAFile or
	// PeerClientCertAuth require a peer certificate; PeerCertAllowedCNs
	// or PeerCertAllowedHostnames narrow which; PeerCRLFile lists revoked
	// ones. As in etcd, a peer's certificate must also name the address it
	// connects from unless PeerSkipClientSANVerification.
	PeerCertFile                  string   // --peer-cert-file
	PeerKeyFile                   string   // --peer-key-file
	PeerClientCertFile            string   // --peer-client-cert-file
	PeerClientKeyFile             string   // --peer-client-key-file
	PeerTrustedCAFile             string   // --peer-trusted-ca-file
	PeerClientCertAuth            bool     // --peer-client-cert-auth
	PeerAutoTLS                   bool     // --peer-auto-tls
	PeerCertAllowedCNs            []string // --peer-cert-allowed-cn
	PeerCertAllowedHostnames      []string // --peer-cert-allowed-hostname
	PeerCRLFile                   string   // --peer-crl-file
	PeerSkipClientSANVerification bool     // --peer-skip-client-san-verification

	LogLevel string // --log-level: debug, info, warn or error
	// Logger is --logger: zap, etcd's only logger (capnslog is refused as
	// etcd 3.5 and later refuse it); plumb's logs are zap's layout.
	Logger     string
	LogOutputs []string // --log-outputs: default, stderr, stdout, file paths, or systemd/journal alone
	LogFormat  string   // --log-format: json or console

	// FeatureGates is --feature-gates: the gates given, by etcd's names
	// (features.go).
	FeatureGates map[string]bool

	// Metrics is --metrics: basic, or extensive for the gRPC handling
	// time histogram (grpc_server_handling_seconds) too, as etcd's.
	Metrics string
	// ListenMetricsURLs is --listen-metrics-urls: more listeners that
	// serve /metrics and /health only, http:// or https:// (with the
	// client certificate, as etcd's).
	ListenMetricsURLs []string

	// StrictReconfigCheck is --strict-reconfig-check: member add, remove
	// and promote that would leave too few started or reachable voters
	// are refused (see node/reconfig.go).
	StrictReconfigCheck bool
	MaxLearners         uint64 // --max-learners

	// Authentication (auth.go): --auth-token (simple, or jwt with its
	// options), --bcrypt-cost, and --auth-token-ttl in seconds (simple
	// tokens' life without use).
	AuthToken    string
	BcryptCost   uint64
	AuthTokenTTL uint64

	// EnablePprof is --enable-pprof: Go's profiles on the client port at
	// /debug/pprof/, as etcd serves them.
	EnablePprof bool
	// EnableGRPCGateway is --enable-grpc-gateway: etcd's JSON gateway
	// under /v3/ on the client URLs' HTTP side (gateway.go).
	EnableGRPCGateway bool

	// WatchProgressNotifyInterval is --watch-progress-notify-interval: how
	// often a watcher created with progress_notify that had no events gets
	// a progress response. As in etcd, 0 or less means the default, 10
	// minutes, and less than watchProgressIntervalMin is raised to it.
	WatchProgressNotifyInterval time.Duration

	// WarningApplyDuration is --warning-apply-duration: an apply that takes
	// longer is logged and counted in etcd_server_slow_apply_total.
	WarningApplyDuration time.Duration
}

// Cluster states, as --initial-cluster-state spells them.
const (
	ClusterStateNew      = "new"
	ClusterStateExisting = "existing"
)
