package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"
)

// post sends body to url and returns the status and the body.
func post(t *testing.T, hc *http.Client, url, body string) (int, string) {
	t.Helper()
	resp, err := hc.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// postRetrying posts until the member has elected itself and answers 200.
func postRetrying(t *testing.T, hc *http.Client, url, body string) string {
	t.Helper()
	var code int
	var got string
	for range 100 {
		if code, got = post(t, hc, url, body); code == http.StatusOK {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("POST %s: %d %s", url, code, got)
	return ""
}

// TestGatewaySwitch: --enable-grpc-gateway serves etcd's JSON API under
// /v3/ (and /v3beta/, as etcd); false leaves /v3/ unserved (Go's 404, as
// etcd's), /health still served.
func TestGatewaySwitch(t *testing.T) {
	for _, enabled := range []bool{true, false} {
		cfg := oneMember(t, t.TempDir())
		cfg.EnableGRPCGateway = enabled
		s := startT(t, cfg)
		url := cfg.AdvertiseClientURLs[0]
		putRetrying(t, clientOf(t, cfg), "foo", "bar")
		for _, path := range []string{"/v3/kv/range", "/v3beta/kv/range"} {
			code, body := post(t, http.DefaultClient, url+path, `{"key":"Zm9v"}`)
			if enabled && (code != http.StatusOK || !strings.Contains(body, `"value":"YmFy"`)) {
				t.Errorf("--enable-grpc-gateway=true: %s answered %d %s", path, code, body)
			}
			if !enabled && (code != http.StatusNotFound || body != "404 page not found\n") {
				t.Errorf("--enable-grpc-gateway=false: %s answered %d %q, want Go's 404", path, code, body)
			}
		}
		if resp, err := http.Get(url + "/health"); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("--enable-grpc-gateway=%v: /health: %v %v", enabled, resp, err)
		} else {
			resp.Body.Close()
		}
		s.Stop()
	}
}

// TestGatewayAccessControl: as etcd with its default --cors, every answer
// allows any origin and a preflight OPTIONS is answered 200 without
// reaching the gateway.
func TestGatewayAccessControl(t *testing.T) {
	cfg := oneMember(t, t.TempDir())
	s := startT(t, cfg)
	defer s.Stop()
	req, err := http.NewRequest(http.MethodOptions, cfg.AdvertiseClientURLs[0]+"/v3/kv/put", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", "http://example.com")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		resp.Header.Get("Access-Control-Allow-Headers") != "accept, content-type, authorization" {
		t.Errorf("OPTIONS /v3/kv/put: %s %v", resp.Status, resp.Header)
	}
}

// TestGatewayBodyBound: a unary request's body past gatewayBodyFactor
// times the largest gRPC message is refused before it is all read, with
// the gateway's 400; under the bound etcd's own answers hold (the e2e
// test compares them). The refusal is counted.
func TestGatewayBodyBound(t *testing.T) {
	cfg := oneMember(t, t.TempDir())
	cfg.MaxRequestBytes = 1024
	s := startT(t, cfg)
	defer s.Stop()
	url := cfg.AdvertiseClientURLs[0]
	postRetrying(t, http.DefaultClient, url+"/v3/kv/put", `{"key":"Zm9v","value":"YmFy"}`)
	bound := gatewayBodyFactor * (1024 + grpcOverheadBytes)
	padded := `{"key":"Zm9v",` + strings.Repeat(" ", bound) + `"value":"YmFy"}`
	code, body := post(t, http.DefaultClient, url+"/v3/kv/put", padded)
	if code != http.StatusBadRequest || !strings.Contains(body, "http: request body too large") {
		t.Errorf("a body past the bound: %d %s", code, body)
	}
	code, body = post(t, http.DefaultClient, url+"/v3/kv/range", `{"key":"Zm9v"}`)
	if code != http.StatusOK || !strings.Contains(body, `"value":"YmFy"`) || !strings.Contains(body, `"version":"1"`) {
		t.Errorf("after the refusal: %d %s", code, body)
	}
	_, metrics := func() (int, string) {
		resp, err := http.Get(url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}()
	if !strings.Contains(metrics, `plumb_gateway_refused_requests_total{code="InvalidArgument"} 1`) {
		t.Error("the refusal was not counted in /metrics")
	}
}

// TestListenClientHTTPURLs: with --listen-client-http-urls the HTTP URL
// serves HTTP (the gateway, /health) and the client URL serves gRPC alone,
// as etcd splits them; on https:// too.
func TestListenClientHTTPURLs(t *testing.T) {
	t.Run("http", func(t *testing.T) {
		cfg := oneMember(t, t.TempDir())
		httpURL := freeURL(t)
		cfg.ListenClientHTTPURLs = []string{httpURL}
		s := startT(t, cfg)
		defer s.Stop()
		putRetrying(t, clientOf(t, cfg), "foo", "bar") // gRPC on the client URL
		if body := postRetrying(t, http.DefaultClient, httpURL+"/v3/kv/range", `{"key":"Zm9v"}`); !strings.Contains(body, `"value":"YmFy"`) {
			t.Errorf("the gateway on --listen-client-http-urls: %s", body)
		}
		hc := &http.Client{Timeout: 2 * time.Second}
		if resp, err := hc.Get(cfg.ListenClientURLs[0] + "/health"); err == nil {
			resp.Body.Close()
			t.Errorf("the client URL served HTTP (%s) beside --listen-client-http-urls", resp.Status)
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{strings.TrimPrefix(httpURL, "http://")},
			DialTimeout: time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := cli.Get(ctx, "foo"); err == nil {
			t.Error("--listen-client-http-urls served gRPC")
		}
	})
	t.Run("https", func(t *testing.T) {
		dir := t.TempDir()
		p := newPKI(t, dir, "ca")
		certFile, keyFile := p.issue("member")
		cfg := oneMember(t, filepath.Join(dir, "data"))
		https := "https://" + strings.TrimPrefix(cfg.ListenClientURLs[0], "http://")
		httpsOnly := "https://" + strings.TrimPrefix(freeURL(t), "http://")
		cfg.ListenClientURLs, cfg.AdvertiseClientURLs = []string{https}, []string{https}
		cfg.ListenClientHTTPURLs = []string{httpsOnly}
		cfg.CertFile, cfg.KeyFile = certFile, keyFile
		if errs := append(cfg.validateTLS(), cfg.validateClientHTTPURLs()...); len(errs) > 0 {
			t.Fatal(errs)
		}
		s := startT(t, cfg)
		defer s.Stop()
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(mustRead(t, p.caFile))
		tc := &tls.Config{RootCAs: pool}
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{https}, TLS: tc, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		putRetrying(t, cli, "foo", "bar")
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 5 * time.Second}
		if body := postRetrying(t, hc, httpsOnly+"/v3/kv/range", `{"key":"Zm9v"}`); !strings.Contains(body, `"value":"YmFy"`) {
			t.Errorf("the gateway on https:// --listen-client-http-urls: %s", body)
		}
		if code, body := post(t, hc, https+"/v3/kv/range", `{"key":"Zm9v"}`); code == http.StatusOK {
			t.Errorf("the https:// client URL served the gateway beside --listen-client-http-urls: %s", body)
		}
	})
}

// metadataKV records the metadata of the Range calls it gets.
type metadataKV struct {
	pb.UnimplementedKVServer
	got chan metadata.MD
}

func (k *metadataKV) Range(ctx context.Context, _ *pb.RangeRequest) (*pb.RangeResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	k.got <- md
	return &pb.RangeResponse{Header: &pb.ResponseHeader{}}, nil
}

// TestGatewayAuthorizationHeader: the gateway hands a request's
// Authorization header to gRPC as "authorization" metadata, as etcd's
// does (its auth reads the token there), and makes a call per request.
func TestGatewayAuthorizationHeader(t *testing.T) {
	l := bufconn.Listen(selfBufferBytes)
	gs := grpc.NewServer()
	kv := &metadataKV{got: make(chan metadata.MD, 1)}
	pb.RegisterKVServer(gs, kv)
	go gs.Serve(l)
	defer gs.Stop()
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "refused"}, []string{"code"})
	g, err := newGateway(l, 1<<20, refused, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	srv := httptest.NewServer(g.handler)
	defer srv.Close()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v3/kv/range", strings.NewReader(`{"key":"Zm9v"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "some-token.42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v3/kv/range: %s", resp.Status)
	}
	select {
	case md := <-kv.got:
		if got := md.Get("authorization"); len(got) != 1 || got[0] != "some-token.42" {
			t.Errorf("the call's authorization metadata is %q, want the header's", got)
		}
	default:
		t.Fatal("the gateway made no call")
	}
}

// TestGatewayWebsocketWatch: as etcd's, the gateway's streams also take
// websocket clients (tmc/grpc-websocket-proxy): a watch created over a
// websocket gets its created response, then a put made afterwards.
func TestGatewayWebsocketWatch(t *testing.T) {
	cfg := oneMember(t, t.TempDir())
	s := startT(t, cfg)
	defer s.Stop()
	putRetrying(t, clientOf(t, cfg), "before", "1")
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+strings.TrimPrefix(cfg.AdvertiseClientURLs[0], "http://")+"/v3/watch", nil)
	if err != nil {
		t.Fatalf("websocket /v3/watch: %v %v", resp, err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"create_request":{"key":"Zm9v"}}`)); err != nil {
		t.Fatal(err)
	}
	read := func(what string) string {
		t.Helper()
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("no %s: %v", what, err)
		}
		return string(msg)
	}
	if got := read("created response"); !strings.Contains(got, `"created":true`) {
		t.Errorf("created response: %s", got)
	}
	putRetrying(t, clientOf(t, cfg), "foo", "bar")
	if got := read("event"); !strings.Contains(got, `"key":"Zm9v"`) || !strings.Contains(got, `"value":"YmFy"`) {
		t.Errorf("event: %s", got)
	}
}

// TestGatewayStreamsEndAtStop: a watch open through the gateway does not
// hold the member's stop for the graceful wait: its stream is ended first,
// as the member's own client's are, and the HTTP client sees its body end.
func TestGatewayStreamsEndAtStop(t *testing.T) {
	cfg := oneMember(t, t.TempDir())
	s := startT(t, cfg)
	putRetrying(t, clientOf(t, cfg), "foo", "bar")
	resp, err := http.Post(cfg.AdvertiseClientURLs[0]+"/v3/watch", "application/json", strings.NewReader(`{"create_request":{"key":"Zm9v"}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line := make([]byte, 4096)
	if n, err := resp.Body.Read(line); err != nil || !strings.Contains(string(line[:n]), `"created":true`) {
		t.Fatalf("watch through the gateway: %q %v", line[:n], err)
	}
	start := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took >= gracefulStopWait {
		t.Errorf("Stop took %v with a gateway watch open: it waited out the graceful stop (%v)", took, gracefulStopWait)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Logf("the watch's body ended with %v", err)
	}
}

// TestGatewayRefusalLogBound: a client refused in a loop is counted every
// time but logged only refusalLogFirst times, then once a
// refusalLogInterval with the number left out.
func TestGatewayRefusalLogBound(t *testing.T) {
	l := bufconn.Listen(selfBufferBytes)
	gs := grpc.NewServer()
	go gs.Serve(l)
	defer gs.Stop()
	logged := &syncBuilder{}
	logger := slog.New(slog.NewTextHandler(logged, nil))
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "refused"}, []string{"code"})
	g, err := newGateway(l, 1<<20, refused, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	srv := httptest.NewServer(g.handler)
	defer srv.Close()
	const sent = 5 * refusalLogFirst
	start := time.Now()
	for range sent {
		if code, _ := post(t, http.DefaultClient, srv.URL+"/v3/kv/range", `{"key":`); code != http.StatusBadRequest {
			t.Fatalf("bad JSON answered %d", code)
		}
	}
	if n := testutil.ToFloat64(refused.WithLabelValues("InvalidArgument")); n != sent {
		t.Errorf("counted %v refusals, want %d", n, sent)
	}
	lines := strings.Count(logged.String(), "JSON gateway refused a request")
	if most := refusalLogFirst + 1 + int(time.Since(start)/refusalLogInterval); lines > most {
		t.Errorf("%d refusals made %d log lines, want at most %d", sent, lines, most)
	}
	if lines < refusalLogFirst {
		t.Errorf("%d refusals made %d log lines, want the first %d", sent, lines, refusalLogFirst)
	}
	time.Sleep(refusalLogInterval)
	long := strings.Repeat("!", 64<<10) // protobuf quotes the bad value whole
	post(t, http.DefaultClient, srv.URL+"/v3/kv/range", `{"key":"`+long+`"}`)
	last := logged.String()[strings.LastIndex(logged.String(), "time="):]
	if !strings.Contains(last, fmt.Sprintf("refusals-not-logged-since-the-last=%d", sent-lines)) {
		t.Errorf("the line after a pause does not count the %d left out:\n%.1000s", sent-lines, last)
	}
	if len(last) > 2*refusalLogMessageBytes || !strings.Contains(last, "bytes more)") {
		t.Errorf("a refusal quoting a 64 KiB value made a %d-byte line: %.1000s", len(last), last)
	}
}

// syncBuilder is a strings.Builder for a logger's goroutines and a test's.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestGatewayStreamRequestBound: a stream's body is bounded per request,
// not as a whole: requests each under the bound pass however long the
// body grows, and one request over it ends the body there, counted and
// logged, while the watchers made before it go on.
func TestGatewayStreamRequestBound(t *testing.T) {
	cfg := oneMember(t, t.TempDir())
	cfg.MaxRequestBytes = 1024
	s := startT(t, cfg)
	defer s.Stop()
	url := cfg.AdvertiseClientURLs[0]
	postRetrying(t, http.DefaultClient, url+"/v3/kv/put", `{"key":"Zm9v","value":"YmFy"}`)
	bound := gatewayBodyFactor * (1024 + grpcOverheadBytes)
	pad := strings.Repeat(" ", bound/3)
	var body strings.Builder
	const watchers = 5 // together past the bound: 5/3 of it in padding alone
	for i := range watchers {
		fmt.Fprintf(&body, `{"create_request":{"key":"Zm9v","watch_id":%d}}%s`, i+1, pad)
	}
	// Then one request over the bound on its own, which must not create
	// its watcher.
	fmt.Fprintf(&body, `{"create_request":{"key":"Zm9v",%s"watch_id":99}}`, strings.Repeat(" ", bound+1))
	hc := &http.Client{Timeout: 3 * time.Second}
	resp, err := hc.Post(url+"/v3/watch", "application/json", strings.NewReader(body.String()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body) // the stream stays open until the timeout
	created := strings.Count(string(got), `"created":true`)
	if created != watchers || strings.Contains(string(got), `"watch_id":"99"`) {
		t.Errorf("%d watchers created, want %d (and not 99):\n%.2000s", created, watchers, got)
	}
	resp2, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	metrics, _ := io.ReadAll(resp2.Body)
	if !strings.Contains(string(metrics), `plumb_gateway_refused_requests_total{code="InvalidArgument"} 1`) {
		t.Error("the request over the bound was not counted in /metrics")
	}
}

// TestAutoTLSCoversHTTPURLs: as etcd's, --auto-tls's certificate names
// the hosts of --listen-client-http-urls too, so a client that checks it
// reaches the gateway there.
func TestAutoTLSCoversHTTPURLs(t *testing.T) {
	dir := t.TempDir()
	cfg := oneMember(t, filepath.Join(dir, "data"))
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 here: %v", err)
	}
	httpsOnly := "https://" + l.Addr().String()
	l.Close()
	cfg.ListenClientHTTPURLs = []string{httpsOnly}
	cfg.AutoTLS, cfg.SelfSignedCertValidity = true, 1
	if errs := append(cfg.validateTLS(), cfg.validateClientHTTPURLs()...); len(errs) > 0 {
		t.Fatal(errs)
	}
	s := startT(t, cfg)
	defer s.Stop()
	putRetrying(t, clientOf(t, cfg), "foo", "bar")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(mustRead(t, filepath.Join(cfg.DataDir, "fixtures", "client", "cert.pem")))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	if body := postRetrying(t, hc, httpsOnly+"/v3/kv/range", `{"key":"Zm9v"}`); !strings.Contains(body, `"value":"YmFy"`) {
		t.Errorf("the gateway on %s: %s", httpsOnly, body)
	}
}

// TestGatewayLockElection: etcd's Lock and Election gateway paths (and
// their /v3beta/ forms) reach the services: a lock taken through the
// gateway is the key etcd's recipe writes, and released through it; a
// campaign makes its value the leader's. (e2e's TestGatewayMatchesEtcd
// compares every answer with etcd's.)
func TestGatewayLockElection(t *testing.T) {
	cfg := oneMember(t, t.TempDir())
	s := startT(t, cfg)
	defer s.Stop()
	url := cfg.AdvertiseClientURLs[0]
	postRetrying(t, http.DefaultClient, url+"/v3/lease/grant", `{"TTL":60,"ID":"4096"}`)
	code, body := post(t, http.DefaultClient, url+"/v3/lock/lock", `{"name":"Zm9v","lease":"4096"}`)
	key := base64.StdEncoding.EncodeToString([]byte("foo/1000"))
	if code != http.StatusOK || !strings.Contains(body, `"key":"`+key+`"`) {
		t.Fatalf("lock: %d %s, want key %s", code, body, key)
	}
	if code, body := post(t, http.DefaultClient, url+"/v3/kv/range", `{"key":"`+key+`"}`); code != http.StatusOK || !strings.Contains(body, `"lease":"4096"`) {
		t.Errorf("the lock's key: %d %s", code, body)
	}
	if code, body := post(t, http.DefaultClient, url+"/v3beta/lock/unlock", `{"key":"`+key+`"}`); code != http.StatusOK {
		t.Errorf("unlock: %d %s", code, body)
	}
	if code, body := post(t, http.DefaultClient, url+"/v3/kv/range", `{"key":"`+key+`"}`); code != http.StatusOK || strings.Contains(body, `"kvs"`) {
		t.Errorf("the lock's key after unlock: %d %s", code, body)
	}
	if code, body := post(t, http.DefaultClient, url+"/v3/election/campaign", `{"name":"ZQ==","lease":"4096","value":"djE="}`); code != http.StatusOK {
		t.Fatalf("campaign: %d %s", code, body)
	}
	if code, body := post(t, http.DefaultClient, url+"/v3/election/leader", `{"name":"ZQ=="}`); code != http.StatusOK || !strings.Contains(body, `"value":"djE="`) {
		t.Errorf("leader: %d %s", code, body)
	}
}
