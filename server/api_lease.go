package server

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/plumbdb/plumb/node"
)

// Bounds of forwarding to the leader.
const (
	// forwardRetryWait is the pause between two attempts to reach the
	// leader (etcd's throttle on its own forwarding loop).
	forwardRetryWait = 50 * time.Millisecond
	// forwardedKey marks a request one member forwarded to another, in
	// its gRPC metadata: the receiver answers it itself or fails it, and
	// never forwards it again.
	forwardedKey = "plumb-forwarded"
)

// leaseServer is etcd's Lease service. Grant and revoke go through raft,
// list is answered by this member; keep-alive and time-to-live are the
// leader's alone, since only the leader counts lease time. A member that is
// not the leader forwards them to the leader, as etcd does (etcd over its
// peer URLs' /leases endpoints, plumb over a gRPC connection to the
// leader's client URL), and retries, against whichever member leads by
// then, until forwardTimeout. A forwarded request that reaches a member
// that does not lead fails there: a request is forwarded once. A forwarded
// answer keeps the leader's header (etcd writes the forwarding member's
// over it; clients read only its revision, which is the leader's when it
// answered, never older than this member's).
type leaseServer struct {
	pb.UnimplementedLeaseServer
	l   *loop
	fwd *forwarder
}

// forwarder runs requests only the leader answers (lease keep-alive and
// time-to-live, member add, remove and promote) on the leader.
type forwarder struct {
	l    *loop
	conn *leaderConn
	// timeout bounds a forwarded request, its retries included (etcd's
	// request timeout: 5s and two election timeouts).
	timeout time.Duration
}

func (s *leaseServer) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	rep, err := s.l.do(ctx, node.Request{LeaseGrant: r})
	return rep.LeaseGrant, toGRPC(err)
}

func (s *leaseServer) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	rep, err := s.l.do(ctx, node.Request{LeaseRevoke: r})
	return rep.LeaseRevoke, toGRPC(err)
}

func (s *leaseServer) LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	rep, err := s.l.do(ctx, node.Request{LeaseLeases: r})
	return rep.LeaseLeases, toGRPC(err)
}

// LeaseTimeToLive answers etcd's TTL -1 for a lease the leader does not
// have, not an error.
func (s *leaseServer) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	resp, err := onLeader(ctx, s.fwd, idempotent,
		func(ctx context.Context) (*pb.LeaseTimeToLiveResponse, error) {
			rep, err := s.l.do(ctx, node.Request{LeaseTimeToLive: r})
			return rep.LeaseTimeToLive, toGRPC(err)
		},
		func(ctx context.Context, c grpc.ClientConnInterface) (*pb.LeaseTimeToLiveResponse, error) {
			return pb.NewLeaseClient(c).LeaseTimeToLive(ctx, r)
		})
	if sameStatus(err, rpctypes.ErrGRPCLeaseNotFound) {
		h, herr := s.header(ctx)
		return &pb.LeaseTimeToLiveResponse{Header: h, ID: r.ID, TTL: -1}, herr
	}
	return resp, err
}

// LeaseKeepAlive renews leases one request at a time, in the order they
// come, each answered before the next is read (as etcd's stream is). A
// lease the leader does not have (never granted, revoked or expired) gets
// etcd's answer, TTL 0, and the stream goes on; any other failure ends it.
func (s *leaseServer) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	ctx := stream.Context()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp, err := s.keepAlive(ctx, req)
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func (s *leaseServer) keepAlive(ctx context.Context, req *pb.LeaseKeepAliveRequest) (*pb.LeaseKeepAliveResponse, error) {
	resp, err := onLeader(ctx, s.fwd, idempotent,
		func(ctx context.Context) (*pb.LeaseKeepAliveResponse, error) {
			rep, err := s.l.do(ctx, node.Request{LeaseKeepAlive: req})
			return rep.LeaseKeepAlive, toGRPC(err)
		},
		func(ctx context.Context, c grpc.ClientConnInterface) (*pb.LeaseKeepAliveResponse, error) {
			return forwardKeepAlive(ctx, pb.NewLeaseClient(c), req)
		})
	if sameStatus(err, rpctypes.ErrGRPCLeaseNotFound) {
		h, herr := s.header(ctx)
		return &pb.LeaseKeepAliveResponse{Header: h, ID: req.ID, TTL: 0}, herr
	}
	return resp, err
}

// forwardKeepAlive renews one lease on the leader, over a keep-alive
// stream of its own.
func forwardKeepAlive(ctx context.Context, c pb.LeaseClient, req *pb.LeaseKeepAliveRequest) (*pb.LeaseKeepAliveResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream
	stream, err := c.LeaseKeepAlive(ctx)
	if err != nil {
		return nil, err
	}
	// A Send that fails says only io.EOF; Recv then says why.
	if err := stream.Send(req); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return stream.Recv()
}

// header is this member's response header, for answers the node did not
// make (etcd fills them in the same way).
func (s *leaseServer) header(ctx context.Context) (*pb.ResponseHeader, error) {
	var h *pb.ResponseHeader
	if err := s.l.exec(ctx, func(n *node.Node) { h = header(n) }); err != nil {
		return nil, toGRPC(err)
	}
	return h, nil
}

// retries says which failures of a forwarded request onLeader tries again.
type retries int

const (
	// idempotent: any failure that may pass (see retryable). For requests
	// that are safe to repeat: a keep-alive, a time-to-live.
	idempotent retries = iota
	// notProposed: only failures that say the request was never proposed
	// (no leader, not the leader). For a member change, whose repeat after
	// an unknown outcome would fail on the change the first one made.
	notProposed
)

// onLeader runs a request only the leader answers: local (the node), and
// when the node says it does not lead, remote on the leader, retrying as r
// allows while the leader is unknown, unreachable or moving, up to the
// forwarder's timeout. Both return gRPC status errors.
func onLeader[R any](ctx context.Context, f *forwarder, r retries,
	local func(context.Context) (R, error),
	remote func(context.Context, grpc.ClientConnInterface) (R, error),
) (R, error) {
	resp, err := local(ctx)
	moved := sameStatus(err, rpctypes.ErrGRPCNotLeader) || (r == idempotent && sameStatus(err, rpctypes.ErrGRPCLeaderChanged))
	if !moved || forwarded(ctx) {
		return resp, err
	}
	fctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	out := metadata.AppendToOutgoingContext(passCredentials(ctx, fctx), forwardedKey, "1")
	for {
		var c grpc.ClientConnInterface
		var self bool
		c, self, err = f.conn.leader(fctx)
		switch {
		case err != nil:
		case self: // this member has been elected meanwhile
			resp, err = local(fctx)
		default:
			resp, err = remote(out, c)
		}
		again := retryable(fctx, err)
		if r == notProposed {
			again = sameStatus(err, rpctypes.ErrGRPCNotLeader) || sameStatus(err, rpctypes.ErrGRPCNoLeader)
		}
		if !again {
			return resp, err
		}
		var zero R
		select {
		case <-fctx.Done():
			return zero, forwardFailed(ctx, err)
		case <-f.l.done:
			return zero, toGRPC(node.ErrStopped)
		case <-time.After(forwardRetryWait):
		}
	}
}

// forwarded reports whether another member forwarded this request.
func forwarded(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get(forwardedKey)) > 0
}

// retryable reports whether a forwarded request may succeed if tried
// again: the leader was unknown or moved on, could not be reached, or its
// connection was closed under the request for a new leader's. A request
// the leader answered, success or failure, is final.
func retryable(ctx context.Context, err error) bool {
	switch {
	case err == nil:
		return false
	case sameStatus(err, rpctypes.ErrGRPCNotLeader):
		return true
	case status.Code(err) == codes.Canceled:
		return ctx.Err() == nil
	}
	return status.Code(err) == codes.Unavailable
}

// forwardFailed is what a client hears when the leader could not answer
// in time: never "not leader", which a client of this member could do
// nothing about (and clientv3 does not retry), but etcd's no leader or
// timeout, which it retries, or the caller's own end.
func forwardFailed(ctx context.Context, last error) error {
	switch {
	case ctx.Err() != nil:
		return toGRPC(ctx.Err())
	case sameStatus(last, rpctypes.ErrGRPCNoLeader):
		return rpctypes.ErrGRPCNoLeader
	}
	return rpctypes.ErrGRPCTimeout
}

// sameStatus reports whether err is the gRPC status want: same code, same
// message.
func sameStatus(err, want error) bool {
	if err == nil {
		return false
	}
	got, ok := status.FromError(err)
	w, _ := status.FromError(want)
	return ok && got.Code() == w.Code() && got.Message() == w.Message()
}

// leaderConn is a client connection to the leader's client URL, kept while
// that member leads at that URL, and dialled again when either changes.
type leaderConn struct {
	l *loop

	// tls dials https:// client URLs; nil when the member serves none.
	tls *tls.Config

	mu     sync.Mutex
	lead   uint64
	target string
	conn   *grpc.ClientConn
	closed bool
}

// leader returns a client of the leader, or self when this member leads.
// Without a known leader, or one that has not published a client URL yet,
// it fails with etcd's no leader.
func (f *leaderConn) leader(ctx context.Context) (c grpc.ClientConnInterface, self bool, err error) {
	var lead, id uint64
	var m node.Member
	var known bool
	err = f.l.exec(ctx, func(n *node.Node) {
		lead, id = n.Lead(), n.ID()
		if lead != 0 {
			m, known = n.Member(lead)
		}
	})
	switch {
	case err != nil:
		return nil, false, toGRPC(err)
	case lead == id:
		return nil, true, nil
	case lead == 0 || !known:
		return nil, false, rpctypes.ErrGRPCNoLeader
	}
	target := ""
	for _, u := range m.ClientURLs {
		if f.tls != nil && strings.HasPrefix(u, "https://") {
			if t, _, err := dialTarget(u); err == nil {
				target = "https://" + t
				break
			}
		}
		if t, https, err := dialTarget(u); err == nil && !https {
			target = t
			break
		}
	}
	if target == "" {
		return nil, false, rpctypes.ErrGRPCNoLeader
	}
	conn, err := f.dial(lead, target)
	if err != nil {
		return nil, false, err
	}
	return conn, false, nil
}

func (f *leaderConn) dial(lead uint64, target string) (*grpc.ClientConn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, rpctypes.ErrGRPCStopped
	}
	if f.conn != nil && f.lead == lead && f.target == target {
		return f.conn, nil
	}
	if f.conn != nil {
		f.conn.Close()
		f.conn = nil
	}
	creds, addr := insecure.NewCredentials(), target
	if host, ok := strings.CutPrefix(target, "https://"); ok {
		creds, addr = credentials.NewTLS(f.tls.Clone()), host
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "dial the leader at %s: %v", target, err)
	}
	f.lead, f.target, f.conn = lead, target, conn
	return conn, nil
}

// close closes the connection; the member is stopping.
func (f *leaderConn) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	if f.conn != nil {
		f.conn.Close()
		f.conn = nil
	}
}
