package e2e_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// linkAs makes a link named name to plumb's binary, in dir.
func linkAs(t *testing.T, dir, name string) string {
	t.Helper()
	link := filepath.Join(dir, name)
	if err := os.Symlink(plumbBin, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// runBin runs bin with args, in the test's environment without PLUMB_*
// and ETCD_* variables, and returns its exit code and output; it is killed
// after startTimeout.
func runBin(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := plumbCommand(args, nil)
	cmd.Path, cmd.Args[0] = bin, bin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A command that does not end (a member started by mistake) is killed.
	timer := time.AfterFunc(startTimeout, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// TestBinaryByName: plumb's binary through links named etcd and etcdctl.
// `etcd --version` prints etcd's lines (the same keys, in the same order,
// as etcd 3.7.3's) with the API version plumb speaks; `etcd FLAGS` is a
// member (etcd's flags, single-dash too, as etcd's flag parsing takes
// them) that logs etcd's ready line; `etcdctl` with etcdctl's global flags
// before the command puts and gets through it, prints etcdctl's version
// lines, and refuses a command plumb's client does not cover, naming it.
func TestBinaryByName(t *testing.T) {
	dir := t.TempDir()
	etcd, etcdctlLink := linkAs(t, dir, "etcd"), linkAs(t, dir, "etcdctl")

	code, out, errOut := runBin(t, etcd, "--version")
	if code != 0 {
		t.Fatalf("etcd --version: exit %d: %s", code, errOut)
	}
	keys := func(s string) []string {
		var ks []string
		for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
			ks = append(ks, strings.SplitN(line, ":", 2)[0])
		}
		return ks
	}
	if !strings.HasPrefix(out, "etcd Version: 3.7.0\n") || !strings.Contains(out, "\nplumb Version: ") {
		t.Errorf("etcd --version:\n%s", out)
	}
	if ref := os.Getenv("PLUMB_ETCD_REF_DIR"); ref != "" {
		_, want, _ := runBin(t, filepath.Join(ref, "etcd"), "--version")
		if got := keys(out); strings.Join(got[:len(got)-1], "|") != strings.Join(keys(want), "|") {
			t.Errorf("etcd --version keys %q, etcd 3.7.3's %q", got, keys(want))
		}
	}
	if code, plumbOut, _ := runBin(t, plumbBin, "--version"); code != 0 || plumbOut != out {
		t.Errorf("plumb --version (exit %d) differs from etcd --version:\n%s", code, plumbOut)
	}

	ip := "127.0.0.1"
	m := &member{name: "byname", ip: ip, peerPort: freePort(t, ip), clientPort: freePort(t, ip),
		dataDir: filepath.Join(dir, "byname.etcd"), logPath: filepath.Join(dir, "byname.log")}
	logf, err := os.Create(m.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := plumbCommand([]string{"-name", m.name, "-data-dir", m.dataDir,
		"--listen-client-urls", m.clientURL(), "--advertise-client-urls", m.clientURL(),
		"--listen-peer-urls", m.peerURL(), "--initial-advertise-peer-urls", m.peerURL(),
		"--initial-cluster", m.name + "=" + m.peerURL()}, nil)
	cmd.Path, cmd.Args[0] = etcd, etcd
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(memberStopTimeout):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	waitLog(t, m, "ready to serve client requests", startTimeout)

	ep := "--endpoints=" + m.endpoint()
	if code, out, errOut := runBin(t, etcdctlLink, ep, "--dial-timeout", "3s", "put", "k", "v"); code != 0 || out != "OK\n" {
		t.Errorf("etcdctl put: exit %d, %q %s", code, out, errOut)
	}
	if code, out, errOut := runBin(t, etcdctlLink, "get", "k", ep); code != 0 || out != "k\nv\n" {
		t.Errorf("etcdctl get: exit %d, %q %s", code, out, errOut)
	}
	if code, out, _ := runBin(t, etcdctlLink, "version"); code != 0 || !strings.HasPrefix(out, "etcdctl version: 3.7.0\nAPI version: 3.7\n") {
		t.Errorf("etcdctl version: exit %d, %q", code, out)
	}
	for _, tc := range []struct{ args, want string }{
		{"txn", "etcdctl txn: plumb's client does not cover this command"},
		{"snapshot save x.db", "etcdctl snapshot save: plumb's client does not cover this command"},
	} {
		code, _, errOut := runBin(t, etcdctlLink, append([]string{ep}, strings.Fields(tc.args)...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("etcdctl %s: exit %d, %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}
