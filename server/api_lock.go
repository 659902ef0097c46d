package server

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/protoadapt"
)

// lockServer is etcd's Lock service (v3lockpb), built as etcd builds it:
// over a client of this member's own KV, Lease and Watch services (the
// in-process client, see Server.selfClient) and clientv3's concurrency
// recipes, so that a lock taken here is the one etcdctl lock and
// concurrency.Mutex take, with the same keys.
//
// Lock queues a key "<name>/<lease in hex>" under the caller's lease (a
// lease of 60 seconds is granted when the caller gives none) and answers
// once that key is the oldest under "<name>/": the caller holds the lock
// while the key exists, which its lease bounds. This member never keeps the
// caller's lease alive. Unlock deletes the key.
//
// etcd's own generated types for this service live in etcd's server
// module, which plumb does not depend on; the messages here are the same
// on the wire (field numbers and types of v3lock.proto, checked against a
// real etcd in lock_ref_test.go).
type lockServer struct {
	c *clientv3.Client
	// act puts the calling client's identity on the calls the member
	// makes for it (authenticator.act).
	act func(context.Context) context.Context
}

func (s *lockServer) Lock(ctx context.Context, r *lockRequest) (*lockResponse, error) {
	ctx = s.act(ctx) // the member acts for the caller
	sess, err := orphanSession(ctx, s.c, r.Lease)
	if err != nil {
		return nil, err
	}
	m := concurrency.NewMutex(sess, string(r.Name))
	if err := m.Lock(ctx); err != nil {
		return nil, err
	}
	return &lockResponse{Header: m.Header(), Key: []byte(m.Key())}, nil
}

func (s *lockServer) Unlock(ctx context.Context, r *unlockRequest) (*unlockResponse, error) {
	ctx = s.act(ctx) // the member acts for the caller
	resp, err := s.c.Delete(ctx, string(r.Key))
	if err != nil {
		return nil, err
	}
	return &unlockResponse{Header: resp.Header}, nil
}

// orphanSession is a concurrency session on the caller's lease (granted
// with concurrency's default TTL when lease is 0) that this member does
// not keep alive: keeping it alive is the caller's business. Its errors are
// clientv3's, which reach the caller as etcd's do (code Unknown, etcd's
// message).
func orphanSession(ctx context.Context, c *clientv3.Client, lease int64) (*concurrency.Session, error) {
	sess, err := concurrency.NewSession(c, concurrency.WithLease(clientv3.LeaseID(lease)), concurrency.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	sess.Orphan()
	return sess, nil
}

// The Lock service's messages, as v3lock.proto declares them. protobuf
// reads their struct tags (its support for messages without generated
// descriptors), so they need no code generation.

type lockRequest struct {
	Name  []byte `protobuf:"bytes,1,opt,name=name,proto3"`
	Lease int64  `protobuf:"varint,2,opt,name=lease,proto3"`
}

type lockResponse struct {
	Header *pb.ResponseHeader `protobuf:"bytes,1,opt,name=header,proto3"`
	Key    []byte             `protobuf:"bytes,2,opt,name=key,proto3"`
}

type unlockRequest struct {
	Key []byte `protobuf:"bytes,1,opt,name=key,proto3"`
}

type unlockResponse struct {
	Header *pb.ResponseHeader `protobuf:"bytes,1,opt,name=header,proto3"`
}

func (m *lockRequest) Reset()         { *m = lockRequest{} }
func (m *lockRequest) String() string { return protoText(m) }
func (*lockRequest) ProtoMessage()    {}

func (m *lockResponse) Reset()         { *m = lockResponse{} }
func (m *lockResponse) String() string { return protoText(m) }
func (*lockResponse) ProtoMessage()    {}

func (m *unlockRequest) Reset()         { *m = unlockRequest{} }
func (m *unlockRequest) String() string { return protoText(m) }
func (*unlockRequest) ProtoMessage()    {}

func (m *unlockResponse) Reset()         { *m = unlockResponse{} }
func (m *unlockResponse) String() string { return protoText(m) }
func (*unlockResponse) ProtoMessage()    {}

func protoText(m protoadapt.MessageV1) string {
	return prototext.Format(protoadapt.MessageV2Of(m))
}

// lockService is what lockServiceDesc's handlers call.
type lockService interface {
	Lock(context.Context, *lockRequest) (*lockResponse, error)
	Unlock(context.Context, *unlockRequest) (*unlockResponse, error)
}

// lockServiceDesc is the service as v3lock.proto names it.
var lockServiceDesc = grpc.ServiceDesc{
	ServiceName: "v3lockpb.Lock",
	HandlerType: (*lockService)(nil),
	Methods: []grpc.MethodDesc{
		unary("v3lockpb.Lock", "Lock", lockService.Lock),
		unary("v3lockpb.Lock", "Unlock", lockService.Unlock),
	},
	Metadata: "v3lock.proto",
}

// unary is a grpc method whose handler decodes a Req and calls fn on the
// registered server S, through the server's interceptor if it has one.
func unary[S any, Req any, Resp any](service, method string, fn func(S, context.Context, *Req) (*Resp, error)) grpc.MethodDesc {
	full := "/" + service + "/" + method
	return grpc.MethodDesc{
		MethodName: method,
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			req := new(Req)
			if err := dec(req); err != nil {
				return nil, err
			}
			call := func(ctx context.Context, r any) (any, error) { return fn(srv.(S), ctx, r.(*Req)) }
			if interceptor == nil {
				return call(ctx, req)
			}
			return interceptor(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: full}, call)
		},
	}
}
