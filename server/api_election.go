package server

import (
	"context"
	"errors"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc"
)

// errMissingLeaderKey is etcd's answer to a Proclaim or Resign without its
// leader key.
var errMissingLeaderKey = errors.New(`"leader" field must be provided`)

// noLease is the lease of the sessions that only read an election (Leader,
// Observe): etcd's, a lease no one can hold, since those sessions never
// write.
const noLease = -1

// electionServer is etcd's Election service (v3electionpb), built as etcd
// builds it: over the in-process client and clientv3's concurrency
// election, so that it is the election etcdctl elect and
// concurrency.Election run, on the same keys.
//
// Campaign queues a key "<name>/<lease in hex>" holding the proposal under
// the caller's lease and answers once it is the oldest under "<name>/",
// with the leader key (name, key, its create revision, lease) that
// Proclaim and Resign take back. Proclaim rewrites the leader's value if
// the key is still the leader's; Resign deletes it. Leader answers the
// oldest key's value; Observe streams it, and each value it is proclaimed,
// until the caller leaves. As with Lock, this member never keeps the
// caller's lease alive, and the messages are v3election.proto's on the
// wire (checked against a real etcd in lock_ref_test.go).
type electionServer struct {
	c *clientv3.Client
	// act puts the calling client's identity on the calls the member
	// makes for it (authenticator.act).
	act func(context.Context) context.Context
}

func (s *electionServer) Campaign(ctx context.Context, r *campaignRequest) (*campaignResponse, error) {
	ctx = s.act(ctx) // the member acts for the caller
	sess, err := orphanSession(ctx, s.c, r.Lease)
	if err != nil {
		return nil, err
	}
	e := concurrency.NewElection(sess, string(r.Name))
	if err := e.Campaign(ctx, string(r.Value)); err != nil {
		return nil, err
	}
	return &campaignResponse{Header: e.Header(), Leader: &leaderKey{
		Name: r.Name, Key: []byte(e.Key()), Rev: e.Rev(), Lease: int64(sess.Lease()),
	}}, nil
}

func (s *electionServer) Proclaim(ctx context.Context, r *proclaimRequest) (*proclaimResponse, error) {
	ctx = s.act(ctx) // the member acts for the caller
	e, err := s.resume(ctx, r.Leader)
	if err != nil {
		return nil, err
	}
	if err := e.Proclaim(ctx, string(r.Value)); err != nil {
		return nil, err
	}
	return &proclaimResponse{Header: e.Header()}, nil
}

func (s *electionServer) Resign(ctx context.Context, r *resignRequest) (*resignResponse, error) {
	ctx = s.act(ctx) // the member acts for the caller
	e, err := s.resume(ctx, r.Leader)
	if err != nil {
		return nil, err
	}
	if err := e.Resign(ctx); err != nil {
		return nil, err
	}
	return &resignResponse{Header: e.Header()}, nil
}

// resume is the election a leader key names, as its holder left it.
func (s *electionServer) resume(ctx context.Context, k *leaderKey) (*concurrency.Election, error) {
	if k == nil {
		return nil, errMissingLeaderKey
	}
	sess, err := orphanSession(ctx, s.c, k.Lease)
	if err != nil {
		return nil, err
	}
	return concurrency.ResumeElection(sess, string(k.Name), string(k.Key), k.Rev), nil
}

func (s *electionServer) Leader(ctx context.Context, r *leaderRequest) (*leaderResponse, error) {
	ctx = s.act(ctx) // the member acts for the caller
	sess, err := orphanSession(ctx, s.c, noLease)
	if err != nil {
		return nil, err
	}
	resp, err := concurrency.NewElection(sess, string(r.Name)).Leader(ctx)
	if err != nil {
		return nil, err
	}
	return &leaderResponse{Header: resp.Header, Kv: resp.Kvs[0]}, nil
}

// Observe sends the election's leader, then every change of it, until the
// caller leaves (or the member's client fails, which ends the stream
// without an error, as etcd's does).
func (s *electionServer) Observe(r *leaderRequest, stream grpc.ServerStream) error {
	ctx := s.act(stream.Context())
	sess, err := orphanSession(ctx, s.c, noLease)
	if err != nil {
		return err
	}
	leaders := concurrency.NewElection(sess, string(r.Name)).Observe(ctx)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case resp, ok := <-leaders:
			if !ok {
				return nil
			}
			if err := stream.SendMsg(&leaderResponse{Header: resp.Header, Kv: resp.Kvs[0]}); err != nil {
				return err
			}
		}
	}
}

// The Election service's messages, as v3election.proto declares them (see
// the Lock service's).

type campaignRequest struct {
	Name  []byte `protobuf:"bytes,1,opt,name=name,proto3"`
	Lease int64  `protobuf:"varint,2,opt,name=lease,proto3"`
	Value []byte `protobuf:"bytes,3,opt,name=value,proto3"`
}

type campaignResponse struct {
	Header *pb.ResponseHeader `protobuf:"bytes,1,opt,name=header,proto3"`
	Leader *leaderKey         `protobuf:"bytes,2,opt,name=leader,proto3"`
}

type leaderKey struct {
	Name  []byte `protobuf:"bytes,1,opt,name=name,proto3"`
	Key   []byte `protobuf:"bytes,2,opt,name=key,proto3"`
	Rev   int64  `protobuf:"varint,3,opt,name=rev,proto3"`
	Lease int64  `protobuf:"varint,4,opt,name=lease,proto3"`
}

type leaderRequest struct {
	Name []byte `protobuf:"bytes,1,opt,name=name,proto3"`
}

type leaderResponse struct {
	Header *pb.ResponseHeader `protobuf:"bytes,1,opt,name=header,proto3"`
	Kv     *mvccpb.KeyValue   `protobuf:"bytes,2,opt,name=kv,proto3"`
}

type resignRequest struct {
	Leader *leaderKey `protobuf:"bytes,1,opt,name=leader,proto3"`
}

type resignResponse struct {
	Header *pb.ResponseHeader `protobuf:"bytes,1,opt,name=header,proto3"`
}

type proclaimRequest struct {
	Leader *leaderKey `protobuf:"bytes,1,opt,name=leader,proto3"`
	Value  []byte     `protobuf:"bytes,2,opt,name=value,proto3"`
}

type proclaimResponse struct {
	Header *pb.ResponseHeader `protobuf:"bytes,1,opt,name=header,proto3"`
}

func (m *campaignRequest) Reset()         { *m = campaignRequest{} }
func (m *campaignRequest) String() string { return protoText(m) }
func (*campaignRequest) ProtoMessage()    {}

func (m *campaignResponse) Reset()         { *m = campaignResponse{} }
func (m *campaignResponse) String() string { return protoText(m) }
func (*campaignResponse) ProtoMessage()    {}

func (m *leaderKey) Reset()         { *m = leaderKey{} }
func (m *leaderKey) String() string { return protoText(m) }
func (*leaderKey) ProtoMessage()    {}

func (m *leaderRequest) Reset()         { *m = leaderRequest{} }
func (m *leaderRequest) String() string { return protoText(m) }
func (*leaderRequest) ProtoMessage()    {}

func (m *leaderResponse) Reset()         { *m = leaderResponse{} }
func (m *leaderResponse) String() string { return protoText(m) }
func (*leaderResponse) ProtoMessage()    {}

func (m *resignRequest) Reset()         { *m = resignRequest{} }
func (m *resignRequest) String() string { return protoText(m) }
func (*resignRequest) ProtoMessage()    {}

func (m *resignResponse) Reset()         { *m = resignResponse{} }
func (m *resignResponse) String() string { return protoText(m) }
func (*resignResponse) ProtoMessage()    {}

func (m *proclaimRequest) Reset()         { *m = proclaimRequest{} }
func (m *proclaimRequest) String() string { return protoText(m) }
func (*proclaimRequest) ProtoMessage()    {}

func (m *proclaimResponse) Reset()         { *m = proclaimResponse{} }
func (m *proclaimResponse) String() string { return protoText(m) }
func (*proclaimResponse) ProtoMessage()    {}

// electionService is what electionServiceDesc's handlers call.
type electionService interface {
	Campaign(context.Context, *campaignRequest) (*campaignResponse, error)
	Proclaim(context.Context, *proclaimRequest) (*proclaimResponse, error)
	Leader(context.Context, *leaderRequest) (*leaderResponse, error)
	Observe(*leaderRequest, grpc.ServerStream) error
	Resign(context.Context, *resignRequest) (*resignResponse, error)
}

// electionServiceDesc is the service as v3election.proto names it.
var electionServiceDesc = grpc.ServiceDesc{
	ServiceName: "v3electionpb.Election",
	HandlerType: (*electionService)(nil),
	Methods: []grpc.MethodDesc{
		unary("v3electionpb.Election", "Campaign", electionService.Campaign),
		unary("v3electionpb.Election", "Proclaim", electionService.Proclaim),
		unary("v3electionpb.Election", "Leader", electionService.Leader),
		unary("v3electionpb.Election", "Resign", electionService.Resign),
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Observe",
		ServerStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			req := new(leaderRequest)
			if err := stream.RecvMsg(req); err != nil {
				return err
			}
			return srv.(electionService).Observe(req, stream)
		},
	}},
	Metadata: "v3election.proto",
}
