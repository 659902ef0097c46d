package main

// member add, remove and promote change the cluster, so they are compared
// with etcdctl as sequences: etcdctl runs every step against a cluster of
// real `plumb node serve` members, then plumb runs the same steps against
// the same cluster, each side with peer URLs of its own, and each step's
// outcome is compared. The sequence leaves the membership as it found it.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// plumbMember is one `plumb node serve` of a test cluster.
type plumbMember struct {
	name, peerURL, clientURL string
}

func (m plumbMember) endpoint() string { return strings.TrimPrefix(m.clientURL, "http://") }

// startPlumbCluster starts size members, each this test binary run as
// plumb (TestMain), and returns once every member answers a read. Timings
// are short so that the cluster elects a leader in about a second, and
// loose enough that a busy machine does not lose it. The members are
// killed when the test ends, before their data dirs are removed.
func startPlumbCluster(t *testing.T, size int) []plumbMember {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	members := make([]plumbMember, size)
	var initial []string
	for i := range members {
		members[i] = plumbMember{name: fmt.Sprintf("n%d", i+1), peerURL: "http://" + freeAddr(t), clientURL: "http://" + freeAddr(t)}
		initial = append(initial, members[i].name+"="+members[i].peerURL)
	}
	// The members read ETCD_* variables as etcd does; the test's own must
	// not reach them.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") && !strings.HasPrefix(kv, "PLUMB_") {
			env = append(env, kv)
		}
	}
	env = append(env, asPlumbEnv+"=1")
	base := t.TempDir()
	exited := make([]chan struct{}, size)
	for i, m := range members {
		logPath := filepath.Join(base, m.name+".log")
		logFile, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(t.Context(), self, "node", "serve", "--name", m.name,
			"--data-dir", filepath.Join(base, m.name+".etcd"),
			"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
			"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-token", "member-test",
			"--heartbeat-interval", "50", "--election-timeout", "500", "--log-level", "error")
		cmd.Env, cmd.Stdout, cmd.Stderr = env, logFile, logFile
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited[i] = make(chan struct{})
		go func() {
			_ = cmd.Wait() // killed by the test's end; a member that stops early is caught below
			logFile.Close()
			close(exited[i])
		}()
		t.Cleanup(func() { <-exited[i] })
	}
	deadline := time.Now().Add(serverStartMax)
	for i, m := range members {
		for !answers(m.endpoint()) {
			select {
			case <-exited[i]:
				log, _ := os.ReadFile(filepath.Join(base, m.name+".log"))
				t.Fatalf("%s exited before serving:\n%s", m.name, log)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not answer on %s after %v; its log is in %s", m.name, m.endpoint(), serverStartMax, base)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return members
}

// memberStep is one command of the sequence, in etcdctl's words. In args,
// <NAME> stands for a member ID (in hex) that an earlier step of the same
// side added, or for one of the side's own peer URLs (<URL1>...).
type memberStep struct {
	args []string
	// adds names the member this step adds, for the steps after it.
	adds string
	// badInput: plumb refuses the command before sending it, with
	// exitBadInput and "plumb: " where etcdctl exits 128 with "Error: "
	// (the difference package main documents); the message is the same.
	badInput bool
}

// memberSteps covers what member add, remove and promote print and how
// they fail. voterID is a started voter's ID in hex, voterPeerURL its
// peer URL.
func memberSteps(voterID, voterPeerURL string) []memberStep {
	add := func(rest ...string) []string { return append([]string{"member", "add"}, rest...) }
	remove := func(rest ...string) []string { return append([]string{"member", "remove"}, rest...) }
	promote := func(rest ...string) []string { return append([]string{"member", "promote"}, rest...) }
	return []memberStep{
		{args: add("learner", "--learner", "--peer-urls=<URL1>"), adds: "<L1>"},
		// A learner that never started has not caught up: not in sync.
		{args: promote("<L1>")},
		// ETCD_INITIAL_CLUSTER has the unstarted learner under an empty name.
		{args: add("voter", "--peer-urls=<URL2>"), adds: "<V>"},
		// The voter just added never starts: the cluster is unhealthy.
		{args: add("other", "--peer-urls=<URL3>")},
		{args: add("learner2", "--learner", "--peer-urls=<URL3>")}, // too many learners
		{args: remove("<V>")},
		{args: remove("<L1>")},
		{args: add("learner", "--peer-urls=<URL4>", "--learner", "-w", "json"), adds: "<L2>"},
		{args: remove("<L2>", "-w", "json")},
		{args: add("learner", "--learner", "--peer-urls=<URL5>,<URL6>", "-w", "json", "--hex"), adds: "<L3>"},
		{args: promote("<L3>", "-w", "json")},
		{args: remove("<L3>", "-w", "json", "--hex")},
		{args: add("voter", "--peer-urls="+voterPeerURL)},  // Peer URLs already exists
		{args: add("voter", "--peer-urls=127.0.0.1:2380")}, // refused by etcd's client: no scheme
		{args: remove("1234abcd")},
		{args: remove("<L1>")}, // removed already
		{args: promote(voterID)},
		{args: promote("1234abcd")},
		{args: add("voter"), badInput: true},
		{args: add("voter", "--peer-urls="), badInput: true},
		{args: add("--peer-urls=<URL1>"), badInput: true},
		{args: add("voter", "http://10.0.0.4:2380", "--peer-urls=<URL1>"), badInput: true},
		{args: remove(), badInput: true},
		{args: remove("zz"), badInput: true},
		{args: remove("1", "2"), badInput: true},
		{args: promote("0x1f"), badInput: true},
		{args: promote("1ffffffffffffffff"), badInput: true},
	}
}

// memberSide is one side's run of the sequence: what its placeholders
// stand for, and how to mask them again in what it printed.
type memberSide struct {
	etcdctl bool
	vars    map[string]string // <NAME> -> a hex ID or a URL
	masks   []string          // pairs for strings.NewReplacer: what the side printed -> <NAME>
}

// addedID finds the ID of the member an add printed, in any format.
var addedID = []struct {
	re   *regexp.Regexp
	base int
}{
	{regexp.MustCompile(`^Member +([0-9a-f]+) added`), 16},
	{regexp.MustCompile(`"member":\{"ID":"([0-9a-f]+)"`), 16},
	{regexp.MustCompile(`"member":\{"ID":(\d+)`), 10},
}

// learnID records the ID an add step printed under its name, masked in
// every form etcdctl prints an ID: padded to 16 by %16x (first, so the
// padding goes with it), hex, decimal.
func (s *memberSide) learnID(t *testing.T, name, stdout string) {
	t.Helper()
	for _, p := range addedID {
		if m := p.re.FindStringSubmatch(stdout); m != nil {
			id, err := strconv.ParseUint(m[1], p.base, 64)
			if err != nil {
				t.Fatal(err)
			}
			s.vars[name] = fmt.Sprintf("%x", id)
			s.masks = append(s.masks, fmt.Sprintf("%16x", id), name, fmt.Sprintf("%x", id), name, fmt.Sprint(id), name)
			return
		}
	}
	t.Fatalf("no member ID in the output of an add:\n%s", stdout)
}

// run runs the steps on this side against endpoint r.
func (s *memberSide) run(t *testing.T, r *refServer, steps []memberStep) []outcome {
	t.Helper()
	var outs []outcome
	for _, step := range steps {
		tc := ctlCase{args: slices.Clone(step.args)}
		for i, a := range tc.args {
			for name, v := range s.vars {
				a = strings.ReplaceAll(a, name, v)
			}
			tc.args[i] = a
		}
		var out outcome
		if s.etcdctl {
			out = r.etcdctlRun(t, tc)
		} else {
			out = r.plumbRun(t, tc)
		}
		if step.adds != "" {
			if out.code != 0 {
				t.Fatalf("%q: exit %d, stderr %q; the steps after it need the member", tc.args, out.code, out.stderr)
			}
			s.learnID(t, step.adds, out.stdout)
		}
		outs = append(outs, out)
	}
	return outs
}

// masked is what a side printed with its own IDs and URLs replaced by
// their names. The server lists members by ID, and each side's new members
// have IDs of their own, so the member lists are sorted too.
func (s *memberSide) masked(text string) string {
	return sortedMembers(strings.NewReplacer(s.masks...).Replace(text))
}

var (
	initialClusterPattern = regexp.MustCompile(`ETCD_INITIAL_CLUSTER="([^"]*)"`)
	memberObjectPattern   = regexp.MustCompile(`\{[^{}]*\}`)
)

// sortedMembers sorts the entries of ETCD_INITIAL_CLUSTER and the members
// of a JSON response (whose last field is always the member list).
func sortedMembers(s string) string {
	s = initialClusterPattern.ReplaceAllStringFunc(s, func(line string) string {
		entries := strings.Split(initialClusterPattern.FindStringSubmatch(line)[1], ",")
		slices.Sort(entries)
		return `ETCD_INITIAL_CLUSTER="` + strings.Join(entries, ",") + `"`
	})
	const list = `"members":[`
	if i := strings.Index(s, list); i >= 0 {
		start, end := i+len(list), strings.LastIndex(s, "]")
		if end > start {
			objects := memberObjectPattern.FindAllString(s[start:end], -1)
			slices.Sort(objects)
			s = s[:start] + strings.Join(objects, ",") + s[end:]
		}
	}
	return s
}

func TestMemberChangesMatchEtcdctl(t *testing.T) {
	dir := etcdRefDir(t)
	clearEtcdctlEnv(t)
	members := startPlumbCluster(t, 3)
	r := &refServer{etcdctl: filepath.Join(dir, "etcdctl"), endpoint: members[0].endpoint()}
	client, err := clientv3.New(clientv3.Config{Endpoints: []string{members[0].clientURL}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	before := listMembers(t, client)
	i := slices.IndexFunc(before, func(m *pb.Member) bool { return m.Name == members[0].name })
	if i < 0 {
		t.Fatalf("member list has no %s: %v", members[0].name, before)
	}
	steps := memberSteps(fmt.Sprintf("%x", before[i].ID), members[0].peerURL)

	var sides [2]*memberSide
	var outs [2][]outcome
	for k, isEtcdctl := range []bool{true, false} {
		sides[k] = &memberSide{etcdctl: isEtcdctl, vars: map[string]string{}}
		for u := 1; u <= 6; u++ {
			// Peer URLs that nothing listens on: the members added never start.
			name, url := fmt.Sprintf("<URL%d>", u), "http://"+freeAddr(t)
			sides[k].vars[name] = url
			sides[k].masks = append(sides[k].masks, url, name)
		}
		outs[k] = sides[k].run(t, r, steps)
	}
	for k, step := range steps {
		want, got := outs[0][k], outs[1][k]
		wantCode, wantErr := want.code, sides[0].masked(want.stderr)
		gotErr := sides[1].masked(got.stderr)
		if step.badInput && wantCode == 128 {
			wantCode, wantErr = exitBadInput, "plumb: "+strings.TrimPrefix(wantErr, "Error: ")
		}
		if got.code != wantCode || sides[1].masked(got.stdout) != sides[0].masked(want.stdout) || gotErr != wantErr {
			t.Errorf("%q:\nplumb   exit %d, stdout:\n%s\nstderr:\n%s\netcdctl exit %d, stdout:\n%s\nstderr:\n%s",
				step.args, got.code, got.stdout, got.stderr, want.code, want.stdout, want.stderr)
		}
	}
	if after := listMembers(t, client); len(after) != len(before) {
		t.Errorf("the steps left %d members, want the %d they started with: %v", len(after), len(before), after)
	}
}

// listMembers is the cluster's membership, as client's endpoint has it.
func listMembers(t *testing.T, client *clientv3.Client) []*pb.Member {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := client.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Members
}

// TestMemberPrints checks the simple output of add, remove, promote and
// update on what the cluster test cannot count on (it masks the IDs of
// the members it adds): IDs short enough for %16x to pad (with spaces, as
// etcdctl), and for add a voter, a member with two peer URLs, and members
// that have not started, in the response's order.
func TestMemberPrints(t *testing.T) {
	for _, tc := range []struct {
		id, clusterID uint64
		done, want    string
	}{
		{0x2a, 0x0cdf818194e3a8c3, "removed from", "Member               2a removed from cluster  cdf818194e3a8c3\n"},
		{0x8e9e05c52164694d, 0x1, "promoted in", "Member 8e9e05c52164694d promoted in cluster                1\n"},
		{0, 0, "updated in", "Member                0 updated in cluster                0\n"},
	} {
		var out bytes.Buffer
		writeMemberChanged(&out, tc.id, tc.done, tc.clusterID)
		if out.String() != tc.want {
			t.Errorf("got %q, want %q", out.String(), tc.want)
		}
	}
	for _, tc := range []struct {
		name, peerURLs string
		resp           *pb.MemberAddResponse
		want           string
	}{
		{
			name: "etcd4", peerURLs: "http://10.0.0.4:2380",
			resp: &pb.MemberAddResponse{
				Header: &pb.ResponseHeader{ClusterId: 0xcdf818194e3a8c32},
				Member: &pb.Member{ID: 0x2a, PeerURLs: []string{"http://10.0.0.4:2380"}},
				Members: []*pb.Member{
					{ID: 0x2a, PeerURLs: []string{"http://10.0.0.4:2380"}},
					{ID: 0x8e9e05c52164694d, Name: "etcd1", PeerURLs: []string{"http://10.0.0.1:2380"}},
				},
			},
			want: "Member               2a added to cluster cdf818194e3a8c32\n\n" +
				"ETCD_NAME=\"etcd4\"\n" +
				"ETCD_INITIAL_CLUSTER=\"etcd4=http://10.0.0.4:2380,etcd1=http://10.0.0.1:2380\"\n" +
				"ETCD_INITIAL_ADVERTISE_PEER_URLS=\"http://10.0.0.4:2380\"\n" +
				"ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n",
		},
		{
			name: `a "quoted" name`, peerURLs: "http://10.0.0.5:2380,http://10.0.1.5:2380",
			resp: &pb.MemberAddResponse{
				Header: &pb.ResponseHeader{ClusterId: 0x7},
				Member: &pb.Member{ID: 0x0fffffffffffffff, PeerURLs: []string{"http://10.0.0.5:2380", "http://10.0.1.5:2380"}, IsLearner: true},
				Members: []*pb.Member{
					{ID: 0x1, Name: "etcd1", PeerURLs: []string{"http://10.0.0.1:2380"}},
					{ID: 0x3, PeerURLs: []string{"http://10.0.0.3:2380"}},
					{ID: 0x0fffffffffffffff, PeerURLs: []string{"http://10.0.0.5:2380", "http://10.0.1.5:2380"}, IsLearner: true},
				},
			},
			want: "Member  fffffffffffffff added as learner to cluster                7\n\n" +
				"ETCD_NAME=\"a \\\"quoted\\\" name\"\n" +
				"ETCD_INITIAL_CLUSTER=\"etcd1=http://10.0.0.1:2380,=http://10.0.0.3:2380," +
				"a \\\"quoted\\\" name=http://10.0.0.5:2380,a \\\"quoted\\\" name=http://10.0.1.5:2380\"\n" +
				"ETCD_INITIAL_ADVERTISE_PEER_URLS=\"http://10.0.0.5:2380,http://10.0.1.5:2380\"\n" +
				"ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n",
		},
	} {
		var out bytes.Buffer
		writeMemberAdded(&out, tc.name, tc.peerURLs, tc.resp)
		if out.String() != tc.want {
			t.Errorf("member add %s:\n%s\nwant:\n%s", tc.name, out.String(), tc.want)
		}
	}
}

// TestMemberBadUsageExitsTwo: what plumb refuses before sending anything,
// with or without a server or etcdctl.
func TestMemberBadUsageExitsTwo(t *testing.T) {
	clearEtcdctlEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"member", "add"}, "member name not provided"},
		{[]string{"member", "add", "n4"}, "member peer urls not provided"},
		{[]string{"member", "add", "n4", "http://a:2380", "HTTPS://b:2380"}, "too many arguments, did you mean --peer-urls=http://a:2380, did you mean --peer-urls=HTTPS://b:2380"},
		{[]string{"member", "add", "n4", "--peer-urls", "http://a:2380", "-w", "table"}, `"table" is not an output format of plumb member add`},
		{[]string{"member", "remove"}, "member ID is not provided"},
		{[]string{"member", "remove", "x1"}, `bad member ID arg (strconv.ParseUint: parsing "x1": invalid syntax), expecting ID in Hex`},
		{[]string{"member", "remove", "1", "-w", "table"}, `"table" is not an output format of plumb member remove`},
		{[]string{"member", "promote"}, "member ID is not provided"},
		{[]string{"member", "promote", "1", "2"}, "member ID is not provided"},
		{[]string{"member", "promote", "10000000000000000"}, "value out of range"},
		{[]string{"member", "promote", "1", "-w", "table"}, `"table" is not an output format of plumb member promote`},
	} {
		code, out, errOut := plumb(t, append(tc.args, "--endpoints", "127.0.0.1:1")...)
		if code != exitBadInput || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("%q: exit %d, stderr %q (stdout %q); want exit 2 and %q", tc.args, code, errOut, out, tc.want)
		}
	}
	// --learner takes no value, so a flag after it is still a flag.
	got := interspersed(strings.Fields("plumb member add n4 --learner --peer-urls http://a:2380 -w json"), []*cli.Command{memberCommand()})
	if want := "plumb member add --learner --peer-urls http://a:2380 -w json n4"; strings.Join(got, " ") != want {
		t.Errorf("interspersed: got %s, want %s", strings.Join(got, " "), want)
	}
}
