package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnixClientURL: a member listens on, and advertises, a unix:// client
// URL beside its http:// one, as etcd does; etcd 3.7.3's etcdctl puts and
// gets through the socket, member list shows the URL, and a restart
// replaces the socket file a killed run left.
func TestUnixClientURL(t *testing.T) {
	bin := etcdctl(t)
	c := &cluster{t: t, token: "e2e-unix", base: t.TempDir()}
	m := c.newMember("n1", "127.0.0.1")
	c.members = append(c.members, m)
	sock := "unix://" + filepath.Join(c.base, "plumb.sock")
	urls := m.clientURL() + "," + sock
	start := func() {
		c.start(m, "--listen-client-urls", urls, "--advertise-client-urls", urls)
		c.waitLeader(startTimeout)
		waitLog(t, m, "ready to serve client requests", startTimeout)
	}
	start()
	t.Cleanup(c.stopAll)

	eps := []string{sock}
	if out := ctl(t, bin, eps, "put", "k", "through-the-socket"); out != "OK\n" {
		t.Fatalf("etcdctl put over %s: %q", sock, out)
	}
	if out := ctl(t, bin, []string{m.endpoint()}, "get", "k", "--print-value-only"); out != "through-the-socket\n" {
		t.Errorf("get over TCP: %q", out)
	}
	if out := ctl(t, bin, eps, "member", "list"); !strings.Contains(out, sock) {
		t.Errorf("member list does not show %s:\n%s", sock, out)
	}

	c.kill(m) // a killed member leaves its socket file behind
	if _, err := os.Stat(strings.TrimPrefix(sock, "unix://")); err != nil {
		t.Fatalf("no socket file left to replace: %v", err)
	}
	start()
	if out := ctl(t, bin, eps, "get", "k", "--print-value-only"); out != "through-the-socket\n" {
		t.Errorf("get over %s after a restart: %q", sock, out)
	}
}
