package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/plumbdb/plumb/linearizability"
)

// Load of the kill test: a few clients on a few keys, each write a value
// never written before, so that porcupine can tell every write apart.
const (
	loadClients   = 6
	loadKeys      = 8
	loadOpTimeout = 3 * time.Second
	checkTimeout  = 2 * time.Minute
)

// recorder records a real cluster's client history in the format the
// simulator's histories use, on the test's monotonic clock.
type recorder struct {
	start   time.Time
	mu      sync.Mutex
	h       linearizability.History
	clients atomic.Int64
	acked   atomic.Int64
}

func (r *recorder) now() int64 { return time.Since(r.start).Nanoseconds() }

func (r *recorder) add(op linearizability.Operation) {
	r.mu.Lock()
	r.h.Add(op)
	r.mu.Unlock()
}

// run is one client's loop until ctx ends: puts and linearizable gets on
// the shared keys. A put that fails may still have happened (unknown); the
// client then takes a fresh porcupine id, so its operations never overlap.
func (r *recorder) run(ctx context.Context, cli *clientv3.Client, worker int) {
	id := int(r.clients.Add(1))
	for seq := 0; ctx.Err() == nil; seq++ {
		key := fmt.Sprintf("key-%d", (worker+seq)%loadKeys)
		op := linearizability.Operation{Client: id, Key: key, Call: r.now()}
		octx, cancel := context.WithTimeout(ctx, loadOpTimeout)
		if seq%3 == 2 {
			op.Kind = linearizability.KindGet
			resp, err := cli.Get(octx, key)
			op.Return = r.now()
			if err != nil {
				op.Outcome, op.Error = linearizability.OutcomeFailed, err.Error() // a read changes nothing
			} else {
				op.Outcome, op.Revision = linearizability.OutcomeOK, resp.Header.Revision
				if len(resp.Kvs) == 1 {
					kv := resp.Kvs[0]
					op.Found, op.Result = true, string(kv.Value)
					op.ModRevision, op.CreateRevision, op.Version = kv.ModRevision, kv.CreateRevision, kv.Version
				}
			}
		} else {
			op.Kind, op.Value = linearizability.KindPut, fmt.Sprintf("w%d-%d", worker, seq)
			resp, err := cli.Put(octx, key, op.Value)
			op.Return = r.now()
			if err != nil {
				op.Outcome, op.Error = linearizability.OutcomeUnknown, err.Error()
			} else {
				op.Outcome, op.Revision = linearizability.OutcomeOK, resp.Header.Revision
				r.acked.Add(1)
			}
		}
		cancel()
		r.add(op)
		if op.Outcome == linearizability.OutcomeUnknown {
			id = int(r.clients.Add(1))
		}
		if op.Outcome != linearizability.OutcomeOK {
			time.Sleep(20 * time.Millisecond) // a member is down: do not spin
		}
	}
}

// TestKillUnderLoad: members are killed with SIGKILL (no clean close of
// the WAL or bbolt) while clients write, then restarted. Every write the
// cluster acknowledged is still there afterwards, on every member: the
// recorded history, with a final read of every key, is linearizable. A
// killed leader is replaced within a few election timeouts.
func TestKillUnderLoad(t *testing.T) {
	c := newCluster(t, 3)
	rec := &recorder{start: time.Now()}
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range loadClients {
		cli := c.client()
		wg.Add(1)
		go func() { defer wg.Done(); rec.run(ctx, cli, w) }()
	}
	pause := func(d time.Duration) { time.Sleep(d) }

	pause(2 * time.Second)
	leader, _ := c.waitLeader(5 * time.Second)
	follower := c.members[0]
	if follower == leader {
		follower = c.members[1]
	}
	t.Logf("kill -9 follower %s", follower.name)
	c.kill(follower)
	pause(2 * time.Second)
	c.start(follower)
	pause(2 * time.Second)

	leader, _ = c.waitLeader(10 * time.Second)
	t.Logf("kill -9 leader %s", leader.name)
	killed := time.Now()
	c.kill(leader)
	newLeader, _ := c.waitLeader(10 * electionMs * time.Millisecond)
	took := time.Since(killed)
	t.Logf("new leader %s elected %v after the kill (election timeout %dms)", newLeader.name, took, electionMs)
	if took > 5*electionMs*time.Millisecond {
		t.Errorf("a new leader took %v after the leader's kill; want within 5 election timeouts (%dms)", took, 5*electionMs)
	}
	pause(time.Second)
	c.start(leader)
	pause(2 * time.Second)
	stopLoad()
	wg.Wait()

	c.waitLeader(10 * time.Second)
	waitConverged(t, c)
	finalReads(t, c, rec)
	if rec.acked.Load() < 100 {
		t.Fatalf("only %d writes were acknowledged; the load did not run", rec.acked.Load())
	}
	res := linearizability.Check(rec.h, linearizability.Options{Timeout: checkTimeout})
	t.Logf("history: %d operations (%d writes acknowledged), %d checked over %d keys, %d with revisions, %d unknown writes resolved: %s %s",
		len(rec.h.Operations), rec.acked.Load(), res.Operations, res.Keys, res.Revisions, res.Resolved, res.Verdict, res.Reason)
	if res.Revisions < res.Operations*9/10 {
		t.Errorf("only %d of %d operations had their revisions checked; every ok operation records them", res.Revisions, res.Operations)
	}
	if res.Verdict != linearizability.VerdictOK {
		dir := t.ArtifactDir()
		f, err := os.Create(filepath.Join(dir, "kill.history.json"))
		if err == nil {
			linearizability.WriteJSON(f, rec.h)
			f.Close()
		}
		t.Fatalf("the history with the final reads is %s: an acknowledged write was lost, a read was stale or a revision wrong: %s (history in %s)", res.Verdict, res.Reason, dir)
	}
}

// waitConverged waits until every member has applied the same index.
func waitConverged(t *testing.T, c *cluster) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var applied []uint64
		for _, m := range c.members {
			if st, err := status(m); err == nil {
				applied = append(applied, st.RaftAppliedIndex)
			}
		}
		if len(applied) == len(c.members) && applied[0] == applied[1] && applied[1] == applied[2] {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the members did not converge on one applied index within 20s")
}

// finalReads reads every key on every member once the cluster converged:
// every member must hold the same value, and that read goes into the
// history, where it must explain every acknowledged write.
func finalReads(t *testing.T, c *cluster, rec *recorder) {
	t.Helper()
	ctx := ctxT(t)
	clients := make([]*clientv3.Client, len(c.members))
	for i, m := range c.members {
		clients[i] = c.client(m.endpoint())
	}
	for k := range loadKeys {
		key := fmt.Sprintf("key-%d", k)
		var first string
		for i, cli := range clients {
			op := linearizability.Operation{Client: int(rec.clients.Add(1)), Kind: linearizability.KindGet, Key: key, Call: rec.now()}
			resp, err := cli.Get(ctx, key, clientv3.WithSerializable())
			op.Return = rec.now()
			if err != nil {
				t.Fatalf("final read of %s on %s: %v", key, c.members[i].name, err)
			}
			// Recorded as linearizable reads: every member has caught up,
			// so each must show the state after every acknowledged write,
			// at the cluster's newest revision.
			op.Outcome, op.Revision = linearizability.OutcomeOK, resp.Header.Revision
			if len(resp.Kvs) == 1 {
				kv := resp.Kvs[0]
				op.Found, op.Result = true, string(kv.Value)
				op.ModRevision, op.CreateRevision, op.Version = kv.ModRevision, kv.CreateRevision, kv.Version
			}
			if i == 0 {
				first = op.Result
			} else if op.Result != first {
				t.Errorf("%s on %s is %q, on %s %q: the members diverged", key, c.members[i].name, op.Result, c.members[0].name, first)
			}
			rec.add(op)
		}
	}
}
