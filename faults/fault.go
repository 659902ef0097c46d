package faults

import (
	"strconv"
	"time"
)

// Fault is one step of the timeline. Exactly one of the pointer fields is
// set; Kind names it.
type Fault struct {
	At   time.Duration // >= 0 and < Scenario.Duration
	Line int           // line of the fault in the file, for messages

	Partition *Partition
	Heal      *Heal
	Kill      *Kill
	Restart   *Target // restart a killed member; always a named member (n1..n7)
	ChangeIP  *ChangeIP
	Network   *NetworkChange
}

// Kind returns the fault's YAML key: partition, heal, kill, restart,
// change_ip or network.
func (f Fault) Kind() string {
	switch {
	case f.Partition != nil:
		return "partition"
	case f.Heal != nil:
		return "heal"
	case f.Kill != nil:
		return "kill"
	case f.Restart != nil:
		return "restart"
	case f.ChangeIP != nil:
		return "change_ip"
	case f.Network != nil:
		return "network"
	}
	return ""
}

// end returns when the fault's effect ends; see Scenario.LastFaultEnd.
func (f Fault) end() time.Duration {
	switch {
	case f.Partition != nil:
		return f.At + f.Partition.For
	case f.Kill != nil:
		return f.At + f.Kill.RestartAfter
	case f.ChangeIP != nil:
		return f.At + f.ChangeIP.MemberUpdateAfter
	case f.Network != nil:
		return f.At + f.Network.For
	}
	return f.At
}

// Target names a member: the current leader (resolved when the fault
// fires), any follower (chosen by the simulator's seeded fault stream), or
// a member by 1-based index (YAML "n1".."n7"). Exactly one is set.
type Target struct {
	Leader, Follower bool
	Member           int
}

// String returns the target as YAML spells it: "leader", "follower", "n2".
func (t Target) String() string {
	switch {
	case t.Leader:
		return "leader"
	case t.Follower:
		return "follower"
	case t.Member > 0:
		return "n" + strconv.Itoa(t.Member)
	}
	return "(no target)"
}

// Partition cuts links between members. Exactly one of Isolate, Groups and
// OneWay is set.
type Partition struct {
	Isolate *Target // cut Target off from every other member, both directions
	// Groups splits members into groups; messages cross no group boundary.
	// Members not named form one more group. Parse rejects a static name
	// (n1.., leader or follower) that appears twice; the simulator rejects,
	// when the fault fires, a leader or follower that resolves to a member
	// named elsewhere in the same partition.
	Groups [][]Target
	OneWay *OneWay       // drop messages From -> To only; the reverse still works
	For    time.Duration // heal this cut automatically after For; 0 = until a heal
}

// OneWay drops messages from every member in From to every member in To.
type OneWay struct{ From, To []Target }

// Heal undoes faults. All removes every partition and restores the base
// network; it is the only kind of heal for now, and always true.
type Heal struct{ All bool }

// Kill crashes a member: it loses its memory and its unsynced disk writes.
type Kill struct {
	Target       Target
	RestartAfter time.Duration // 0 = stays down until an explicit restart fault
}

// ChangeIP gives a member a new address. Messages to the old one are lost,
// or reach whoever holds it next.
type ChangeIP struct {
	Target            Target
	MemberUpdateAfter time.Duration // 0 = the operator never runs member update
}

// NetworkChange overrides parts of the base network for every link.
type NetworkChange struct {
	Loss, Duplicate, Reorder *float64      // nil = unchanged
	Latency                  *Range        // nil = unchanged
	For                      time.Duration // restore the base network after For; 0 = until a heal
}
