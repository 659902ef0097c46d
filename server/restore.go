package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/plumbdb/plumb/node"
	"github.com/plumbdb/plumb/node/backend/bolt"
	"github.com/plumbdb/plumb/node/wal"
)

// RestoreConfig is what plumb snapshot restore takes, etcdutl snapshot
// restore's flags.
type RestoreConfig struct {
	SnapshotPath             string
	DataDir                  string // empty: Name + ".etcd", as etcdutl
	Name                     string
	InitialCluster           map[string][]string
	InitialClusterToken      string
	InitialAdvertisePeerURLs []string
	// SkipHashCheck restores a file without the sha256 etcdctl snapshot
	// save appends (a db copied from a data dir), or with a wrong one.
	SkipHashCheck bool
}

// ErrSnapshotNoHash and the checksum mismatch carry etcdutl's messages.
var ErrSnapshotNoHash = errors.New("snapshot missing hash but --skip-hash-check=false")

// Restore builds a data dir for a member of a NEW cluster from a snapshot
// file (etcdctl snapshot save's, or a bbolt db with SkipHashCheck), as
// etcdutl snapshot restore does: the keys keep their revisions, the
// membership is the new cluster's (--initial-cluster, whose IDs derive from
// the peer URLs and the token as at any bootstrap), and the WAL holds that
// membership as committed conf changes, so `plumb node serve` on the data
// dir starts as a member of the new cluster (a restart: --initial-* are
// then ignored). Every member of the new cluster is restored from the same
// file with the same --initial-cluster and token.
//
// Nothing is written unless the file checks out and the data dir is
// absent or empty: the data dir is built beside it and renamed into place
// once complete.
func Restore(cfg RestoreConfig, logger *slog.Logger) error {
	if cfg.DataDir == "" {
		cfg.DataDir = cfg.Name + ".etcd"
	}
	scfg := Config{
		Name: cfg.Name, DataDir: cfg.DataDir, InitialCluster: cfg.InitialCluster,
		InitialClusterToken: cfg.InitialClusterToken, InitialAdvertisePeerURLs: cfg.InitialAdvertisePeerURLs,
		InitialClusterState: ClusterStateNew,
	}
	if err := checkInitialCluster(cfg.InitialCluster); err != nil {
		return fmt.Errorf("--initial-cluster: %w", err)
	}
	if err := checkEmptyDir(cfg.DataDir); err != nil {
		return err
	}
	// The new cluster's IDs, as every one of its members computes them;
	// checked before anything is read or written.
	id, err := resolveIdentity(context.Background(), &scfg, wal.OSFS(cfg.DataDir), nil, logger)
	if err != nil {
		return err
	}
	dbBytes, err := checkSnapshot(cfg.SnapshotPath, cfg.SkipHashCheck)
	if err != nil {
		return err
	}
	parent := filepath.Dir(filepath.Clean(cfg.DataDir))
	if err := os.MkdirAll(parent, dataDirMode); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(cfg.DataDir)+".restoring-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // gone once renamed; left behind only by a failure
	logger.Info("restoring snapshot", "path", cfg.SnapshotPath, "data-dir", cfg.DataDir)
	scfg.DataDir = tmp
	if err := restoreInto(&scfg, id, cfg.SnapshotPath, dbBytes); err != nil {
		return err
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, cfg.DataDir); err != nil {
		return fmt.Errorf("move the restored data dir into place: %w", err)
	}
	if err := syncDir(parent); err != nil {
		return err
	}
	logger.Info("restored snapshot", "path", cfg.SnapshotPath, "data-dir", cfg.DataDir,
		"member", node.FormatID(id.memberID), "cluster", node.FormatID(id.clusterID))
	return nil
}

// checkEmptyDir refuses a data dir that holds anything, with etcdutl's
// message.
func checkEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil || len(entries) > 0 {
		return fmt.Errorf("data-dir %q not empty or could not be read", dir)
	}
	return nil
}

// checkSnapshot reads the whole file and returns how many bytes of it are
// the bbolt db: a file whose length is 32 past a multiple of 512 ends with
// the sha256 of what precedes it (etcd's rule, as its Snapshot sends it),
// which must match unless skipHash.
func checkSnapshot(path string, skipHash bool) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := info.Size()
	hasHash := size%512 == sha256.Size
	switch {
	case !hasHash && !skipHash:
		return 0, ErrSnapshotNoHash
	case !hasHash:
		return size, nil
	case skipHash:
		return size - sha256.Size, nil
	}
	h := sha256.New()
	if _, err := io.CopyN(h, f, size-sha256.Size); err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	want := make([]byte, sha256.Size)
	if _, err := io.ReadFull(f, want); err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	if got := h.Sum(nil); !bytes.Equal(want, got) {
		return 0, fmt.Errorf("expected sha256 %v, got %v", want, got)
	}
	return size - sha256.Size, nil
}

// restoreInto builds the data dir cfg.DataDir: the db, its old cluster's
// state dropped (node.PrepareRestore), then the new member bootstrapped on
// it exactly as `plumb node serve` bootstraps a new member, and its first
// Ready saved: the WAL then holds the new membership as committed conf
// changes.
func restoreInto(cfg *Config, id identity, src string, dbBytes int64) error {
	fsys := wal.OSFS(cfg.DataDir)
	dbPath := filepath.Join(cfg.DataDir, filepath.FromSlash(node.SnapDir), "db")
	if err := copyDB(src, dbPath, dbBytes); err != nil {
		return err
	}
	be, err := bolt.Open(dbPath, bolt.Options{})
	if err != nil {
		return fmt.Errorf("the snapshot is not a usable database: %w", err)
	}
	defer be.Close()
	if err := node.PrepareRestore(be); err != nil {
		return err
	}
	if err := writeToken(cfg.DataDir, cfg.InitialClusterToken); err != nil {
		return err
	}
	log, err := node.OpenDiskLog(fsys, id.memberID, id.clusterID, wal.Options{})
	if err != nil {
		return err
	}
	defer log.Close()
	n, err := node.New(node.Config{
		ID: id.memberID, ClusterID: id.clusterID, Name: cfg.Name,
		InitialMembers: id.initial, Log: log, Backend: be,
		StartMillis: time.Now().UnixMilli(),
	})
	if err != nil {
		return err
	}
	if out := n.Process(); out.Err != nil {
		return out.Err
	}
	if err := n.Flush(); err != nil {
		return err
	}
	return nil
}

// copyDB copies the first n bytes of src, the db, to dst, durably.
func copyDB(src, dst string, n int64) error {
	if err := os.MkdirAll(filepath.Dir(dst), dataDirMode); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.CopyN(out, in, n)
	return errors.Join(err, out.Sync(), out.Close())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
