package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/plumbdb/plumb/node"
)

// Joining a running cluster. After `etcdctl member add`, the new member is
// started with --initial-cluster-state existing, an empty data dir, and the
// --initial-cluster that member add printed. It asks the other members,
// over their peer URLs, for the cluster's ID and membership (GET /members
// on the peer port, etcd's endpoint and layout), finds itself in it by its
// peer URLs, and starts raft with an empty log: the leader sends it the
// log, or a snapshot when the log has been compacted.

// Bounds of the membership fetch.
const (
	membersPath        = "/members"
	clusterIDHeader    = "X-Etcd-Cluster-ID" // etcd's header on its peer endpoints
	membersFetchWait   = 2 * time.Second     // one request to one member
	membersFetchTotal  = 15 * time.Second    // every round over the members, retries included
	membersRetryWait   = 250 * time.Millisecond
	membersBodyMaxByte = 4 << 20 // a membership is a few hundred bytes a member
)

// membersHandler answers GET /members on the peer port: the applied
// membership as a JSON array of etcd's member objects, with the cluster ID
// in etcd's header.
func membersHandler(l *loop) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		var ms []node.Member
		var cid uint64
		if err := l.exec(r.Context(), func(n *node.Node) { ms, cid = n.Members(), n.ClusterID() }); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		if ms == nil {
			ms = []node.Member{}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(clusterIDHeader, node.FormatID(cid))
		_ = json.NewEncoder(w).Encode(ms) // a client that went away is not this member's problem
	})
}

// fetchMembers asks the members at urls for the cluster's ID and
// membership, one after another, round after round, until one answers or
// membersFetchTotal passes. Two members that name different clusters are
// an error: the URLs point at more than one cluster. https:// URLs are
// dialled with peerTLS (the member's peer certificate and CAs).
func fetchMembers(ctx context.Context, urls []string, peerTLS *tls.Config, logger *slog.Logger) (uint64, []node.Member, error) {
	ctx, cancel := context.WithTimeout(ctx, membersFetchTotal)
	defer cancel()
	clients := map[string]*http.Client{
		"tcp":  {Timeout: membersFetchWait, Transport: peerHTTPTransport("tcp", peerTLS)},
		"unix": {Timeout: membersFetchWait, Transport: peerHTTPTransport("unix", peerTLS)},
	}
	var errs []string
	for {
		for _, u := range urls {
			cid, ms, err := fetchMembersFrom(ctx, clients, u)
			if err == nil {
				return cid, ms, nil
			}
			logger.Warn("could not get the cluster's membership from a member; trying the next", "url", u, "err", err)
			errs = append(errs, fmt.Sprintf("%s: %v", u, err))
		}
		select {
		case <-ctx.Done():
			return 0, nil, fmt.Errorf("could not get the cluster's membership from any of %v within %v: %s",
				urls, membersFetchTotal, strings.Join(lastN(errs, len(urls)), "; "))
		case <-time.After(membersRetryWait):
		}
	}
}

func fetchMembersFrom(ctx context.Context, clients map[string]*http.Client, peerURL string) (uint64, []node.Member, error) {
	ep, err := parsePeerURL(peerURL)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep.httpURL(membersPath), nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := clients[ep.network].Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, membersBodyMaxByte))
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	cid, err := strconv.ParseUint(resp.Header.Get(clusterIDHeader), 16, 64)
	if err != nil || cid == 0 {
		return 0, nil, fmt.Errorf("the answer has no cluster ID (%s %q): is this a plumb or etcd peer URL?", clusterIDHeader, resp.Header.Get(clusterIDHeader))
	}
	var ms []node.Member
	if err := json.Unmarshal(body, &ms); err != nil {
		return 0, nil, fmt.Errorf("the membership does not decode: %w", err)
	}
	if len(ms) == 0 {
		return 0, nil, errors.New("the member knows no membership yet")
	}
	return cid, ms, nil
}

func lastN(s []string, n int) []string { return s[max(0, len(s)-n):] }

// joinIdentity works out the identity of a member joining a running
// cluster, as etcd does for --initial-cluster-state existing: every member
// of --initial-cluster must be in the cluster with the same peer URLs and
// no other (etcd's ValidateClusterAndAssignIDs), and this member must be
// one that was added and has never run.
func joinIdentity(ctx context.Context, cfg *Config, peerTLS *tls.Config, logger *slog.Logger) (identity, error) {
	others := otherPeerURLs(cfg)
	if len(others) == 0 {
		return identity{}, fmt.Errorf("--initial-cluster-state is existing but --initial-cluster names no member but this one (%q): "+
			"give it the cluster's members, as `etcdctl member add` prints it (ETCD_INITIAL_CLUSTER)", cfg.Name)
	}
	cid, members, err := fetchMembers(ctx, others, peerTLS, logger)
	if err != nil {
		return identity{}, fmt.Errorf("--initial-cluster-state existing: %w", err)
	}
	id, err := matchJoining(cfg, cid, members)
	if err != nil {
		return identity{}, err
	}
	logger.Info("joining a running cluster", "cluster", node.FormatID(cid), "member", node.FormatID(id.memberID), "members", len(members))
	return id, nil
}

// otherPeerURLs returns the peer URLs --initial-cluster gives the members
// other than this one, in name order.
func otherPeerURLs(cfg *Config) []string {
	names := make([]string, 0, len(cfg.InitialCluster))
	for name := range cfg.InitialCluster {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []string
	for _, name := range names {
		if name != cfg.Name {
			out = append(out, cfg.InitialCluster[name]...)
		}
	}
	return out
}

// refetchMembers is for a member that joined and stopped before it applied
// any membership: it knows no peer to answer the leader. It asks the
// members --initial-cluster names again; without an answer (or with one
// from another cluster) it logs why and starts with no peers, to be
// reached only once a leader's log reaches it some other way.
func (s *Server) refetchMembers(cfg *Config, clusterID uint64, peerTLS *tls.Config) []node.Member {
	others := otherPeerURLs(cfg)
	if len(others) == 0 {
		return nil
	}
	cid, ms, err := fetchMembers(context.Background(), others, peerTLS, s.logger)
	switch {
	case err != nil:
		s.logger.Warn("this member has applied no membership and could not get one from its peers", "err", err)
		return nil
	case cid != clusterID:
		s.logger.Warn("--initial-cluster points at another cluster; not using its membership",
			"their-cluster", node.FormatID(cid), "our-cluster", node.FormatID(clusterID))
		return nil
	}
	return ms
}

// matchJoining checks --initial-cluster against the cluster's membership
// and finds this member in it.
func matchJoining(cfg *Config, cid uint64, members []node.Member) (identity, error) {
	describe := func() string {
		var b strings.Builder
		for i, m := range members {
			if i > 0 {
				b.WriteString(", ")
			}
			name := m.Name
			if name == "" {
				name = "(not started)"
			}
			fmt.Fprintf(&b, "%s %s=%s", node.FormatID(m.ID), name, strings.Join(m.PeerURLs, ","))
		}
		return b.String()
	}
	var self *node.Member
	for i := range members {
		if sameURLSet(members[i].PeerURLs, cfg.InitialAdvertisePeerURLs) {
			self = &members[i]
		}
	}
	if self == nil {
		return identity{}, fmt.Errorf("--initial-cluster-state existing: cluster %s has no member with this member's peer URLs %v (--initial-advertise-peer-urls); "+
			"its members are: %s. Add this member first: etcdctl member add %s --peer-urls=%s",
			node.FormatID(cid), cfg.InitialAdvertisePeerURLs, describe(), cfg.Name, strings.Join(cfg.InitialAdvertisePeerURLs, ","))
	}
	if len(cfg.InitialCluster) != len(members) {
		return identity{}, fmt.Errorf("--initial-cluster-state existing: member count is unequal: --initial-cluster names %d members, cluster %s has %d (%s); "+
			"give --initial-cluster as `etcdctl member add` printed it", len(cfg.InitialCluster), node.FormatID(cid), len(members), describe())
	}
	for name, urls := range cfg.InitialCluster {
		if !slices.ContainsFunc(members, func(m node.Member) bool { return sameURLSet(m.PeerURLs, urls) }) {
			return identity{}, fmt.Errorf("--initial-cluster-state existing: unmatched member while checking PeerURLs: --initial-cluster has %s=%s, "+
				"which is not a member of cluster %s (%s)", name, strings.Join(urls, ","), node.FormatID(cid), describe())
		}
	}
	if self.Name != "" {
		return identity{}, fmt.Errorf("--initial-cluster-state existing: member %s (%q) of cluster %s has run before, and --data-dir %s is empty: "+
			"a member that lost its data must not rejoin as itself (it may have voted and acknowledged writes it no longer has). "+
			"Replace it: etcdctl member remove %s, then etcdctl member add %s --peer-urls=%s, then start it again with an empty data dir",
			node.FormatID(self.ID), self.Name, node.FormatID(cid), cfg.DataDir, node.FormatID(self.ID), cfg.Name, strings.Join(cfg.InitialAdvertisePeerURLs, ","))
	}
	return identity{memberID: self.ID, clusterID: cid, join: true, seed: members}, nil
}
