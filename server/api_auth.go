package server

import (
	"context"
	"encoding/base64"
	"errors"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node"
)

// authServer is etcd's Auth service. Every request goes through raft, as
// in etcd; the node applies them (node/auth.go). The server hashes new
// passwords and checks given ones (auth.go), so that neither enters the
// raft log in clear.
type authServer struct {
	pb.UnimplementedAuthServer
	l *loop
	a *authenticator
}

// do runs one auth request through the node and returns its response as
// the etcd type T.
func do[T proto.Message](ctx context.Context, s *authServer, r *pb.InternalRaftRequest) (T, error) {
	var zero T
	rep, err := s.l.do(ctx, node.Request{Auth: r})
	if err != nil {
		return zero, toGRPC(err)
	}
	resp, ok := rep.Auth.(T)
	if !ok {
		return zero, toGRPC(errors.New("server: the node answered an auth request with the wrong response"))
	}
	return resp, nil
}

func (s *authServer) AuthEnable(ctx context.Context, r *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	resp, err := do[*pb.AuthEnableResponse](ctx, s, &pb.InternalRaftRequest{AuthEnable: r})
	if err == nil {
		s.l.logger.Info("enabled authentication")
	}
	return resp, err
}

func (s *authServer) AuthDisable(ctx context.Context, r *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	resp, err := do[*pb.AuthDisableResponse](ctx, s, &pb.InternalRaftRequest{AuthDisable: r})
	if err == nil {
		s.l.logger.Info("disabled authentication")
	}
	return resp, err
}

func (s *authServer) AuthStatus(ctx context.Context, r *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	return do[*pb.AuthStatusResponse](ctx, s, &pb.InternalRaftRequest{AuthStatus: r})
}

// Authenticate is etcd's: the password is checked against the hash read
// after a linearizable read, and the token made through raft only if the
// auth state has not changed since (else it checks again). A wrong
// password costs one bcrypt comparison and writes nothing.
func (s *authServer) Authenticate(ctx context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	for {
		rep, err := s.l.do(ctx, node.Request{PasswordOf: r.Name})
		var hash []byte
		switch {
		case err == nil:
			hash = rep.Password.Hash
		case errors.Is(err, node.ErrAuthFailed), errors.Is(err, node.ErrNoPasswordUser):
			// No such user, or one without a password: compare anyway,
			// so that the answer takes as long as for a wrong password.
		default:
			return nil, toGRPC(err)
		}
		ok, err := s.a.checkPassword(ctx, hash, r.Password)
		if err != nil {
			return nil, toGRPC(err)
		}
		if !ok {
			s.l.logger.Warn("invalid authentication was requested", "user", r.Name, "err", rpctypes.ErrGRPCAuthFailed.Error())
			return nil, rpctypes.ErrGRPCAuthFailed
		}
		checked := rep.Password.Revision
		auth := &pb.InternalRaftRequest{Authenticate: &pb.InternalAuthenticateRequest{Name: r.Name, SimpleToken: s.a.simpleTokenPrefix()}}
		rep, err = s.l.do(ctx, node.Request{Auth: auth, AuthRevision: checked})
		if errors.Is(err, node.ErrAuthOldRevision) {
			s.l.logger.Info("revision when password checked became stale; retrying")
			continue
		}
		if err != nil {
			return nil, toGRPC(err)
		}
		resp := rep.Auth.(*pb.AuthenticateResponse)
		if s.a.jwt != nil {
			if resp.Token, err = s.a.jwt.assign(r.Name, checked); err != nil {
				return nil, toGRPC(err)
			}
		}
		return resp, nil
	}
}

// hashed returns base64 of the bcrypt hash of pw, as etcd's
// HashedPassword.
func (s *authServer) hashed(pw string) (string, error) {
	h, err := s.a.hashPassword(pw)
	if err != nil {
		return "", toGRPC(err)
	}
	return base64.StdEncoding.EncodeToString(h), nil
}

func (s *authServer) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	r = proto.CloneOf(r)
	if !r.Options.GetNoPassword() {
		var err error
		if r.HashedPassword, err = s.hashed(r.Password); err != nil {
			return nil, err
		}
	}
	r.Password = ""
	return do[*pb.AuthUserAddResponse](ctx, s, &pb.InternalRaftRequest{AuthUserAdd: r})
}

func (s *authServer) UserDelete(ctx context.Context, r *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	return do[*pb.AuthUserDeleteResponse](ctx, s, &pb.InternalRaftRequest{AuthUserDelete: r})
}

func (s *authServer) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	r = proto.CloneOf(r)
	var err error
	if r.HashedPassword, err = s.hashed(r.Password); err != nil {
		return nil, err
	}
	r.Password = ""
	return do[*pb.AuthUserChangePasswordResponse](ctx, s, &pb.InternalRaftRequest{AuthUserChangePassword: r})
}

func (s *authServer) UserGrantRole(ctx context.Context, r *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	return do[*pb.AuthUserGrantRoleResponse](ctx, s, &pb.InternalRaftRequest{AuthUserGrantRole: r})
}

func (s *authServer) UserGet(ctx context.Context, r *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	return do[*pb.AuthUserGetResponse](ctx, s, &pb.InternalRaftRequest{AuthUserGet: r})
}

func (s *authServer) UserList(ctx context.Context, r *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	return do[*pb.AuthUserListResponse](ctx, s, &pb.InternalRaftRequest{AuthUserList: r})
}

func (s *authServer) UserRevokeRole(ctx context.Context, r *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	return do[*pb.AuthUserRevokeRoleResponse](ctx, s, &pb.InternalRaftRequest{AuthUserRevokeRole: r})
}

func (s *authServer) RoleAdd(ctx context.Context, r *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	return do[*pb.AuthRoleAddResponse](ctx, s, &pb.InternalRaftRequest{AuthRoleAdd: r})
}

func (s *authServer) RoleGet(ctx context.Context, r *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	return do[*pb.AuthRoleGetResponse](ctx, s, &pb.InternalRaftRequest{AuthRoleGet: r})
}

func (s *authServer) RoleList(ctx context.Context, r *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	return do[*pb.AuthRoleListResponse](ctx, s, &pb.InternalRaftRequest{AuthRoleList: r})
}

func (s *authServer) RoleDelete(ctx context.Context, r *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	return do[*pb.AuthRoleDeleteResponse](ctx, s, &pb.InternalRaftRequest{AuthRoleDelete: r})
}

func (s *authServer) RoleGrantPermission(ctx context.Context, r *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	return do[*pb.AuthRoleGrantPermissionResponse](ctx, s, &pb.InternalRaftRequest{AuthRoleGrantPermission: r})
}

func (s *authServer) RoleRevokePermission(ctx context.Context, r *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	return do[*pb.AuthRoleRevokePermissionResponse](ctx, s, &pb.InternalRaftRequest{AuthRoleRevokePermission: r})
}
