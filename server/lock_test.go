package server

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

// invokeAs invokes a unary method of the Lock or Election service on conn.
func invokeAs[Resp any, PResp interface {
	*Resp
	protoadapt.MessageV1
}](ctx context.Context, conn *grpc.ClientConn, method string, req protoadapt.MessageV1) (PResp, error) {
	resp := PResp(new(Resp))
	if err := conn.Invoke(ctx, method, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

func lock(ctx context.Context, conn *grpc.ClientConn, name string, lease clientv3.LeaseID) (*lockResponse, error) {
	return invokeAs[lockResponse](ctx, conn, "/v3lockpb.Lock/Lock", &lockRequest{Name: []byte(name), Lease: int64(lease)})
}

func unlock(ctx context.Context, conn *grpc.ClientConn, key []byte) (*unlockResponse, error) {
	return invokeAs[unlockResponse](ctx, conn, "/v3lockpb.Lock/Unlock", &unlockRequest{Key: key})
}

// isStatus reports whether err is a gRPC status with code and message.
func isStatus(err error, code codes.Code, msg string) bool {
	st, ok := status.FromError(err)
	return ok && err != nil && st.Code() == code && st.Message() == msg
}

// waitingLock starts a Lock call and returns where its outcome will come.
func waitingLock(conn *grpc.ClientConn, name string, lease clientv3.LeaseID) <-chan *lockResponse {
	got := make(chan *lockResponse, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, _ := lock(ctx, conn, name, lease)
		got <- resp
	}()
	return got
}

// notYet fails the test if ch delivers within a short while: the call it
// stands for must still be waiting.
func notYet[T any](t *testing.T, what string, ch <-chan T) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s returned %v while it should wait", what, v)
	case <-time.After(300 * time.Millisecond):
	}
}

func within[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not return within 5s", what)
	}
	panic("unreachable")
}

// TestLockService: etcd's Lock service: Lock answers the ownership key
// "<name>/<lease in hex>" once the caller is first in line, the next
// caller waits until Unlock (or the holder's lease) lets it in, and the
// lock is the one concurrency.Mutex takes; a lease that does not exist is
// refused with etcd's error.
func TestLockService(t *testing.T) {
	_, cfg, cli := watchMember(t)
	conn := leaseConn(t, cfg)
	ctx := context.Background()
	l1, l2, l3 := grantT(t, cli, 60), grantT(t, cli, 60), grantT(t, cli, 60)

	first, err := lock(ctx, conn, "L", l1)
	if err != nil || string(first.Key) != fmt.Sprintf("L/%x", l1) || first.Header.GetRevision() == 0 {
		t.Fatalf("lock L: %v %v, want key L/%x and a header", first, err, l1)
	}
	second := waitingLock(conn, "L", l2)
	notYet(t, "a second lock of L", second)
	if _, err := unlock(ctx, conn, first.Key); err != nil {
		t.Fatal(err)
	}
	if got := within(t, "the second lock after unlock", second); got == nil || string(got.Key) != fmt.Sprintf("L/%x", l2) {
		t.Fatalf("the second lock: %v, want key L/%x", got, l2)
	}

	// concurrency.Mutex sees the same lock.
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(60))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	m := concurrency.NewMutex(sess, "L")
	if err := m.TryLock(ctx); !errors.Is(err, concurrency.ErrLocked) {
		t.Fatalf("TryLock of L held through the Lock service: %v, want %v", err, concurrency.ErrLocked)
	}
	// The holder's lease ends: the lock is free.
	third := waitingLock(conn, "L", l3)
	notYet(t, "a third lock of L", third)
	if _, err := cli.Revoke(ctx, l2); err != nil {
		t.Fatal(err)
	}
	if got := within(t, "the third lock after the holder's lease was revoked", third); got == nil {
		t.Fatal("the third lock failed")
	}
	if _, err := lock(ctx, conn, "L", 12345); !isStatus(err, codes.Unknown, "etcdserver: requested lease not found") {
		t.Fatalf("lock with an unknown lease: %v, want etcd's Unknown %q", err, "etcdserver: requested lease not found")
	}
}

func campaign(ctx context.Context, conn *grpc.ClientConn, name string, lease clientv3.LeaseID, value string) (*campaignResponse, error) {
	return invokeAs[campaignResponse](ctx, conn, "/v3electionpb.Election/Campaign",
		&campaignRequest{Name: []byte(name), Lease: int64(lease), Value: []byte(value)})
}

func leaderOf(ctx context.Context, conn *grpc.ClientConn, name string) (*leaderResponse, error) {
	return invokeAs[leaderResponse](ctx, conn, "/v3electionpb.Election/Leader", &leaderRequest{Name: []byte(name)})
}

func proclaim(ctx context.Context, conn *grpc.ClientConn, k *leaderKey, value string) (*proclaimResponse, error) {
	return invokeAs[proclaimResponse](ctx, conn, "/v3electionpb.Election/Proclaim", &proclaimRequest{Leader: k, Value: []byte(value)})
}

func resign(ctx context.Context, conn *grpc.ClientConn, k *leaderKey) (*resignResponse, error) {
	return invokeAs[resignResponse](ctx, conn, "/v3electionpb.Election/Resign", &resignRequest{Leader: k})
}

// observe opens an Observe stream; each value it sends comes on the
// channel.
func observe(t *testing.T, conn *grpc.ClientConn, name string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := conn.NewStream(ctx, &electionServiceDesc.Streams[0], "/v3electionpb.Election/Observe")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.SendMsg(&leaderRequest{Name: []byte(name)}); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	values := make(chan string, 16)
	go func() {
		defer close(values)
		for {
			var resp leaderResponse
			if err := stream.RecvMsg(&resp); err != nil {
				return
			}
			values <- string(resp.Kv.GetValue())
		}
	}()
	return values
}

// TestElectionService: etcd's Election service: no leader at first;
// Campaign wins an empty election and answers the leader key, which
// Proclaim and Resign take; a second candidate waits until the leader
// resigns; Leader and Observe (and concurrency.Election) follow each value;
// etcd's errors for a missing or stale leader key.
func TestElectionService(t *testing.T) {
	_, cfg, cli := watchMember(t)
	conn := leaseConn(t, cfg)
	ctx := context.Background()
	l1, l2 := grantT(t, cli, 60), grantT(t, cli, 60)

	if _, err := leaderOf(ctx, conn, "E"); !isStatus(err, codes.Unknown, concurrency.ErrElectionNoLeader.Error()) {
		t.Fatalf("leader of an empty election: %v, want etcd's Unknown %q", err, concurrency.ErrElectionNoLeader)
	}
	seen := observe(t, conn, "E")
	won, err := campaign(ctx, conn, "E", l1, "a")
	if err != nil {
		t.Fatal(err)
	}
	k := won.Leader
	if string(k.Name) != "E" || string(k.Key) != fmt.Sprintf("E/%x", l1) || k.Lease != int64(l1) || k.Rev != won.Header.GetRevision() {
		t.Fatalf("campaign: %v, want leader key E/%x with lease %x, created at the header's revision", won, l1, l1)
	}
	if got := within(t, "observe", seen); got != "a" {
		t.Fatalf("observe: %q, want a", got)
	}
	if _, err := proclaim(ctx, conn, k, "b"); err != nil {
		t.Fatal(err)
	}
	if got := within(t, "observe after proclaim", seen); got != "b" {
		t.Fatalf("observe after proclaim: %q, want b", got)
	}
	if got, err := leaderOf(ctx, conn, "E"); err != nil || string(got.Kv.GetValue()) != "b" || string(got.Kv.GetKey()) != string(k.Key) {
		t.Fatalf("leader: %v %v, want %s = b", got, err, k.Key)
	}

	second := make(chan *campaignResponse, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, _ := campaign(ctx, conn, "E", l2, "c")
		second <- resp
	}()
	notYet(t, "a second campaign", second)
	if _, err := proclaim(ctx, conn, nil, "x"); !isStatus(err, codes.Unknown, `"leader" field must be provided`) {
		t.Errorf("proclaim without a leader key: %v", err)
	}
	if _, err := resign(ctx, conn, k); err != nil {
		t.Fatal(err)
	}
	if got := within(t, "the second campaign after the resign", second); got == nil || got.Leader.Lease != int64(l2) {
		t.Fatalf("the second campaign: %v, want it elected with lease %x", got, l2)
	}
	if got := within(t, "observe after the resign", seen); got != "c" {
		t.Fatalf("observe after the resign: %q, want c", got)
	}
	if _, err := proclaim(ctx, conn, k, "stale"); !isStatus(err, codes.Unknown, concurrency.ErrElectionNotLeader.Error()) {
		t.Errorf("proclaim with the resigned leader key: %v, want etcd's Unknown %q", err, concurrency.ErrElectionNotLeader)
	}
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(60))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	got, err := concurrency.NewElection(sess, "E").Leader(ctx)
	if err != nil || string(got.Kvs[0].Value) != "c" {
		t.Fatalf("concurrency.Election's leader: %v %v, want c", got, err)
	}
}
