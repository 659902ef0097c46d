package e2e_test

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The seeds' membership procedures, with real etcdctl 3.7.3 against real
// `plumb node serve` processes: add a member and start it with the
// environment member add printed (ETCD_INITIAL_CLUSTER_STATE=existing);
// remove a follower and the leader; replace a failed member (remove, wipe,
// add, start); add a learner, then promote it.

const joinTimeout = 30 * time.Second

// memberAdded parses `etcdctl member add`'s output: the new member's ID
// and the ETCD_* lines it prints for starting it, unquoted, as an
// environment file would give them.
func memberAdded(t *testing.T, out string) (id string, env []string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "Member "); ok {
			id = strings.TrimSpace(strings.SplitN(rest, " added", 2)[0])
		}
		if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "ETCD_") {
			env = append(env, k+"="+strings.Trim(v, `"`))
		}
	}
	if id == "" || len(env) != 4 || !slices.Contains(env, "ETCD_INITIAL_CLUSTER_STATE=existing") {
		t.Fatalf("member add printed %q: want the new member's ID and its four ETCD_ lines", out)
	}
	return id, env
}

// memberID returns the ID member list gives m, "" when m is not listed.
func memberID(t *testing.T, bin string, eps []string, m *member) string {
	t.Helper()
	for _, line := range strings.Split(ctl(t, bin, eps, "member", "list"), "\n") {
		if strings.Contains(line, ", "+m.peerURL()+", ") || strings.Contains(line, ", "+m.peerURL()+",") {
			return strings.SplitN(line, ",", 2)[0]
		}
	}
	return ""
}

// waitExit waits for m's process to end on its own (a removed member
// stops) and returns what it logged.
func (c *cluster) waitExit(m *member, timeout time.Duration) string {
	c.t.Helper()
	m.mu.Lock()
	done := m.done
	m.mu.Unlock()
	select {
	case <-done:
	case <-time.After(timeout):
		m.mu.Lock()
		_ = m.cmd.Process.Signal(syscall.SIGQUIT)
		m.mu.Unlock()
		time.Sleep(2 * time.Second)
		b, _ := os.ReadFile(m.logPath)
		c.t.Fatalf("%s is still running %v later:\n%s", m.name, timeout, tail(b, 30000))
	}
	m.mu.Lock()
	m.cmd = nil
	m.mu.Unlock()
	b, _ := os.ReadFile(m.logPath)
	return string(b)
}

// waitRead waits until a serializable get of key on m returns want.
func waitRead(t *testing.T, bin string, m *member, key, want string) {
	t.Helper()
	deadline := time.Now().Add(joinTimeout)
	for {
		cmd := exec.Command(bin, "--endpoints", m.endpoint(), "get", key, "--consistency=s", "--print-value-only")
		out, err := cmd.Output()
		if err == nil && strings.TrimSpace(string(out)) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never served %s=%s: got %q, %v", m.name, key, want, out, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// without returns c.members without m.
func (c *cluster) without(m *member) {
	c.members = slices.DeleteFunc(c.members, func(x *member) bool { return x == m })
}

func TestEtcdctlMemberAddAndRemove(t *testing.T) {
	bin := etcdctl(t)
	c := newCluster(t, 3)
	waitPublished(t, c)
	for i := range 20 {
		ctl(t, bin, c.endpoints(), "put", fmt.Sprintf("before-%d", i), "v")
	}

	// Add a fourth member and start it as the seed does.
	n4 := c.newMember("n4", "127.0.0.4")
	out := ctl(t, bin, c.endpoints(), "member", "add", "n4", "--peer-urls="+n4.peerURL())
	id4, env := memberAdded(t, out)
	if !strings.Contains(out, "added to cluster") || !slices.Contains(env, "ETCD_NAME=n4") {
		t.Fatalf("member add printed %q", out)
	}
	n4.joinEnv = env
	c.members = append(c.members, n4)
	c.start(n4)
	waitRead(t, bin, n4, "before-19", "v")
	ctl(t, bin, []string{n4.endpoint()}, "put", "via-n4", "yes")
	waitRead(t, bin, c.members[0], "via-n4", "yes")
	list := ctl(t, bin, c.endpoints(), "member", "list")
	if want := fmt.Sprintf("%s, started, n4, %s, %s, false", id4, n4.peerURL(), n4.clientURL()); !strings.Contains(list, want) {
		t.Fatalf("member list lacks %q:\n%s", want, list)
	}

	// Remove a follower: it stops, and the others go on.
	lead, _ := c.waitLeader(startTimeout)
	var f *member
	for _, m := range c.members {
		if m != lead && m != n4 {
			f = m
			break
		}
	}
	fid := memberID(t, bin, c.endpoints(), f)
	out = ctl(t, bin, c.endpointsExcept(f), "member", "remove", fid)
	if !strings.Contains(out, "Member "+fmt.Sprintf("%16s", fid)+" removed from cluster") {
		t.Fatalf("member remove printed %q", out)
	}
	start := time.Now()
	log := c.waitExit(f, 60*time.Second)
	t.Logf("the removed member exited %v after the remove", time.Since(start))
	if !strings.Contains(log, "removed from the cluster") {
		t.Fatalf("the removed member's log does not say it was removed:\n%s", tail([]byte(log), 2048))
	}
	c.without(f)
	ctl(t, bin, c.endpoints(), "put", "after-remove", "yes")

	// Its data dir will not start again as a member.
	restart := plumbCommand(c.args(f), nil)
	if b, err := restart.CombinedOutput(); err == nil || !strings.Contains(string(b), "was removed from cluster") {
		t.Fatalf("a removed member's data dir started again (err %v):\n%s", err, tail(b, 2048))
	}

	// Remove the leader: a new leader takes over, and writes go on.
	lead, _ = c.waitLeader(startTimeout)
	lid := memberID(t, bin, c.endpoints(), lead)
	ctl(t, bin, c.endpointsExcept(lead), "member", "remove", lid)
	c.waitExit(lead, 10*time.Second)
	c.without(lead)
	c.waitLeader(startTimeout)
	ctl(t, bin, c.endpoints(), "put", "after-leader-removed", "yes")
	if n := strings.Count(strings.TrimSpace(ctl(t, bin, c.endpoints(), "member", "list")), "\n") + 1; n != 2 {
		t.Fatalf("%d members left, want 2", n)
	}
}

func TestEtcdctlReplaceMemberAndLearner(t *testing.T) {
	bin := etcdctl(t)
	c := newCluster(t, 3)
	waitPublished(t, c)
	ctl(t, bin, c.endpoints(), "put", "k", "v1")

	// n3 fails for good: remove it, wipe its data dir, add it back, start.
	n3 := c.members[2]
	old := memberID(t, bin, c.endpoints(), n3)
	c.kill(n3)
	c.waitLeader(startTimeout) // n3 may have led
	ctl(t, bin, c.endpointsExcept(n3), "member", "remove", old)
	if err := os.RemoveAll(n3.dataDir); err != nil {
		t.Fatal(err)
	}
	id, env := memberAdded(t, ctl(t, bin, c.endpointsExcept(n3), "member", "add", "n3", "--peer-urls="+n3.peerURL()))
	if id == old {
		t.Fatalf("the replaced member got its old ID %s back", id)
	}
	n3.joinEnv = env
	c.start(n3)
	waitRead(t, bin, n3, "k", "v1")
	ctl(t, bin, c.endpoints(), "put", "k", "v2")
	waitRead(t, bin, n3, "k", "v2")

	// A learner: it serves serializable reads only, until promoted.
	n4 := c.newMember("n4", "127.0.0.4")
	out := ctl(t, bin, c.endpoints(), "member", "add", "n4", "--peer-urls="+n4.peerURL(), "--learner")
	lid, env := memberAdded(t, out)
	n4.joinEnv = env
	c.members = append(c.members, n4)
	c.start(n4)
	waitRead(t, bin, n4, "k", "v2")
	code, _, stderr := ctlOutcome(t, bin, []string{n4.endpoint()}, "put", "k", "from-learner")
	if code == 0 || !strings.Contains(stderr, "rpc not supported for learner") {
		t.Fatalf("a put on the learner: exit %d, %q", code, stderr)
	}
	deadline := time.Now().Add(joinTimeout)
	for {
		code, stdout, stderr := ctlOutcome(t, bin, c.endpointsExcept(n4), "member", "promote", lid)
		if code == 0 {
			if !strings.Contains(stdout, "promoted in cluster") {
				t.Fatalf("member promote printed %q", stdout)
			}
			break
		}
		if !strings.Contains(stderr, "in sync with leader") || time.Now().After(deadline) {
			t.Fatalf("member promote: exit %d, %q", code, stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	deadline = time.Now().Add(joinTimeout)
	for {
		code, _, stderr := ctlOutcome(t, bin, []string{n4.endpoint()}, "put", "k", "from-promoted")
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a put on the promoted member: %q", stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitRead(t, bin, c.members[0], "k", "from-promoted")
	// The leader that promoted it counted it, as etcd's does.
	var promotes float64
	for _, m := range c.members {
		if !m.running() {
			continue
		}
		_, mfs := scrape(t, m.clientURL()+"/metrics")
		for _, mm := range mfs["etcd_server_learner_promote_successes"].GetMetric() {
			promotes += mm.GetCounter().GetValue()
		}
	}
	if promotes != 1 {
		t.Errorf("etcd_server_learner_promote_successes sums to %v over the members, want 1", promotes)
	}

	// A member removed while it was down never applies its removal: when
	// it comes back, its peers tell it (410 Gone) and it stops.
	n2 := c.members[1]
	id2 := memberID(t, bin, c.endpoints(), n2)
	c.stop(n2)
	c.waitLeader(startTimeout)
	ctl(t, bin, c.endpointsExcept(n2), "member", "remove", id2)
	c.start(n2)
	if log := c.waitExit(n2, 20*time.Second); !strings.Contains(log, "permanently removed from the cluster") {
		t.Fatalf("the member removed while down did not hear of it:\n%s", tail([]byte(log), 4096))
	}
	c.without(n2)
	ctl(t, bin, c.endpoints(), "put", "k", "after")
}

// TestJoinRefusals: a member started with --initial-cluster-state existing
// that the cluster does not know, or whose --initial-cluster does not match
// the cluster's membership, refuses to start and says what to do.
func TestJoinRefusals(t *testing.T) {
	bin := etcdctl(t)
	c := newCluster(t, 3)
	waitPublished(t, c)
	n4 := c.newMember("n4", "127.0.0.4")
	initial := c.initialCluster() + ",n4=" + n4.peerURL()
	n4.joinEnv = []string{"ETCD_NAME=n4", "ETCD_INITIAL_CLUSTER=" + initial,
		"ETCD_INITIAL_ADVERTISE_PEER_URLS=" + n4.peerURL(), "ETCD_INITIAL_CLUSTER_STATE=existing"}
	run := func(what string) string {
		t.Helper()
		cmd := plumbCommand(c.args(n4), n4.joinEnv)
		b, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("%s: the member started:\n%s", what, tail(b, 2048))
		}
		return string(b)
	}
	if out := run("never added"); !strings.Contains(out, "Add this member first: etcdctl member add n4") {
		t.Fatalf("a member that was never added:\n%s", tail([]byte(out), 2048))
	}
	ctl(t, bin, c.endpoints(), "member", "add", "n4", "--peer-urls="+n4.peerURL(), "--learner")
	n4.joinEnv[1] = "ETCD_INITIAL_CLUSTER=" + c.members[0].name + "=" + c.members[0].peerURL() + ",n4=" + n4.peerURL()
	if out := run("a partial --initial-cluster"); !strings.Contains(out, "member count is unequal") {
		t.Fatalf("an --initial-cluster without every member:\n%s", tail([]byte(out), 2048))
	}
	if _, err := os.Stat(n4.dataDir + "/member/wal"); err == nil {
		t.Fatal("a refused join left a WAL behind: the next start would take it for a member")
	}
}
