package server

import (
	"errors"
	"io"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// registerConcurrencyGateway serves etcd's gateway paths for the Lock and
// Election services (etcd registers v3lockgw and v3electiongw, generated in
// its server module, which plumb does not depend on). Each path does what
// the generated handler does: decode the JSON body into the service's
// request, call the method over conn with the request's metadata (the
// Authorization header becomes "authorization"), and answer with the
// response in the gateway's JSON, or the error as grpc-gateway writes it.
func registerConcurrencyGateway(mux *runtime.ServeMux, conn *grpc.ClientConn) error {
	for _, err := range []error{
		gatewayUnary[lockRequest, lockResponse](mux, conn, "/v3/lock/lock", "/v3lockpb.Lock/Lock"),
		gatewayUnary[unlockRequest, unlockResponse](mux, conn, "/v3/lock/unlock", "/v3lockpb.Lock/Unlock"),
		gatewayUnary[campaignRequest, campaignResponse](mux, conn, "/v3/election/campaign", "/v3electionpb.Election/Campaign"),
		gatewayUnary[proclaimRequest, proclaimResponse](mux, conn, "/v3/election/proclaim", "/v3electionpb.Election/Proclaim"),
		gatewayUnary[leaderRequest, leaderResponse](mux, conn, "/v3/election/leader", "/v3electionpb.Election/Leader"),
		gatewayUnary[resignRequest, resignResponse](mux, conn, "/v3/election/resign", "/v3electionpb.Election/Resign"),
		gatewayObserve(mux, conn),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// v1 is a pointer to one of the services' messages (protobuf reads their
// struct tags).
type v1[T any] interface {
	*T
	protoadapt.MessageV1
}

func gatewayUnary[Req, Resp any, PReq v1[Req], PResp v1[Resp]](mux *runtime.ServeMux, conn *grpc.ClientConn, path, method string) error {
	return mux.HandlePath(http.MethodPost, path, func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		in, out := runtime.MarshalerForRequest(mux, r)
		ctx, err := runtime.AnnotateContext(r.Context(), mux, r, method, runtime.WithHTTPPathPattern(path))
		if err != nil {
			runtime.HTTPError(ctx, mux, out, w, r, err)
			return
		}
		req := PReq(new(Req))
		if err := decodeGatewayBody(in, r.Body, protoadapt.MessageV2Of(req)); err != nil {
			runtime.HTTPError(ctx, mux, out, w, r, err)
			return
		}
		resp := PResp(new(Resp))
		var md runtime.ServerMetadata
		err = conn.Invoke(ctx, method, req, resp, grpc.Header(&md.HeaderMD), grpc.Trailer(&md.TrailerMD))
		ctx = runtime.NewServerMetadataContext(ctx, md)
		if err != nil {
			runtime.HTTPError(ctx, mux, out, w, r, err)
			return
		}
		runtime.ForwardResponseMessage(ctx, mux, out, w, r, protoadapt.MessageV2Of(resp))
	})
}

// gatewayObserve is /v3/election/observe: a server stream, answered as
// grpc-gateway answers one, one {"result": ...} object per response.
func gatewayObserve(mux *runtime.ServeMux, conn *grpc.ClientConn) error {
	const path, method = "/v3/election/observe", "/v3electionpb.Election/Observe"
	return mux.HandlePath(http.MethodPost, path, func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		in, out := runtime.MarshalerForRequest(mux, r)
		ctx, err := runtime.AnnotateContext(r.Context(), mux, r, method, runtime.WithHTTPPathPattern(path))
		if err != nil {
			runtime.HTTPError(ctx, mux, out, w, r, err)
			return
		}
		req := new(leaderRequest)
		if err := decodeGatewayBody(in, r.Body, protoadapt.MessageV2Of(req)); err != nil {
			runtime.HTTPError(ctx, mux, out, w, r, err)
			return
		}
		desc := &grpc.StreamDesc{StreamName: "Observe", ServerStreams: true}
		stream, err := conn.NewStream(ctx, desc, method)
		if err == nil {
			err = stream.SendMsg(req)
		}
		if err == nil {
			err = stream.CloseSend()
		}
		if err != nil {
			runtime.HTTPError(ctx, mux, out, w, r, err)
			return
		}
		header, err := stream.Header()
		if err != nil {
			runtime.HTTPError(ctx, mux, out, w, r, err)
			return
		}
		ctx = runtime.NewServerMetadataContext(ctx, runtime.ServerMetadata{HeaderMD: header})
		runtime.ForwardResponseStream(ctx, mux, out, w, r, func() (proto.Message, error) {
			resp := new(leaderResponse)
			if err := stream.RecvMsg(resp); err != nil {
				return nil, err
			}
			return protoadapt.MessageV2Of(resp), nil
		})
	})
}

// decodeGatewayBody decodes a request body as the generated handlers do:
// an empty body is an empty request; anything unreadable is
// InvalidArgument.
func decodeGatewayBody(m runtime.Marshaler, body io.Reader, into proto.Message) error {
	err := m.NewDecoder(body).Decode(into)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	return status.Errorf(codes.InvalidArgument, "%v", err)
}
