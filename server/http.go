package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/pprof"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/node"
)

// healthTimeout bounds the read /health makes through raft.
const healthTimeout = time.Second

// health is etcd's /health body.
type health struct {
	Health string `json:"health"`
	Reason string `json:"reason"`
}

// newHTTPHandler serves the client port's HTTP side, as etcd does: /health
// (and /readyz, the same check), /livez, /version, /metrics, the JSON
// gateway under /v3/ (unless --enable-grpc-gateway=false), and with
// --enable-pprof Go's profiles under /debug/pprof/; all behind etcd's
// default access control (accessControl).
func (s *Server) newHTTPHandler() http.Handler {
	mux := http.NewServeMux()
	if s.gw != nil {
		mux.Handle("/v3/", s.gw.handler)
	}
	mux.HandleFunc("/health", s.serveHealth)
	mux.HandleFunc("/readyz", s.serveHealth)
	mux.HandleFunc("/livez", s.serveLive)
	mux.HandleFunc("/version", s.serveVersion)
	mux.Handle("/metrics", s.metrics.handler())
	if s.cfg.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return accessControl(mux)
}

// newMetricsHandler serves a --listen-metrics-urls listener: /metrics and
// /health (with /readyz and /livez), as etcd's metrics listeners do.
func (s *Server) newMetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", s.metrics.handler())
	mux.HandleFunc("/health", s.serveHealth)
	mux.HandleFunc("/readyz", s.serveHealth)
	mux.HandleFunc("/livez", s.serveLive)
	return mux
}

// checkHealth is etcd's health check: no alarm raised, a leader known, and
// a read through raft (linearizable, or serializable when asked) answered
// within healthTimeout.
func (s *Server) checkHealth(ctx context.Context, serializable bool) health {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	var alarms []*pb.AlarmMember
	var lead uint64
	if err := s.loop.exec(ctx, func(n *node.Node) { alarms, lead = n.Alarms(), n.Lead() }); err != nil {
		return health{Health: "false", Reason: "STOPPED"}
	}
	if len(alarms) > 0 {
		return health{Health: "false", Reason: "ALARM " + alarms[0].Alarm.String()}
	}
	if lead == 0 {
		return health{Health: "false", Reason: "RAFT NO LEADER"}
	}
	_, err := s.loop.do(ctx, node.Request{Range: &pb.RangeRequest{Key: []byte("health"), Serializable: serializable}})
	// With authentication enabled the check has no user: a refusal still
	// proves the member answers, as etcd's health check takes it.
	if err != nil && !errors.Is(err, node.ErrUserEmpty) && !errors.Is(err, node.ErrPermissionDenied) {
		return health{Health: "false", Reason: "QGET ERROR:" + err.Error()}
	}
	return health{Health: "true"}
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	h := s.checkHealth(r.Context(), r.URL.Query().Get("serializable") == "true")
	code := http.StatusOK
	if h.Health != "true" {
		code = http.StatusServiceUnavailable
		s.metrics.healthFailures.Inc()
	} else {
		s.metrics.healthSuccess.Inc()
	}
	writeJSON(w, code, h)
}

func (s *Server) serveLive(w http.ResponseWriter, _ *http.Request) {
	select {
	case <-s.loop.done:
		writeJSON(w, http.StatusServiceUnavailable, health{Health: "false", Reason: "STOPPED"})
	default:
		writeJSON(w, http.StatusOK, health{Health: "true"})
	}
}

func (s *Server) serveVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"etcdserver": APIVersion, "etcdcluster": APIVersion, "plumb": s.opts.Version})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do about it
}
