package server

import (
	"cmp"
	"context"
	"crypto/sha256"
	"hash"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3"

	"github.com/plumbdb/plumb/node"
	"github.com/plumbdb/plumb/node/backend/bolt"
)

// APIVersion is the etcd version whose API plumb speaks, reported where
// etcd reports its own version (Status, /version): clients gate features
// on it.
const APIVersion = "3.7.0"

// maintenanceServer is etcd's Maintenance service: status, alarms, the
// key-value hash, moving the leader, the snapshot stream and
// defragmentation.
type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	l     *loop
	quota int64
}

func header(n *node.Node) *pb.ResponseHeader {
	st := n.Status()
	return &pb.ResponseHeader{ClusterId: st.ClusterID, MemberId: st.ID, Revision: st.Revision, RaftTerm: st.Term}
}

func (m *maintenanceServer) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	var resp *pb.StatusResponse
	err := m.l.exec(ctx, func(n *node.Node) {
		st := n.Status()
		size, inUse := m.l.be.DiskBytes()
		resp = &pb.StatusResponse{
			Header:           header(n),
			Version:          APIVersion,
			DbSize:           size,
			DbSizeInUse:      inUse,
			DbSizeQuota:      m.quota,
			Leader:           st.Lead,
			RaftIndex:        st.Commit,
			RaftTerm:         st.Term,
			RaftAppliedIndex: st.Applied,
		}
		for _, a := range n.Alarms() {
			resp.Errors = append(resp.Errors, a.String()) // etcd's: "memberID:<decimal> alarm:NOSPACE"
		}
	})
	return resp, toGRPC(err)
}

func (m *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	rep, err := m.l.do(ctx, node.Request{Alarm: r})
	return rep.Alarm, toGRPC(err)
}

func (m *maintenanceServer) HashKV(ctx context.Context, _ *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	var resp *pb.HashKVResponse
	err := m.l.exec(ctx, func(n *node.Node) {
		start := time.Now()
		hash, compactRev, rev := n.HashKV()
		m.l.metrics.hashKV.Observe(time.Since(start).Seconds())
		resp = &pb.HashKVResponse{Header: header(n), Hash: hash, CompactRevision: compactRev, HashRevision: rev}
	})
	return resp, toGRPC(err)
}

// MoveLeader asks the leader to hand leadership to r.TargetID and waits
// until it has, as etcdctl move-leader expects. Only the leader can.
func (m *maintenanceServer) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	var refused error
	err := m.l.exec(ctx, func(n *node.Node) {
		st := n.Status()
		switch _, known := n.Member(r.TargetID); {
		case st.State != raft.StateLeader:
			refused = rpctypes.ErrGRPCNotLeader
		case !known || r.TargetID == st.ID:
			refused = rpctypes.ErrGRPCBadLeaderTransferee
		default:
			n.TransferLeadership(r.TargetID)
		}
	})
	if err := cmp.Or(err, refused); err != nil {
		return nil, toGRPC(err)
	}
	for {
		var lead uint64
		var h *pb.ResponseHeader
		if err := m.l.exec(ctx, func(n *node.Node) { lead, h = n.Lead(), header(n) }); err != nil {
			return nil, toGRPC(err)
		}
		if lead == r.TargetID {
			return &pb.MoveLeaderResponse{Header: h}, nil
		}
		select {
		case <-ctx.Done():
			return nil, toGRPC(ctx.Err())
		case <-time.After(m.l.tick):
		}
	}
}

// snapshotSendBytes is etcd's snapshotSendBufferSize: each message of the
// snapshot stream carries this much of the file, the last one less.
const snapshotSendBytes = 32 << 10

// Snapshot streams the member's backend, as etcd does: a consistent copy of
// the bbolt file in chunks, each saying how many bytes remain, then one
// message holding the sha256 of the file (remaining 0), which etcdctl
// snapshot save appends to the file and snapshot restore checks. The node
// flushes what it applied first, so every write it acknowledged before the
// call is in the copy. The copy is read outside the loop, which goes on.
func (m *maintenanceServer) Snapshot(_ *pb.SnapshotRequest, srv pb.Maintenance_SnapshotServer) error {
	var snap *bolt.Snapshot
	var failed error
	err := m.l.exec(srv.Context(), func(n *node.Node) {
		if failed = n.Flush(); failed == nil {
			snap, failed = m.l.be.Snapshot()
		}
	})
	if err := cmp.Or(err, failed); err != nil {
		return toGRPC(err)
	}
	defer snap.Close()
	start := time.Now()
	total := snap.Size()
	m.l.logger.Info("sending database snapshot to client", "total-bytes", total)
	w := &snapshotWriter{srv: srv, remaining: total, buf: make([]byte, 0, snapshotSendBytes), sum: sha256.New()}
	if _, err := snap.WriteTo(w); err != nil {
		return toGRPC(err)
	}
	if err := w.flush(); err != nil {
		return toGRPC(err)
	}
	if err := srv.Send(&pb.SnapshotResponse{RemainingBytes: 0, Blob: w.sum.Sum(nil)}); err != nil {
		return toGRPC(err)
	}
	m.l.metrics.backendSnapshot.Observe(time.Since(start).Seconds())
	m.l.logger.Info("successfully sent database snapshot to client", "total-bytes", total, "took", time.Since(start))
	return nil
}

// snapshotWriter cuts what the snapshot writes into the stream's messages
// and hashes it.
type snapshotWriter struct {
	srv       pb.Maintenance_SnapshotServer
	remaining int64 // bytes of the file not yet sent
	buf       []byte
	sum       hash.Hash
}

func (w *snapshotWriter) Write(p []byte) (int, error) {
	written := len(p)
	for len(p) > 0 {
		n := min(len(p), snapshotSendBytes-len(w.buf))
		w.buf, p = append(w.buf, p[:n]...), p[n:]
		if len(w.buf) == snapshotSendBytes {
			if err := w.flush(); err != nil {
				return 0, err
			}
		}
	}
	return written, nil
}

// flush sends what is buffered. gRPC may hold a message after Send
// returns, so each message gets its own buffer.
func (w *snapshotWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	w.remaining -= int64(len(w.buf))
	w.sum.Write(w.buf)
	if err := w.srv.Send(&pb.SnapshotResponse{RemainingBytes: uint64(max(w.remaining, 0)), Blob: w.buf}); err != nil {
		return err
	}
	w.buf = make([]byte, 0, snapshotSendBytes)
	return nil
}

// Defragment rewrites this member's bbolt file without its free pages, as
// etcd's does: a compaction frees pages inside the file, and only this
// gives them back to the file system. It runs on the loop, after the node
// has flushed what it applied, so the member serves nothing meanwhile (etcd
// holds its backend's writes too): defragment one member at a time.
func (m *maintenanceServer) Defragment(ctx context.Context, _ *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	start := time.Now()
	m.l.logger.Info("starting defragment")
	var failed error
	var before, after int64
	err := m.l.exec(ctx, func(n *node.Node) {
		before, _ = m.l.be.DiskBytes()
		if failed = n.Flush(); failed == nil {
			m.l.metrics.defragInflight.Set(1)
			began := time.Now()
			failed = m.l.be.Defrag()
			m.l.metrics.defrag.Observe(time.Since(began).Seconds())
			m.l.metrics.defragInflight.Set(0)
		}
		after, _ = m.l.be.DiskBytes()
	})
	if err := cmp.Or(err, failed); err != nil {
		m.l.logger.Warn("failed to defragment", "err", err)
		return nil, toGRPC(err)
	}
	m.l.logger.Info("finished defragment", "db-size-before", before, "db-size-after", after, "took", time.Since(start))
	return &pb.DefragmentResponse{}, nil
}
