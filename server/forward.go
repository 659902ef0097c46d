package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	"github.com/plumbdb/plumb/node"
)

// Forwarding to the leader. Lease keep-alive and time-to-live are the
// leader's alone (only the leader counts lease time), and so are member
// add, remove and promote (only the leader knows which members it hears
// from, for the strict reconfiguration check). A member that does not lead
// forwards them to the leader over the peer URLs, as etcd forwards its
// lease requests (its /leases endpoints), and retries, against whichever
// member leads by then, until the forwarder's timeout.
//
// The forwarding member says who the client is: it resolved the client's
// credentials itself (a token, a JWT it verified, the common name of a
// certificate it verified), as etcd authorizes a request on the member
// the client reached; the leader acts as that user. The leader believes
// it because the request came on the peer port, from a member of its
// cluster: the peer port is trusted as it is for raft's messages (with
// peer TLS, only holders of a peer certificate reach it). A forwarded
// request that reaches a member that does not lead fails there: a request
// is forwarded once.
const (
	// peerForwardPath is the peer port's route for forwarded requests.
	peerForwardPath = "/plumb/forward"
	// forwardRetryWait is the pause between two attempts to reach the
	// leader (etcd's throttle on its own forwarding loop).
	forwardRetryWait = 50 * time.Millisecond
	// forwardBytesMax bounds a forwarded request's body: they are small
	// (a lease ID, a member's peer URLs).
	forwardBytesMax = 1 << 20
)

// forwardRequest is a request one member forwards to the leader, with
// the client's identity as the forwarding member resolved it.
type forwardRequest struct {
	Method   string `protobuf:"bytes,1,opt,name=method,proto3"`
	Body     []byte `protobuf:"bytes,2,opt,name=body,proto3"`
	Token    string `protobuf:"bytes,3,opt,name=token,proto3"` // the client's simple token
	User     string `protobuf:"bytes,4,opt,name=user,proto3"`  // or the user it verified
	Revision uint64 `protobuf:"varint,5,opt,name=revision,proto3"`
}

// forwardResponse is the leader's answer: the response, or the gRPC
// status it failed with.
type forwardResponse struct {
	Body    []byte `protobuf:"bytes,1,opt,name=body,proto3"`
	Code    uint32 `protobuf:"varint,2,opt,name=code,proto3"`
	Message string `protobuf:"bytes,3,opt,name=message,proto3"`
}

func (m *forwardRequest) Reset()          { *m = forwardRequest{} }
func (m *forwardRequest) String() string  { return protoText(m) }
func (*forwardRequest) ProtoMessage()     {}
func (m *forwardResponse) Reset()         { *m = forwardResponse{} }
func (m *forwardResponse) String() string { return protoText(m) }
func (*forwardResponse) ProtoMessage()    {}

// forwarder runs requests only the leader answers on the leader.
type forwarder struct {
	l  *loop
	tr *transport
	// timeout bounds a forwarded request, its retries included (etcd's
	// request timeout: 5s and two election timeouts).
	timeout time.Duration
	// The services whose requests the leader answers for other members.
	cluster *clusterServer
	lease   *leaseServer
}

// forwardedCreds carries, in a forwarded request's context on the
// leader, the client's identity as the forwarding member resolved it
// (authenticator.credentials reads it). Only serveForward sets it: a
// client cannot.
type forwardedCreds struct{}

// forwarded reports whether another member forwarded this request.
func forwarded(ctx context.Context) bool {
	_, ok := ctx.Value(forwardedCreds{}).(node.Credentials)
	return ok
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
// when the node says it does not lead, method with req on the leader,
// retrying as r allows while the leader is unknown, unreachable or
// moving, up to the forwarder's timeout. It returns gRPC status errors.
func onLeader[R proto.Message](ctx context.Context, f *forwarder, r retries,
	local func(context.Context) (R, error), method string, req proto.Message,
) (R, error) {
	resp, err := local(ctx)
	moved := sameStatus(err, rpctypes.ErrGRPCNotLeader) || (r == idempotent && sameStatus(err, rpctypes.ErrGRPCLeaderChanged))
	if !moved || forwarded(ctx) {
		return resp, err
	}
	var zero R
	creds := f.l.auth.credentials(ctx)
	if creds.BadToken {
		return zero, rpctypes.ErrGRPCInvalidAuthToken
	}
	fr := &forwardRequest{Method: method, Token: creds.Token, User: creds.User, Revision: creds.Revision}
	if fr.Body, err = proto.Marshal(req); err != nil {
		return zero, status.Errorf(codes.Internal, "encode the request to forward: %v", err)
	}
	fctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	for {
		var lead, self uint64
		if err = f.l.exec(fctx, func(n *node.Node) { lead, self = n.Lead(), n.ID() }); err != nil {
			err = toGRPC(err)
		}
		switch {
		case err != nil:
		case lead == 0:
			err = rpctypes.ErrGRPCNoLeader
		case lead == self: // this member has been elected meanwhile
			resp, err = local(fctx)
		default:
			resp = resp.ProtoReflect().New().Interface().(R)
			err = f.send(fctx, lead, fr, resp)
		}
		again := retryable(fctx, err)
		if r == notProposed {
			again = sameStatus(err, rpctypes.ErrGRPCNotLeader) || sameStatus(err, rpctypes.ErrGRPCNoLeader) ||
				errors.Is(err, errForwardNotSent)
		}
		if !again {
			return resp, err
		}
		select {
		case <-fctx.Done():
			return zero, forwardFailed(ctx, err)
		case <-f.l.done:
			return zero, toGRPC(node.ErrStopped)
		case <-time.After(forwardRetryWait):
		}
	}
}

// errForwardNotSent: the leader could not be reached at all; a request
// that was not sent may be sent again whatever it is.
var errForwardNotSent = status.Error(codes.Unavailable, "the forwarded request did not reach the leader")

// send forwards fr to the member lead over the peer port and decodes the
// answer into into, or returns the gRPC status the leader failed with.
func (f *forwarder) send(ctx context.Context, lead uint64, fr *forwardRequest, into proto.Message) error {
	ep, client, ok := f.tr.endpoint(lead)
	if !ok {
		return errForwardNotSent // not a peer yet: its membership is on its way
	}
	body, err := proto.Marshal(protoadapt.MessageV2Of(fr))
	if err != nil {
		return status.Errorf(codes.Internal, "encode the request to forward: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.httpURL(peerForwardPath), bytes.NewReader(body))
	if err != nil {
		return status.Errorf(codes.Internal, "the forward request: %v", err)
	}
	f.tr.setRoute(req.Header, lead)
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return toGRPC(ctx.Err())
		}
		return errForwardNotSent
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return status.Errorf(codes.Unavailable, "the leader refused the forwarded request: %v", peerRefusal(resp))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, forwardBytesMax))
	if err != nil {
		return status.Errorf(codes.Unavailable, "read the leader's answer: %v", err)
	}
	var out forwardResponse
	if err := proto.Unmarshal(data, protoadapt.MessageV2Of(&out)); err != nil {
		return status.Errorf(codes.Unavailable, "decode the leader's answer: %v", err)
	}
	if out.Code != uint32(codes.OK) {
		return status.Error(codes.Code(out.Code), out.Message)
	}
	if err := proto.Unmarshal(out.Body, into); err != nil {
		return status.Errorf(codes.Unavailable, "decode the leader's answer: %v", err)
	}
	return nil
}

// serveForward answers a request another member forwarded (onLeader),
// as the user that member resolved. Only members of this cluster are
// answered.
func (f *forwarder) serveForward(w http.ResponseWriter, r *http.Request) {
	t := f.tr
	if !t.enter(nil, 0) {
		peerError(w, http.StatusServiceUnavailable, errStopping)
		return
	}
	defer t.leave(nil)
	cluster, from, err := t.checkRoute(r.Header)
	if err == nil && !t.isPeer(from) {
		err = fmt.Errorf("%w: member %s is not a member of this cluster", node.ErrWrongMember, node.FormatID(from))
	}
	if err != nil {
		t.refuseRequest(w, cluster, from, err)
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, forwardBytesMax))
	if err != nil {
		peerError(w, http.StatusBadRequest, fmt.Errorf("read the forwarded request: %w", err))
		return
	}
	var fr forwardRequest
	if err := proto.Unmarshal(data, protoadapt.MessageV2Of(&fr)); err != nil {
		peerError(w, http.StatusBadRequest, fmt.Errorf("decode the forwarded request: %w", err))
		return
	}
	ctx := context.WithValue(r.Context(), forwardedCreds{}, node.Credentials{Token: fr.Token, User: fr.User, Revision: fr.Revision})
	resp, err := f.answer(ctx, fr.Method, fr.Body)
	var out forwardResponse
	if err != nil {
		st := status.Convert(err)
		out.Code, out.Message = uint32(st.Code()), st.Message()
	} else if out.Body, err = proto.Marshal(resp); err != nil {
		out.Code, out.Message = uint32(codes.Internal), fmt.Sprintf("encode the answer: %v", err)
	}
	data, err = proto.Marshal(protoadapt.MessageV2Of(&out))
	if err != nil {
		peerError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/protobuf")
	_, _ = w.Write(data)
}

// answer runs a forwarded request's method as this member's services
// would for a client of its own.
func (f *forwarder) answer(ctx context.Context, method string, body []byte) (proto.Message, error) {
	decode := func(m proto.Message) error {
		if err := proto.Unmarshal(body, m); err != nil {
			return status.Errorf(codes.InvalidArgument, "decode the forwarded %s: %v", method, err)
		}
		return nil
	}
	switch method {
	case "LeaseKeepAlive":
		r := &pb.LeaseKeepAliveRequest{}
		if err := decode(r); err != nil {
			return nil, err
		}
		return f.lease.keepAlive(ctx, r)
	case "LeaseTimeToLive":
		r := &pb.LeaseTimeToLiveRequest{}
		if err := decode(r); err != nil {
			return nil, err
		}
		return f.lease.LeaseTimeToLive(ctx, r)
	case "MemberAdd":
		r := &pb.MemberAddRequest{}
		if err := decode(r); err != nil {
			return nil, err
		}
		return f.cluster.MemberAdd(ctx, r)
	case "MemberRemove":
		r := &pb.MemberRemoveRequest{}
		if err := decode(r); err != nil {
			return nil, err
		}
		return f.cluster.MemberRemove(ctx, r)
	case "MemberPromote":
		r := &pb.MemberPromoteRequest{}
		if err := decode(r); err != nil {
			return nil, err
		}
		return f.cluster.MemberPromote(ctx, r)
	}
	return nil, status.Errorf(codes.Unimplemented, "no forwarded method %q", method)
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
