package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// srvLookupTimeout bounds the whole of DNS discovery: both SRV lookups and
// the address lookups of every target. The resolver's own timeouts (5s a
// try, as /etc/resolv.conf sets them) apply within it.
const srvLookupTimeout = 30 * time.Second

// newDNSResolver is a resolver that asks the DNS server at addr
// (HOST:PORT) instead of /etc/resolv.conf's, over UDP and TCP alike, as
// --discovery-srv-resolver asks. /etc/hosts is still read first, as the
// system's resolver does.
func newDNSResolver(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

// srvCluster builds the initial cluster from cfg.DiscoverySRV's SRV
// records, as etcd's GetDNSClusterNames does: the targets of
// _etcd-server-ssl[-NAME]._tcp.DOMAIN become https peer URLs and those of
// _etcd-server[-NAME]._tcp.DOMAIN http ones, "target:port" as the record
// writes them. The target that resolves to the address of one of
// --initial-advertise-peer-urls is this member and takes --name; the
// others are named "0", "1", ... in the order of the answer (their names
// do not enter the IDs, and each member publishes its own once it runs).
//
// As in etcd, both kinds of records are used when both are there; the
// https:// members are dialled with the peer TLS settings (tls.go).
//
// plumb differs from etcd in two places, each with an error that says
// what to do: this member's URLs from the records must be
// --initial-advertise-peer-urls as written (etcd resolves both sides,
// plumb's bootstrap compares them as strings); and the records must name
// this member (etcd's own error).
func srvCluster(ctx context.Context, r *net.Resolver, cfg *Config, logger *slog.Logger) (map[string][]string, error) {
	ctx, cancel := context.WithTimeout(ctx, srvLookupTimeout)
	defer cancel()
	suffix := ""
	if cfg.DiscoverySRVName != "" {
		suffix = "-" + cfg.DiscoverySRVName
	}
	domain := cfg.DiscoverySRV
	sslService, service := "etcd-server-ssl"+suffix, "etcd-server"+suffix
	ssl, sslErr := srvMembers(ctx, r, cfg.DiscoverySRVResolver, "https", sslService, cfg.Name, domain, cfg.InitialAdvertisePeerURLs)
	logger.Info("get cluster for etcd-server-ssl SRV", "service-name", sslService, "discovery-srv", domain,
		"found-cluster", ssl, "err", sslErr)
	parts, err := srvMembers(ctx, r, cfg.DiscoverySRVResolver, "http", service, cfg.Name, domain, cfg.InitialAdvertisePeerURLs)
	logger.Info("get cluster for etcd-server SRV", "service-name", service, "discovery-srv", domain,
		"found-cluster", parts, "err", err)
	if len(ssl) == 0 && err != nil {
		return nil, fmt.Errorf("--discovery-srv %s: %w", domain, errors.Join(sslErr, err))
	}
	// As etcd: the https members and the http ones together, the others
	// than this member numbered anew so that no two share a name.
	parts = renumber(append(ssl, parts...), cfg.Name)
	for _, p := range parts {
		logger.Info("got bootstrap from DNS for etcd-server", "node", p)
	}
	m, err := parseInitialClusterSyntax(strings.Join(parts, ","))
	if err != nil {
		return nil, fmt.Errorf("--discovery-srv %s: %w", domain, err)
	}
	urls, ok := m[cfg.Name]
	if !ok {
		return nil, fmt.Errorf("cannot find local etcd member %q in SRV records (_%s._tcp.%s lists %s, and none resolves to "+
			"--initial-advertise-peer-urls %s): add this member's record, or advertise the URL of its record",
			cfg.Name, service, domain, strings.Join(parts, ","), strings.Join(cfg.InitialAdvertisePeerURLs, ","))
	}
	if !sameURLSet(urls, cfg.InitialAdvertisePeerURLs) {
		return nil, fmt.Errorf("--discovery-srv %s: the SRV records give this member (%s) the peer URLs %s, but --initial-advertise-peer-urls is %s; "+
			"plumb compares peer URLs as written, so advertise the records' names: --initial-advertise-peer-urls %s",
			domain, cfg.Name, strings.Join(urls, ","), strings.Join(cfg.InitialAdvertisePeerURLs, ","), strings.Join(urls, ","))
	}
	if err := checkInitialCluster(m); err != nil {
		return nil, fmt.Errorf("--discovery-srv %s: the SRV records give an initial cluster plumb cannot use: %w", domain, err)
	}
	return m, nil
}

// renumber names the "name=URL" entries of members other than self 0, 1,
// ... in order.
func renumber(parts []string, self string) []string {
	out := make([]string, 0, len(parts))
	next := 0
	for _, p := range parts {
		name, u, _ := strings.Cut(p, "=")
		if name != self {
			name = strconv.Itoa(next)
			next++
		}
		out = append(out, name+"="+u)
	}
	return out
}

// asked corrects the server a lookup error names when
// --discovery-srv-resolver is set: Go's resolver names the /etc/resolv.conf
// server it meant to ask, not the one the resolver's Dial reached.
func asked(err error, server string) error {
	var dnsErr *net.DNSError
	if server != "" && errors.As(err, &dnsErr) {
		dnsErr.Server = server
	}
	return err
}

// srvMembers is etcd's srv.GetCluster for one service: the "name=URL"
// entries of its SRV records, or the reason there are none. A record
// whose target does not resolve is skipped; so is one that resolves to
// this member under the other scheme (etcd's scheme mismatch).
func srvMembers(ctx context.Context, r *net.Resolver, server, scheme, service, name, domain string, apurls []string) ([]string, error) {
	self := map[string]string{} // resolved "IP:port" -> advertised peer URL
	for _, raw := range apurls {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, err
		}
		addr, err := resolveTCPAddr(ctx, r, u.Host)
		if err != nil {
			return nil, asked(err, server)
		}
		self[addr] = raw
	}
	_, records, err := r.LookupSRV(ctx, service, "tcp", domain)
	if err != nil {
		return nil, fmt.Errorf("error querying DNS SRV records for _%s %w", service, asked(err, server))
	}
	var parts []string
	tempName := 0
	for _, rec := range records {
		port := strconv.Itoa(int(rec.Port))
		addr, rerr := resolveTCPAddr(ctx, r, net.JoinHostPort(rec.Target, port))
		if rerr != nil {
			err = asked(rerr, server)
			continue
		}
		n := name
		apurl, isSelf := self[addr]
		if !isSelf {
			n = strconv.Itoa(tempName)
			tempName++
		}
		// SRV targets end in a dot; URLs do not.
		urlHost := net.JoinHostPort(strings.TrimSuffix(rec.Target, "."), port)
		if isSelf && !strings.HasPrefix(apurl, scheme+"://") {
			err = fmt.Errorf("bootstrap at %s from DNS for %s has scheme mismatch with expected peer %s", scheme+"://"+urlHost, service, apurl)
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%s://%s", n, scheme, urlHost))
	}
	if len(parts) == 0 {
		if err == nil {
			err = fmt.Errorf("lookup _%s._tcp.%s: no SRV records", service, domain)
		}
		return nil, fmt.Errorf("error querying DNS SRV records for _%s %w", service, err)
	}
	return parts, nil
}

// resolveTCPAddr is net.ResolveTCPAddr("tcp", hostport) on r: a host name
// becomes its first IPv4 address, or its first address when it has no
// IPv4 one, so that a target and an advertised URL compare by address.
func resolveTCPAddr(ctx context.Context, r *net.Resolver, hostport string) (string, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return "", fmt.Errorf("%s: the port must be a number from 0 to 65535", hostport)
	}
	if ip := net.ParseIP(host); ip != nil {
		return net.JoinHostPort(ip.String(), strconv.FormatUint(port, 10)), nil
	}
	ips, err := r.LookupIPAddr(ctx, host)
	if err != nil {
		return "", err
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("lookup %s: no addresses", host)
	}
	ip := ips[0].IP
	for _, a := range ips {
		if a.IP.To4() != nil {
			ip = a.IP
			break
		}
	}
	return net.JoinHostPort(ip.String(), strconv.FormatUint(port, 10)), nil
}
