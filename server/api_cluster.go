package server

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plumbdb/plumb/node"
)

// clusterServer is etcd's Cluster service. Membership is replicated state:
// member update and remove are raft conf changes, answered once applied.
type clusterServer struct {
	pb.UnimplementedClusterServer
	l *loop
}

// errJoinNotSupported: a member added now could not start, since plumb
// cannot yet bootstrap a member into a running cluster; adding one would
// only raise the quorum.
var errJoinNotSupported = status.Error(codes.Unimplemented,
	"plumb: member add is not supported yet: a new member cannot join a running cluster, and adding one would raise the quorum")

func (c *clusterServer) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	rep, err := c.l.do(ctx, node.Request{MemberList: r})
	return rep.MemberList, toGRPC(err)
}

func (c *clusterServer) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	rep, err := c.l.do(ctx, node.Request{MemberUpdate: r})
	return rep.MemberUpdate, toGRPC(err)
}

func (c *clusterServer) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	rep, err := c.l.do(ctx, node.Request{MemberRemove: r})
	return rep.MemberRemove, toGRPC(err)
}

func (c *clusterServer) MemberAdd(context.Context, *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	return nil, errJoinNotSupported
}
