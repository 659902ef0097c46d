package sim

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/plumbdb/plumb/faults"
)

// TestWatchersSameSeedSameRun: with watchers, a run is still a pure
// function of the scenario and the seed: the same trace hash and the same
// recorded streams twice, another seed another run; and the watchers'
// traffic is in the trace that the hash covers.
func TestWatchersSameSeedSameRun(t *testing.T) {
	sc := load(t, filepath.Join(scenarioDir, "watch.yaml"))
	var trace bytes.Buffer
	a := Run(sc, Options{Seed: 7, Trace: &trace})
	b := Run(sc, Options{Seed: 7})
	if a.TraceHash != b.TraceHash || a.Events != b.Events {
		t.Fatalf("seed 7 twice: hash %s, %d events; then %s, %d events", a.TraceHash, a.Events, b.TraceHash, b.Events)
	}
	if !reflect.DeepEqual(a.History.Watchers, b.History.Watchers) || !reflect.DeepEqual(a.History.Compactions, b.History.Compactions) {
		t.Fatal("seed 7 twice: the same hash but different watch streams")
	}
	if c := Run(sc, Options{Seed: 8}); c.TraceHash == a.TraceHash || reflect.DeepEqual(c.History.Watchers, a.History.Watchers) {
		t.Fatalf("seeds 7 and 8 gave the same run (hash %s)", a.TraceHash)
	}
	kinds, err := checkTrace(trace.Bytes(), a.TraceHash)
	if err != nil {
		t.Fatal(err)
	}
	if kinds["watch"] == 0 {
		t.Fatalf("the trace has no watch events: %v", kinds)
	}
	events := 0
	for _, w := range a.History.Watchers {
		for _, s := range w.Sessions {
			for _, r := range s.Responses {
				events += len(r.Events)
			}
		}
	}
	if len(a.History.Watchers) != sc.Watchers.Count || events == 0 {
		t.Fatalf("%d watchers recorded (want %d) with %d events", len(a.History.Watchers), sc.Watchers.Count, events)
	}
}

// TestWatchersRideOutFaults: watchers live through what watch.yaml does
// to them as the simulator says they do: their watches end because the
// member crashed, lost its leader to a partition, was compacted past
// them, or they cancelled; each next watch starts where the last left
// off (the revision after the last one seen, or the compaction revision),
// and the watch check judged them all.
func TestWatchersRideOutFaults(t *testing.T) {
	path := filepath.Join(scenarioDir, "watch.yaml")
	sc := load(t, path)
	ends := map[string]int{}
	for seed := uint64(1); seed <= 3; seed++ {
		r := Run(sc, Options{Seed: seed})
		if r.Verdict != VerdictOK {
			t.Fatalf("%s\nreproduce: %s", describe(r), reproduce(path, seed, ""))
		}
		for _, w := range r.History.Watchers {
			// from is where the watcher must ask next: the revision after
			// the last one it saw (a created header for a watch from now,
			// an event, a progress notification), or the compaction's.
			from := w.Sessions[0].StartRevision
			for i, s := range w.Sessions {
				for _, kind := range []string{"member crashed", "no leader", "compacted at", "canceled by the watcher", "connection refused"} {
					if strings.Contains(s.End, kind) && (kind != "no leader" || s.Open > int64(2*time.Second)) {
						ends[kind]++ // a lost leader after the first election
					}
				}
				if s.StartRevision != from {
					t.Fatalf("seed %d: w%d watch %d asked from %d, want %d", seed, w.ID, i+1, s.StartRevision, from)
				}
				if s.Created != 0 && from == 0 {
					from = s.Created + 1
				}
				for _, resp := range s.Responses {
					switch {
					case len(resp.Events) > 0:
						from = max(from, resp.Events[len(resp.Events)-1].ModRevision+1)
					case resp.CompactRevision != 0:
						from = resp.CompactRevision
					case resp.IsProgress():
						from = max(from, resp.Revision+1)
					}
				}
			}
		}
		if !slicesContainsCheck(r.Checks, "watch") {
			t.Fatalf("seed %d: no watch check among %v", seed, r.Checks)
		}
	}
	for _, kind := range []string{"member crashed", "no leader", "compacted at", "canceled by the watcher"} {
		if ends[kind] == 0 {
			t.Errorf("no watch of seeds 1-3 ended with %q: %v", kind, ends)
		}
	}
	t.Logf("watches ended: %v", ends)
}

func slicesContainsCheck(cs []Check, name string) bool {
	for _, c := range cs {
		if c.Name == name && c.OK {
			return true
		}
	}
	return false
}

// TestWatcherCutOffGetsNothingNew: a watcher on a member cut off from the
// others receives no event of a revision the majority created after the
// cut (the member cannot learn of it), and its watch is canceled once the
// member has gone without a leader for an election timeout, so that the
// watcher moves on.
func TestWatcherCutOffGetsNothingNew(t *testing.T) {
	sc, err := faults.Parse("cut.yaml", []byte(`name: cut
cluster: {members: 3}
watchers: {count: 12, prefix: 1, replay: 0, progress_every: 200ms}
duration: 20s
faults:
  - {at: 5s, partition: {isolate: n2, for: 8s}}
`))
	if err != nil {
		t.Fatal(err)
	}
	const cutNs, healNs = int64(5e9), int64(13e9)
	for seed := uint64(1); seed <= 3; seed++ {
		r := Run(sc, Options{Seed: seed})
		if r.Verdict != VerdictOK {
			t.Fatalf("%s", describe(r))
		}
		// The newest revision a write called before the cut could create.
		var before int64
		for _, op := range r.History.Operations {
			if op.Call < cutNs && op.IsWrite() {
				before = max(before, op.Revision)
			}
		}
		if res := r.Resolved; len(res) > 0 {
			for i, rs := range res {
				if r.History.Operations[i].Call < cutNs {
					before = max(before, rs.Revision)
				}
			}
		}
		onCut, canceled := 0, 0
		for _, w := range r.History.Watchers {
			for _, s := range w.Sessions {
				if s.Member != "n2" || s.Open >= healNs || s.Close != 0 && s.Close <= cutNs {
					continue
				}
				onCut++
				for _, resp := range s.Responses {
					for _, ev := range resp.Events {
						if resp.At > cutNs+int64(sc.Network.Latency.Max) && resp.At < healNs && ev.ModRevision > before {
							t.Fatalf("seed %d: w%d on n2 received %s at %v, cut off since %v; writes called before the cut reached revision %d only",
								seed, w.ID, &ev, time.Duration(resp.At), time.Duration(cutNs), before)
						}
					}
				}
				if strings.Contains(s.End, "no leader") && s.Close > cutNs && s.Close < healNs {
					canceled++
				}
			}
		}
		if onCut == 0 || canceled == 0 {
			t.Fatalf("seed %d: %d watches on n2 while it was cut off, %d canceled for want of a leader; want some of each", seed, onCut, canceled)
		}
	}
}

// TestCompactorCompacts: the leader's compactor asks for compactions
// retention revisions behind, every interval, and the history records
// them; a scenario without one asks for none.
func TestCompactorCompacts(t *testing.T) {
	sc := load(t, filepath.Join(scenarioDir, "watch.yaml"))
	r := Run(sc, Options{Seed: 2})
	cs := r.History.Compactions
	if len(cs) < 10 {
		t.Fatalf("%d compactions in %v at one per %v", len(cs), sc.Duration, sc.Cluster.AutoCompactionInterval)
	}
	for i, c := range cs {
		if c.Call%int64(sc.Cluster.AutoCompactionInterval) != 0 || i > 0 && c.Revision <= cs[i-1].Revision {
			t.Fatalf("compaction %d: %+v after %+v: not on the interval, or not above the last", i, c, cs[max(i-1, 0)])
		}
	}
	if r := Run(load(t, filepath.Join(scenarioDir, "partition.yaml")), Options{Seed: 2}); len(r.History.Compactions) != 0 || len(r.History.Watchers) != 0 {
		t.Fatalf("partition.yaml: %d compactions, %d watchers; it has neither", len(r.History.Compactions), len(r.History.Watchers))
	}
}
