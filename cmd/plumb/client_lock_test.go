package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// jsonKeyPattern is a key in JSON (base64): a lock's or a leader's key
// holds its session's lease ID, which differs between the sides.
var jsonKeyPattern = regexp.MustCompile(`"key":"[^"]*"`)

// withoutSessions masks what differs between two sides' locks or
// campaigns: lease IDs, the keys they are in, and revisions.
func withoutSessions(s string) string {
	s = jsonKeyPattern.ReplaceAllString(withoutLeaseIDs(s), `"key":KEY`)
	return comparable(s, true)
}

func TestLockMatchesEtcdctl(t *testing.T) {
	ref := startEtcd(t)
	clearEtcdctlEnv(t)
	// The command under the lock reads the lock's variables, and the TTL
	// of the session's lease with etcdctl.
	script := fmt.Sprintf(`echo "$ETCD_LOCK_KEY"; test "$ETCD_LOCK_REV" -gt 1 && echo rev ok; `+
		`%s --endpoints %s lease timetolive "${ETCD_LOCK_KEY##*/}"; exit 3`, ref.etcdctl, ref.endpoint)
	t.Run("commands", func(t *testing.T) {
		ref.compareProcesses(t, []ctlCase{
			{ids: true, args: []string{"lock", "zl", "--ttl", "7", "--", "sh", "-c", script}},
			{args: []string{"lock", "zl", "--", "true"}},
			{args: []string{"lock", "zl", "--", "sh", "-c", "kill -9 $$"}},
			{args: []string{"lock", "zl", "--", "plumb-test-no-such-command"}},
		})
	})
	t.Run("wait for each other", func(t *testing.T) {
		// Each side holds the lock while the other waits with a command
		// for it, then lets go: each round ends with the waiter's command.
		holders, waiters := [2]outcome{}, [2]outcome{}
		for i, etcdctlHolds := range []bool{true, false} {
			holders[i], waiters[i] = ref.lockRound(t, etcdctlHolds, script)
		}
		sameOutcome(t, "lock holding zr, interrupted", holders[1], holders[0], withoutLeaseIDs)
		sameOutcome(t, "lock waiting for zr with a command", waiters[0], waiters[1], withoutLeaseIDs)
	})
	t.Run("json", func(t *testing.T) {
		var outs []outcome
		for _, isEtcdctl := range []bool{true, false} {
			p := ref.startCtl(t, isEtcdctl, ctlCase{args: []string{"lock", "zj", "-w", "json"}})
			p.waitLines(t, 1)
			outs = append(outs, p.stop(t))
		}
		sameOutcome(t, "lock -w json", outs[1], outs[0], withoutSessions)
	})
	t.Run("session expired", func(t *testing.T) {
		// The lock's lease revoked under it: the session ends at the next
		// renewal (a third of the TTL), and so does the lock, with an error.
		var outs []outcome
		for _, isEtcdctl := range []bool{true, false} {
			p := ref.startCtl(t, isEtcdctl, ctlCase{args: []string{"lock", "--ttl", "3", "zs"}})
			p.waitLines(t, 1)
			ref.revokeLeaseOf(t, strings.SplitN(p.stdout.String(), "\n", 2)[0])
			outs = append(outs, p.wait(t))
		}
		sameOutcome(t, "lock whose lease is revoked", outs[1], outs[0], withoutLeaseIDs)
	})
}

// lockRound has one side hold lock zr and the other wait for it to run
// script, then interrupts the holder; it returns what each did.
func (r *refServer) lockRound(t *testing.T, etcdctlHolds bool, script string) (holder, waiter outcome) {
	t.Helper()
	h := r.startCtl(t, etcdctlHolds, ctlCase{args: []string{"lock", "zr"}})
	h.waitLines(t, 2) // the key and its empty value
	w := r.startCtl(t, !etcdctlHolds, ctlCase{args: []string{"lock", "zr", "--ttl", "7", "--", "sh", "-c", script}})
	// The waiter's key goes in after the holder's; until the holder lets
	// go, the command must not run.
	r.waitKeys(t, "zr/", 2)
	if out := w.stdout.String(); out != "" || !w.running() {
		t.Fatalf("%s ran while %s held the lock: %q", w.name, h.name, out)
	}
	return h.stop(t), w.wait(t)
}

// waitKeys waits until there are n keys under prefix.
func (r *refServer) waitKeys(t *testing.T, prefix string, n int64) {
	t.Helper()
	for deadline := time.Now().Add(procWaitMax); ; time.Sleep(20 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := r.client.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if resp.Count >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d keys under %s after %v, want %d", resp.Count, prefix, procWaitMax, n)
		}
	}
}

// revokeLeaseOf revokes the lease whose ID ends a lock's or a leader's key.
func (r *refServer) revokeLeaseOf(t *testing.T, key string) {
	t.Helper()
	_, hex, _ := strings.Cut(key, "/")
	id, err := strconv.ParseInt(hex, 16, 64)
	if err != nil {
		t.Fatalf("key %q does not end with a lease ID: %v", key, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.client.Revoke(ctx, clientv3.LeaseID(id)); err != nil {
		t.Fatal(err)
	}
}

// TestElectMatchesEtcdctl: observers of one election, etcdctl's and
// plumb's, in both formats, see the same leaders as etcdctl and plumb take
// turns: in each round one side campaigns and leads, the other campaigns
// and waits, then each is interrupted in turn (resigning) and the other
// leads. The observers' outputs are the same bytes; the campaigners' are
// the same but for their leases.
func TestElectMatchesEtcdctl(t *testing.T) {
	ref := startEtcd(t)
	clearEtcdctlEnv(t)
	var observers [][2]*ctlProc
	for _, format := range []string{"simple", "json"} {
		e, p := ref.startBoth(t, ctlCase{args: []string{"elect", "-l", "ze", "-w", format}})
		observers = append(observers, [2]*ctlProc{e, p})
	}
	seen := 0 // leaders the observers printed: two lines each, one in JSON
	observed := func() {
		t.Helper()
		seen++
		for i, pair := range observers {
			pair[0].waitLines(t, (2-i)*seen)
			pair[1].waitLines(t, (2-i)*seen)
		}
	}
	var firsts, seconds [2]outcome
	for i, etcdctlFirst := range []bool{true, false} {
		first := ref.startCtl(t, etcdctlFirst, ctlCase{args: []string{"elect", "ze", "first"}})
		first.waitLines(t, 2)
		observed()
		second := ref.startCtl(t, !etcdctlFirst, ctlCase{args: []string{"elect", "ze", "second"}})
		ref.waitKeys(t, "ze/", 2)
		if out := second.stdout.String(); out != "" {
			t.Fatalf("%s was elected while %s led: %q", second.name, first.name, out)
		}
		firsts[i] = first.stop(t)
		second.waitLines(t, 2)
		observed()
		seconds[i] = second.stop(t)
	}
	sameOutcome(t, "elect ze first", firsts[1], firsts[0], withoutLeaseIDs)
	sameOutcome(t, "elect ze second", seconds[0], seconds[1], withoutLeaseIDs)
	if !strings.HasPrefix(firsts[0].stdout, "ze/") || !strings.HasSuffix(seconds[0].stdout, "\nsecond\n") {
		t.Errorf("campaigns printed %q and %q, want the leader's key and value", firsts[0].stdout, seconds[0].stdout)
	}
	for _, pair := range observers {
		sameOutcome(t, pair[1].name, pair[1].stop(t), pair[0].stop(t), nil)
	}
	t.Run("interrupted campaign", func(t *testing.T) {
		// One side leads; the other's campaign, interrupted while it waits,
		// fails.
		var outs []outcome
		for _, etcdctlWaits := range []bool{true, false} {
			leader := ref.startCtl(t, !etcdctlWaits, ctlCase{args: []string{"elect", "zi", "leader"}})
			leader.waitLines(t, 2)
			waiter := ref.startCtl(t, etcdctlWaits, ctlCase{args: []string{"elect", "zi", "waiter"}})
			ref.waitKeys(t, "zi/", 2)
			waiter.signal(t, syscall.SIGTERM)
			outs = append(outs, waiter.wait(t))
			leader.stop(t)
		}
		sameOutcome(t, "elect zi waiter, interrupted", outs[1], outs[0], nil)
	})
}
