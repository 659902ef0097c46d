package main

// The client commands are tested against a real server: each command line
// runs through etcdctl 3.7.3 and through plumb against the same
// single-member etcd, and the outputs are compared byte for byte where they
// are deterministic. startServer takes any binary, so the same cases can
// later run against `plumb node serve`.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// serverStartMax bounds the wait for a test server to answer.
const serverStartMax = 30 * time.Second

// etcdRefDir is the folder of the reference etcd and etcdctl binaries. The
// test skips without them, unless PLUMB_REQUIRE_ETCD_REF=1 (CI) says that a
// skip would hide a regression.
func etcdRefDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PLUMB_ETCD_REF_DIR")
	if dir == "" {
		out, err := exec.Command("../../../shared/tools/etcd-ref").Output()
		if err != nil {
			refMissing(t, fmt.Sprintf("../../../shared/tools/etcd-ref failed: %v", err))
		}
		dir = strings.TrimSpace(string(out))
	}
	for _, bin := range []string{"etcd", "etcdctl"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			refMissing(t, err.Error())
		}
	}
	return dir
}

func refMissing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("PLUMB_REQUIRE_ETCD_REF") == "1" {
		t.Fatalf("PLUMB_REQUIRE_ETCD_REF=1 but the reference etcd is missing: %s", why)
	}
	t.Skipf("reference etcd not found (%s); run /work/shared/tools/etcd-ref or set PLUMB_ETCD_REF_DIR", why)
}

// freeAddr is a 127.0.0.1 address that nothing listens on. The kernel picks
// the port; it is released for the server to take, a race a test can afford.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServer runs bin with args until the test ends, and returns once
// endpoint answers a read. The process is killed when the test's context
// ends, just before the cleanup that waits for it.
func startServer(t *testing.T, bin string, args []string, endpoint string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), filepath.Base(bin)+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		logFile.Close()
		close(exited)
	}()
	t.Cleanup(func() { <-exited })
	for deadline := time.Now().Add(serverStartMax); !answers(endpoint); time.Sleep(100 * time.Millisecond) {
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("%s exited before serving: %v\n%s", bin, waitErr, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer on %s after %v; its log is %s", bin, endpoint, serverStartMax, logPath)
		}
	}
}

func answers(endpoint string) bool {
	client, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return false
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = client.Get(ctx, "health")
	return err == nil
}

// refServer is a running server and the etcdctl that plumb is compared with.
type refServer struct {
	etcdctl  string
	endpoint string // host:port, the form users type
	peerURL  string
	client   *clientv3.Client
}

// startEtcd starts the reference etcd as a single member named n1.
func startEtcd(t *testing.T) *refServer {
	dir := etcdRefDir(t)
	clientURL, peerURL := "http://"+freeAddr(t), "http://"+freeAddr(t)
	startServer(t, filepath.Join(dir, "etcd"), []string{
		"--name", "n1", "--data-dir", t.TempDir(), "--log-level", "error",
		// watch --progress-notify is tested without waiting etcd's 10 minutes.
		"--watch-progress-notify-interval", watchProgressInterval.String(),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "n1=" + peerURL,
	}, clientURL)
	ref := &refServer{etcdctl: filepath.Join(dir, "etcdctl"), endpoint: strings.TrimPrefix(clientURL, "http://"), peerURL: peerURL}
	var err error
	ref.client, err = clientv3.New(clientv3.Config{Endpoints: []string{clientURL}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ref.client.Close() })
	return ref
}

// clearEtcdctlEnv unsets the user's ETCDCTL_* variables for the test, so
// that an exported ETCDCTL_WRITE_OUT does not change what is compared.
func clearEtcdctlEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "ETCDCTL_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
}

// watchProgressInterval is how often the test etcd sends a watch with
// progress_notify its progress.
const watchProgressInterval = 500 * time.Millisecond

// ctlCase is one command line, in etcdctl's words: plumb's is the same with
// kv before put, get, del and watch.
type ctlCase struct {
	args  []string
	reset []string // key-value pairs under zz/ written afresh before each side runs
	stdin string
	// own says the case names its own --endpoints; others get the server's.
	own bool
	// revisions says that revision numbers differ between the sides (each
	// side writes) and are masked.
	revisions bool
	// lease, when positive, is the TTL of a lease granted afresh for each
	// side: LEASE in args stands for its ID, and leased are key-value pairs
	// under zz/ put with it after the reset.
	lease  int64
	leased []string
	// ids says that lease IDs differ between the sides and are masked.
	ids bool
}

// forSide grants the case's lease, if it has one, and puts its leased
// keys; it returns the arguments with LEASE replaced by the lease's ID.
func (r *refServer) forSide(t *testing.T, tc ctlCase) ctlCase {
	t.Helper()
	if tc.lease <= 0 {
		return tc
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lease, err := r.client.Grant(ctx, tc.lease)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(tc.leased); i += 2 {
		if _, err := r.client.Put(ctx, tc.leased[i], tc.leased[i+1], clientv3.WithLease(lease.ID)); err != nil {
			t.Fatal(err)
		}
	}
	tc.args = slices.Clone(tc.args)
	for i, a := range tc.args {
		tc.args[i] = strings.ReplaceAll(a, "LEASE", fmt.Sprintf("%x", lease.ID))
	}
	return tc
}

type outcome struct {
	code           int
	stdout, stderr string
}

// etcdctlRun runs etcdctl with the case's arguments.
func (r *refServer) etcdctlRun(t *testing.T, tc ctlCase) outcome {
	t.Helper()
	args := tc.args
	if !tc.own {
		args = append([]string{"--endpoints", r.endpoint}, args...)
	}
	cmd := exec.Command(r.etcdctl, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &stdout, &stderr, strings.NewReader(tc.stdin)
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("etcdctl %q: %v", args, err)
	}
	return outcome{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: withoutLogs(stderr.String())}
}

// withoutLogs drops etcd's client logs (JSON lines) from etcdctl's stderr:
// plumb silences them.
func withoutLogs(stderr string) string {
	var kept []string
	for _, line := range strings.SplitAfter(stderr, "\n") {
		if !strings.HasPrefix(line, `{"level":`) {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "")
}

// plumbRun runs plumb with the case's arguments, its --endpoints last so
// that every case also tests flags after arguments (before a "--", after
// which everything is an argument).
func (r *refServer) plumbRun(t *testing.T, tc ctlCase) outcome {
	t.Helper()
	restore := setStdin(t, tc.stdin)
	defer restore()
	code, stdout, stderr := plumb(t, r.plumbArgs(tc)...)
	return outcome{code, stdout, stderr}
}

// plumbArgs are the case's arguments in plumb's words.
func (r *refServer) plumbArgs(tc ctlCase) []string {
	args := slices.Clone(tc.args)
	if slices.Contains([]string{"put", "get", "del", "watch"}, args[0]) {
		args = append([]string{"kv"}, args...)
	}
	if !tc.own {
		at := len(args)
		if i := slices.Index(args, "--"); i >= 0 {
			at = i
		}
		args = slices.Insert(args, at, "--endpoints", r.endpoint)
	}
	return args
}

// setStdin points os.Stdin, which urfave/cli reads, at text.
func setStdin(t *testing.T, text string) (restore func()) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stdin")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdin
	os.Stdin = f
	return func() { os.Stdin = saved; f.Close() }
}

// resetZZ replaces every key under zz/ with pairs.
func (r *refServer) resetZZ(t *testing.T, pairs []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.client.Delete(ctx, "zz/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		if _, err := r.client.Put(ctx, pairs[i], pairs[i+1]); err != nil {
			t.Fatal(err)
		}
	}
}

var (
	tookPattern     = regexp.MustCompile(`(took = |"took":")[0-9.]+[a-zµ]+`)
	revisionPattern = regexp.MustCompile(`"((create_|mod_)?revision)":\d+`)
	// A lease ID as the simple format prints it, as it ends a lock's or a
	// leader's key (without leading zeros), and as JSON has it (responses
	// and key-values).
	leaseHexPattern  = regexp.MustCompile(`\b[0-9a-f]{16}\b`)
	leaseKeyPattern  = regexp.MustCompile(`/[0-9a-f]{1,16}\b`)
	leaseJSONPattern = regexp.MustCompile(`"(ID|id|lease)":\d+`)
)

// comparable masks what differs between two runs: a health check's time,
// and revisions when each side wrote.
func comparable(s string, revisions bool) string {
	s = tookPattern.ReplaceAllString(s, "${1}T")
	if revisions {
		s = revisionPattern.ReplaceAllString(s, `"$1":R`)
	}
	return s
}

// withoutLeaseIDs masks lease IDs, for outputs of two sides that each
// granted their own.
func withoutLeaseIDs(s string) string {
	s = leaseHexPattern.ReplaceAllString(leaseKeyPattern.ReplaceAllString(s, "/LEASE"), "LEASE")
	return leaseJSONPattern.ReplaceAllString(s, `"$1":LEASE`)
}

// compare runs each case through etcdctl and plumb, in order.
func (r *refServer) compare(t *testing.T, cases []ctlCase) {
	t.Helper()
	for _, tc := range cases {
		if tc.reset != nil {
			r.resetZZ(t, tc.reset)
		}
		want := r.etcdctlRun(t, r.forSide(t, tc))
		if tc.reset != nil {
			r.resetZZ(t, tc.reset)
		}
		got := r.plumbRun(t, r.forSide(t, tc))
		same := func(a, b string) bool {
			a, b = comparable(a, tc.revisions), comparable(b, tc.revisions)
			if tc.ids {
				a, b = withoutLeaseIDs(a), withoutLeaseIDs(b)
			}
			return a == b
		}
		if got.code != want.code || !same(got.stdout, want.stdout) || !same(got.stderr, want.stderr) {
			t.Errorf("%q:\nplumb   exit %d, stdout:\n%s\nstderr:\n%s\netcdctl exit %d, stdout:\n%s\nstderr:\n%s",
				tc.args, got.code, got.stdout, got.stderr, want.code, want.stdout, want.stderr)
		}
	}
}

// writeDataset writes the keys the get cases read, compacting after the
// first write so that revision 1 is gone; it returns the revision after
// /svc/b was written.
func (r *refServer) writeDataset(t *testing.T) (revB int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	put := func(k, v string) int64 {
		resp, err := r.client.Put(ctx, k, v)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}
	first := put("/svc/a", "1")
	if _, err := r.client.Compact(ctx, first); err != nil {
		t.Fatal(err)
	}
	revB = put("/svc/b", "2")
	put("/svc/c", "0")
	put("/svc/c", "3")
	put("/cfg/x", "hello world")
	put("/bin", "\x00\xff\n")
	put("-dash", "v")
	return revB
}

func getCases(revB int64) []ctlCase {
	rev := fmt.Sprint(revB)
	return []ctlCase{
		{args: []string{"get", "/svc/a"}},
		{args: []string{"get", "/svc/"}},
		{args: []string{"get", "/svc/", "--prefix"}},
		{args: []string{"get", "/svc/a", "/svc/c"}},
		{args: []string{"get", "/svc/b", "--from-key"}},
		{args: []string{"get", "", "--prefix", "--keys-only"}},
		{args: []string{"get", "", "--from-key", "--print-value-only"}},
		{args: []string{"get", "/svc/", "--prefix", "--limit", "2"}},
		{args: []string{"get", "/svc/", "--prefix", "--sort-by", "MODIFY", "--order", "DESCEND"}},
		{args: []string{"get", "/svc/", "--prefix", "--sort-by", "value", "--order", "descend"}},
		{args: []string{"get", "/svc/", "--prefix", "--sort-by", "version"}},
		{args: []string{"get", "/svc/", "--prefix", "--rev", rev}},
		{args: []string{"get", "/svc/", "--prefix", "--min-mod-rev", rev, "--max-create-rev", rev}},
		{args: []string{"get", "/svc/", "--prefix", "--consistency", "s"}},
		{args: []string{"get", "/svc/", "--prefix", "-w", "json"}},
		{args: []string{"get", "/svc/", "--prefix", "-w", "json", "--keys-only", "--limit", "1"}},
		{args: []string{"get", "/svc/nothing", "--write-out=json"}},
		{args: []string{"get", "/bin"}},
		{args: []string{"get", "/bin", "--hex"}},
		{args: []string{"get", "/cfg/x", "--print-value-only"}},
		{args: []string{"get", "--", "-dash"}},
	}
}

func putDelCases() []ctlCase {
	abc := []string{"zz/a", "1", "zz/b", "2", "zz/c", "3"}
	return []ctlCase{
		{reset: abc, args: []string{"put", "zz/a", "new"}},
		{reset: abc, args: []string{"put", "zz/a", "new", "--prev-kv"}},
		{reset: abc, args: []string{"put", "zz/a", "--prev-kv", "new"}},
		{reset: abc, args: []string{"put", "zz/new", "v", "--prev-kv"}},
		{reset: abc, args: []string{"put", "zz/a", "--prev-kv", "--hex", "new"}},
		{reset: abc, args: []string{"put", "zz/a", "--prev-kv", "--", "-dashed"}},
		{reset: abc, args: []string{"put", "zz/a", "--ignore-value", "--prev-kv"}},
		{reset: abc, args: []string{"put", "zz/a", "--prev-kv"}, stdin: "from stdin\n"},
		{reset: abc, args: []string{"put", "zz/a", "new", "-w", "json", "--prev-kv"}, revisions: true},
		{reset: abc, args: []string{"del", "zz/a"}},
		{reset: abc, args: []string{"del", "zz/missing"}},
		{reset: abc, args: []string{"del", "zz/", "--prefix"}},
		{reset: abc, args: []string{"del", "zz/", "--prefix", "--prev-kv"}},
		{reset: abc, args: []string{"del", "zz/a", "zz/c", "--range", "--prev-kv"}},
		{reset: abc, args: []string{"del", "zz/b", "--from-key", "--prev-kv"}},
		{reset: abc, args: []string{"del", "zz/a", "--prev-kv", "--hex"}},
		{reset: abc, args: []string{"del", "zz/a", "-w", "json", "--prev-kv"}, revisions: true},
		// Without --range both warn on stderr and pause (plumb's pause is cut to nothing by the test).
		{reset: abc, args: []string{"del", "zz/a", "zz/c"}},
	}
}

func (r *refServer) memberCases(t *testing.T) []ctlCase {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	members, err := r.client.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%x", members.Members[0].ID)
	list := []ctlCase{
		{args: []string{"member", "list"}},
		{args: []string{"member", "list", "-w", "table"}},
		{args: []string{"member", "list", "-w", "json"}},
		{args: []string{"member", "list", "-w", "json", "--hex"}},
		{args: []string{"member", "list", "--consistency", "s"}},
	}
	update := []ctlCase{
		{args: []string{"member", "update", id, "--peer-urls", r.peerURL}},
		{args: []string{"member", "update", id, "--peer-urls=" + r.peerURL, "-w", "json", "--hex"}},
	}
	return slices.Concat(list, update)
}

// addLearner adds a member that never starts: it has no name, and member
// list shows it unstarted. A learner does not count for quorum, so the
// one-member cluster keeps working.
func (r *refServer) addLearner(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.client.MemberAddAsLearner(ctx, []string{"http://" + freeAddr(t)}); err != nil {
		t.Fatal(err)
	}
}

func (r *refServer) endpointCases(dead string) []ctlCase {
	live := r.endpoint
	return []ctlCase{
		{args: []string{"endpoint", "health"}},
		{args: []string{"endpoint", "health", "--cluster"}},
		{args: []string{"endpoint", "health", "-w", "json"}},
		{args: []string{"endpoint", "status"}},
		{args: []string{"endpoint", "status", "--cluster"}},
		{args: []string{"endpoint", "status", "-w", "table"}},
		{args: []string{"endpoint", "status", "-w", "json"}},
		{own: true, args: []string{"endpoint", "health", "--endpoints", dead, "--command-timeout", "300ms"}},
		{own: true, args: []string{"endpoint", "status", "--endpoints", live + "," + dead, "--command-timeout", "300ms"}},
	}
}

func errorCases(dead string) []ctlCase {
	return []ctlCase{
		{args: []string{"get", "/svc/a", "--rev", "1"}},
		{args: []string{"get", "/svc/a", "--rev", "1000000"}},
		{own: true, args: []string{"get", "/svc/a", "--endpoints", dead, "--command-timeout", "300ms"}},
		{own: true, args: []string{"put", "zz/a", "v", "--endpoints", dead, "--command-timeout", "300ms"}},
		{own: true, args: []string{"member", "list", "--endpoints", dead, "--command-timeout", "300ms"}},
	}
}

func TestClientMatchesEtcdctl(t *testing.T) {
	ref := startEtcd(t)
	clearEtcdctlEnv(t)
	grace := rangeDeleteGrace
	rangeDeleteGrace = 0
	t.Cleanup(func() { rangeDeleteGrace = grace })
	dead := freeAddr(t)
	revB := ref.writeDataset(t)
	t.Run("get", func(t *testing.T) { ref.compare(t, getCases(revB)) })
	t.Run("member", func(t *testing.T) {
		ref.compare(t, ref.memberCases(t))
		ref.addLearner(t)
		ref.compare(t, ref.memberCases(t)[:4])
	})
	t.Run("put and del", func(t *testing.T) { ref.compare(t, putDelCases()) })
	t.Run("errors", func(t *testing.T) { ref.compare(t, errorCases(dead)) })
	t.Run("endpoint", func(t *testing.T) { ref.compare(t, ref.endpointCases(dead)) })
	t.Run("endpoint table", func(t *testing.T) {
		// The took column's width varies from run to run, so this table is
		// checked for its shape rather than compared.
		code, out, errOut := plumb(t, "endpoint", "health", "-w", "table", "--endpoints", ref.endpoint)
		want := regexp.MustCompile(`(?s)ENDPOINT +│ HEALTH │ +TOOK +│ ERROR.*│ ` + regexp.QuoteMeta(ref.endpoint) + ` │ +true │ [0-9.]+[mµ]?s │ +│`)
		if code != exitOK || errOut != "" || !want.MatchString(out) {
			t.Errorf("exit %d, stderr %q, stdout:\n%s", code, errOut, out)
		}
	})
	t.Run("count-only", func(t *testing.T) {
		// etcdctl prints --count-only in its fields format only; plumb prints the number.
		code, out, errOut := plumb(t, "kv", "get", "/svc/", "--prefix", "--count-only", "--endpoints", ref.endpoint)
		if code != exitOK || out != "3\n" || errOut != "" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 0 and \"3\\n\"", code, out, errOut)
		}
	})
	t.Run("environment", func(t *testing.T) { testClientEnvironment(t, ref, dead) })
}

// testClientEnvironment checks etcdctl's environment variables: they stand
// in for unset flags, a flag wins over its variable, and ETCDCTL_API (in
// every etcd v3 tutorial) is ignored without a word.
func testClientEnvironment(t *testing.T, ref *refServer, dead string) {
	t.Setenv("ETCDCTL_API", "3")
	t.Setenv("ETCDCTL_ENDPOINTS", ref.endpoint)
	t.Setenv("ETCDCTL_WRITE_OUT", "json")
	t.Setenv("ETCDCTL_COMMAND_TIMEOUT", "3s")
	code, out, errOut := plumb(t, "kv", "get", "/svc/a")
	if code != exitOK || errOut != "" || !strings.HasPrefix(out, `{"header":{"cluster_id":`) {
		t.Errorf("with ETCDCTL_ENDPOINTS and ETCDCTL_WRITE_OUT=json: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	t.Setenv("ETCDCTL_ENDPOINTS", dead)
	code, out, errOut = plumb(t, "kv", "get", "/svc/a", "-w", "simple", "--endpoints", ref.endpoint)
	if code != exitOK || out != "/svc/a\n1\n" || errOut != "" {
		t.Errorf("flags over ETCDCTL_ENDPOINTS and ETCDCTL_WRITE_OUT: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	t.Setenv("ETCDCTL_COMMAND_TIMEOUT", "300ms")
	code, _, errOut = plumb(t, "kv", "get", "/svc/a")
	if code != exitServerError || errOut != "Error: context deadline exceeded\n" {
		t.Errorf("with ETCDCTL_ENDPOINTS=%s (dead): exit %d, stderr %q; want 1 and a deadline", dead, code, errOut)
	}
}

func TestClientBadUsageExitsTwo(t *testing.T) {
	clearEtcdctlEnv(t)
	for _, tc := range []struct {
		args []string
		env  string // NAME=value, set for this case
		want string
	}{
		{args: []string{"kv", "get"}, want: "get command needs one argument as key"},
		{args: []string{"kv", "get", "a", "b", "c"}, want: "get command needs one argument as key"},
		{args: []string{"kv", "get", "a", "--prefix", "--from-key"}, want: "`--prefix` and `--from-key` cannot be set at the same time"},
		{args: []string{"kv", "get", "a", "b", "--prefix"}, want: "too many arguments"},
		{args: []string{"kv", "get", "a", "--consistency", "x"}, want: `unknown consistency flag "x"`},
		{args: []string{"kv", "get", "a", "--sort-by", "size"}, want: "bad sort target size"},
		{args: []string{"kv", "get", "a", "--order", "sideways"}, want: "bad sort order sideways"},
		{args: []string{"kv", "get", "a", "--keys-only", "--count-only"}, want: "cannot be set at the same time"},
		{args: []string{"kv", "get", "a", "--print-value-only", "-w", "json"}, want: "print-value-only is only for `--write-out=simple`"},
		{args: []string{"kv", "get", "a", "--min-mod-rev", "5", "--max-mod-rev", "4"}, want: "--min-mod-rev (5) is above --max-mod-rev (4)"},
		{args: []string{"kv", "get", "a", "-w", "fields"}, want: `--write-out: "fields" is not an output format of plumb kv get (use simple, json)`},
		{args: []string{"kv", "get", "a", "-w", "table"}, want: `"table" is not an output format`},
		{args: []string{"kv", "get", "a", "--limit", "x"}, want: "invalid value"},
		{args: []string{"kv", "get", "a", "--bogus"}, want: "flag provided but not defined: -bogus"},
		{args: []string{"kv", "put", "a", "b", "c"}, want: "put command takes a key and one value, not 3 arguments"},
		{args: []string{"kv", "put", "a", "b", "--ignore-value"}, want: "put command needs only 1 argument when 'ignore-value' is set"},
		{args: []string{"kv", "put", "a"}, want: "put command needs 1 argument and input from stdin or 2 arguments"},
		{args: []string{"kv", "put", "a", "b", "--lease", "zz"}, want: "bad lease ID"},
		{args: []string{"kv", "del"}, want: "del command needs one argument as key"},
		{args: []string{"kv", "del", "a", "--prefix", "--from-key"}, want: "cannot be set at the same time"},
		{args: []string{"member", "update"}, want: "member ID is not provided"},
		{args: []string{"member", "update", "zz", "--peer-urls", "http://127.0.0.1:1"}, want: "bad member ID arg"},
		{args: []string{"member", "update", "1"}, want: "member peer urls not provided"},
		{args: []string{"member", "list", "extra"}, want: `member list takes no arguments, not "extra"`},
		{args: []string{"member", "list", "--consistency", "q"}, want: `unknown consistency flag "q"`},
		{args: []string{"endpoint", "status", "-w", "protobuf"}, want: `"protobuf" is not an output format`},
		{args: []string{"kv", "get", "a", "--endpoints", ","}, want: "--endpoints: name at least one endpoint"},
		{args: []string{"kv", "get", "a", "--endpoints", "https://127.0.0.1:2379"}, want: "TLS is not supported"},
		{args: []string{"kv", "get", "a", "--endpoints", "localhost"}, want: `"localhost" is not host:port or http://host:port`},
		{args: []string{"kv", "get", "a", "--endpoints", "ftp://127.0.0.1:1"}, want: `scheme "ftp" is not http`},
		{args: []string{"kv", "get", "a", "--command-timeout", "0s"}, want: "--command-timeout must be positive"},
		{args: []string{"kv", "get", "a", "--dial-timeout", "soon"}, want: "invalid value"},
		{args: []string{"kv", "get", "a"}, env: "ETCDCTL_DIAL_TIMEOUT=soon", want: `could not parse "soon" as duration value from environment variable "ETCDCTL_DIAL_TIMEOUT"`},
		{args: []string{"kv", "watch"}, want: "bad number of arguments"},
		{args: []string{"kv", "watch", "a", "b", "c"}, want: "watch takes KEY [RANGE_END], not 3 arguments"},
		{args: []string{"kv", "watch", "a", "b", "--prefix"}, want: "`range_end` and `--prefix` are mutually exclusive"},
		{args: []string{"kv", "watch", "a", "--"}, want: "found separator --, but no commands"},
		{args: []string{"kv", "watch", "--", "echo"}, want: "bad number of arguments"},
		{args: []string{"kv", "watch", "a"}, env: "ETCDCTL_WATCH_KEY=a", want: "found conflicting environment key"},
		{args: []string{"kv", "watch", "a", "--", "echo"}, env: "ETCDCTL_WATCH_KEY=a", want: "found conflicting environment key"},
		{args: []string{"kv", "watch", "a"}, env: "ETCDCTL_WATCH_RANGE_END=b", want: `ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END="b"`},
		{args: []string{"kv", "watch", "-i", "a"}, want: `watch -i reads its watches from stdin and takes no arguments, not "a"`},
		{args: []string{"kv", "watch", "-i", "--prefix"}, want: "--prefix goes on each watch line of interactive mode"},
		{args: []string{"kv", "watch", "--interactive", "--rev", "3"}, want: "--rev goes on each watch line"},
		{args: []string{"kv", "watch", "a", "--rev", "x"}, want: "invalid value"},
		{args: []string{"kv", "watch", "a", "--bogus"}, want: "flag provided but not defined: -bogus"},
		{args: []string{"kv", "watch", "a", "-w", "table"}, want: `"table" is not an output format of plumb kv watch`},
		{args: []string{"kv", "watch", "a", "--endpoints", "localhost"}, want: `"localhost" is not host:port`},
		{args: []string{"kv", "watch", "a"}, env: "ETCDCTL_WRITE_OUT=fields", want: `"fields" is not an output format`},
		{args: []string{"lease", "grant"}, want: "lease grant command needs TTL argument"},
		{args: []string{"lease", "grant", "ten"}, want: "bad TTL"},
		{args: []string{"lease", "grant", "10", "-w", "table"}, want: `"table" is not an output format`},
		{args: []string{"lease", "revoke"}, want: "lease revoke command needs 1 argument"},
		{args: []string{"lease", "revoke", "zz"}, want: "bad lease ID arg"},
		{args: []string{"lease", "timetolive"}, want: "lease timetolive command needs lease ID as argument"},
		{args: []string{"lease", "timetolive", "1", "2"}, want: "lease timetolive command needs lease ID as argument"},
		{args: []string{"lease", "keep-alive"}, want: "lease keep-alive command needs lease ID as argument"},
		{args: []string{"lease", "keep-alive", "--once", "x"}, want: "bad lease ID arg"},
		{args: []string{"lease", "list", "extra"}, want: `lease list takes no arguments, not "extra"`},
		{args: []string{"lock"}, want: "lock takes a lock name argument and an optional command to execute"},
		{args: []string{"lock", "a", "--ttl", "0"}, want: "--ttl must be positive, not 0"},
		{args: []string{"lock", "a", "-w", "table"}, want: `"table" is not an output format`},
		{args: []string{"elect"}, want: "elect takes one election name argument and an optional proposal argument"},
		{args: []string{"elect", "a", "b", "c"}, want: "elect takes one election name argument"},
		{args: []string{"elect", "a"}, want: "no proposal argument but -l not set"},
		{args: []string{"elect", "-l", "a", "b"}, want: "proposal given but -l is set"},
	} {
		if name, value, ok := strings.Cut(tc.env, "="); ok {
			t.Setenv(name, value)
		}
		restore := setStdin(t, "")
		code, out, errOut := plumb(t, tc.args...)
		restore()
		if code != exitBadInput || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q (stdout %q); want exit 2 and %q", tc.args, code, errOut, out, tc.want)
		}
		if name, _, ok := strings.Cut(tc.env, "="); ok {
			os.Unsetenv(name)
		}
	}
}

func TestClientFlagsAfterArguments(t *testing.T) {
	cmds := []*cli.Command{kvCommand(), leaseCommand(), lockCommand(), electCommand(), memberCommand(), endpointCommand()}
	for _, tc := range []struct{ args, want string }{
		{"plumb kv put foo bar --endpoints x -w json --prev-kv", "plumb kv put --endpoints x -w json --prev-kv foo bar"},
		{"plumb kv get foo --prefix --limit 2 --command-timeout=1s", "plumb kv get --prefix --limit 2 --command-timeout=1s foo"},
		{"plumb kv put foo --endpoints x -- -bar --hex", "plumb kv put --endpoints x foo -- -bar --hex"},
		{"plumb member update 8e9e05c52164694d --peer-urls http://a:2380", "plumb member update --peer-urls http://a:2380 8e9e05c52164694d"},
		{"plumb lease keep-alive 694d --once -w json", "plumb lease keep-alive --once -w json 694d"},
		{"plumb lock L --ttl 5 -- sh -c x --ttl", "plumb lock --ttl 5 L -- sh -c x --ttl"},
		{"plumb elect E -l", "plumb elect -l E"},
		{"plumb kv watch k --rev 3 -- echo --prefix", "plumb kv watch --rev 3 k -- echo --prefix"},
		{"plumb kv watch --prefix -- env", "plumb kv watch --prefix -- env"},
	} {
		if got := strings.Join(interspersed(strings.Fields(tc.args), cmds), " "); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.args, got, tc.want)
		}
	}
}

func TestClientTables(t *testing.T) {
	_, rows := memberTable([]*pb.Member{
		{ID: 0x8e9e05c52164694d, Name: "n1", PeerURLs: []string{"http://127.0.0.1:2380"}, ClientURLs: []string{"http://127.0.0.1:2379"}},
		{ID: 0x2a, PeerURLs: []string{"http://10.0.0.2:2380", "http://10.0.0.3:2380"}, IsLearner: true},
	})
	var out bytes.Buffer
	writeRows(&out, func() ([]string, [][]string) { return nil, rows })
	want := "8e9e05c52164694d, started, n1, http://127.0.0.1:2380, http://127.0.0.1:2379, false\n" +
		"2a, unstarted, , http://10.0.0.2:2380,http://10.0.0.3:2380, , true\n"
	if out.String() != want {
		t.Errorf("member rows:\n%s\nwant:\n%s", out.String(), want)
	}
	for _, tc := range []struct {
		size uint64
		want string
	}{
		{0, "0 B"}, {9, "9 B"}, {10, "10 B"}, {999, "999 B"}, {1000, "1.0 kB"}, {9949, "9.9 kB"}, {9950, "10 kB"},
		{16384, "16 kB"}, {20480, "20 kB"}, {1500000, "1.5 MB"}, {2147483648, "2.1 GB"},
	} {
		if got := bytesSI(tc.size); got != tc.want {
			t.Errorf("bytesSI(%d) = %q, want %q", tc.size, got, tc.want)
		}
	}
	if got := notInUse(&pb.StatusResponse{}); got != "0%" {
		t.Errorf("notInUse with no db size = %q, want 0%%", got)
	}
}
