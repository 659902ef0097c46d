package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSnapshotRestoreRefuses: etcdutl's flags and defaults, its errors for a
// file it refuses (exit 1, nothing written) and bad input (exit 2).
func TestSnapshotRestoreRefuses(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.db")
	if err := os.WriteFile(file, []byte("not a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "n1.etcd")
	for _, tc := range []struct {
		args   []string
		code   int
		errHas string
	}{
		{[]string{file, "--data-dir", dataDir}, exitRestoreFailed, "snapshot missing hash but --skip-hash-check=false"},
		{[]string{file, "--data-dir", dataDir, "--skip-hash-check"}, exitRestoreFailed, "not a bbolt database"},
		{[]string{file, "--data-dir", dataDir, "--name", "n1"}, exitRestoreFailed, `no member named "n1"`},
		{[]string{"--data-dir", dataDir}, exitBadInput, "takes one argument"},
		{[]string{file, "--initial-cluster", "n1"}, exitBadInput, "--initial-cluster"},
	} {
		code, out, errOut := plumb(t, append([]string{"snapshot", "restore"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.errHas) {
			t.Errorf("snapshot restore %q: exit %d, want %d with %q\n%s%s", tc.args, code, tc.code, tc.errHas, out, errOut)
		}
		if _, err := os.Stat(dataDir); err == nil {
			t.Fatalf("snapshot restore %q wrote %s", tc.args, dataDir)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("refused restores left %d entries in %s, want only the snapshot file", len(entries), dir)
	}
}
