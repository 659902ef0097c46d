package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tmc/grpc-websocket-proxy/wsproxy"
	gw "go.etcd.io/etcd/api/v3/etcdserverpb/gw"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// Bounds of the JSON gateway.
const (
	// gatewayBodyFactor bounds a gateway request's body: at most this
	// many times the largest gRPC message the member takes. Base64 makes
	// bytes 4/3 as long and JSON adds its names, so no body over the bound
	// could become a request the gRPC server accepts; the bound only stops
	// a client from making the gateway buffer an unbounded body (etcd's
	// gateway reads any size). A stream's body (/v3/watch,
	// /v3/lease/keepalive) is many requests, each bounded on its own: the
	// bytes read since the last request went to gRPC.
	gatewayBodyFactor = 4
	// wsRespBufferBytes is etcd's limit on one message the websocket
	// proxy relays: none.
	wsRespBufferBytes = math.MaxInt32
	// A client sending bad requests in a loop must not flood the log:
	// the first refusalLogFirst refusals are logged, then at most one per
	// refusalLogInterval, with the count of those left out since the
	// last line. The metric counts every one.
	refusalLogFirst    = 10
	refusalLogInterval = time.Second
	// refusalLogMessageBytes bounds the reason a line quotes: protobuf's
	// messages quote the bad value, which may be megabytes long.
	refusalLogMessageBytes = 256
)

// gatewayStreamPaths are the gateway's streaming paths, whose request body
// is a sequence of JSON requests rather than one.
var gatewayStreamPaths = map[string]bool{"/v3/watch": true, "/v3/lease/keepalive": true}

// gateway is etcd's JSON gateway (grpc-gateway) on the client port: etcd's
// own generated handlers for KV, Watch, Lease, Cluster, Maintenance and
// Auth under /v3/ (and plumb's for Lock and Election, which do what
// etcd's generated ones do: gateway_concurrency.go), with etcd's marshaler options (proto field names,
// unset fields left out, unknown fields ignored; bytes are base64), each
// call made to the member's own gRPC server over an in-memory connection,
// so that it passes the same interceptors and checks as any gRPC client's.
// etcd dials its own client URL instead; the answers are the same. As in
// etcd, the Authorization header reaches gRPC as "authorization" metadata
// (grpc-gateway's default). Every refusal is counted in
// plumb_gateway_refused_requests_total by gRPC code and logged, within
// refusalLogFirst and refusalLogInterval.
type gateway struct {
	conn    *grpc.ClientConn
	handler http.Handler
	// streams ends with endStreams, when the member stops: a watch or
	// keep-alive stream through the gateway never finishes by itself, and
	// would hold the gRPC server's graceful stop.
	streams    context.Context
	endStreams context.CancelFunc
}

// newGateway registers etcd's gateway handlers on a connection to the
// member's gRPC server through l (the in-process listener).
func newGateway(l interface {
	DialContext(context.Context) (net.Conn, error)
}, maxBodyBytes int64, refused *prometheus.CounterVec, logger *slog.Logger) (*gateway, error) {
	conn, err := grpc.NewClient("passthrough:///in-process",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)),
		grpc.WithStreamInterceptor(renewBudget))
	if err != nil {
		return nil, fmt.Errorf("the JSON gateway's connection: %w", err)
	}
	rl := &refusalLog{logger: logger, sometimes: rate.Sometimes{First: refusalLogFirst, Interval: refusalLogInterval}}
	mux := runtime.NewServeMux(
		// etcd 3.7's embed/serve.go options, so that the bodies are etcd's.
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{
			Marshaler: &runtime.JSONPb{
				MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false},
				UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
			},
		}),
		// grpc-gateway's own answer, counted and logged: routing errors
		// (unknown path, wrong method) come here through its default
		// routing handler too.
		runtime.WithErrorHandler(func(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
			st := status.Convert(err)
			refused.WithLabelValues(st.Code().String()).Inc()
			rl.log(r, st)
			runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
		}),
	)
	ctx := context.Background() // the handlers' calls take their requests' contexts
	for _, register := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		gw.RegisterKVHandler, gw.RegisterWatchHandler, gw.RegisterLeaseHandler,
		gw.RegisterClusterHandler, gw.RegisterMaintenanceHandler, gw.RegisterAuthHandler,
	} {
		if err := register(ctx, mux, conn); err != nil {
			conn.Close()
			return nil, fmt.Errorf("the JSON gateway: %w", err)
		}
	}
	if err := registerConcurrencyGateway(mux, conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("the JSON gateway: %w", err)
	}
	// The bounds sit under the websocket proxy, so that they apply to the
	// body it makes of a websocket's messages too.
	bounded := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !gatewayStreamPaths[r.URL.Path] {
			r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
			mux.ServeHTTP(w, r)
			return
		}
		b := &streamBudget{max: maxBodyBytes}
		b.left.Store(maxBodyBytes)
		r.Body = &budgetReader{body: r.Body, b: b, exceeded: func() {
			st := status.Newf(codes.InvalidArgument, "a request in the stream is over %d bytes", maxBodyBytes)
			refused.WithLabelValues(st.Code().String()).Inc()
			rl.log(r, st)
		}}
		mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), budgetKey{}, b)))
	})
	// As etcd: a websocket client may use the streams too, and a stream
	// opened by any method is a POST.
	ws := wsproxy.WebsocketProxy(bounded,
		wsproxy.WithRequestMutator(func(_ *http.Request, out *http.Request) *http.Request {
			out.Method = http.MethodPost
			return out
		}),
		wsproxy.WithMaxRespBodyBufferSize(wsRespBufferBytes),
		wsproxy.WithLogger(wsLogger{logger}),
	)
	g := &gateway{conn: conn}
	g.streams, g.endStreams = context.WithCancel(context.Background())
	g.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !gatewayStreamPaths[r.URL.Path] {
			ws.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		stop := context.AfterFunc(g.streams, cancel)
		defer stop()
		ws.ServeHTTP(w, r.WithContext(ctx))
	})
	return g, nil
}

func (g *gateway) close() error {
	g.endStreams()
	return g.conn.Close()
}

// streamBudget is what a stream's body may still send before its next
// request reaches gRPC; budgetReader spends it, renewBudget renews it.
// The gateway decodes a request and sends it on one goroutine, but the
// count is atomic all the same.
type streamBudget struct {
	left atomic.Int64
	max  int64
}

// budgetKey carries a stream request's budget in its context, which the
// gateway's gRPC calls inherit.
type budgetKey struct{}

// errStreamRequestTooLarge ends a stream's body whose request is over its
// budget; the gateway then closes its side of the gRPC stream, as at the
// body's end, and the answers so far go on.
var errStreamRequestTooLarge = errors.New("a request in the stream is too large")

type budgetReader struct {
	body     io.ReadCloser
	b        *streamBudget
	exceeded func()
	once     sync.Once
}

func (r *budgetReader) Read(p []byte) (int, error) {
	left := r.b.left.Load()
	if left <= 0 {
		r.once.Do(r.exceeded)
		return 0, errStreamRequestTooLarge
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := r.body.Read(p)
	r.b.left.Add(-int64(n))
	return n, err
}

func (r *budgetReader) Close() error { return r.body.Close() }

// renewBudget is the gateway connection's stream interceptor: each
// request the gateway sends on a stream renews the budget of the body it
// came from.
func renewBudget(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	b, ok := ctx.Value(budgetKey{}).(*streamBudget)
	if err != nil || !ok {
		return cs, err
	}
	return &budgetedStream{ClientStream: cs, b: b}, nil
}

type budgetedStream struct {
	grpc.ClientStream
	b *streamBudget
}

func (s *budgetedStream) SendMsg(m any) error {
	s.b.left.Store(s.b.max)
	return s.ClientStream.SendMsg(m)
}

// refusalLog logs the gateway's refusals, within its bounds.
type refusalLog struct {
	logger    *slog.Logger
	sometimes rate.Sometimes
	unlogged  atomic.Int64 // refusals since the last line, this one included
}

func (l *refusalLog) log(r *http.Request, st *status.Status) {
	l.unlogged.Add(1)
	l.sometimes.Do(func() {
		attrs := []any{"method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr,
			"code", st.Code().String(), "err", clip(st.Message(), refusalLogMessageBytes)}
		if left := l.unlogged.Swap(0) - 1; left > 0 {
			attrs = append(attrs, "refusals-not-logged-since-the-last", left)
		}
		l.logger.Warn("JSON gateway refused a request", attrs...)
	})
}

// clip cuts s to at most n bytes, saying so.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s... (%d bytes more)", strings.ToValidUTF8(s[:n], ""), len(s)-n)
}

// wsLogger is the websocket proxy's logger.
type wsLogger struct{ l *slog.Logger }

func (w wsLogger) Warnln(args ...any)  { w.l.Warn("JSON gateway websocket: " + fmt.Sprint(args...)) }
func (w wsLogger) Debugln(args ...any) { w.l.Debug("JSON gateway websocket: " + fmt.Sprint(args...)) }

// accessControl is what etcd's accessController does for every client HTTP
// request with its default --cors and --host-whitelist ("*", both of
// which plumb ignores): /v3beta/ is /v3/, every answer allows any origin,
// and a preflight OPTIONS is answered 200 at once.
func accessControl(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v3beta/") {
			r.URL.Path = strings.Replace(r.URL.Path, "/v3beta/", "/v3/", 1)
		}
		w.Header().Add("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE")
		w.Header().Add("Access-Control-Allow-Origin", "*")
		w.Header().Add("Access-Control-Allow-Headers", "accept, content-type, authorization")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return
		}
		next.ServeHTTP(w, r)
	})
}
