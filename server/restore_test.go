package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// saveSnapshot writes what etcdctl snapshot save writes: the stream's
// bytes, the db followed by its sha256.
func saveSnapshot(t *testing.T, cli *clientv3.Client, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := cli.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// restoreOne is the RestoreConfig of a one-member cluster like oneMember's.
func restoreOne(file string, cfg Config) RestoreConfig {
	return RestoreConfig{
		SnapshotPath: file, DataDir: cfg.DataDir, Name: cfg.Name,
		InitialCluster: cfg.InitialCluster, InitialClusterToken: cfg.InitialClusterToken,
		InitialAdvertisePeerURLs: cfg.InitialAdvertisePeerURLs,
	}
}

// TestRestore: a snapshot restored into a new data dir starts as a member
// of a new cluster (its own ID, a new token) that holds every key with its
// revisions, answers at the same revision, and takes writes after it.
func TestRestore(t *testing.T) {
	dir := t.TempDir()
	old := oneMember(t, filepath.Join(dir, "old"))
	s := startT(t, old)
	cli := clientOf(t, old)
	for i := range 300 {
		putRetrying(t, cli, fmt.Sprintf("k/%03d", i%100), fmt.Sprint(i)) // 3 versions of each key
	}
	if _, err := cli.Compact(context.Background(), 150); err != nil {
		t.Fatal(err)
	}
	want, err := cli.Get(context.Background(), "k/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "backup.db")
	saveSnapshot(t, cli, file)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	cfg := oneMember(t, filepath.Join(dir, "restored"))
	cfg.InitialClusterToken = "restored"
	if err := Restore(restoreOne(file, cfg), quietLogger()); err != nil {
		t.Fatal(err)
	}
	r := startT(t, cfg)
	defer r.Stop()
	if r.ClusterID() == s.ClusterID() || r.ID() == s.ID() {
		t.Fatalf("the restored member is %x of cluster %x, the old one %x of %x: want a new cluster", r.ID(), r.ClusterID(), s.ID(), s.ClusterID())
	}
	rcli := clientOf(t, cfg)
	var got *clientv3.GetResponse
	for range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		got, err = rcli.Get(ctx, "k/", clientv3.WithPrefix())
		cancel()
		if err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got.Header.Revision != want.Header.Revision || fmt.Sprint(got.Kvs) != fmt.Sprint(want.Kvs) {
		t.Fatalf("restored: revision %d, %d keys; want revision %d, %d keys, the same\ngot  %v\nwant %v",
			got.Header.Revision, len(got.Kvs), want.Header.Revision, len(want.Kvs), got.Kvs, want.Kvs)
	}
	if _, err := rcli.Get(context.Background(), "k/000", clientv3.WithRev(100)); err == nil || !strings.Contains(err.Error(), "compacted") {
		t.Fatalf("a read below the compaction the snapshot holds: %v, want compacted", err)
	}
	put, err := rcli.Put(context.Background(), "after", "x")
	if err != nil || put.Header.Revision != want.Header.Revision+1 {
		t.Fatalf("a put after the restore: %v, %v; want revision %d", put, err, want.Header.Revision+1)
	}
	members, err := rcli.MemberList(context.Background())
	if err != nil || len(members.Members) != 1 || members.Members[0].ID != r.ID() {
		t.Fatalf("member list of the restored cluster: %v, %v; want only itself", members, err)
	}
}

// TestRestoreRefuses: a snapshot file that is truncated, corrupted or has
// no checksum, a data dir that is not empty, and flags that do not name
// the member are refused with etcdutl's errors, and nothing is written.
func TestRestoreRefuses(t *testing.T) {
	dir := t.TempDir()
	src := oneMember(t, filepath.Join(dir, "src"))
	s := startT(t, src)
	cli := clientOf(t, src)
	putRetrying(t, cli, "k", "v")
	good := filepath.Join(dir, "good.db")
	saveSnapshot(t, cli, good)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, content []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	corrupt := append([]byte(nil), b...)
	corrupt[len(corrupt)/2] ^= 0xff
	badSum := append([]byte(nil), b...)
	badSum[len(badSum)-1] ^= 0x01
	raw, err := os.ReadFile(filepath.Join(src.DataDir, "member", "snap", "db"))
	if err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(dir, "full")
	if err := os.MkdirAll(full, 0o700); err != nil {
		t.Fatal(err)
	}
	write("full/somefile", []byte("x"))

	for _, tc := range []struct {
		name   string
		file   string
		edit   func(*RestoreConfig)
		errHas string
	}{
		{"truncated", write("truncated.db", b[:len(b)-100]), nil, ErrSnapshotNoHash.Error()},
		{"truncated to a page", write("page.db", b[:4096+sha256.Size]), nil, "expected sha256"},
		{"a byte flipped", write("corrupt.db", corrupt), nil, "expected sha256"},
		{"a bad checksum", write("badsum.db", badSum), nil, "expected sha256"},
		{"a db without its checksum", write("raw.db", raw), nil, ErrSnapshotNoHash.Error()},
		{"no such file", filepath.Join(dir, "absent.db"), nil, "no such file"},
		{"a data dir that is not empty", good, func(c *RestoreConfig) { c.DataDir = full }, "not empty"},
		{"a name not in --initial-cluster", good, func(c *RestoreConfig) { c.Name = "other" }, "no member named"},
		{"other peer URLs", good, func(c *RestoreConfig) { c.InitialAdvertisePeerURLs = []string{"http://127.0.0.1:1"} }, "must be the same"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := oneMember(t, filepath.Join(dir, "out-"+strings.ReplaceAll(tc.name, " ", "-")))
			rc := restoreOne(tc.file, cfg)
			if tc.edit != nil {
				tc.edit(&rc)
			}
			before, _ := os.ReadDir(dir)
			err := Restore(rc, quietLogger())
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("Restore: %v, want an error with %q", err, tc.errHas)
			}
			after, _ := os.ReadDir(dir)
			if len(after) != len(before) {
				t.Fatalf("a refused restore left %d entries in %s, there were %d", len(after), dir, len(before))
			}
			if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) && rc.DataDir == cfg.DataDir {
				t.Fatalf("a refused restore made the data dir %s", cfg.DataDir)
			}
		})
	}

	// --skip-hash-check takes the db copied from a data dir.
	cfg := oneMember(t, filepath.Join(dir, "skip"))
	rc := restoreOne(write("raw2.db", raw), cfg)
	rc.SkipHashCheck = true
	if err := Restore(rc, quietLogger()); err != nil {
		t.Fatalf("--skip-hash-check of a db copied from a data dir: %v", err)
	}
	r := startT(t, cfg)
	defer r.Stop()
	putRetrying(t, clientOf(t, cfg), "k2", "v2")
	got, err := clientOf(t, cfg).Get(context.Background(), "k")
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "v" {
		t.Fatalf("the key of the restored db: %v, %v", got, err)
	}
}
