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
	Disk      *Disk

	// The operator's membership changes (member.go).
	MemberAdd     *MemberAdd
	MemberPromote *Target // a learner by name (nN)
	MemberRemove  *Target
	MemberReplace *Target
	IPReuse       *IPReuse
}

// Kind returns the fault's YAML key: partition, heal, kill, restart,
// change_ip, network, disk, member_add, member_promote, member_remove,
// member_replace or ip_reuse.
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
	case f.Disk != nil:
		return "disk"
	case f.MemberAdd != nil:
		return "member_add"
	case f.MemberPromote != nil:
		return "member_promote"
	case f.MemberRemove != nil:
		return "member_remove"
	case f.MemberReplace != nil:
		return "member_replace"
	case f.IPReuse != nil:
		return "ip_reuse"
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
	case f.Disk != nil:
		return f.At + f.Disk.For
	}
	return f.At
}

// Target names a member: the current leader (resolved when the fault
// fires), any follower (chosen by the simulator's seeded fault stream), or
// a member by 1-based index (YAML "n1".."n7"); or, for a kill only, every
// member at once (YAML "all"). Exactly one is set.
type Target struct {
	Leader, Follower bool
	Member           int
	All              bool // every member; Parse accepts it only as Kill.Target
}

// String returns the target as YAML spells it: "leader", "follower", "n2",
// "all".
func (t Target) String() string {
	switch {
	case t.All:
		return "all"
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

// Kill crashes a member, or every member when Target.All is set: each
// loses its memory and its unsynced disk writes (the last of them torn
// instead, after a Disk fault with Torn).
type Kill struct {
	Target Target
	// RestartAfter restarts the killed member (every one, for all) this
	// long after the kill; 0 = down until an explicit restart fault.
	RestartAfter time.Duration
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

// Disk is a fault of one member's disk. Exactly one of Latency, Full,
// Corrupt and Torn is set. heal: all does not undo it: a disk fault lasts
// for For, or to the end of the run.
type Disk struct {
	Target Target // YAML key member: leader, follower or nN; never All
	// Latency is how long every fsync of the member takes while the fault
	// lasts, drawn from the range.
	Latency *Range
	// Full makes the member's disk full: writes and fsyncs fail with ENOSPC
	// until For ends (space comes back) or, without For, to the end.
	Full bool
	// Corrupt flips a bit in one durable file, once: CorruptWAL or
	// CorruptSnapshot. The member notices when it next reads that file.
	Corrupt string
	// Torn makes the member's next crash tear its last unsynced write (keep
	// a random prefix of it) instead of losing it whole.
	Torn bool
	For  time.Duration // only with Latency or Full: the effect ends after For; 0 = lasts to the end
}

// The files a Disk fault may corrupt (Disk.Corrupt, YAML corrupt:).
const (
	// CorruptWAL flips a bit in a record in the middle of a WAL segment
	// that is not the last: damage a restart must not mistake for a torn
	// tail and cut off.
	CorruptWAL = "wal"
	// CorruptSnapshot flips a bit in the newest snapshot file.
	CorruptSnapshot = "snapshot"
)
