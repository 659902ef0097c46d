package server

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/plumbdb/plumb/node"
)

// authServer is etcd's Auth service for a cluster without authentication,
// which is what plumb is for now: Authenticate answers etcd's
// "authentication is not enabled" (clientv3 given a user name then knows
// why), and AuthStatus says it is off.
type authServer struct {
	pb.UnimplementedAuthServer
	l *loop
}

func (a *authServer) Authenticate(context.Context, *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	return nil, rpctypes.ErrGRPCAuthNotEnabled
}

func (a *authServer) AuthStatus(ctx context.Context, _ *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	var h *pb.ResponseHeader
	if err := a.l.exec(ctx, func(n *node.Node) { h = header(n) }); err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthStatusResponse{Header: h, Enabled: false}, nil
}
