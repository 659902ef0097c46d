package backend_test

import (
	"fmt"
	"testing"

	"github.com/plumbdb/plumb/node/backend"
)

// counter numbers sync points, as the simulator's disk does for both of a
// member's devices.
type counter struct{ n int }

var _ backend.SyncPoints = (*counter)(nil)

func (c *counter) HoldPoint() int { c.n++; return c.n - 1 }

// TestMemoryCrashAtPoint: a crash at a point keeps the held commits called
// before it and undoes the rest, whether the points are the commits' own
// or shared with another device whose syncs come between them.
func TestMemoryCrashAtPoint(t *testing.T) {
	commits := [][]string{{"b=10", "z=end"}, {"b=11", "-d"}, {"c=new"}}
	states := make([]string, len(commits)+1) // after 0, 1, 2, 3 commits
	m := holdSetup(t)
	states[0] = contents(t, m)
	for i, w := range commits {
		batch(t, m, "a", w...)
		states[i+1] = contents(t, m)
	}
	for _, shared := range []bool{false, true} {
		for point := 0; point <= 7; point++ {
			t.Run(fmt.Sprintf("shared=%v/point=%d", shared, point), func(t *testing.T) {
				m := holdSetup(t)
				kept := min(point, len(commits)) // own points: commit i is point i
				if shared {
					// Another device syncs at points 0, 2 and 4; the
					// commits are points 1, 3 and 5.
					c := &counter{}
					m.HoldWith(c)
					for _, w := range commits {
						c.HoldPoint()
						batch(t, m, "a", w...)
					}
					kept = min(point/2, len(commits))
				} else {
					m.Hold()
					for _, w := range commits {
						batch(t, m, "a", w...)
					}
				}
				if m.HeldCommits() != len(commits) {
					t.Fatalf("HeldCommits %d", m.HeldCommits())
				}
				if undone := m.CrashAt(point); undone != (kept < len(commits)) {
					t.Fatalf("CrashAt returned %v with %d of %d commits kept", undone, kept, len(commits))
				}
				if got := contents(t, m); got != states[kept] {
					t.Fatalf("after the crash\n%s\nwant the state after %d commits\n%s", got, kept, states[kept])
				}
				if m.Held() {
					t.Fatal("CrashAt did not end the hold")
				}
			})
		}
	}
}
