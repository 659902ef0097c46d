package server

import (
	"errors"
	"fmt"
	"testing"

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
