package sim

import (
	"fmt"
	"slices"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/faults"
	"github.com/plumbdb/plumb/node"
)

// Disk I/O in flight.
//
// A member's Process appends to its WAL and fsyncs, then commits applied
// entries to its backend, all within one event. A real disk takes time, and
// a member's raft loop waits for it: so when a Process did I/O, the member
// is busy until the I/O completes, fsyncLatency later (or a disk latency
// fault's). Its outputs (messages, replies) are held until then, and
// anything sent to it waits. The storage treats the syncs and commits of
// that Process as provisional (MemFS.Hold, Memory.HoldWith) until the I/O
// completes. A crash before then drops the held outputs and falls during
// one of those syncs, drawn from the disk's stream: as on a real disk,
// where a program writes again only once its fsync returned, the syncs
// before it completed, nothing written after it was issued, and only the
// write it covered may be torn (MemFS.CrashAt, Memory.CrashAt: the WAL's
// syncs and the backend's commits are numbered in one sequence). Nothing
// that depended on the I/O ever left the member: that is the guarantee the
// durable check relies on.

// fsyncLatency is a healthy disk's: a 4 KiB write with fsync takes about
// 0.2 ms on the machines plumb is measured on.
var fsyncLatency = faults.Range{Min: 200_000, Max: 1_000_000}

const tornKillWaitNs = int64(1e9) // how long a torn kill waits for the member's next write

// busy reports whether m's disk I/O is in flight.
func (w *world) busy(m *member) bool { return m.ioUntil > w.now }

// deferInput puts an input for a busy member back on the queue for when its
// I/O completes; inputs keep their order.
func (w *world) deferInput(m *member, e *event) {
	again := *e
	again.at = m.ioUntil
	w.schedule(&again)
}

// drive runs a member's Process and acts on its Output: at once when it did
// no I/O, when the I/O completes when it did.
func (w *world) drive(m *member) {
	if !m.alive() || w.busy(m) {
		return
	}
	// A leader's appends leave at once and travel while it saves them
	// (node.Prepare); a crash inside the save cannot call them back.
	for _, env := range m.node.Prepare() {
		w.send(m, env)
	}
	syncs, commits := m.disk.SyncCount(), m.be.CommitCount()
	m.disk.Hold()
	m.be.HoldWith(m.disk) // the backend's commits and the disk's syncs in one order
	out := m.node.Process()
	// Proposals are noted at once (a leader's may have left with Prepare,
	// and commit elsewhere whatever becomes of this member); applies only
	// once the I/O they came with completed (emit): a crash inside it
	// undoes them, and the revisions they took are given again.
	w.writes.noteProposed(out.Proposed)
	if m.disk.SyncCount() == syncs && m.be.CommitCount() == commits {
		m.disk.Release()
		m.be.Release()
		w.emit(m, out)
		return
	}
	lat := fsyncLatency
	if m.diskLatency != nil {
		lat = *m.diskLatency
	}
	m.ioUntil = w.now + lat.Min.Nanoseconds()
	if span := int64(lat.Max - lat.Min); span > 0 {
		m.ioUntil += w.rngDisk.Int64N(span + 1)
	}
	m.held = out
	w.schedule(&event{at: m.ioUntil, kind: evIODone, index: m.idx, inc: m.inc})
	if m.killPending {
		w.crash(m, "killed during a write (torn)") // the torn fault: crash inside this I/O
	}
}

// ioDone completes a member's I/O and lets its outputs go.
func (w *world) ioDone(e *event) {
	m := w.members[e.index]
	if !m.alive() || m.inc != e.inc {
		return
	}
	m.disk.Release()
	m.be.Release()
	out := m.held
	m.held, m.ioUntil = node.Output{}, 0
	w.emit(m, out)
	w.drive(m) // anything that arrived meanwhile is deferred to now; raft may have more
}

// emit acts on a Process's output once its I/O is durable.
func (w *world) emit(m *member, out node.Output) {
	w.writes.noteApplied(m, out.Applied)
	w.noteRevokes(out.Applied)
	if out.LeaderChanged {
		w.noteLeader(m, out.Lead, out.Term)
		m.lead = out.Lead
		w.record(TraceEvent{Kind: "leader", Node: m.name, Peer: w.nameOf(out.Lead), Term: out.Term})
		if out.Lead == m.id {
			w.stats.elections++
			w.stats.elected = w.now
		}
	}
	for _, env := range out.Messages {
		w.send(m, env)
	}
	for _, rep := range out.Replies {
		w.replyFrom(m, rep)
	}
	w.watchOutput(m, out.Watch)
	w.lockWatchOutput(m, out.Watch)
	switch {
	case out.Err != nil:
		w.crash(m, out.Err.Error())
		w.scheduleSupervisorRestart(m)
	case out.Removed:
		w.crash(m, "removed from the cluster")
	}
}

// kill is a scenario's kill of one member. A member armed by a torn fault
// dies inside its next write instead (or untorn, after tornKillWaitNs
// without one).
func (w *world) kill(m *member, why string, restartAfter int64) {
	if m.tornArmed && m.alive() && !w.busy(m) {
		m.killPending, m.killRestartAfter = true, restartAfter
		w.schedule(&event{at: w.now + tornKillWaitNs, kind: evKillDeadline, index: m.idx, inc: m.inc})
		w.record(TraceEvent{Kind: "fault", Node: m.name, Detail: "kill waits for the member's next write, to tear it"})
		return
	}
	w.crash(m, why)
	if restartAfter > 0 {
		w.schedule(&event{at: w.now + restartAfter, kind: evRestart, index: m.idx})
	}
}

// killDeadline: no write came; the armed kill happens untorn.
func (w *world) killDeadline(e *event) {
	m := w.members[e.index]
	if !m.killPending || m.inc != e.inc {
		return
	}
	w.crash(m, "killed (no write came to tear)")
}

// crashStorage is the crash's effect on the member's storage: the I/O in
// flight cut at one of its syncs, unsynced writes lost, the last maybe torn.
func (w *world) crashStorage(m *member) {
	if m.held.Messages != nil || m.held.Replies != nil {
		w.record(TraceEvent{Kind: "lost", Node: m.name,
			Detail: fmt.Sprintf("%d messages and %d replies waiting for the disk", len(m.held.Messages), len(m.held.Replies))})
	}
	// Applies whose I/O the crash cut may or may not have reached the disk
	// (a sync before the crash point may hold them): their fate is unknown.
	w.writes.cut(m.held.Applied)
	w.cutRevokes(m.held.Applied)
	m.held, m.ioUntil = node.Output{}, 0
	if m.tornArmed {
		m.disk.TearNextCrash()
		m.tornArmed = false
	}
	// The sync in progress at the crash; those before it completed.
	point := 0
	if n := m.disk.HeldPoints(); n > 1 {
		point = w.rngDisk.IntN(n)
	}
	m.be.CrashAt(point)
	m.disk.CrashAt(point, w.rngDisk)
	if m.killPending {
		m.killPending = false
		if m.killRestartAfter > 0 {
			w.schedule(&event{at: w.now + m.killRestartAfter, kind: evRestart, index: m.idx})
		}
	}
}

// scheduleSupervisorRestart restarts a member whose storage failed, as
// systemd's Restart=always would, after supervisorRestartNs.
func (w *world) scheduleSupervisorRestart(m *member) {
	w.schedule(&event{at: w.now + supervisorRestartNs, kind: evRestart, index: m.idx})
}

const supervisorRestartNs = int64(5e9) // systemd's RestartSec in the seeds' units

// diskFault applies a disk fault.
func (w *world) diskFault(f faults.Fault) {
	d := f.Disk
	m, note := w.resolve(d.Target)
	w.nextCutID++
	id := w.nextCutID
	switch {
	case d.Latency != nil:
		r := *d.Latency
		m.diskLatency, m.diskFaultID = &r, id
		w.record(TraceEvent{Kind: "fault", Node: m.name, Detail: joinNote("disk latency "+r.String(), note)})
	case d.Full:
		m.disk.SetFull(true)
		m.diskFaultID = id
		w.record(TraceEvent{Kind: "fault", Node: m.name, Detail: joinNote("disk full", note)})
	case d.Torn:
		m.tornArmed = true
		w.record(TraceEvent{Kind: "fault", Node: m.name, Detail: joinNote("disk: the next crash tears a write", note)})
		return
	case d.Corrupt != "":
		w.record(TraceEvent{Kind: "fault", Node: m.name, Detail: joinNote("disk corrupt "+d.Corrupt+": "+w.corrupt(m, d.Corrupt), note)})
		return
	}
	if d.For > 0 {
		w.schedule(&event{at: w.now + int64(d.For), kind: evDiskRestore, index: m.idx, id: id})
	}
}

// diskRestore ends a disk latency or full fault.
func (w *world) diskRestore(e *event) {
	m := w.members[e.index]
	if m.diskFaultID != e.id {
		return
	}
	wasFull := m.disk.Full()
	m.diskLatency, m.diskFaultID = nil, 0
	m.disk.SetFull(false)
	w.record(TraceEvent{Kind: "fault", Node: m.name, Detail: "disk healthy again (for elapsed)"})
	if wasFull {
		// The operator frees space, then disarms the alarm, as the seeds'
		// procedure says: etcdctl alarm disarm.
		w.schedule(&event{at: w.now + alarmDisarmAfterNs, kind: evAlarmDisarm, index: m.idx})
	}
}

const (
	alarmDisarmAfterNs = int64(1e9)   // the operator disarms 1s after space is back
	alarmDisarmRetryNs = int64(500e6) // and retries while the member is down or busy
)

// alarmDisarm is the operator's etcdctl alarm disarm on the member.
func (w *world) alarmDisarm(e *event) {
	m := w.members[e.index]
	if !m.alive() || w.busy(m) {
		w.schedule(&event{at: w.now + alarmDisarmRetryNs, kind: evAlarmDisarm, index: m.idx})
		return
	}
	w.record(TraceEvent{Kind: "operator", Node: m.name, Detail: "alarm disarm"})
	m.node.Submit(node.Request{ID: replyID(len(w.clients), 0), Creds: rootCreds,
		Alarm: &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE, MemberID: m.id, Alarm: pb.AlarmType_NOSPACE}})
	w.drive(m)
}

// corrupt flips a bit in one of the member's durable files: the first WAL
// segment (a segment that is not the last whenever there are two), or the
// newest snapshot file. It says what it did.
func (w *world) corrupt(m *member, which string) string {
	dir, suffix := node.WALDir, ".wal"
	if which == faults.CorruptSnapshot {
		dir, suffix = node.SnapDir, ".snap"
	}
	names, err := m.disk.ReadDir(dir)
	if err != nil {
		return "nothing to corrupt: " + err.Error()
	}
	names = slices.DeleteFunc(names, func(n string) bool { return !strings.HasSuffix(n, suffix) })
	if len(names) == 0 {
		return "nothing to corrupt: no " + suffix + " file yet"
	}
	name := dir + "/" + names[0]
	if which == faults.CorruptSnapshot {
		name = dir + "/" + names[len(names)-1]
	}
	data, err := m.disk.ReadFile(name)
	if err != nil || len(data) < 2 {
		return "nothing to corrupt in " + name
	}
	offset := int64(len(data)/4) + w.rngDisk.Int64N(int64(len(data)/2))
	if err := m.disk.Corrupt(name, offset, w.rngDisk); err != nil {
		return "could not corrupt " + name + ": " + err.Error()
	}
	return fmt.Sprintf("flipped a bit at offset %d of %s", offset, name)
}
