package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// plumbBin is the binary under test, built once by TestMain.
var plumbBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "plumb-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	plumbBin = filepath.Join(dir, "plumb")
	// PLUMB_E2E_BUILD_FLAGS=-race builds the members with the race
	// detector; a member that reports a race fails its test (stopAll).
	args := append([]string{"build"}, strings.Fields(os.Getenv("PLUMB_E2E_BUILD_FLAGS"))...)
	build := exec.Command("go", append(args, "-o", plumbBin, "../cmd/plumb")...)
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build plumb:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Timings of the test clusters: etcd's defaults, so that what the tests
// measure (elections, restarts) is what an operator sees.
const (
	heartbeatMs       = 100
	electionMs        = 1000
	startTimeout      = 20 * time.Second
	memberStopTimeout = 10 * time.Second
)

// member is one `plumb node serve` process.
type member struct {
	name       string
	ip         string
	peerPort   int
	clientPort int
	dataDir    string
	logPath    string

	// peerHTTPS and clientHTTPS make the member's peer and client URLs
	// https:// (its TLS flags are the test's to give).
	peerHTTPS, clientHTTPS bool
	// peerUnix makes the peer URL unix://NAME:PORT (unixs:// with
	// peerHTTPS): a socket file in the cluster's base directory, where
	// the member runs.
	peerUnix bool

	// joinEnv, when set, starts the member as a new member of a running
	// cluster: with the environment `etcdctl member add` printed for it
	// (ETCD_NAME, ETCD_INITIAL_CLUSTER, ...) instead of the --name and
	// --initial-* flags of a new cluster.
	joinEnv []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the process exits
}

func (m *member) peerURL() string {
	if m.peerUnix {
		return fmt.Sprintf("%s://%s:%d", strings.Replace(scheme(m.peerHTTPS), "http", "unix", 1), m.name, m.peerPort)
	}
	return fmt.Sprintf("%s://%s:%d", scheme(m.peerHTTPS), m.ip, m.peerPort)
}
func (m *member) clientURL() string {
	return fmt.Sprintf("%s://%s:%d", scheme(m.clientHTTPS), m.ip, m.clientPort)
}

func scheme(https bool) string {
	if https {
		return "https"
	}
	return "http"
}
func (m *member) endpoint() string { return fmt.Sprintf("%s:%d", m.ip, m.clientPort) }

// cluster is a plumb cluster of real processes on loopback.
type cluster struct {
	t       *testing.T
	token   string
	members []*member
	flags   []string // more flags for every member, at every start
	base    string   // the members' data dirs and logs are here
}

// newMember makes a member named name on ip, with free ports, not started
// and not yet in c.members.
func (c *cluster) newMember(name, ip string) *member {
	m := &member{name: name, ip: ip, peerPort: freePort(c.t, ip), clientPort: freePort(c.t, ip)}
	m.dataDir = filepath.Join(c.base, m.name+".etcd")
	m.logPath = filepath.Join(c.base, m.name+".log")
	return m
}

// Ports for members come from below Linux's ephemeral range (32768 and
// up by default), where client connections take their local ports: a port
// found free there could be taken by any test's outgoing connection before
// the member binds it.
const (
	portLow  = 20000
	portHigh = 32000
)

var nextPort = portLow + os.Getpid()%(portHigh-portLow)

// freePort finds a port free on ip, below the ephemeral range.
func freePort(t *testing.T, ip string) int {
	t.Helper()
	for range portHigh - portLow {
		port := nextPort
		nextPort++
		if nextPort == portHigh {
			nextPort = portLow
		}
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatalf("no free port on %s between %d and %d (is the loopback range usable?)", ip, portLow, portHigh)
	return 0
}

// newCluster starts size members on 127.0.0.1, 127.0.0.2, ... (each with
// flags too) and waits until the cluster has a leader.
func newCluster(t *testing.T, size int, flags ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, token: "e2e-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), flags: flags}
	c.base = t.TempDir()
	for i := range size {
		c.members = append(c.members, c.newMember(fmt.Sprintf("n%d", i+1), fmt.Sprintf("127.0.0.%d", i+1)))
	}
	for _, m := range c.members {
		c.start(m)
	}
	t.Cleanup(c.stopAll)
	c.waitLeader(startTimeout)
	return c
}

func (c *cluster) initialCluster() string {
	var parts []string
	for _, m := range c.members {
		parts = append(parts, m.name+"="+m.peerURL())
	}
	return strings.Join(parts, ",")
}

// serveArgs are the flags every member starts with, however it finds its
// cluster: where it keeps its data and listens, and the test timings.
func (c *cluster) serveArgs(m *member) []string {
	return []string{"node", "serve",
		"--data-dir", m.dataDir,
		"--listen-peer-urls", m.peerURL(),
		"--listen-client-urls", m.clientURL(),
		"--advertise-client-urls", m.clientURL(),
		"--heartbeat-interval", strconv.Itoa(heartbeatMs),
		"--election-timeout", strconv.Itoa(electionMs),
	}
}

// args are the seeds' command line for member m, with plumb's binary.
func (c *cluster) args(m *member) []string {
	args := c.serveArgs(m)
	if m.joinEnv == nil { // else the rest is in the environment
		args = append(args,
			"--name", m.name,
			"--initial-advertise-peer-urls", m.peerURL(),
			"--initial-cluster", c.initialCluster(),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", c.token,
		)
	}
	return append(args, c.flags...)
}

// start runs member m's process, its log appended to m.logPath.
func (c *cluster) start(m *member, extra ...string) {
	c.t.Helper()
	c.run(m, append(c.args(m), extra...), m.joinEnv)
}

// plumbCommand is plumb with args, in the test's environment without its
// PLUMB_* and ETCD_* variables (CI sets PLUMB_ETCD_REF_DIR, which plumb
// node serve would refuse as unknown), and with env added.
func plumbCommand(args, env []string) *exec.Cmd {
	cmd := exec.Command(plumbBin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PLUMB_") && !strings.HasPrefix(kv, "ETCD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// run runs plumb with args as member m's process, with env added to its
// environment, its log appended to m.logPath.
func (c *cluster) run(m *member, args, env []string) {
	c.t.Helper()
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := plumbCommand(args, env)
	cmd.Stdout, cmd.Stderr = logf, logf
	if m.peerUnix {
		cmd.Dir = c.base // where the socket files are
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.t.Fatalf("start %s: %v", m.name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	m.mu.Lock()
	m.cmd, m.done = cmd, done
	m.mu.Unlock()
}

// kill sends SIGKILL: the process gets no chance to close or flush
// anything.
func (c *cluster) kill(m *member) { c.signal(m, syscall.SIGKILL) }

// stop sends SIGTERM and waits for a graceful exit.
func (c *cluster) stop(m *member) { c.signal(m, syscall.SIGTERM) }

func (c *cluster) signal(m *member, sig syscall.Signal) {
	c.t.Helper()
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(memberStopTimeout):
		_ = cmd.Process.Kill()
		<-done
		c.t.Errorf("%s did not exit within %v of %v", m.name, memberStopTimeout, sig)
	}
	m.mu.Lock()
	m.cmd = nil
	m.mu.Unlock()
}

func (c *cluster) stopAll() {
	for _, m := range c.members {
		c.stop(m)
	}
	for _, m := range c.members {
		if b, err := os.ReadFile(m.logPath); err == nil && strings.Contains(string(b), "WARNING: DATA RACE") {
			c.t.Errorf("%s reported a data race (see its log below)", m.name)
		}
	}
	if c.t.Failed() {
		for _, m := range c.members {
			if b, err := os.ReadFile(m.logPath); err == nil {
				c.t.Logf("=== %s's log (last 4 KiB):\n%s", m.name, tail(b, 4096))
			}
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func (c *cluster) endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.endpoint())
	}
	return eps
}

// client returns an etcd client of the given endpoints (all members by
// default), closed when the test ends.
func (c *cluster) client(eps ...string) *clientv3.Client {
	c.t.Helper()
	if len(eps) == 0 {
		eps = c.endpoints()
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// leader returns the member every live member agrees leads, waiting up to
// timeout for there to be one.
func (c *cluster) waitLeader(timeout time.Duration) (*member, uint64) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		m, id, err := c.leader()
		if err == nil {
			return m, id
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("no leader within %v: %v", timeout, last)
	return nil, 0
}

func (c *cluster) leader() (*member, uint64, error) {
	var lead uint64
	var leader *member
	for _, m := range c.members {
		if !m.running() {
			continue
		}
		st, err := status(m)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", m.name, err)
		}
		if st.Leader == 0 || (lead != 0 && st.Leader != lead) {
			return nil, 0, fmt.Errorf("%s sees leader %x, others %x", m.name, st.Leader, lead)
		}
		lead = st.Leader
		if st.Header.MemberId == lead {
			leader = m
		}
	}
	if leader == nil {
		return nil, 0, errors.New("the leader is not among the running members")
	}
	return leader, lead, nil
}

func (m *member) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd != nil
}

// status asks one member for its status, with a short timeout.
func status(m *member) (*clientv3.StatusResponse, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.endpoint()}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return cli.Status(ctx, m.endpoint())
}

// waitPublished waits until every member has published its name and
// client URLs through raft (they do once there is a leader).
func waitPublished(t *testing.T, c *cluster) {
	t.Helper()
	cli := c.client()
	for range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		list, err := cli.MemberList(ctx)
		cancel()
		if err == nil && allStarted(list) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the members did not publish their names within 5s")
}

func (c *cluster) endpointsExcept(skip *member) []string {
	var eps []string
	for _, m := range c.members {
		if m != skip {
			eps = append(eps, m.endpoint())
		}
	}
	return eps
}

// logContains reports whether member m's log has a line containing s.
func logContains(t *testing.T, m *member, s string) bool {
	t.Helper()
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), s)
}
