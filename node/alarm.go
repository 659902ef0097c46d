package node

import (
	"errors"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// ErrNoSpace: the member's disk is full, or its key-value state reached
// Config.QuotaBackendBytes; the NOSPACE alarm is raised and writes that add
// data are refused until an operator disarms it (etcdctl alarm disarm).
// Reads, deletes and compaction still work, as in etcd.
var ErrNoSpace = errors.New("etcdserver: mvcc: database space exceeded")

// DefaultQuotaBackendBytes is etcd's --quota-backend-bytes default.
const DefaultQuotaBackendBytes = 2 << 30

// alarms are this member's raised alarms. etcd replicates alarms through
// raft so every member refuses writes; here each member holds its own (a
// member whose disk is full cannot write the alarm to its own log anyway),
// and the others keep serving. They live in memory: a restart clears them.
type alarms struct {
	raised []pb.AlarmType
}

func (a *alarms) raise(t pb.AlarmType) {
	if !slices.Contains(a.raised, t) {
		a.raised = append(a.raised, t)
	}
}

func (a *alarms) clear(t pb.AlarmType) {
	a.raised = slices.DeleteFunc(a.raised, func(x pb.AlarmType) bool { return x == t })
}

func (a *alarms) has(t pb.AlarmType) bool { return slices.Contains(a.raised, t) }

// Alarms lists this member's raised alarms, as etcd's alarm list shows them.
func (n *Node) Alarms() []*pb.AlarmMember {
	out := make([]*pb.AlarmMember, 0, len(n.alarms.raised))
	for _, t := range n.alarms.raised {
		out = append(out, &pb.AlarmMember{MemberID: n.cfg.ID, Alarm: t})
	}
	return out
}

// answerAlarm handles etcd's Maintenance.Alarm for this member: GET lists,
// ACTIVATE raises, DEACTIVATE (disarm) clears. Only this member's alarms
// are known here (MemberID 0 means this member).
func (n *Node) answerAlarm(req Request) {
	r := req.Alarm
	if r.MemberID != 0 && r.MemberID != n.cfg.ID {
		n.fail(req, ErrMemberNotFound)
		return
	}
	switch r.Action {
	case pb.AlarmRequest_ACTIVATE:
		n.alarms.raise(r.Alarm)
	case pb.AlarmRequest_DEACTIVATE:
		if r.Alarm == pb.AlarmType_NONE {
			n.alarms.raised = nil
		} else {
			n.alarms.clear(r.Alarm)
		}
	}
	n.replies = append(n.replies, Reply{ID: req.ID, Alarm: &pb.AlarmResponse{Header: n.header(), Alarms: n.Alarms()}})
}

// spaceFor reports whether a write of size bytes may be proposed: not while
// NOSPACE is raised, and not past the quota (which raises it).
func (n *Node) spaceFor(size int) error {
	if n.alarms.has(pb.AlarmType_NOSPACE) {
		return ErrNoSpace
	}
	if n.be.Size()+int64(size) > n.cfg.QuotaBackendBytes {
		n.alarms.raise(pb.AlarmType_NOSPACE)
		return ErrNoSpace
	}
	return nil
}
