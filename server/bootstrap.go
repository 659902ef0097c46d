package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/plumbdb/plumb/node"
	"github.com/plumbdb/plumb/node/wal"
)

// identity is who a member is: its ID, its cluster's, and (for a new
// cluster) the initial members every member computes alike.
type identity struct {
	memberID, clusterID uint64
	initial             []node.Member // empty on a restart
	restart             bool
	// join: a member added to a running cluster, starting with an empty
	// log (see join.go); seed is the membership the cluster gave it, for
	// its transport until its node has applied a membership of its own.
	join bool
	seed []node.Member
}

// resolveIdentity works out the member's identity as etcd does. A data dir
// that holds a WAL means a restart: the identity is the WAL's and every
// --initial-* setting is ignored (the cluster's membership is replicated
// state, and member update may have changed it since). Otherwise the IDs
// are derived from --initial-cluster and --initial-cluster-token, so every
// member of a new cluster computes the same ones; or, with
// --initial-cluster-state existing, they come from the running cluster
// (joinIdentity, over peerTLS to https:// peers).
func resolveIdentity(ctx context.Context, cfg *Config, fsys wal.FS, peerTLS *tls.Config, logger *slog.Logger) (identity, error) {
	exists, err := wal.Exists(fsys, node.WALDir)
	if err != nil {
		return identity{}, fmt.Errorf("--data-dir %s: %w", cfg.DataDir, err)
	}
	if exists {
		return identity{restart: true}, nil
	}
	if cfg.InitialClusterState == ClusterStateExisting {
		return joinIdentity(ctx, cfg, peerTLS, logger)
	}
	urls, ok := cfg.InitialCluster[cfg.Name]
	if !ok {
		return identity{}, fmt.Errorf("--initial-cluster has no member named %q (--name): add %s=%s to it",
			cfg.Name, cfg.Name, firstOr(cfg.InitialAdvertisePeerURLs, "http://HOST:2380"))
	}
	if !sameURLSet(urls, cfg.InitialAdvertisePeerURLs) {
		return identity{}, fmt.Errorf("--initial-cluster has %s=%v but --initial-advertise-peer-urls is %v: they must be the same URLs",
			cfg.Name, urls, cfg.InitialAdvertisePeerURLs)
	}
	names := make([]string, 0, len(cfg.InitialCluster))
	for name := range cfg.InitialCluster {
		names = append(names, name)
	}
	sort.Strings(names)
	id := identity{}
	var ids []uint64
	for _, name := range names {
		m := node.Member{ID: node.MemberID(cfg.InitialCluster[name], cfg.InitialClusterToken, ""), Name: name,
			PeerURLs: slices.Clone(cfg.InitialCluster[name])}
		if slices.Contains(ids, m.ID) {
			return identity{}, fmt.Errorf("--initial-cluster: members %q and another have the same peer URLs", name)
		}
		ids = append(ids, m.ID)
		id.initial = append(id.initial, m)
		if name == cfg.Name {
			id.memberID = m.ID
		}
	}
	id.clusterID = node.ClusterID(ids)
	return id, nil
}

// checkRestartedName refuses a data dir that belongs to another member of
// the cluster (a copy mistake): etcd would happily start as that member.
func checkRestartedName(cfg *Config, n *node.Node) error {
	m, ok := n.Member(n.ID())
	if !ok || m.Name == "" || m.Name == cfg.Name {
		return nil
	}
	return fmt.Errorf("%w: --data-dir %s holds member %s (%q) of cluster %s, but --name is %q: "+
		"point --data-dir at %s's own data dir, or set --name %s",
		node.ErrDataDirMismatch, cfg.DataDir, node.FormatID(m.ID), m.Name, node.FormatID(n.ClusterID()), cfg.Name, cfg.Name, m.Name)
}

// tokenFile records, beside the WAL, the --initial-cluster-token the member
// was bootstrapped with. It is not etcd's: etcd starts from a stale data
// dir of an earlier cluster and only its peers refuse it; plumb refuses at
// start, with what to do.
const tokenFile = "member/cluster-token"

// writeToken records the token of a new member, durably, before its WAL
// exists: a crash in between leaves no WAL, so the next start bootstraps
// again and writes it again.
func writeToken(dataDir, token string) error {
	path := filepath.Join(dataDir, filepath.FromSlash(tokenFile))
	if err := os.MkdirAll(filepath.Dir(path), dataDirMode); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(token + "\n")
	return errors.Join(werr, f.Sync(), f.Close())
}

// checkToken refuses a restart whose --initial-cluster-token is not the
// one the data dir was bootstrapped with: the data dir is from another
// cluster. A data dir without the file (an interrupted bootstrap) passes.
func checkToken(cfg *Config, clusterID uint64) error {
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, filepath.FromSlash(tokenFile)))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--data-dir %s: %w", cfg.DataDir, err)
	}
	if recorded := strings.TrimSuffix(string(b), "\n"); recorded != cfg.InitialClusterToken {
		return fmt.Errorf("%w: --data-dir %s holds a member of cluster %s, bootstrapped with --initial-cluster-token %q, "+
			"but --initial-cluster-token is %q: the data dir is from another cluster. To join the new cluster, "+
			"remove the data dir; to restart the old member, set --initial-cluster-token %q",
			node.ErrDataDirMismatch, cfg.DataDir, node.FormatID(clusterID), recorded, cfg.InitialClusterToken, recorded)
	}
	return nil
}

func sameURLSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}
