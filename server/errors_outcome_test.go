package server

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plumbdb/plumb/node"
)

// TestStoppedInFlightIsNotStopped: a write the member had proposed when it
// stopped may still commit. clientv3 must not see etcd's "server stopped"
// (a request that was never proposed) but an Unavailable status that says
// the outcome is unknown, which clientv3 does not retry for a write.
func TestStoppedInFlightIsNotStopped(t *testing.T) {
	err := toGRPC(fmt.Errorf("wrapped: %w", node.ErrStoppedInFlight))
	st, _ := status.FromError(err)
	if st.Code() != codes.Unavailable || st.Message() != node.ErrStoppedInFlight.Error() {
		t.Fatalf("status %v %q, want Unavailable %q", st.Code(), st.Message(), node.ErrStoppedInFlight.Error())
	}
	if got := rpctypes.Error(err); errors.Is(got, rpctypes.ErrStopped) {
		t.Fatalf("a write in flight reaches the client as %v, a definite failure", got)
	}
	if got := rpctypes.Error(toGRPC(node.ErrStopped)); !errors.Is(got, rpctypes.ErrStopped) {
		t.Fatalf("a request never proposed reaches the client as %v, want %v", got, rpctypes.ErrStopped)
	}
}

// TestStopAnswersWritesInFlightAsUnknown: when the loop ends (a graceful
// stop, a removal, a storage failure), the calls it had handed to the node
// are answered: writes with ErrStoppedInFlight (they may commit after the
// member stops), reads with ErrStopped. It used to answer every one with
// ErrStopped, a definite failure for a write that may still commit.
func TestStopAnswersWritesInFlightAsUnknown(t *testing.T) {
	readTxn := &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("k")}}}}}
	writeTxn := &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("k")}}}}}
	tests := []struct {
		name string
		req  node.Request
		want error
	}{
		{"put", node.Request{Put: &pb.PutRequest{Key: []byte("k")}}, node.ErrStoppedInFlight},
		{"delete", node.Request{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("k")}}, node.ErrStoppedInFlight},
		{"txn that writes", node.Request{Txn: writeTxn}, node.ErrStoppedInFlight},
		{"member update", node.Request{MemberUpdate: &pb.MemberUpdateRequest{ID: 1}}, node.ErrStoppedInFlight},
		{"range", node.Request{Range: &pb.RangeRequest{Key: []byte("k")}}, node.ErrStopped},
		{"txn that reads", node.Request{Txn: readTxn}, node.ErrStopped},
		{"member list", node.Request{MemberList: &pb.MemberListRequest{}}, node.ErrStopped},
	}
	l := &loop{pending: map[uint64]*call{}, logger: slog.New(slog.DiscardHandler)}
	calls := make([]*call, len(tests))
	for i, tt := range tests {
		calls[i] = &call{req: tt.req, done: make(chan node.Reply, 1)}
		l.pending[uint64(i+1)] = calls[i]
	}
	l.finish(node.ErrStopped)
	for i, tt := range tests {
		rep := <-calls[i].done
		if rep.Err != tt.want {
			t.Errorf("%s: answered %v, want %v", tt.name, rep.Err, tt.want)
		}
	}
}
