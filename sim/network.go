package sim

import (
	"math/rand/v2"

	"github.com/plumbdb/plumb/faults"
)

// reorderDelayFactor bounds the extra delay of a reordered message, in units
// of the current maximum latency.
const reorderDelayFactor = 10

// network decides each message's fate: whether it is lost, when it arrives,
// whether a copy arrives too. Links between members can be cut one way or
// both by partitions; client links are never cut (clients model
// applications in another failure domain) but share the latency.
type network struct {
	base   faults.Network
	cur    faults.Network
	change uint64 // ID of the network change in force, 0 for none
	rng    *rand.Rand
	cuts   []cut    // partitions in force, in the order they began
	cutOff [][]bool // derived: cutOff[from][to] for member indexes
}

// cut is one partition's directed cuts, so that its `for` can end it alone.
type cut struct {
	id    uint64
	pairs [][2]int // from, to member indexes
}

func newNetwork(base faults.Network, members int, rng *rand.Rand) *network {
	nw := &network{base: base, cur: base, rng: rng, cutOff: make([][]bool, members)}
	for i := range nw.cutOff {
		nw.cutOff[i] = make([]bool, members)
	}
	return nw
}

// grow makes room for hosts added during the run: none of their links is
// cut.
func (nw *network) grow(members int) {
	for i := range nw.cutOff {
		for len(nw.cutOff[i]) < members {
			nw.cutOff[i] = append(nw.cutOff[i], false)
		}
	}
	for len(nw.cutOff) < members {
		nw.cutOff = append(nw.cutOff, make([]bool, members))
	}
}

func (nw *network) addCut(c cut) {
	nw.cuts = append(nw.cuts, c)
	nw.derive()
}

// removeCut ends one partition; it reports whether it was still in force.
func (nw *network) removeCut(id uint64) bool {
	for i, c := range nw.cuts {
		if c.id == id {
			nw.cuts = append(nw.cuts[:i], nw.cuts[i+1:]...)
			nw.derive()
			return true
		}
	}
	return false
}

// heal ends every partition and network change.
func (nw *network) heal() {
	nw.cuts = nil
	nw.derive()
	nw.cur, nw.change = nw.base, 0
}

func (nw *network) derive() {
	for _, row := range nw.cutOff {
		clear(row)
	}
	for _, c := range nw.cuts {
		for _, p := range c.pairs {
			nw.cutOff[p[0]][p[1]] = true
		}
	}
}

// applyChange overlays a network change on the base network.
func (nw *network) applyChange(id uint64, ch *faults.NetworkChange) {
	next := nw.base
	if ch.Loss != nil {
		next.Loss = *ch.Loss
	}
	if ch.Duplicate != nil {
		next.Duplicate = *ch.Duplicate
	}
	if ch.Reorder != nil {
		next.Reorder = *ch.Reorder
	}
	if ch.Latency != nil {
		next.Latency = *ch.Latency
	}
	nw.cur, nw.change = next, id
}

// restore ends network change id if it is still the one in force.
func (nw *network) restore(id uint64) bool {
	if nw.change != id {
		return false
	}
	nw.cur, nw.change = nw.base, 0
	return true
}

// isCut reports whether a partition cuts the link from member index from
// to member index to.
func (nw *network) isCut(from, to int) bool { return nw.cutOff[from][to] }

// latency draws one message's delay.
func (nw *network) latency() int64 {
	lo, hi := int64(nw.cur.Latency.Min), int64(nw.cur.Latency.Max)
	if hi <= lo {
		return lo
	}
	return lo + nw.rng.Int64N(hi-lo+1)
}

// peerFate decides a member-to-member message: its delays (none if lost,
// two if duplicated). Every message draws the same number of random values
// whatever its fate, so one message's fate never shifts another's.
func (nw *network) peerFate(from, to int) (delays [2]int64, copies int) {
	lost := nw.rng.Float64() < nw.cur.Loss
	dup := nw.rng.Float64() < nw.cur.Duplicate
	d0, d1 := nw.delay(), nw.delay()
	switch {
	case nw.cutOff[from][to] || lost:
		return delays, 0
	case dup:
		return [2]int64{d0, d1}, 2
	}
	return [2]int64{d0, 0}, 1
}

// delay draws a latency, held back by a reorder delay with the reorder
// probability, so that later messages overtake it.
func (nw *network) delay() int64 {
	d := nw.latency()
	reorder := nw.rng.Float64() < nw.cur.Reorder
	extra := nw.rng.Int64N(int64(nw.cur.Latency.Max)*reorderDelayFactor + 1)
	if reorder {
		d += extra
	}
	return d
}

// clientDelay draws a client link's delay: latency only.
func (nw *network) clientDelay() int64 { return nw.latency() }

// unreachable says why a message from a member to addr (held by member
// index dst, if bound) cannot leave, or "" if it can.
func (w *world) unreachable(from *member, addr string, dst int, bound bool) string {
	switch {
	case !bound || !w.members[dst].alive():
		return "nobody listens at " + addr
	case w.net.isCut(from.idx, dst):
		return "the link is cut"
	}
	return ""
}

// reportUnreachable tells a sender's node that member to cannot be reached,
// and that a snapshot for it failed.
func (w *world) reportUnreachable(from *member, to uint64, isSnap bool) {
	from.node.ReportUnreachable(to)
	if isSnap {
		from.node.ReportSnapshot(to, false)
	}
}
