package sim

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestPlantedBugFailsItsCheck proves that each check can fail, by name: for
// each planted bug, a scenario where it is caught within a bounded number of
// seeds, by exactly the check it is planted for, while every other check of
// that run passes (the durable check is not judged when the history is not
// linearizable by itself) and the members stay startable. The failing run
// reproduces from its seed. Without the bug, the same seeds pass: that is
// TestScenarios.
func TestPlantedBugFailsItsCheck(t *testing.T) {
	tests := []struct {
		bug, scenario, check string
		seedsMax             uint64
	}{
		{BugStaleReads, "partition.yaml", "linearizable", 40},
		{BugLazyFsync, "power-cut.yaml", "durable", 20},
		{BugStuckApply, "baseline.yaml", "converge", 5},
		{BugNoFailover, "partition.yaml", "liveness", 5},
		// 48 of watch.yaml's first 50 seeds catch it (seed 1 does): a
		// watcher catches up from the history at every reconnect.
		{BugWatchSkip, "watch.yaml", "watch", 5},
		// All 50 of lease.yaml's first 50 seeds catch it (and of
		// lock.yaml's): a follower revokes the first lease it saw granted
		// a TTL later, whatever its keep-alives.
		{BugFollowerLeaseExpiry, "lease.yaml", "lease", 3},
		// All 50 of lock.yaml's first 50 seeds catch it (and of
		// lease.yaml's): the first expired session leaves its lock key
		// behind, and the lock is never free again.
		{BugRevokeLeavesKey, "lock.yaml", "lease", 3},
		// 8 of lock.yaml's first 50 seeds catch it, the first at seed 4:
		// a waiter misses its predecessor only when that holder made a
		// fenced write after the waiter's key was created.
		{BugLockMaxCreate, "lock.yaml", "lock", 10},
		// All of ip-reuse.yaml's first 50 seeds catch it: the other
		// cluster's member at n2's old address has n2's member ID and
		// takes the leader's first heartbeat for n2 (raft then panics on
		// its commit index, and the host dies of it).
		{BugSkipClusterCheck, "ip-reuse.yaml", "peer-identity", 3},
		// All of member-remove.yaml's first 50 seeds catch it: the removed
		// members still counted as voters that never answer, the strict
		// reconfiguration check refuses the next removals as an
		// unhealthy cluster, and the members never hold the membership
		// the operator's changes would leave.
		{BugKeepRemovedMember, "member-remove.yaml", "converge", 3},
		// 7 of auth.yaml's first 40 seeds catch it, the first at seed 5:
		// it takes a member that has not yet applied a change (a slow
		// disk, a restart, a heal) and a read that reaches it just after
		// the change was acknowledged elsewhere.
		{BugAuthCheckAtSubmit, "auth.yaml", "auth", 10},
		// All of auth-apps.yaml's first 5 seeds catch it: the first lease
		// grant of a lease holder or lock user after authentication is
		// enabled is refused.
		{BugLeaseGrantNeedsRoot, "auth-apps.yaml", "auth", 3},
	}
	for _, tt := range tests {
		t.Run(tt.bug, func(t *testing.T) {
			path := filepath.Join(scenarioDir, tt.scenario)
			sc := load(t, path)
			for seed := uint64(1); seed <= tt.seedsMax; seed++ {
				r := Run(sc, Options{Seed: seed, PlantBug: tt.bug})
				if r.Verdict == VerdictError {
					t.Fatalf("seed %d: %s", seed, describe(r))
				}
				if r.Verdict != VerdictViolation {
					continue
				}
				t.Logf("caught at seed %d: %s\nreproduce: %s", seed, describe(r), reproduce(path, seed, tt.bug))
				var failed []string
				for _, c := range r.Checks {
					switch {
					case c.Skipped && !(c.Name == "durable" && tt.check == "linearizable"):
						t.Errorf("seed %d: check %s was not judged: %s", seed, c.Name, c.Detail)
					case !c.OK && !c.Skipped:
						failed = append(failed, c.Name)
					}
				}
				if !slices.Equal(failed, []string{tt.check}) {
					t.Fatalf("seed %d: failed checks %v, want exactly [%s]", seed, failed, tt.check)
				}
				if r.RefusedStarts != 0 {
					t.Errorf("seed %d: %d starts refused; the bug must leave members startable", seed, r.RefusedStarts)
				}
				if again := Run(sc, Options{Seed: seed, PlantBug: tt.bug}); again.TraceHash != r.TraceHash || again.Verdict != r.Verdict {
					t.Fatalf("the failing run did not reproduce: %s then %s", r.TraceHash, again.TraceHash)
				}
				return
			}
			t.Fatalf("the planted bug %q survived %d seeds of %s", tt.bug, tt.seedsMax, tt.scenario)
		})
	}
}
