package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/signal"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/plumbdb/plumb/node"
	"github.com/plumbdb/plumb/node/wal"
)

// etcd's defaults for the v3 discovery client (embed.DefaultDiscovery*),
// used when the Config's field is 0.
const (
	discoveryDialTimeoutDefault      = 2 * time.Second
	discoveryRequestTimeoutDefault   = 5 * time.Second
	discoveryKeepAliveTimeDefault    = 2 * time.Second
	discoveryKeepAliveTimeoutDefault = 6 * time.Second

	// A failed request to the discovery cluster is retried after 2^n
	// seconds, n counting the failures in a row up to
	// discoveryBackoffShiftMax (etcd's maxExponentialRetries: 256s), until
	// the member is stopped, as etcd retries.
	discoveryBackoffShiftMax = 8
)

// The v3 discovery protocol's keys, etcd's: the cluster size under
// /_etcd/registry/<token>/_config/size, each member's "name=peerURLs"
// under /_etcd/registry/<token>/members/<member ID in hex>.
const discoveryPrefix = "/_etcd/registry"

// etcd's v3 discovery errors, with etcd's texts.
var (
	errDiscoveryInvalidURL   = errors.New("discovery: invalid peer URL")
	errDiscoveryBadSizeKey   = errors.New("discovery: size key is bad")
	errDiscoverySizeNotFound = errors.New("discovery: size key not found")
	errDiscoveryFullCluster  = errors.New("discovery: cluster is full")
)

// errConflictBootstrapFlags is etcd 3.7's text for more than one way to
// name the initial members.
const errConflictBootstrapFlags = "multiple discovery or bootstrap flags are set. " +
	"Choose one of \"initial-cluster\", \"discovery-endpoints\" or \"discovery-srv\""

// v2DiscoveryGone is the answer to etcd's v2 discovery settings.
const v2DiscoveryGone = "the v2 discovery protocol (--discovery URL, --discovery-proxy) is not supported: etcd 3.7 removed it too; " +
	"bootstrap through an existing cluster with --discovery-token and --discovery-endpoints (v3 discovery), or by DNS with --discovery-srv"

// discovers reports whether discovery, not --initial-cluster, names the
// initial members.
func (c *Config) discovers() bool { return c.DiscoverySRV != "" || len(c.DiscoveryEndpoints) > 0 }

// validateDiscovery is Validate's rules between the discovery settings
// and --initial-cluster, etcd's where etcd has them.
func (c *Config) validateDiscovery() []error {
	var errs []error
	var set []string
	for _, s := range []struct {
		name string
		on   bool
	}{{"initial-cluster", len(c.InitialCluster) > 0}, {"discovery-srv", c.DiscoverySRV != ""},
		{"discovery-endpoints", len(c.DiscoveryEndpoints) > 0}} {
		if s.on {
			set = append(set, s.name)
		}
	}
	if len(set) > 1 {
		errs = append(errs, &crossError{set, errConflictBootstrapFlags})
	}
	if (c.DiscoveryToken != "") != (len(c.DiscoveryEndpoints) > 0) {
		on := "discovery-endpoints"
		if c.DiscoveryToken != "" {
			on = "discovery-token"
		}
		errs = append(errs, &crossError{[]string{on}, "both --discovery-token and --discovery-endpoints must be set"})
	}
	if c.DiscoverySRVName != "" && c.DiscoverySRV == "" {
		errs = append(errs, &crossError{[]string{"discovery-srv-name"},
			"--discovery-srv-name is set but --discovery-srv is not: the name only suffixes --discovery-srv's records; set --discovery-srv DOMAIN"})
	}
	return errs
}

func parseOptionalList(dst *[]string, raw string) error {
	if raw == "" {
		*dst = nil // the default: no list
		return nil
	}
	return parseList(dst, raw)
}

// checkDomain checks --discovery-srv: a DNS domain such as example.com.
func checkDomain(domain string) error {
	if domain == "" {
		return nil
	}
	if strings.Contains(domain, "://") || strings.ContainsAny(domain, ":/") {
		return fmt.Errorf("%q must be a DNS domain, as in example.com, not a URL or an address", domain)
	}
	if len(domain) > 253 {
		return fmt.Errorf("%q is longer than a DNS name can be (253 characters)", domain)
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(domain, "."), ".") {
		if err := checkLabel(label); err != nil {
			return fmt.Errorf("%q must be a DNS domain, as in example.com: %w", domain, err)
		}
	}
	return nil
}

// checkSRVName checks --discovery-srv-name: one DNS label, the suffix of
// the services _etcd-server-NAME and _etcd-server-ssl-NAME.
func checkSRVName(name string) error {
	if name == "" {
		return nil
	}
	if err := checkLabel(name); err != nil {
		return fmt.Errorf("%q must be one DNS label, as in prod: %w", name, err)
	}
	return nil
}

func checkLabel(label string) error {
	if label == "" || len(label) > 63 {
		return fmt.Errorf("%q: a label has 1 to 63 characters", label)
	}
	for _, c := range label {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%q holds %q: letters, digits, '-' and '_' only", label, c)
		}
	}
	return nil
}

// checkResolver checks --discovery-srv-resolver: the DNS server's IP
// address and port.
func checkResolver(addr string) error {
	if addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || net.ParseIP(host) == nil {
		return fmt.Errorf("%q must be a DNS server's IP address and port, as in 127.0.0.53:53 or [::1]:53", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: the port must be a number from 1 to 65535", addr)
	}
	return nil
}

// checkEndpoints checks --discovery-endpoints: client URLs (http://host:port)
// or host:port, as etcd's client takes them.
func checkEndpoints(endpoints []string) error {
	for _, ep := range endpoints {
		if strings.Contains(ep, "://") {
			if err := checkURL(ep, false); err != nil {
				return err
			}
			continue
		}
		host, port, err := net.SplitHostPort(ep)
		if err != nil || host == "" {
			return fmt.Errorf("%q must be a client URL, as in http://10.0.0.1:2379, or host:port", ep)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("%q: the port must be a number from 1 to 65535", ep)
		}
	}
	return nil
}

// checkDiscoveryToken checks --discovery-token: it is one key's name
// under /_etcd/registry, so a '/' would move the cluster's keys.
func checkDiscoveryToken(token string) error {
	if strings.Contains(token, "/") {
		return fmt.Errorf("%q must not contain '/': the token names one key under %s/", token, discoveryPrefix)
	}
	return nil
}

func checkNotNegative(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("must not be negative (set to %v); 0 means the default", d)
	}
	return nil
}

// discoverCluster runs before the member's identity is worked out, and
// makes discovery's answer look like a static --initial-cluster to it:
// it sets cfg.InitialCluster from DNS SRV records or from the v3
// discovery protocol, and (for v3 discovery, as etcd) sets
// cfg.InitialClusterToken to the discovery token, on a restart too so that
// the data dir's recorded token matches. A data dir that already holds a
// member skips discovery, as in etcd: the cluster exists.
//
// --discovery-srv-resolver is installed here as net.DefaultResolver, for
// the whole process: the peer transport dials the host names of peer URLs
// (which DNS discovery makes from the SRV targets) through it.
//
// v3 discovery waits until every member has registered, however long
// that takes; Start has no context, so SIGTERM and SIGINT end the wait
// here (the command line's handler only runs once Start returns).
func discoverCluster(cfg *Config, logger *slog.Logger) error {
	if cfg.DiscoverySRVResolver != "" {
		net.DefaultResolver = newDNSResolver(cfg.DiscoverySRVResolver)
		logger.Info("resolving host names with the DNS server of --discovery-srv-resolver", "resolver", cfg.DiscoverySRVResolver)
	}
	if cfg.DiscoveryToken != "" {
		cfg.InitialClusterToken = cfg.DiscoveryToken
	}
	if !cfg.discovers() {
		return nil
	}
	exists, err := wal.Exists(wal.OSFS(cfg.DataDir), node.WALDir)
	if err != nil {
		return fmt.Errorf("--data-dir %s: %w", cfg.DataDir, err)
	}
	if exists {
		logger.Warn("discovery is skipped since the data dir already holds a member", "data-dir", cfg.DataDir)
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var initial map[string][]string
	switch {
	case cfg.DiscoverySRV != "":
		initial, err = srvCluster(ctx, net.DefaultResolver, cfg, logger)
	case cfg.InitialClusterState == ClusterStateNew:
		initial, err = joinDiscovery(ctx, cfg, logger)
	default: // etcd: a member joining an existing cluster is only itself
		initial = map[string][]string{cfg.Name: slices.Clone(cfg.InitialAdvertisePeerURLs)}
	}
	if err != nil {
		return err
	}
	cfg.InitialCluster = initial
	return nil
}

// joinDiscovery registers this member with the discovery cluster and
// returns the new cluster's members once --discovery-token's size have
// registered: etcd 3.7's v3discovery.JoinCluster. This member's ID in the
// key is the one it will have: its peer URLs hashed with the token.
func joinDiscovery(ctx context.Context, cfg *Config, logger *slog.Logger) (map[string][]string, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.DiscoveryEndpoints,
		DialTimeout:          cmp.Or(cfg.DiscoveryDialTimeout, discoveryDialTimeoutDefault),
		DialKeepAliveTime:    cmp.Or(cfg.DiscoveryKeepAliveTime, discoveryKeepAliveTimeDefault),
		DialKeepAliveTimeout: cmp.Or(cfg.DiscoveryKeepAliveTimeout, discoveryKeepAliveTimeoutDefault),
		Context:              ctx,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("failed to join discovery cluster (%w)", err)
	}
	defer cli.Close()
	d := &discovery{
		c:              cli,
		token:          cfg.DiscoveryToken,
		self:           node.MemberID(cfg.InitialAdvertisePeerURLs, cfg.DiscoveryToken, ""),
		requestTimeout: cmp.Or(cfg.DiscoveryRequestTimeout, discoveryRequestTimeoutDefault),
		logger:         logger.With("discovery-token", cfg.DiscoveryToken, "discovery-endpoints", strings.Join(cfg.DiscoveryEndpoints, ",")),
	}
	value := formatInitialCluster(map[string][]string{cfg.Name: cfg.InitialAdvertisePeerURLs})
	str, err := d.join(ctx, value)
	if err != nil {
		return nil, fmt.Errorf("failed to join discovery cluster (%w)%s", err, d.advice(err, cfg))
	}
	d.logger.Info("discovery joined cluster successfully", "cluster", str)
	m, err := parseInitialClusterSyntax(str)
	if err != nil {
		return nil, fmt.Errorf("failed to join discovery cluster (%w): %q: %v", errDiscoveryInvalidURL, str, err)
	}
	if hasDuplicateURL(m) {
		return nil, fmt.Errorf("discovery cluster %s has duplicate url", str)
	}
	if err := checkInitialCluster(m); err != nil {
		return nil, fmt.Errorf("the discovery cluster's members %s are not a cluster plumb can start: %w", str, err)
	}
	return m, nil
}

// advice says what to do about a discovery error that will not go away
// by itself.
func (d *discovery) advice(err error, cfg *Config) string {
	switch {
	case errors.Is(err, errDiscoverySizeNotFound):
		return fmt.Sprintf(": set the new cluster's size on the discovery cluster first: etcdctl --endpoints %s put %s <number of members>",
			strings.Join(cfg.DiscoveryEndpoints, ","), d.sizeKey())
	case errors.Is(err, errDiscoveryBadSizeKey):
		return fmt.Sprintf(": %s must hold the number of members, a whole number above 0", d.sizeKey())
	case errors.Is(err, errDiscoveryFullCluster):
		return fmt.Sprintf(": the first members to register under %s/ are the new cluster, and this member (%s, ID %s) is not one of them; "+
			"bootstrap it with a new --discovery-token, or add it to the running cluster with etcdctl member add",
			d.membersPrefix(), cfg.Name, node.FormatID(d.self))
	}
	return ""
}

// discovery is one member's run of the v3 discovery protocol.
type discovery struct {
	c              *clientv3.Client
	token          string
	self           uint64
	requestTimeout time.Duration
	logger         *slog.Logger
	failures       int // requests failed in a row, for the back-off
}

func (d *discovery) sizeKey() string       { return path.Join(discoveryPrefix, d.token, "_config/size") }
func (d *discovery) membersPrefix() string { return path.Join(discoveryPrefix, d.token, "members") }
func (d *discovery) selfKey() string       { return path.Join(d.membersPrefix(), node.FormatID(d.self)) }

// join is etcd's joinCluster: check that the cluster is not full, register,
// check again (others may have registered meanwhile), then wait for the
// rest; the cluster is the first size members by create revision.
func (d *discovery) join(ctx context.Context, value string) (string, error) {
	if _, _, _, err := d.checkCluster(ctx); err != nil {
		return "", err
	}
	if err := d.register(ctx, value); err != nil {
		return "", err
	}
	cls, size, rev, err := d.checkCluster(ctx)
	if err != nil {
		return "", err
	}
	for len(cls.members) < size {
		if err := d.waitPeers(ctx, cls, size, rev); err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			d.logger.Warn("watching the discovery cluster failed; reading it again", "err", err)
			if err := d.backoff(ctx, "watch peers"); err != nil {
				return "", err
			}
			if cls, size, rev, err = d.checkCluster(ctx); err != nil {
				return "", err
			}
		}
	}
	return cls.initialCluster(size), nil
}

// checkCluster reads the size and the registered members, retrying
// failed requests until ctx ends, and answers errDiscoveryFullCluster when
// size members other than this one registered before it.
func (d *discovery) checkCluster(ctx context.Context) (*discoveryMembers, int, int64, error) {
	for {
		size, err := d.size(ctx)
		if errors.Is(err, errDiscoverySizeNotFound) || errors.Is(err, errDiscoveryBadSizeKey) {
			return nil, 0, 0, err
		}
		var cls *discoveryMembers
		var rev int64
		if err == nil {
			cls, rev, err = d.members(ctx)
		}
		if err != nil {
			d.logger.Warn("failed to read the cluster from the discovery service", "err", err)
			if err := d.backoff(ctx, "cluster status check"); err != nil {
				return nil, 0, 0, err
			}
			continue
		}
		d.failures = 0
		self := d.selfKey()
		for i, m := range cls.members {
			if m.key == self {
				break
			}
			if i >= size-1 {
				return cls, size, rev, errDiscoveryFullCluster
			}
		}
		return cls, size, rev, nil
	}
}

func (d *discovery) size(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, d.requestTimeout)
	defer cancel()
	resp, err := d.c.Get(ctx, d.sizeKey())
	if err != nil {
		return 0, err
	}
	if len(resp.Kvs) == 0 {
		return 0, errDiscoverySizeNotFound
	}
	size, err := strconv.ParseInt(string(resp.Kvs[0].Value), 10, 0)
	if err != nil || size <= 0 {
		return 0, errDiscoveryBadSizeKey
	}
	return int(size), nil
}

func (d *discovery) members(ctx context.Context) (*discoveryMembers, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, d.requestTimeout)
	defer cancel()
	resp, err := d.c.Get(ctx, d.membersPrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, err
	}
	cls := &discoveryMembers{prefix: d.membersPrefix()}
	for _, kv := range resp.Kvs {
		d.add(cls, string(kv.Key), string(kv.Value), kv.CreateRevision)
	}
	return cls, resp.Header.Revision, nil
}

func (d *discovery) add(cls *discoveryMembers, key, value string, createRev int64) {
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	if err := cls.add(key, value, createRev); err != nil {
		d.logger.Warn(err.Error(), "memberKey", key, "memberInfo", value)
		return
	}
	d.logger.Info("found peer from discovery service", "memberKey", key, "memberInfo", value)
}

// register puts this member's key, retrying until ctx ends.
func (d *discovery) register(ctx context.Context, value string) error {
	for {
		rctx, cancel := context.WithTimeout(ctx, d.requestTimeout)
		_, err := d.c.Put(rctx, d.selfKey(), value)
		cancel()
		if err == nil {
			d.failures = 0
			d.logger.Info("register member itself successfully", "memberKey", d.selfKey(), "memberInfo", value)
			return nil
		}
		d.logger.Warn("failed to register members itself to the discovery service", "memberKey", d.selfKey(), "err", err)
		if err := d.backoff(ctx, "register member itself"); err != nil {
			return err
		}
	}
}

// waitPeers watches the members' keys from rev+1 until size have
// registered, or the watch fails.
func (d *discovery) waitPeers(ctx context.Context, cls *discoveryMembers, size int, rev int64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.logger.Info("waiting for peers from discovery service", "clusterSize", size, "found-peers", len(cls.members))
	for resp := range d.c.Watch(wctx, d.membersPrefix(), clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if err := resp.Err(); err != nil {
			return err
		}
		for _, ev := range resp.Events {
			d.add(cls, string(ev.Kv.Key), string(ev.Kv.Value), ev.Kv.CreateRevision)
		}
		if len(cls.members) >= size {
			d.logger.Info("found all needed peers from discovery service", "clusterSize", size, "found-peers", len(cls.members))
			return nil
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("the watch ended")
}

// backoff waits 2^failures seconds (at most 2^discoveryBackoffShiftMax),
// or until ctx ends.
func (d *discovery) backoff(ctx context.Context, step string) error {
	d.failures++
	wait := time.Duration(1<<min(d.failures, discoveryBackoffShiftMax)) * time.Second
	d.logger.Warn("retry connecting to discovery service", "reason", step, "backoff", wait)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// discoveryMembers are the registered members, in create revision order.
type discoveryMembers struct {
	prefix  string
	members []discoveryMember
}

type discoveryMember struct {
	key, value string // the registration key and its "name=peerURLs"
	createRev  int64
}

// add is etcd's clusterInfo.add, with its errors.
func (c *discoveryMembers) add(key, value string, createRev int64) error {
	if !strings.HasPrefix(key, c.prefix) {
		return errors.New("invalid peer registry key")
	}
	if !strings.Contains(value, "=") {
		return errors.New("invalid peer info returned from discovery service")
	}
	if slices.ContainsFunc(c.members, func(m discoveryMember) bool { return m.key == key }) {
		return errors.New("found duplicate peer from discovery service")
	}
	c.members = append(c.members, discoveryMember{key, value, createRev})
	// Members registering at the same time can make more than size; the
	// cluster is the first size by create revision.
	sort.SliceStable(c.members, func(i, j int) bool { return c.members[i].createRev < c.members[j].createRev })
	return nil
}

// initialCluster is the first size members, as --initial-cluster.
func (c *discoveryMembers) initialCluster(size int) string {
	var parts []string
	for _, m := range c.members[:min(size, len(c.members))] {
		parts = append(parts, m.value)
	}
	return strings.Join(parts, ",")
}

// formatInitialCluster writes members as etcd's URLsMap.String does: the
// "name=URL" pairs sorted.
func formatInitialCluster(members map[string][]string) string {
	var pairs []string
	for name, urls := range members {
		for _, u := range urls {
			pairs = append(pairs, name+"="+u)
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

func hasDuplicateURL(members map[string][]string) bool {
	seen := map[string]bool{}
	for _, urls := range members {
		for _, u := range urls {
			if seen[u] {
				return true
			}
			seen[u] = true
		}
	}
	return false
}
