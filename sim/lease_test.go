package sim

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plumbdb/plumb/linearizability"
)

// TestLeaseScenarioExercisesEveryRule: lease.yaml is not a vacuous test of
// the lease check. Over its first seeds, holders are granted leases and
// keep them alive, also through members that forward their keep-alives to
// the leader (and retry while a partition cuts them from it); leases
// expire and are revoked by their holders, deleting keys written with
// them; puts with a lease that is gone are refused; and leases left to
// expire are due by the end (rule d judges them).
func TestLeaseScenarioExercisesEveryRule(t *testing.T) {
	path := filepath.Join(scenarioDir, "lease.yaml")
	sc := load(t, path)
	var expired, revoked, deleting, acked, stopped, refused int
	forwards := map[string]int{}
	for seed := uint64(1); seed <= 3; seed++ {
		var trace bytes.Buffer
		r := Run(sc, Options{Seed: seed, Trace: &trace})
		if r.Verdict != VerdictOK {
			t.Fatalf("%s\nreproduce: %s", describe(r), reproduce(path, seed, ""))
		}
		for _, rv := range r.Leases.Revokes {
			if rv.Expired {
				expired++
			} else {
				revoked++
			}
			if len(rv.Deleted) > 0 {
				deleting++
			}
		}
		for _, l := range r.Leases.Leases {
			for _, k := range l.KeepAlives {
				if k.Outcome == linearizability.OutcomeOK && k.TTL > 0 {
					acked++
				}
			}
			if l.Stopped != 0 {
				stopped++
			}
		}
		for _, a := range r.Leases.Attached {
			if op := r.History.Operations[a.Op]; op.Outcome == linearizability.OutcomeFailed && strings.Contains(op.Error, "lease not found") {
				refused++
			}
		}
		for _, line := range strings.Split(trace.String(), "\n") {
			for _, what := range []string{"answered: ok", "the link to the leader is cut"} {
				if strings.Contains(line, `"ev":"forward"`) && strings.Contains(line, what) {
					forwards[what]++
				}
			}
		}
	}
	t.Logf("3 seeds: %d expired, %d revoked by holders, %d deleted keys, %d keep-alives acknowledged, %d stopped, %d puts refused; forwards %v",
		expired, revoked, deleting, acked, stopped, refused, forwards)
	if expired == 0 || revoked == 0 || deleting == 0 || acked == 0 || stopped == 0 || refused == 0 {
		t.Error("some rule of the lease check had nothing to judge")
	}
	if forwards["answered: ok"] == 0 || forwards["the link to the leader is cut"] == 0 {
		t.Error("no keep-alive was forwarded to the leader, or none was kept from it by a partition")
	}
}

// TestLockScenarioExercisesTheFence: over lock.yaml's first seeds, users
// own the lock and make fenced writes, wait for their predecessor's key
// to go by watching it, and a user that stalled past its session's expiry
// is refused by the fence.
func TestLockScenarioExercisesTheFence(t *testing.T) {
	path := filepath.Join(scenarioDir, "lock.yaml")
	sc := load(t, path)
	var owned, fenced, refused, watched int
	for seed := uint64(1); seed <= 3; seed++ {
		var trace bytes.Buffer
		r := Run(sc, Options{Seed: seed, Trace: &trace})
		if r.Verdict != VerdictOK {
			t.Fatalf("%s\nreproduce: %s", describe(r), reproduce(path, seed, ""))
		}
		for _, h := range r.Locks.Holds {
			if h.Owned != 0 {
				owned++
			}
			for _, i := range h.Fenced {
				if op := r.History.Operations[i]; op.Outcome == linearizability.OutcomeOK {
					if op.Succeeded {
						fenced++
					} else {
						refused++
					}
				}
			}
		}
		watched += strings.Count(trace.String(), "watch ended: deleted")
	}
	t.Logf("3 seeds: %d holds owned the lock, %d fenced writes, %d refused, %d waits ended by a delete", owned, fenced, refused, watched)
	if owned == 0 || fenced == 0 || refused == 0 || watched == 0 {
		t.Error("the lock scenario left some part of the recipe or the fence unexercised")
	}
}
