package e2e_test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// plumbctl runs the binary's own client (plumb kv|member|endpoint) with
// the given endpoints and returns its stdout.
func plumbctl(t *testing.T, endpoints []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(plumbBin, append(args, "--endpoints", strings.Join(endpoints, ","))...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("plumb %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// TestPlumbClient: the binary's own client against a plumb cluster, for
// users without etcdctl (its output is checked byte for byte against
// etcdctl's, against etcd, in cmd/plumb).
func TestPlumbClient(t *testing.T) {
	c := newCluster(t, 3)
	eps := c.endpoints()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"kv", "put", "/lock/owner", "host-a"}, "OK\n"},
		{[]string{"kv", "put", "/lock/epoch", "7"}, "OK\n"},
		{[]string{"kv", "get", "/lock/owner"}, "/lock/owner\nhost-a\n"},
		{[]string{"kv", "get", "--prefix", "/lock/", "--print-value-only"}, "7\nhost-a\n"},
		{[]string{"kv", "del", "--prefix", "/lock/"}, "2\n"},
		{[]string{"kv", "get", "--prefix", "/lock/"}, ""},
	} {
		if got := plumbctl(t, eps, tc.args...); got != tc.want {
			t.Errorf("plumb %s printed %q, want %q", strings.Join(tc.args, " "), got, tc.want)
		}
	}
	waitPublished(t, c)
	list := plumbctl(t, eps, "member", "list")
	for _, m := range c.members {
		if want := fmt.Sprintf(", started, %s, %s, %s, false", m.name, m.peerURL(), m.clientURL()); !strings.Contains(list, want) {
			t.Errorf("plumb member list lacks %q:\n%s", want, list)
		}
	}
	health := plumbctl(t, eps, "endpoint", "health")
	status := plumbctl(t, eps, "endpoint", "status", "-w", "table")
	for _, ep := range eps {
		if !strings.Contains(health, ep+" is healthy") || !strings.Contains(status, ep) {
			t.Errorf("endpoint health or status lacks %s:\n%s\n%s", ep, health, status)
		}
	}
}
