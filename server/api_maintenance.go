package server

import (
	"cmp"
	"context"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3"

	"github.com/plumbdb/plumb/node"
)

// APIVersion is the etcd version whose API plumb speaks, reported where
// etcd reports its own version (Status, /version): clients gate features
// on it.
const APIVersion = "3.7.0"

// maintenanceServer is etcd's Maintenance service: status, alarms, the
// key-value hash, and moving the leader.
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
			resp.Errors = append(resp.Errors, "memberID:"+node.FormatID(a.MemberID)+" alarm:"+a.Alarm.String())
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
		hash, compactRev, rev := n.HashKV()
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
