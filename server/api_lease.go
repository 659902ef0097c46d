package server

import (
	"context"
	"errors"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/plumbdb/plumb/node"
)

// leaseServer is etcd's Lease service. Grant and revoke go through raft,
// list is answered by this member; keep-alive and time-to-live are the
// leader's alone, since only the leader counts lease time. A member that is
// not the leader forwards them to the leader over the peer URLs, as etcd
// does (forward.go), and retries, against whichever member leads by
// then, until forwardTimeout. A forwarded request that reaches a member
// that does not lead fails there: a request is forwarded once. A forwarded
// answer keeps the leader's header (etcd writes the forwarding member's
// over it; clients read only its revision, which is the leader's when it
// answered, never older than this member's).
type leaseServer struct {
	pb.UnimplementedLeaseServer
	l   *loop
	fwd *forwarder
}

func (s *leaseServer) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	rep, err := s.l.do(ctx, node.Request{LeaseGrant: r})
	return rep.LeaseGrant, toGRPC(err)
}

func (s *leaseServer) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	rep, err := s.l.do(ctx, node.Request{LeaseRevoke: r})
	return rep.LeaseRevoke, toGRPC(err)
}

func (s *leaseServer) LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	rep, err := s.l.do(ctx, node.Request{LeaseLeases: r})
	return rep.LeaseLeases, toGRPC(err)
}

// LeaseTimeToLive answers etcd's TTL -1 for a lease the leader does not
// have, not an error.
func (s *leaseServer) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	resp, err := onLeader(ctx, s.fwd, idempotent,
		func(ctx context.Context) (*pb.LeaseTimeToLiveResponse, error) {
			rep, err := s.l.do(ctx, node.Request{LeaseTimeToLive: r})
			return rep.LeaseTimeToLive, toGRPC(err)
		},
		"LeaseTimeToLive", r)
	if sameStatus(err, rpctypes.ErrGRPCLeaseNotFound) {
		h, herr := s.header(ctx)
		return &pb.LeaseTimeToLiveResponse{Header: h, ID: r.ID, TTL: -1}, herr
	}
	return resp, err
}

// LeaseKeepAlive renews leases one request at a time, in the order they
// come, each answered before the next is read (as etcd's stream is). A
// lease the leader does not have (never granted, revoked or expired) gets
// etcd's answer, TTL 0, and the stream goes on; any other failure ends it.
func (s *leaseServer) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	ctx := stream.Context()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp, err := s.keepAlive(ctx, req)
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func (s *leaseServer) keepAlive(ctx context.Context, req *pb.LeaseKeepAliveRequest) (*pb.LeaseKeepAliveResponse, error) {
	resp, err := onLeader(ctx, s.fwd, idempotent,
		func(ctx context.Context) (*pb.LeaseKeepAliveResponse, error) {
			rep, err := s.l.do(ctx, node.Request{LeaseKeepAlive: req})
			return rep.LeaseKeepAlive, toGRPC(err)
		},
		"LeaseKeepAlive", req)
	if sameStatus(err, rpctypes.ErrGRPCLeaseNotFound) {
		h, herr := s.header(ctx)
		return &pb.LeaseKeepAliveResponse{Header: h, ID: req.ID, TTL: 0}, herr
	}
	return resp, err
}

// header is this member's response header, for answers the node did not
// make (etcd fills them in the same way).
func (s *leaseServer) header(ctx context.Context) (*pb.ResponseHeader, error) {
	var h *pb.ResponseHeader
	if err := s.l.exec(ctx, func(n *node.Node) { h = header(n) }); err != nil {
		return nil, toGRPC(err)
	}
	return h, nil
}
