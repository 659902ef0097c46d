package e2e_test

import (
	"bufio"
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"
)

// waitsFor is how long a call that must block is watched before it is
// taken to block.
const waitsFor = 1500 * time.Millisecond

// bgCtl is an etcdctl that runs in the background, its output read line
// by line as it comes.
type bgCtl struct {
	t     *testing.T
	cmd   *exec.Cmd
	lines chan string
	done  chan error // its exit, once
}

func startCtl(t *testing.T, bin string, endpoints []string, args ...string) *bgCtl {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--endpoints", strings.Join(endpoints, ",")}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &bgCtl{t: t, cmd: cmd, lines: make(chan string, 64), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.lines <- sc.Text()
		}
		close(b.lines)
		b.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	return b
}

// next returns the next line etcdctl prints, waiting up to 10s.
func (b *bgCtl) next(what string) string {
	b.t.Helper()
	select {
	case l, ok := <-b.lines:
		if !ok {
			b.t.Fatalf("%s: etcdctl ended without printing a line (%v)", what, <-b.done)
		}
		return l
	case <-time.After(10 * time.Second):
		b.t.Fatalf("%s: etcdctl printed nothing within 10s", what)
	}
	return ""
}

// silent fails the test if etcdctl prints or ends within waitsFor.
func (b *bgCtl) silent(what string) {
	b.t.Helper()
	select {
	case l, ok := <-b.lines:
		b.t.Fatalf("%s: etcdctl printed %q (open %v) while it should wait", what, l, ok)
	case <-time.After(waitsFor):
	}
}

// interrupt sends SIGINT, on which etcdctl lock and elect let go, and
// waits for the exit.
func (b *bgCtl) interrupt(what string) {
	b.t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGINT); err != nil {
		b.t.Fatal(err)
	}
	for range b.lines {
	}
	if err := <-b.done; err != nil {
		b.t.Errorf("%s: etcdctl exited with %v after SIGINT", what, err)
	}
}

// TestEtcdctlLockElect: etcdctl 3.7's lock and elect against a 3-member
// plumb cluster, through a follower: lock NAME CMD runs CMD holding the
// lock (with ETCD_LOCK_KEY set to its key); lock NAME prints the key it holds and a
// second locker waits until the first lets go; elect NAME PROPOSAL wins an
// empty election, elect -l prints the leader and each new one, and a
// second candidate is elected when the first resigns.
func TestEtcdctlLockElect(t *testing.T) {
	bin := etcdctl(t)
	c := newCluster(t, 3)
	waitPublished(t, c)
	eps := []string{c.follower().endpoint()}
	key := regexp.MustCompile(`^L/[0-9a-f]+$`)

	out := ctl(t, bin, eps, "lock", "L", "printenv", "ETCD_LOCK_KEY")
	if !key.MatchString(strings.TrimSuffix(out, "\n")) {
		t.Fatalf("lock L printenv ETCD_LOCK_KEY printed %q, want the lock's key", out)
	}
	holder := startCtl(t, bin, eps, "lock", "L")
	if k := holder.next("lock L"); !key.MatchString(k) {
		t.Fatalf("lock L printed %q, want the lock's key", k)
	}
	waiter := startCtl(t, bin, c.endpoints(), "lock", "L", "echo", "second")
	waiter.silent("a second lock L while the first holds it")
	holder.interrupt("the holder")
	if got := waiter.next("the second lock L once the first let go"); got != "second" {
		t.Fatalf("the second lock L printed %q, want its command's output", got)
	}

	first := startCtl(t, bin, eps, "elect", "E", "p1")
	k1 := first.next("elect E p1")
	if !regexp.MustCompile(`^E/[0-9a-f]+$`).MatchString(k1) || first.next("elect E p1's value") != "p1" {
		t.Fatalf("elect E p1 printed key %q", k1)
	}
	observer := startCtl(t, bin, c.endpoints(), "elect", "-l", "E")
	if k, v := observer.next("elect -l E"), observer.next("elect -l E's value"); k != k1 || v != "p1" {
		t.Fatalf("elect -l E printed %q %q, want %q p1", k, v, k1)
	}
	second := startCtl(t, bin, c.endpoints(), "elect", "E", "p2")
	second.silent("a second candidate while the first leads")
	first.interrupt("the first leader")
	k2 := second.next("the second candidate once the first resigned")
	if k2 == k1 || second.next("the second candidate's value") != "p2" {
		t.Fatalf("the second candidate printed key %q (the first's was %q)", k2, k1)
	}
	if k, v := observer.next("elect -l E after the resign"), observer.next("elect -l E's value after the resign"); k != k2 || v != "p2" {
		t.Fatalf("elect -l E printed %q %q after the resign, want %q p2", k, v, k2)
	}
	second.interrupt("the second leader")
	observer.interrupt("the observer")
}

// TestConcurrencyRecipes: clientv3's concurrency package against plumb,
// each party on another member: sessions, Mutex (Lock, TryLock, Unlock, a
// waiter let in by Unlock, a lock freed by its session's close), and
// Election (Campaign, Proclaim, Observe, Resign, Leader).
func TestConcurrencyRecipes(t *testing.T) {
	c := newCluster(t, 3)
	ctx := ctxT(t)
	session := func(m *member) *concurrency.Session {
		t.Helper()
		s, err := concurrency.NewSession(c.client(m.endpoint()), concurrency.WithTTL(10))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	s1, s2, s3 := session(c.members[0]), session(c.members[1]), session(c.members[2])

	m1, m2 := concurrency.NewMutex(s1, "mu"), concurrency.NewMutex(s2, "mu")
	if err := m1.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m2.TryLock(ctx); !errors.Is(err, concurrency.ErrLocked) {
		t.Fatalf("TryLock while another session holds the lock: %v, want %v", err, concurrency.ErrLocked)
	}
	waited := make(chan error, 1)
	go func() { waited <- m2.Lock(ctx) }()
	select {
	case err := <-waited:
		t.Fatalf("Lock returned %v while another session holds the lock", err)
	case <-time.After(waitsFor):
	}
	if err := m1.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("Lock once the holder unlocked: %v", err)
	}
	m3 := concurrency.NewMutex(s3, "mu")
	go func() { waited <- m3.Lock(ctx) }()
	select {
	case err := <-waited:
		t.Fatalf("a third Lock returned %v while another session holds the lock", err)
	case <-time.After(waitsFor):
	}
	if err := s2.Close(); err != nil { // revokes its lease: its key goes
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("Lock once the holder's session closed: %v", err)
	}
	if err := m3.Unlock(ctx); err != nil {
		t.Fatal(err)
	}

	e1, e3 := concurrency.NewElection(s1, "el"), concurrency.NewElection(s3, "el")
	octx, stopObserving := context.WithCancel(ctx)
	defer stopObserving()
	seen := concurrency.NewElection(s3, "el").Observe(octx)
	if err := e1.Campaign(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	observed := func(want string) {
		t.Helper()
		select {
		case resp := <-seen:
			if got := string(resp.Kvs[0].Value); got != want {
				t.Fatalf("observed %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("observed nothing within 10s, want %q", want)
		}
	}
	observed("a")
	if err := e1.Proclaim(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	observed("b")
	go func() { waited <- e3.Campaign(ctx, "c") }()
	select {
	case err := <-waited:
		t.Fatalf("a second Campaign returned %v while the first leads", err)
	case <-time.After(waitsFor):
	}
	if err := e1.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("Campaign once the leader resigned: %v", err)
	}
	observed("c")
	leader, err := e1.Leader(ctx)
	if err != nil || string(leader.Kvs[0].Value) != "c" || string(leader.Kvs[0].Key) != e3.Key() {
		t.Fatalf("Leader: %v %v, want %s = c", leader, err, e3.Key())
	}
}

// TestLockAcrossLeaderKill: a lock is held, through its session's lease,
// while the leader is killed with SIGKILL and another client waits for the
// lock. The holder either keeps the lock (its session lives on, its key
// stays, the waiter keeps waiting) or loses it visibly (its session's Done
// channel closes) before the waiter gets it: never two holders at once.
func TestLockAcrossLeaderKill(t *testing.T) {
	c := newCluster(t, 3)
	waitPublished(t, c)
	leader, _ := c.waitLeader(5 * time.Second)
	holderCli, waiterCli := c.client(), c.client()
	const ttl = 5
	hs, err := concurrency.NewSession(holderCli, concurrency.WithTTL(ttl))
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	ws, err := concurrency.NewSession(waiterCli, concurrency.WithTTL(ttl))
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	held := concurrency.NewMutex(hs, "kill-lock")
	if err := held.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	acquired := make(chan time.Time, 1)
	waiter := concurrency.NewMutex(ws, "kill-lock")
	go func() {
		if err := waiter.Lock(ctx); err == nil {
			acquired <- time.Now()
		}
	}()
	time.Sleep(500 * time.Millisecond)
	t.Logf("kill -9 the leader %s while %s holds the lock", leader.name, held.Key())
	c.kill(leader)
	newLeader, _ := c.waitLeader(10 * electionMs * time.Millisecond)
	t.Logf("new leader %s", newLeader.name)

	// Several TTLs after the kill: a lease that missed its keep-alives
	// would have run out by now.
	select {
	case at := <-acquired:
		// The holder lost the lock: it must know, and must have been
		// told no later than a TTL after the waiter got it (the lease
		// expired before the waiter could take the lock).
		select {
		case <-hs.Done():
			t.Logf("the holder's session ended and the waiter took the lock at %v: lost visibly", at.Format(time.TimeOnly))
		case <-time.After(ttl * time.Second):
			t.Fatalf("the waiter took the lock while the holder's session still lives: two holders")
		}
	case <-hs.Done():
		t.Logf("the holder's session ended across the kill (lost visibly); waiting for the waiter")
		select {
		case <-acquired:
		case <-time.After(3 * ttl * time.Second):
			t.Fatal("the holder's session ended but the waiter never got the lock")
		}
	case <-time.After(3 * ttl * time.Second):
		// The holder kept it: its key is still there, it still owns
		// the lock, and the waiter still waits.
		got, err := holderCli.Get(ctx, held.Key())
		if err != nil || len(got.Kvs) != 1 || got.Kvs[0].Lease != int64(hs.Lease()) {
			t.Fatalf("the holder's key %s after the kill: %v %v", held.Key(), got, err)
		}
		if err := held.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case <-acquired:
			t.Logf("the holder kept the lock across the kill; the waiter got it once unlocked")
		case <-time.After(10 * time.Second):
			t.Fatal("the waiter did not get the lock once the holder unlocked")
		}
		ttlResp, err := holderCli.TimeToLive(ctx, hs.Lease())
		if err != nil || ttlResp.TTL <= 0 {
			t.Errorf("the holder's lease after the kill: %+v %v, want it alive", ttlResp, err)
		}
	}
}
