package node

import (
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Stopwatch lets a driver time the node's work for its metrics (etcd's
// apply, range, compaction and snapshot timings). The node reads no clock:
// it calls Start where a piece of work begins and Stop, with Start's
// mark, where it ends, and only the driver reads one. The server reads the
// wall clock; the simulator passes none. What the marks hold never reaches
// the node's state or outputs, so timing cannot change what a run does.
type Stopwatch interface {
	Start(w Work) (mark int64)
	Stop(w Work, mark int64, ok bool)
}

// Work names a piece of timed work.
type Work struct {
	Kind WorkKind
	// Op is etcd's name for the applied request (Put, Txn,
	// ClusterMemberAttrSet, AuthUserAdd, ...), for WorkApply.
	Op string
}

// WorkKind says what was timed.
type WorkKind uint8

const (
	// WorkApply: one committed request applied to the state. ok: it
	// succeeded, or failed only with ErrCompacted (etcd's rule).
	WorkApply WorkKind = iota + 1
	// WorkRange: a Range request answered from the state.
	WorkRange
	// WorkIndexCompaction: the key index compacted, the first part of a
	// Compaction's apply.
	WorkIndexCompaction
	// WorkDBCompaction: the compacted revisions deleted from the backend,
	// the rest of it.
	WorkDBCompaction
	// WorkSnapshotInstall: a leader's snapshot installed in place of the
	// state. Start marks it in progress.
	WorkSnapshotInstall
)

type noStopwatch struct{}

func (noStopwatch) Start(Work) int64       { return 0 }
func (noStopwatch) Stop(Work, int64, bool) {}

// ApplyOp is etcd's name for the request r carries: the name of its one
// set field, as etcd's apply labels it (etcd_server_apply_duration_seconds'
// op).
func ApplyOp(r *pb.InternalRaftRequest) string {
	switch {
	case r.Put != nil:
		return "Put"
	case r.DeleteRange != nil:
		return "DeleteRange"
	case r.Txn != nil:
		return "Txn"
	case r.Compaction != nil:
		return "Compaction"
	case r.LeaseGrant != nil:
		return "LeaseGrant"
	case r.LeaseRevoke != nil:
		return "LeaseRevoke"
	case r.LeaseCheckpoint != nil:
		return "LeaseCheckpoint"
	case r.Alarm != nil:
		return "Alarm"
	case r.ClusterMemberAttrSet != nil:
		return "ClusterMemberAttrSet"
	}
	op := "unknown"
	r.ProtoReflect().Range(func(f protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if f.Kind() != protoreflect.MessageKind || f.Name() == "header" {
			return true
		}
		op = camel(string(f.Name()))
		return false
	})
	return op
}

// camel turns a proto field name (auth_user_add) into its Go name
// (AuthUserAdd).
func camel(s string) string {
	var b strings.Builder
	for part := range strings.SplitSeq(s, "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}
