package e2e_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
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

// plumbctlArgs puts --endpoints before a "--", after which every argument
// is a command's (watch and lock run one).
func plumbctlArgs(endpoints []string, args []string) []string {
	at := slices.Index(args, "--")
	if at < 0 {
		at = len(args)
	}
	return slices.Insert(slices.Clone(args), at, "--endpoints", strings.Join(endpoints, ","))
}

// plumbctlRun runs plumb's client and returns its exit code, stdout and
// stderr; it fails the test only if plumb could not run.
func plumbctlRun(t *testing.T, endpoints []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(plumbBin, plumbctlArgs(endpoints, args)...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("plumb %s: %v", strings.Join(args, " "), err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// plumbctlQuiet is how long a client that must wait is watched before it
// is taken to wait.
const plumbctlQuiet = 1500 * time.Millisecond

// bgPlumbctl is plumb's client running in the background (watch,
// keep-alive, lock, elect), its stdout read line by line as it comes.
type bgPlumbctl struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr strings.Builder // read once the process exited
	lines  chan string
	exited chan struct{}
}

func startPlumbctl(t *testing.T, endpoints []string, args ...string) *bgPlumbctl {
	t.Helper()
	p := &bgPlumbctl{t: t, name: "plumb " + strings.Join(args, " "), lines: make(chan string, 64), exited: make(chan struct{})}
	p.cmd = exec.Command(plumbBin, plumbctlArgs(endpoints, args)...)
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		_ = p.cmd.Wait() // its status is read from ProcessState
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// next returns the next line the client prints, waiting up to 10 s.
func (p *bgPlumbctl) next(what string) string {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			<-p.exited
			p.t.Fatalf("%s: %s ended (%v) without printing a line; stderr: %s", what, p.name, p.cmd.ProcessState, p.stderr.String())
		}
		return l
	case <-time.After(10 * time.Second):
		p.t.Fatalf("%s: %s printed nothing within 10s", what, p.name)
	}
	return ""
}

// expect reads the next lines and fails the test unless they are want.
func (p *bgPlumbctl) expect(what string, want ...string) {
	p.t.Helper()
	var got []string
	for range want {
		got = append(got, p.next(what))
	}
	if !slices.Equal(got, want) {
		p.t.Fatalf("%s: %s printed %q, want %q", what, p.name, got, want)
	}
}

// silent fails the test if the client prints or ends within plumbctlQuiet.
func (p *bgPlumbctl) silent(what string) {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		p.t.Fatalf("%s: %s printed %q (open %v) while it should wait", what, p.name, l, ok)
	case <-time.After(plumbctlQuiet):
	}
}

// exit waits up to 10 s for the client to end, and returns its exit code
// and stderr; lines it had not been asked for fail the test.
func (p *bgPlumbctl) exit(what string) (code int, stderr string) {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.t.Fatalf("%s: %s still runs after 10s", what, p.name)
	}
	for l := range p.lines {
		p.t.Errorf("%s: %s printed %q more", what, p.name, l)
	}
	return p.cmd.ProcessState.ExitCode(), p.stderr.String()
}

// interrupt sends SIGINT, on which lock and elect let go, and expects a
// clean exit.
func (p *bgPlumbctl) interrupt(what string) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		p.t.Fatal(err)
	}
	if code, stderr := p.exit(what); code != 0 {
		p.t.Errorf("%s: %s exited %d after SIGINT: %s", what, p.name, code, stderr)
	}
}

// TestPlumbClientWatch: plumb kv watch against a 3-member plumb cluster:
// a prefix from a past revision replays the history, with the previous
// values, then prints the writes as they come; a command runs for each
// event of a key with etcdctl's variables; JSON; a compacted start ends
// the watch (exit 5); interactive mode with a progress request, ended by
// its stdin (exit 3).
func TestPlumbClientWatch(t *testing.T) {
	c := newCluster(t, 3)
	eps := c.endpoints()
	cli := c.client()
	ctx := ctxT(t)
	put := func(k, v string) int64 {
		t.Helper()
		resp, err := cli.Put(ctx, k, v)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}
	del := func(k string) int64 {
		t.Helper()
		resp, err := cli.Delete(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}
	first := put("w/a", "1")
	put("w/b", "2")
	now := del("w/a")

	prefix := startPlumbctl(t, eps, "kv", "watch", "--prefix", "w/", "--rev", fmt.Sprint(first), "--prev-kv")
	prefix.expect("the replay", "PUT", "w/a", "1", "PUT", "w/b", "2", "DELETE", "w/a", "1", "w/a", "")
	script := `echo "$ETCD_WATCH_REVISION $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE"`
	command := startPlumbctl(t, []string{c.follower().endpoint()}, "kv", "watch", "w/c", "--rev", fmt.Sprint(now+1), "--", "sh", "-c", script)
	rev := put("w/c", "3 4")
	// ETCD_WATCH_REVISION is the response's revision: the store's, if the
	// watch caught up from the history, so nothing is written until the
	// command has run.
	command.expect("the command's watch", "PUT", "w/c", "3 4", fmt.Sprintf(`%d "PUT" "w/c" "3 4"`, rev))
	put("other", "x")
	del("w/b")
	prefix.expect("the writes as they come", "PUT", "w/c", "3 4", "DELETE", "w/b", "2", "w/b", "")

	inJSON := startPlumbctl(t, eps, "kv", "watch", "w/c", "-w", "json", "--rev", fmt.Sprint(rev))
	if l := inJSON.next("watch -w json"); !strings.HasPrefix(l, `{"Header":{"cluster_id":`) || !strings.Contains(l, `"value":"MyA0"`) {
		t.Errorf("watch -w json printed %s, want the event of w/c as etcdctl prints it", l)
	}

	if _, err := cli.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := plumbctlRun(t, eps, "kv", "watch", "w/", "--prefix", "--rev", fmt.Sprint(first))
	want := "watch was canceled (etcdserver: mvcc: required revision has been compacted)\nError: watch is canceled by the server\n"
	if code != 5 || stdout != "" || stderr != want {
		t.Errorf("watch from a compacted revision: exit %d, stdout %q, stderr %q; want 5 and %q", code, stdout, stderr, want)
	}

	interactive := startPlumbctl(t, eps, "kv", "watch", "-i")
	last := del("other")
	if _, err := fmt.Fprintf(interactive.stdin, "watch w/i --rev %d\n", last+1); err != nil {
		t.Fatal(err)
	}
	last = put("w/i", "x")
	interactive.expect("watch -i, a watch line", "PUT", "w/i", "x")
	if _, err := io.WriteString(interactive.stdin, "progress\n"); err != nil {
		t.Fatal(err)
	}
	interactive.expect("watch -i, a progress line", fmt.Sprintf("progress notify: %d", last))
	interactive.stdin.Close()
	if code, stderr := interactive.exit("watch -i once stdin ends"); code != 3 || stderr != "Error: error reading watch request line: EOF\n" {
		t.Errorf("watch -i once stdin ended: exit %d, stderr %q; want 3 and etcdctl's EOF error", code, stderr)
	}
}

// TestPlumbClientLeaseLockElect: plumb's lease, lock and elect against a
// 3-member plumb cluster, through a follower where the server forwards
// (keep-alive and time-to-live go to the leader): a lease granted, a key
// put with it, its TTL and keys, renewed once, listed, revoked with its
// key, then gone; a keep-alive that ends when its lease is revoked; lock
// with a command (its status is the lock's) and two lockers, the second
// waiting for the first; an election, observed, with a second candidate
// elected when the first resigns.
func TestPlumbClientLeaseLockElect(t *testing.T) {
	c := newCluster(t, 3)
	waitPublished(t, c)
	f := []string{c.follower().endpoint()}
	eps := c.endpoints()

	m := regexp.MustCompile(`^lease ([0-9a-f]{16}) granted with TTL\(60s\)\n$`).FindStringSubmatch(plumbctl(t, f, "lease", "grant", "60"))
	if m == nil {
		t.Fatal("lease grant 60 did not print a lease granted with TTL(60s)")
	}
	id := m[1]
	if got := plumbctl(t, f, "kv", "put", "p/k", "v", "--lease", id); got != "OK\n" {
		t.Fatalf("kv put --lease %s printed %q", id, got)
	}
	ttl := plumbctl(t, f, "lease", "timetolive", id, "--keys")
	m = regexp.MustCompile(`^lease ` + id + ` granted with TTL\(60s\), remaining\((\d+)s\), attached keys\(\[p/k\]\)\n$`).FindStringSubmatch(ttl)
	left := -1
	if m != nil {
		left, _ = strconv.Atoi(m[1])
	}
	if left < 50 || left > 60 {
		t.Errorf("lease timetolive %s --keys printed %q, want 50 to 60 s left and p/k", id, ttl)
	}
	if got := plumbctl(t, eps, "lease", "list"); !strings.HasPrefix(got, "found ") || !strings.Contains(got, "\n"+id+"\n") {
		t.Errorf("lease list printed %q, want %s among the leases", got, id)
	}
	for _, tc := range []struct{ args, want []string }{
		{[]string{"lease", "keep-alive", "--once", id}, []string{"lease " + id + " keepalived with TTL(60)"}},
		{[]string{"lease", "revoke", id}, []string{"lease " + id + " revoked"}},
		{[]string{"kv", "get", "p/k"}, nil},
		{[]string{"lease", "timetolive", id}, []string{"lease " + id + " already expired"}},
	} {
		want := strings.Join(append(tc.want, ""), "\n")
		if len(tc.want) == 0 {
			want = ""
		}
		if got := plumbctl(t, f, tc.args...); got != want {
			t.Errorf("plumb %s printed %q, want %q", strings.Join(tc.args, " "), got, want)
		}
	}
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"lease", "keep-alive", "--once", id}, 2, "Error: etcdserver: requested lease not found\n"},
		{[]string{"lease", "revoke", id}, 1, "Error: failed to revoke lease (etcdserver: requested lease not found)\n"},
	} {
		if code, _, stderr := plumbctlRun(t, f, tc.args...); code != tc.code || stderr != tc.stderr {
			t.Errorf("plumb %s of a revoked lease: exit %d, stderr %q; want %d and %q", strings.Join(tc.args, " "), code, stderr, tc.code, tc.stderr)
		}
	}
	testPlumbKeepAlive(t, c, f)
	testPlumbLock(t, c, f)
	testPlumbElect(t, c, f)
}

// testPlumbKeepAlive: keep-alive prints the first renewal at once, and
// ends when the lease is revoked (its next renewal, 2 s later at a TTL of
// 6 s, finds it gone).
func testPlumbKeepAlive(t *testing.T, c *cluster, eps []string) {
	cli := c.client()
	lease, err := cli.Grant(ctxT(t), 6)
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%016x", lease.ID)
	ka := startPlumbctl(t, eps, "lease", "keep-alive", id)
	ka.expect("keep-alive", "lease "+id+" keepalived with TTL(6)")
	if _, err := cli.Revoke(ctxT(t), lease.ID); err != nil {
		t.Fatal(err)
	}
	ka.expect("keep-alive of a revoked lease", "lease "+id+" expired or revoked.")
	if code, stderr := ka.exit("keep-alive of a revoked lease"); code != 0 {
		t.Errorf("keep-alive of a revoked lease: exit %d, stderr %q", code, stderr)
	}
}

func testPlumbLock(t *testing.T, c *cluster, f []string) {
	code, out, stderr := plumbctlRun(t, f, "lock", "L", "--ttl", "7", "--", "sh", "-c", `echo "$ETCD_LOCK_KEY $ETCD_LOCK_REV"; exit 3`)
	if !regexp.MustCompile(`^L/[0-9a-f]+ [1-9][0-9]*\n$`).MatchString(out) || code != 3 || stderr != "Error: exit status 3\n" {
		t.Errorf("lock L -- CMD: exit %d, stdout %q, stderr %q; want the command's 3 and the lock's key and revision", code, out, stderr)
	}
	key := regexp.MustCompile(`^L/[0-9a-f]+$`)
	holder := startPlumbctl(t, f, "lock", "L")
	if k := holder.next("lock L"); !key.MatchString(k) || holder.next("lock L's value") != "" {
		t.Fatalf("lock L printed %q, want the lock's key and its empty value", k)
	}
	waiter := startPlumbctl(t, c.endpoints(), "lock", "L", "--", "echo", "second")
	waiter.silent("a second lock L while the first holds it")
	holder.interrupt("the holder")
	waiter.expect("the second lock L once the first let go", "second")
	if code, stderr := waiter.exit("the second lock L"); code != 0 {
		t.Errorf("the second lock L: exit %d, stderr %q", code, stderr)
	}
}

func testPlumbElect(t *testing.T, c *cluster, f []string) {
	leaderKey := regexp.MustCompile(`^E/[0-9a-f]+$`)
	first := startPlumbctl(t, f, "elect", "E", "p1")
	k1 := first.next("elect E p1")
	if !leaderKey.MatchString(k1) || first.next("elect E p1's value") != "p1" {
		t.Fatalf("elect E p1 printed key %q", k1)
	}
	observer := startPlumbctl(t, c.endpoints(), "elect", "-l", "E")
	observer.expect("elect -l E", k1, "p1")
	second := startPlumbctl(t, c.endpoints(), "elect", "E", "p2")
	second.silent("a second candidate while the first leads")
	first.interrupt("the first leader")
	k2 := second.next("the second candidate once the first resigned")
	if !leaderKey.MatchString(k2) || k2 == k1 || second.next("the second candidate's value") != "p2" {
		t.Fatalf("the second candidate printed key %q (the first's was %q)", k2, k1)
	}
	observer.expect("elect -l E after the resign", k2, "p2")
	second.interrupt("the second leader")
	observer.interrupt("the observer")
}
