package server

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
)

// A learner serves what etcd's learners serve: Status and serializable
// ranges, and the snapshot stream (so that it can be backed up); every
// other call fails with etcd's "rpc not supported for learner", before it
// reaches the node. The node refuses such requests too (node.Submit); the
// interceptors also cover what the server answers itself (hash, defrag,
// watch and keep-alive streams). Whether this member learns comes from the
// loop (loop.learner), updated at every tick from the applied membership.

const snapshotMethod = "/etcdserverpb.Maintenance/Snapshot"

func learnerUnary(l *loop) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if l.learner.Load() && !learnerServes(req) {
			return nil, rpctypes.ErrGRPCNotSupportedForLearner
		}
		return handler(ctx, req)
	}
}

func learnerStream(l *loop) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if l.learner.Load() && info.FullMethod != snapshotMethod {
			return rpctypes.ErrGRPCNotSupportedForLearner
		}
		return handler(srv, ss)
	}
}

// learnerServes is etcd's isRPCSupportedForLearner.
func learnerServes(req any) bool {
	switch r := req.(type) {
	case *pb.StatusRequest:
		return true
	case *pb.RangeRequest:
		return r.Serializable
	}
	return false
}
