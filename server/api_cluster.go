package server

import (
	"context"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/node"
)

// clusterServer is etcd's Cluster service. Membership is replicated state:
// member add, remove, promote and update are raft conf changes, answered
// once applied. Add, remove and promote are the leader's to judge (it
// alone knows which members are reachable and how far a learner has
// caught up, see node/reconfig.go): a member that does not lead forwards
// them to the leader, once, and retries only while the request was
// certainly not proposed (no leader, or not the leader).
type clusterServer struct {
	pb.UnimplementedClusterServer
	l   *loop
	fwd *forwarder
}

func (c *clusterServer) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	rep, err := c.l.do(ctx, node.Request{MemberList: r})
	return rep.MemberList, toGRPC(err)
}

func (c *clusterServer) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	rep, err := c.l.do(ctx, node.Request{MemberUpdate: r})
	return rep.MemberUpdate, toGRPC(err)
}

// MemberAdd salts the new member's ID with the time of the add, as etcd
// does, so the same peer URLs added again later get another ID.
func (c *clusterServer) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	return onLeader(ctx, c.fwd, notProposed,
		func(ctx context.Context) (*pb.MemberAddResponse, error) {
			rep, err := c.l.do(ctx, node.Request{MemberAdd: r, MemberAddUnix: time.Now().Unix()})
			return rep.MemberAdd, toGRPC(err)
		},
		"MemberAdd", r)
}

func (c *clusterServer) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	return onLeader(ctx, c.fwd, notProposed,
		func(ctx context.Context) (*pb.MemberRemoveResponse, error) {
			rep, err := c.l.do(ctx, node.Request{MemberRemove: r})
			return rep.MemberRemove, toGRPC(err)
		},
		"MemberRemove", r)
}

func (c *clusterServer) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	return onLeader(ctx, c.fwd, notProposed,
		func(ctx context.Context) (*pb.MemberPromoteResponse, error) {
			rep, err := c.l.do(ctx, node.Request{MemberPromote: r})
			if err == nil {
				c.l.metrics.learnerPromotes.Inc() // by the leader, as etcd counts them
			}
			return rep.MemberPromote, toGRPC(err)
		},
		"MemberPromote", r)
}
