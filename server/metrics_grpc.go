package server

import (
	"context"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// The client side of etcd's gRPC metrics: requests counted by kind and
// by the client's API version (clientv3 sends it in its metadata), and the
// bytes of every message received and sent.

// clientAPIVersion is the API version the client's metadata names, or
// "unknown".
func clientAPIVersion(ctx context.Context) string {
	if vs := metadata.ValueFromIncomingContext(ctx, rpctypes.MetadataClientAPIVersionKey); len(vs) > 0 {
		return vs[0]
	}
	return "unknown"
}

// messageBytes is the encoded size of a gRPC message.
func messageBytes(m any) int {
	if v, ok := m.(proto.Message); ok {
		return proto.Size(v)
	}
	return 0 // the Lock and Election services' messages are protobuf too; nothing else is sent
}

func (m *metrics) unaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		m.clientRequests.WithLabelValues("unary", clientAPIVersion(ctx)).Inc()
		m.grpcRecvBytes.Add(float64(messageBytes(req)))
		resp, err := handler(ctx, req)
		if err == nil {
			m.grpcSentBytes.Add(float64(messageBytes(resp)))
		}
		return resp, err
	}
}

func (m *metrics) streamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		m.clientRequests.WithLabelValues("stream", clientAPIVersion(ss.Context())).Inc()
		return handler(srv, &countedStream{ServerStream: ss, m: m})
	}
}

// countedStream counts the bytes of a stream's messages.
type countedStream struct {
	grpc.ServerStream
	m *metrics
}

func (s *countedStream) SendMsg(msg any) error {
	err := s.ServerStream.SendMsg(msg)
	if err == nil {
		s.m.grpcSentBytes.Add(float64(messageBytes(msg)))
	}
	return err
}

func (s *countedStream) RecvMsg(msg any) error {
	err := s.ServerStream.RecvMsg(msg)
	if err == nil {
		s.m.grpcRecvBytes.Add(float64(messageBytes(msg)))
	}
	return err
}
