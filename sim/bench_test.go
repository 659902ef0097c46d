package sim

import (
	"runtime/debug"
	"testing"
	"time"

	"github.com/plumbdb/plumb/faults"
	"github.com/plumbdb/plumb/linearizability"
)

// BenchmarkScenario measures the simulator and the check on the shipped
// scenarios, one seed per iteration (seeds 1, 2, ... so that the figure is an
// average over seeds, not one lucky schedule). It reports:
//   - events/s: simulated events per wall second, simulation only;
//   - x-realtime: simulated seconds per wall second, simulation only;
//   - ops-checked/s: history operations per second of the porcupine check;
//   - watch-events-checked/s: watch events per second of the watch check
//     (the scenarios with watchers);
//   - x-realtime-checked: simulated seconds per wall second, both together.
//
// go test ./sim -run '^$' -bench Scenario -benchtime 20x
//
// The GC runs at GOGC=400, as `plumb sim run` sets it: a run's live heap is
// a few megabytes, so the default collects far more often than it needs to.
func BenchmarkScenario(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	for _, name := range []string{"baseline", "partition", "leader-kill", "ip-change", "flaky-network", "watch"} {
		b.Run(name, func(b *testing.B) {
			sc, err := faults.Load("../scenarios/" + name + ".yaml")
			if err != nil {
				b.Fatal(err)
			}
			var simWall, checkWall, watchWall time.Duration
			var events, ops, watchEvents int
			var simTime time.Duration
			for i := range b.N {
				// Timed separately below.
				sc.Expect.Linearizable, sc.Expect.Durable, sc.Expect.Watch = false, false, false
				start := time.Now()
				res := Run(sc, Options{Seed: uint64(i + 1)})
				simWall += time.Since(start)
				start = time.Now()
				lin := linearizability.Check(res.History, linearizability.Options{Resolved: res.Resolved})
				checkWall += time.Since(start)
				if lin.Verdict != linearizability.VerdictOK {
					b.Fatalf("seed %d: %s", i+1, lin.Verdict)
				}
				if len(res.History.Watchers) > 0 {
					start = time.Now()
					wr := linearizability.CheckWatches(res.History, lin)
					watchWall += time.Since(start)
					if wr.Verdict != linearizability.VerdictOK {
						b.Fatalf("seed %d: watch %s: %s", i+1, wr.Verdict, wr.Reason)
					}
					watchEvents += wr.Events
				}
				events += res.Events
				ops += lin.Operations
				simTime += res.SimTime
			}
			b.ReportMetric(float64(events)/simWall.Seconds(), "events/s")
			b.ReportMetric(simTime.Seconds()/simWall.Seconds(), "x-realtime")
			b.ReportMetric(float64(ops)/checkWall.Seconds(), "ops-checked/s")
			if watchEvents > 0 {
				b.ReportMetric(float64(watchEvents)/watchWall.Seconds(), "watch-events-checked/s")
			}
			b.ReportMetric(simTime.Seconds()/(simWall+checkWall+watchWall).Seconds(), "x-realtime-checked")
		})
	}
}
