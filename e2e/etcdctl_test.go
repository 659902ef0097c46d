package e2e_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// etcdctl returns the path of real etcdctl 3.7, built by the reference
// tool. Without it the test skips, unless PLUMB_REQUIRE_ETCD_REF=1 (CI).
func etcdctl(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PLUMB_ETCD_REF_DIR")
	if dir == "" {
		out, err := exec.Command("../../shared/tools/etcd-ref").Output()
		if err != nil {
			missing(t, fmt.Sprintf("../../shared/tools/etcd-ref could not build etcd's binaries: %v", err))
		}
		dir = strings.TrimSpace(string(out))
	}
	path := filepath.Join(dir, "etcdctl")
	if _, err := os.Stat(path); err != nil {
		missing(t, fmt.Sprintf("no etcdctl at %s: %v", path, err))
	}
	return path
}

func missing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("PLUMB_REQUIRE_ETCD_REF") == "1" {
		t.Fatal(why)
	}
	t.Skip(why + " (set PLUMB_REQUIRE_ETCD_REF=1 to make this a failure)")
}

// ctl runs etcdctl against endpoints, as the seeds' commands do (with
// their ETCDCTL_API=3, which etcdctl 3.7 only warns about on stderr), and
// returns what it printed on stdout.
func ctl(t *testing.T, bin string, endpoints []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--endpoints", strings.Join(endpoints, ",")}, args...)...)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("etcdctl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// TestEtcdctl runs the seeds' etcdctl commands, unchanged, against a
// 3-member plumb cluster: put, get, get --prefix, del, member list,
// endpoint health, endpoint status -w table; then the seeds' IP-change
// procedure: a member restarts on a new address and the operator runs
// member update.
func TestEtcdctl(t *testing.T) {
	bin := etcdctl(t)
	c := newCluster(t, 3)
	eps := c.endpoints()
	expect := func(got, want, what string) {
		t.Helper()
		if got != want {
			t.Errorf("etcdctl %s printed %q, want %q", what, got, want)
		}
	}
	expect(ctl(t, bin, eps, "put", "foo", "bar"), "OK\n", "put foo bar")
	expect(ctl(t, bin, eps, "get", "foo"), "foo\nbar\n", "get foo")
	ctl(t, bin, eps, "put", "/services/web/1", "10.0.0.1:80")
	ctl(t, bin, eps, "put", "/services/web/2", "10.0.0.2:80")
	expect(ctl(t, bin, eps, "get", "--prefix", "/services/web"),
		"/services/web/1\n10.0.0.1:80\n/services/web/2\n10.0.0.2:80\n", "get --prefix /services/web")
	expect(ctl(t, bin, eps, "get", "--prefix", "--keys-only", "/services"),
		"/services/web/1\n\n/services/web/2\n\n", "get --prefix --keys-only /services")
	expect(ctl(t, bin, eps, "del", "foo"), "1\n", "del foo")
	expect(ctl(t, bin, eps, "get", "foo"), "", "get foo after del")

	waitStarted(t, bin, eps)
	list := ctl(t, bin, eps, "member", "list")
	for _, m := range c.members {
		want := fmt.Sprintf(", started, %s, %s, %s, false", m.name, m.peerURL(), m.clientURL())
		if !strings.Contains(list, want) {
			t.Errorf("member list lacks %q:\n%s", want, list)
		}
	}
	health := ctl(t, bin, eps, "endpoint", "health")
	for _, ep := range eps {
		if !strings.Contains(health, ep+" is healthy") {
			t.Errorf("endpoint health lacks %s:\n%s", ep, health)
		}
	}
	// One row per endpoint, and one of them (only) the leader: the other
	// boolean columns (learner, downgrade) are false everywhere.
	table := ctl(t, bin, eps, "endpoint", "status", "-w", "table")
	if !strings.Contains(table, "ENDPOINT") || !strings.Contains(table, "IS LEADER") || strings.Count(table, " true │") != 1 {
		t.Errorf("endpoint status -w table:\n%s", table)
	}
	for _, ep := range eps {
		if !strings.Contains(table, ep) {
			t.Errorf("endpoint status -w table lacks %s:\n%s", ep, table)
		}
	}
	testIPChange(t, bin, c)
}

func waitStarted(t *testing.T, bin string, eps []string) {
	t.Helper()
	for range 100 {
		if !strings.Contains(ctl(t, bin, eps, "member", "list"), "unstarted") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("members did not publish their names within 5s")
}

// testIPChange is the seeds' procedure for a member whose host got a new
// IP: stop it, start it on the new address with its data dir, and tell the
// cluster with `etcdctl member update <ID> --peer-urls=<new>`.
func testIPChange(t *testing.T, bin string, c *cluster) {
	moved := c.members[2]
	others := []string{c.members[0].endpoint(), c.members[1].endpoint()}
	var id string
	for _, line := range strings.Split(ctl(t, bin, others, "member", "list"), "\n") {
		if strings.Contains(line, ", "+moved.name+", ") {
			id = strings.SplitN(line, ",", 2)[0]
		}
	}
	if id == "" {
		t.Fatalf("no member %s in member list", moved.name)
	}
	c.stop(moved)
	moved.ip = "127.0.0.4"
	moved.peerPort, moved.clientPort = freePort(t, moved.ip), freePort(t, moved.ip)
	c.start(moved)
	out := ctl(t, bin, others, "member", "update", id, "--peer-urls="+moved.peerURL())
	// etcdctl prints the ID as %16x: an ID with a leading zero nibble is
	// padded with a space ("Member  644b10205098d05 updated"), and IDs come
	// from peer URLs with random ports, so one run in 16 has one.
	if want := fmt.Sprintf("Member %16s updated in cluster", id); !strings.Contains(out, want) {
		t.Errorf("member update printed %q", out)
	}
	ctl(t, bin, others, "put", "after-move", "yes")
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := ctl(t, bin, []string{moved.endpoint()}, "get", "after-move", "--consistency=s")
		if got == "after-move\nyes\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the moved member never received a write made after member update: %q", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	want := fmt.Sprintf("%s, started, %s, %s, %s, false", id, moved.name, moved.peerURL(), moved.clientURL())
	for {
		list := ctl(t, bin, others, "member", "list")
		if strings.Contains(list, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member list after the move lacks %q:\n%s", want, list)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
