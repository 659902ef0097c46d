package server

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/node"
)

// kvServer is etcd's KV service: every request goes through the loop to
// the node, which validates it with etcd's rules and answers with etcd's
// messages; errors become etcd's gRPC statuses.
type kvServer struct {
	pb.UnimplementedKVServer
	l *loop
}

func (k *kvServer) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	rep, err := k.l.do(ctx, node.Request{Range: r})
	return rep.Range, toGRPC(err)
}

func (k *kvServer) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	rep, err := k.l.do(ctx, node.Request{Put: r})
	return rep.Put, toGRPC(err)
}

func (k *kvServer) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	rep, err := k.l.do(ctx, node.Request{DeleteRange: r})
	return rep.DeleteRange, toGRPC(err)
}

func (k *kvServer) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	rep, err := k.l.do(ctx, node.Request{Txn: r})
	return rep.Txn, toGRPC(err)
}

func (k *kvServer) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	rep, err := k.l.do(ctx, node.Request{Compaction: r})
	return rep.Compaction, toGRPC(err)
}
