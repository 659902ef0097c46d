package sim

import (
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/linearizability"
	"github.com/plumbdb/plumb/node"
)

// The compactor: etcd's --auto-compaction-mode=revision. Every
// AutoCompactionInterval, the leader's compactor asks to compact the history
// to the leader's revision minus AutoCompactionRetention, as etcd's
// revision compactor does from inside the leader's process (so the request
// crosses no network). Each compaction asked for is recorded in the
// history: it may cancel watchers and drop prev_kv below it, which the
// watch check allows only after one was asked for.

// compactOp marks the operator's compaction requests among its replies.
const compactOp = uint64(1) << 31

// scheduleCompactor starts the compactor if the scenario has one.
func (w *world) scheduleCompactor() {
	if w.sc.Cluster.AutoCompactionRetention > 0 {
		w.schedule(&event{at: int64(w.sc.Cluster.AutoCompactionInterval), kind: evCompact})
	}
}

// compact runs the compactor once, on the leader if there is one that is
// not in the middle of a disk write, and schedules the next run while the
// scenario lasts.
func (w *world) compact() {
	if next := w.now + int64(w.sc.Cluster.AutoCompactionInterval); next < w.endNs {
		w.schedule(&event{at: next, kind: evCompact})
	}
	m, ok := w.leader()
	if !ok || w.busy(m) {
		return
	}
	st := m.node.Status()
	rev := st.Revision - int64(w.sc.Cluster.AutoCompactionRetention)
	// Like etcd's revision compactor, it never asks for the same revision
	// twice, nor for one the member has compacted already.
	if rev <= st.CompactRevision || rev < 2 || len(w.compactions) > 0 && rev <= w.compactions[len(w.compactions)-1].Revision {
		return
	}
	w.compactions = append(w.compactions, linearizability.Compaction{Revision: rev, Call: w.now})
	w.record(TraceEvent{Kind: "operator", Node: m.name, Detail: fmt.Sprintf("compact %d (revision %d)", rev, st.Revision)})
	m.node.Submit(node.Request{ID: replyID(len(w.clients), compactOp|uint64(len(w.compactions))),
		Compaction: &pb.CompactionRequest{Revision: rev}})
	w.drive(m)
}

// compactReply notes the answer to a compaction request.
func (w *world) compactReply(op uint64, rep node.Reply) {
	c := w.compactions[op&^compactOp-1]
	detail := fmt.Sprintf("compact %d: done", c.Revision)
	if rep.Err != nil {
		detail = fmt.Sprintf("compact %d: %v", c.Revision, rep.Err)
	}
	w.record(TraceEvent{Kind: "operator", Detail: detail})
}
