package e2e_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The JSON gateway is compared with etcd 3.7.3's with real curl: the same
// requests, in the same order, to a fresh etcd and a fresh plumb member,
// answer with the same HTTP status and the same JSON, field by field, once
// what legitimately differs between two clusters is taken out (normalize).
// Bodies are compared parsed: protojson varies its whitespace on purpose
// from one binary to the next.

// gwTarget is one server's client URL and the curl flags to reach it.
type gwTarget struct {
	url   string
	flags []string // --cacert for https
}

// gwAnswer is an HTTP status and a body, parsed when it is JSON.
type gwAnswer struct {
	code int
	raw  string
	json any
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// curlBin is curl's path; the tests that use it skip without it.
func curlBin(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		missing(t, "no curl on this machine")
	}
	return path
}

// call sends body to path with method (POST when "") through curl.
func (g gwTarget) call(t *testing.T, method, path, body string) gwAnswer {
	t.Helper()
	a, err := g.try(t, method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// try is call, returning curl's failure.
func (g gwTarget) try(t *testing.T, method, path, body string) (gwAnswer, error) {
	t.Helper()
	if method == "" {
		method = "POST"
	}
	args := append([]string{"-sS", "--max-time", "10", "-X", method, "-w", "\n%{http_code}"}, g.flags...)
	if body != "" {
		args = append(args, "--data-binary", "@-")
	}
	cmd := exec.Command(curlBin(t), append(args, g.url+path)...)
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.Output()
	if err != nil {
		return gwAnswer{}, fmt.Errorf("curl %s %s%s: %v\n%s", method, g.url, path, err, out)
	}
	text := strings.TrimRight(string(out), "\n")
	i := strings.LastIndexByte(text, '\n')
	code, err := strconv.Atoi(text[i+1:])
	if err != nil {
		return gwAnswer{}, fmt.Errorf("curl %s %s%s: no status in %q", method, g.url, path, text)
	}
	a := gwAnswer{code: code, raw: text[:max(i, 0)]}
	if json.Unmarshal([]byte(a.raw), &a.json) != nil {
		a.json = nil
	}
	return a, nil
}

// gwIgnored are the fields that differ between any two clusters, or
// between plumb and etcd for reasons outside the gateway, by the object
// that holds them (its key in the parent, "" for the top).
var gwIgnored = map[string][]string{
	"header": {"cluster_id", "member_id", "raft_term"},
	// Member IDs, names and URLs are each cluster's own.
	"members": {"ID", "name", "peerURLs", "clientURLs"},
	// Status: sizes, indexes and identities are each member's own;
	// plumb reports its own version and no storage version or
	// downgrade information (no downgrades).
	"": {"leader", "raftIndex", "raftTerm", "raftAppliedIndex", "dbSize", "dbSizeInUse", "version",
		"storageVersion", "downgradeInfo"},
}

// normalize drops gwIgnored's fields from a parsed JSON value, and makes
// protobuf-go's error prefix, whose space is a no-break space in some
// binaries on purpose ("proto:\u00a0"), one form.
func normalize(v any, key string) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			out[k] = normalize(x, k)
		}
		for _, k := range gwIgnored[key] {
			delete(out, k)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = normalize(x, key)
		}
		return out
	case string:
		return strings.ReplaceAll(v, "\u00a0", " ")
	}
	return v
}

func sameAnswer(t *testing.T, what string, etcd, plumb gwAnswer) {
	t.Helper()
	if etcd.code != plumb.code {
		t.Errorf("%s: plumb answered %d, etcd %d\nplumb: %s\netcd:  %s", what, plumb.code, etcd.code, plumb.raw, etcd.raw)
		return
	}
	if etcd.json == nil || plumb.json == nil {
		if strings.TrimSpace(etcd.raw) != strings.TrimSpace(plumb.raw) {
			t.Errorf("%s (%d):\nplumb: %q\netcd:  %q", what, plumb.code, plumb.raw, etcd.raw)
		}
		return
	}
	if !reflect.DeepEqual(normalize(etcd.json, ""), normalize(plumb.json, "")) {
		t.Errorf("%s (%d): the bodies differ\nplumb: %s\netcd:  %s", what, plumb.code, plumb.raw, etcd.raw)
	}
}

// gwStep is one request of the script. differs names the fields
// (dotted paths from the top) where plumb's server, not its gateway,
// answers otherwise than etcd today; the gRPC API gives the same
// answers, so they are left out here and said why at the step.
type gwStep struct {
	what, method, path, body string
	differs                  []string
}

// gwScript covers every path the issue names, in an order whose revisions
// are the same on both servers (both start empty at revision 1), then
// the malformed requests.
func gwScript(maxRequestBytes int) []gwStep {
	foo, bar, foo2, fop := b64("foo"), b64("bar"), b64("foo2"), b64("fop")
	lease := "7587880000000000001"
	over := strings.Repeat("x", maxRequestBytes+1000)       // past --max-request-bytes, within gRPC's allowance
	farOver := strings.Repeat("x", maxRequestBytes+(1<<20)) // past gRPC's allowance too
	return []gwStep{
		{"put foo", "", "/v3/kv/put", `{"key":"` + foo + `","value":"` + bar + `"}`, nil},
		{"put foo2", "", "/v3/kv/put", `{"key":"` + foo2 + `","value":"` + b64("2") + `"}`, nil},
		{"put fop", "", "/v3/kv/put", `{"key":"` + fop + `","value":"` + b64("p") + `"}`, nil},
		{"put with prev_kv", "", "/v3/kv/put", `{"key":"` + fop + `","value":"` + b64("q") + `","prev_kv":true}`, nil},
		{"range foo", "", "/v3/kv/range", `{"key":"` + foo + `"}`, nil},
		{"range missing", "", "/v3/kv/range", `{"key":"` + b64("nope") + `"}`, nil},
		{"range [foo, fop)", "", "/v3/kv/range", `{"key":"` + foo + `","range_end":"` + fop + `"}`, nil},
		{"range prefix foo", "", "/v3/kv/range", `{"key":"` + foo + `","range_end":"` + b64("fop") + `","keys_only":true}`, nil},
		{"range all, limit 2, sorted by key descending", "", "/v3/kv/range",
			`{"key":"AA==","range_end":"AA==","limit":2,"sort_order":"DESCEND","sort_target":"KEY"}`, nil},
		{"range count_only", "", "/v3/kv/range", `{"key":"AA==","range_end":"AA==","count_only":true}`, nil},
		{"range at an old revision", "", "/v3/kv/range", `{"key":"` + fop + `","revision":4}`, nil},
		{"deleterange foo2 with prev_kv", "", "/v3/kv/deleterange", `{"key":"` + foo2 + `","prev_kv":true}`, nil},
		{"deleterange missing", "", "/v3/kv/deleterange", `{"key":"` + b64("nope") + `"}`, nil},
		{"txn success", "", "/v3/kv/txn", `{"compare":[{"target":"VALUE","key":"` + foo + `","result":"EQUAL","value":"` + bar + `"}],` +
			`"success":[{"request_put":{"key":"` + foo + `","value":"` + b64("baz") + `"}},{"request_range":{"key":"` + foo + `"}}],` +
			`"failure":[{"request_range":{"key":"` + fop + `"}}]}`, nil},
		{"txn failure", "", "/v3/kv/txn", `{"compare":[{"target":"VERSION","key":"` + foo + `","result":"GREATER","version":"5"}],` +
			`"success":[{"request_delete_range":{"key":"` + foo + `"}}],"failure":[{"request_range":{"key":"` + fop + `"}}]}`, nil},
		{"txn create_revision compare", "", "/v3/kv/txn", `{"compare":[{"target":"CREATE","key":"` + b64("nope") + `","result":"EQUAL","create_revision":"0"}],` +
			`"success":[{"request_put":{"key":"` + b64("nope") + `","value":"` + b64("now") + `"}}]}`, nil},
		{"lease grant", "", "/v3/lease/grant", `{"TTL":60,"ID":"` + lease + `"}`, nil},
		{"put with lease", "", "/v3/kv/put", `{"key":"` + b64("leased") + `","value":"` + bar + `","lease":"` + lease + `"}`, nil},
		{"lease keepalive", "", "/v3/lease/keepalive", `{"ID":"` + lease + `"}`, nil},
		// The seconds left depend on the moment each server was asked.
		{"lease timetolive with keys", "", "/v3/lease/timetolive", `{"ID":"` + lease + `","keys":true}`, []string{"TTL"}},
		{"lease leases", "", "/v3/lease/leases", `{}`, nil},
		{"lease revoke", "", "/v3/lease/revoke", `{"ID":"` + lease + `"}`, nil},
		{"lease timetolive revoked", "", "/v3/lease/timetolive", `{"ID":"` + lease + `"}`, nil},
		{"lease revoke unknown", "", "/v3/lease/revoke", `{"ID":"` + lease + `"}`, nil},
		{"leased key gone", "", "/v3/kv/range", `{"key":"` + b64("leased") + `"}`, nil},
		// etcd's Cluster service leaves the header's revision out, and
		// so does plumb's.
		{"member list", "", "/v3/cluster/member/list", `{}`, nil},
		{"maintenance status", "", "/v3/maintenance/status", `{}`, nil},
		// A new etcd's auth store is at revision 1, plumb's at 0 (the
		// auth engineer's part of the issue).
		{"auth status", "", "/v3/auth/status", `{}`, []string{"authRevision"}},
		{"v3beta path", "", "/v3beta/kv/range", `{"key":"` + foo + `"}`, nil},
		{"empty body", "", "/v3/kv/range", ``, nil},

		// Malformed requests: etcd's statuses and bodies.
		{"bad JSON", "", "/v3/kv/range", `{"key":"` + foo, nil},
		{"not JSON", "", "/v3/kv/put", `key=foo&value=bar`, nil},
		{"bad base64", "", "/v3/kv/put", `{"key":"!!not base64!!","value":"` + bar + `"}`, nil},
		{"unknown field (ignored, as etcd does)", "", "/v3/kv/range", `{"key":"` + foo + `","bogus":1}`, nil},
		{"wrong type", "", "/v3/kv/range", `{"key":"` + foo + `","limit":"many"}`, nil},
		{"unknown enum", "", "/v3/kv/txn", `{"compare":[{"target":"SIZE","key":"` + foo + `","result":"EQUAL"}]}`, nil},
		{"no key", "", "/v3/kv/put", `{"value":"` + bar + `"}`, nil},
		{"wrong method", "GET", "/v3/kv/range", ``, nil},
		{"wrong method PUT", "PUT", "/v3/kv/put", `{"key":"` + foo + `"}`, nil},
		{"unknown /v3 path", "", "/v3/kv/nope", `{}`, nil},
		{"unknown service path", "", "/v3/nope", `{}`, nil},
		{"value past --max-request-bytes", "", "/v3/kv/put", `{"key":"` + foo + `","value":"` + b64(over) + `"}`, nil},
		{"value past gRPC's limit", "", "/v3/kv/put", `{"key":"` + foo + `","value":"` + b64(farOver) + `"}`, nil},
		{"compaction past the current revision", "", "/v3/kv/compaction", `{"revision":"1000"}`, nil},
		{"lease grant TTL too large", "", "/v3/lease/grant", `{"TTL":"9000000001","ID":"5"}`, nil},
		{"after the refusals, nothing lost", "", "/v3/kv/range", `{"key":"AA==","range_end":"AA=="}`, nil},
	}
}

// etcdDefaultMaxRequestBytes is --max-request-bytes' default.
const etcdDefaultMaxRequestBytes = 1572864

// TestGatewayMatchesEtcd: every step of gwScript, sent with curl to etcd
// 3.7.3 and to a plumb member (and the same script to a member serving
// https:// through curl --cacert), gets etcd's status and body; a watch
// opened through the gateway streams a put made afterwards as etcd's
// does; the refusals are counted in /metrics.
func TestGatewayMatchesEtcd(t *testing.T) {
	curlBin(t)
	etcd := gwTarget{url: "http://" + refEtcdEndpoint(t)}
	plain := gwTarget{url: newCluster(t, 1).members[0].clientURL()}

	// A member serving https:// only.
	c := &cluster{t: t, token: "e2e-gateway-tls"}
	c.base = t.TempDir()
	m := c.newMember("n1", "127.0.0.1")
	c.members = append(c.members, m)
	ca := newTestCA(t, c.base, "ca")
	cert, key := ca.issue("member", []string{m.ip}, time.Now().Add(24*time.Hour))
	https := "https://" + m.endpoint()
	args := c.args(m)
	for i, a := range args {
		if a == m.clientURL() {
			args[i] = https
		}
	}
	c.run(m, append(args, "--cert-file", cert, "--key-file", key), nil)
	t.Cleanup(c.stopAll)
	secure := gwTarget{url: https, flags: []string{"--cacert", ca.file}}
	waitGateway(t, secure)
	waitGateway(t, plain)

	for _, step := range gwScript(etcdDefaultMaxRequestBytes) {
		want := etcd.call(t, step.method, step.path, step.body).without(step.differs)
		t.Logf("%s: etcd answered %d %.200s", step.what, want.code, want.raw)
		sameAnswer(t, step.what, want, plain.call(t, step.method, step.path, step.body).without(step.differs))
		sameAnswer(t, step.what+" (https)", want, secure.call(t, step.method, step.path, step.body).without(step.differs))
	}
	for name, target := range map[string]gwTarget{"http": plain, "https": secure} {
		sameWatch(t, name, etcd, target)
	}
	sameConcurrency(t, "http", 7587880000000000101, etcd, plain)
	sameConcurrency(t, "https", 7587880000000000102, etcd, secure)
	sameCORS(t, etcd.url, plain.url)

	metrics, code := httpGet(t, plain.url+"/metrics")
	for _, want := range []string{`plumb_gateway_refused_requests_total{code="InvalidArgument"}`,
		`plumb_gateway_refused_requests_total{code="NotFound"}`,
		`plumb_gateway_refused_requests_total{code="ResourceExhausted"}`} {
		if code != 200 || !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !logContains(t, c.members[0], "JSON gateway refused a request") {
		t.Error("the https member did not log the gateway's refusals")
	}
}

// sameCORS compares the headers etcd's access control adds (its default
// --cors is "*") to a preflight OPTIONS and to a request.
func sameCORS(t *testing.T, etcd, plumb string) {
	t.Helper()
	for _, method := range []string{http.MethodOptions, http.MethodPost} {
		var got [2]string
		for i, url := range []string{etcd, plumb} {
			req, err := http.NewRequest(method, url+"/v3/kv/range", strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Origin", "http://example.com")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got[i] = fmt.Sprintf("%d %q %q %q", resp.StatusCode, resp.Header.Values("Access-Control-Allow-Origin"),
				resp.Header.Values("Access-Control-Allow-Methods"), resp.Header.Values("Access-Control-Allow-Headers"))
		}
		t.Logf("%s: etcd answered %s", method, got[0])
		if got[0] != got[1] {
			t.Errorf("%s /v3/kv/range with an Origin: plumb answered %s, etcd %s", method, got[1], got[0])
		}
	}
}

// waitGateway waits until target's gateway answers a read.
func waitGateway(t *testing.T, target gwTarget) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		a, err := target.try(t, "", "/v3/kv/range", `{"key":"`+b64("ready")+`"}`)
		if err == nil && a.code == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the gateway did not answer within %v: %v %d %s", target.url, startTimeout, err, a.code, a.raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sameWatch opens a watch through each gateway with curl, puts a key
// afterwards and compares the streamed responses: the created one, then
// the event.
func sameWatch(t *testing.T, name string, etcd, plumb gwTarget) {
	t.Helper()
	key := b64("watched-" + name)
	var got [2][]gwAnswer
	for i, target := range []gwTarget{etcd, plumb} {
		cmd := exec.Command(curlBin(t), append([]string{"-sSN", "--max-time", "10", "-X", "POST",
			"-d", `{"create_request":{"key":"` + key + `","prev_kv":true}}`}, target.flags...)...)
		cmd.Args = append(cmd.Args, target.url+"/v3/watch")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
			io.Copy(io.Discard, out)
		}()
		next := func(what string) gwAnswer {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("%s watch on %s: the stream ended before %s", name, target.url, what)
				}
				a := gwAnswer{code: 200, raw: line}
				if err := json.Unmarshal([]byte(line), &a.json); err != nil {
					t.Fatalf("%s watch on %s: %s is not JSON: %q", name, target.url, what, line)
				}
				return a
			case <-time.After(5 * time.Second):
				t.Fatalf("%s watch on %s: no %s within 5s", name, target.url, what)
			}
			return gwAnswer{}
		}
		got[i] = append(got[i], next("created response"))
		target.call(t, "", "/v3/kv/put", `{"key":"`+key+`","value":"`+b64("v1")+`"}`)
		target.call(t, "", "/v3/kv/put", `{"key":"`+key+`","value":"`+b64("v2")+`"}`)
		got[i] = append(got[i], next("first event"), next("second event"))
		cmd.Process.Kill()
		cmd.Wait()
	}
	for j := range got[0] {
		// Each server's revisions are its own by now (the https member
		// ran the script too): compare the events without them.
		e, p := dropRevisions(got[0][j]), dropRevisions(got[1][j])
		sameAnswer(t, fmt.Sprintf("watch over %s, response %d", name, j), e, p)
	}
}

// without removes the fields at the dotted paths from a JSON answer.
func (a gwAnswer) without(paths []string) gwAnswer {
	for _, p := range paths {
		obj, ok := a.json.(map[string]any)
		parts := strings.Split(p, ".")
		for _, k := range parts[:len(parts)-1] {
			if obj, ok = obj[k].(map[string]any); !ok {
				break
			}
		}
		if ok {
			delete(obj, parts[len(parts)-1])
		}
	}
	return a
}

// dropRevisions removes every revision from a watch response.
func dropRevisions(a gwAnswer) gwAnswer {
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range []string{"revision", "create_revision", "mod_revision"} {
				delete(v, k)
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(a.json)
	return a
}

// TestGatewaySwitchesMatchEtcd: etcd 3.7.3 and plumb with the same
// switches answer the same: --enable-grpc-gateway=false leaves /v3/
// unserved and /health served; with --listen-client-http-urls the HTTP
// URL serves the gateway and /health, and the client URL answers no HTTP.
func TestGatewaySwitchesMatchEtcd(t *testing.T) {
	curlBin(t)
	ip := "127.0.0.1"
	freeURL := func() string { return fmt.Sprintf("http://%s:%d", ip, freePort(t, ip)) }
	t.Run("gateway off", func(t *testing.T) {
		etcd := gwTarget{url: "http://" + refEtcdWith(t, freeURL(), "--enable-grpc-gateway=false")}
		plumb := gwTarget{url: newCluster(t, 1, "--enable-grpc-gateway=false").members[0].clientURL()}
		for _, step := range []gwStep{
			{"range with the gateway off", "", "/v3/kv/range", `{"key":"` + b64("foo") + `"}`, nil},
			{"v3beta with the gateway off", "", "/v3beta/kv/range", `{"key":"` + b64("foo") + `"}`, nil},
			{"health with the gateway off", "GET", "/health", ``, nil},
		} {
			want := etcd.call(t, step.method, step.path, step.body)
			t.Logf("%s: etcd answered %d %.200s", step.what, want.code, want.raw)
			sameAnswer(t, step.what, want, plumb.call(t, step.method, step.path, step.body))
		}
	})
	t.Run("HTTP on its own URL", func(t *testing.T) {
		etcdHTTP, plumbHTTP := freeURL(), freeURL()
		etcdGRPC := gwTarget{url: "http://" + refEtcdWith(t, freeURL(), "--listen-client-http-urls", etcdHTTP)}
		plumbGRPC := gwTarget{url: newCluster(t, 1, "--listen-client-http-urls", plumbHTTP).members[0].clientURL()}
		etcd, plumb := gwTarget{url: etcdHTTP}, gwTarget{url: plumbHTTP}
		waitGateway(t, plumb)
		for _, step := range []gwStep{
			{"put on the HTTP URL", "", "/v3/kv/put", `{"key":"` + b64("foo") + `","value":"` + b64("bar") + `"}`, nil},
			{"range on the HTTP URL", "", "/v3/kv/range", `{"key":"` + b64("foo") + `"}`, nil},
			{"health on the HTTP URL", "GET", "/health", ``, nil},
		} {
			want := etcd.call(t, step.method, step.path, step.body)
			t.Logf("%s: etcd answered %d %.200s", step.what, want.code, want.raw)
			sameAnswer(t, step.what, want, plumb.call(t, step.method, step.path, step.body))
		}
		for name, target := range map[string]gwTarget{"etcd": etcdGRPC, "plumb": plumbGRPC} {
			if a, err := target.try(t, "", "/v3/kv/range", `{"key":"`+b64("foo")+`"}`); err == nil {
				t.Errorf("%s's client URL answered HTTP beside --listen-client-http-urls: %d %s", name, a.code, a.raw)
			} else {
				t.Logf("%s's client URL: %v", name, err)
			}
		}
	})
}

// TestGatewayOnFollower: through a follower's gateway, a lease is
// granted, kept alive and asked its time to live (the last two forwarded
// to the leader, as over gRPC), and a put with it is read on another
// member.
func TestGatewayOnFollower(t *testing.T) {
	curlBin(t)
	c := newCluster(t, 3)
	f := c.follower()
	var other *member
	for _, m := range c.members {
		if m != f {
			other = m
		}
	}
	fol, oth := gwTarget{url: f.clientURL()}, gwTarget{url: other.clientURL()}
	waitGateway(t, fol)
	waitGateway(t, oth)
	ok := func(target gwTarget, path, body string) map[string]any {
		t.Helper()
		a := target.call(t, "", path, body)
		m, isMap := a.json.(map[string]any)
		if a.code != http.StatusOK || !isMap {
			t.Fatalf("%s%s: %d %s", target.url, path, a.code, a.raw)
		}
		return m
	}
	const lease = "4242"
	if got := ok(fol, "/v3/lease/grant", `{"TTL":60,"ID":`+lease+`}`); got["ID"] != lease || got["TTL"] != "60" {
		t.Errorf("grant on the follower: %v", got)
	}
	ka := ok(fol, "/v3/lease/keepalive", `{"ID":`+lease+`}`)
	if res, _ := ka["result"].(map[string]any); res == nil || res["ID"] != lease || res["TTL"] != "60" {
		t.Errorf("keep-alive on the follower: %v", ka)
	}
	if got := ok(fol, "/v3/lease/timetolive", `{"ID":`+lease+`}`); got["grantedTTL"] != "60" {
		t.Errorf("time-to-live on the follower: %v", got)
	}
	ok(fol, "/v3/kv/put", `{"key":"`+b64("leased")+`","value":"`+b64("v")+`","lease":`+lease+`}`)
	got := ok(oth, "/v3/kv/range", `{"key":"`+b64("leased")+`"}`)
	kvs, _ := got["kvs"].([]any)
	if len(kvs) != 1 || kvs[0].(map[string]any)["lease"] != lease {
		t.Errorf("the put with the lease, read on another member: %v", got)
	}
}

// sameConcurrency runs etcd's Lock and Election gateway paths on etcd
// and on plumb, under names of their own for each target (name): a lock
// taken and released under a lease given by ID, an election campaigned,
// read, proclaimed, observed and resigned, and the malformed and refused
// cases; every answer is compared without revisions (each server's are
// its own by now).
func sameConcurrency(t *testing.T, name string, lease int64, etcd, plumb gwTarget) {
	t.Helper()
	var got [2][]gwAnswer
	for i, target := range []gwTarget{etcd, plumb} {
		do := func(path, body string) gwAnswer {
			a := target.call(t, "", path, body)
			got[i] = append(got[i], a)
			return a
		}
		lockName, election := b64("lock-"+name), b64("election-"+name)
		do("/v3/lease/grant", fmt.Sprintf(`{"TTL":60,"ID":"%d"}`, lease))
		do("/v3/lock/lock", fmt.Sprintf(`{"name":"%s","lease":"%d"}`, lockName, lease))
		do("/v3/lock/unlock", fmt.Sprintf(`{"key":"%s"}`, b64(fmt.Sprintf("lock-%s/%x", name, lease))))
		camp := do("/v3/election/campaign", fmt.Sprintf(`{"name":"%s","lease":"%d","value":"%s"}`, election, lease, b64("v1")))
		leader, err := json.Marshal(camp.json.(map[string]any)["leader"])
		if err != nil || camp.code != 200 {
			t.Fatalf("campaign on %s: %d %s", target.url, camp.code, camp.raw)
		}
		do("/v3/election/leader", `{"name":"`+election+`"}`)
		do("/v3/election/proclaim", `{"leader":`+string(leader)+`,"value":"`+b64("v2")+`"}`)
		got[i] = append(got[i], firstLine(t, target, "/v3/election/observe", `{"name":"`+election+`"}`))
		do("/v3/election/resign", `{"leader":`+string(leader)+`}`)
		do("/v3/election/leader", `{"name":"`+election+`"}`)                                                 // no leader now
		do("/v3/election/proclaim", `{"leader":`+string(leader)+`,"value":"`+b64("v3")+`"}`)                 // not the leader any more
		do("/v3/election/campaign", `{"name":"`+election+`","lease":"`+fmt.Sprint(lease+1000)+`","value":"`) // malformed JSON
		do("/v3/election/campaign", `{"name":"`+election+`","lease":"`+fmt.Sprint(lease+1000)+`"}`)          // no such lease
		do("/v3/lock/lock", `{"name":"!!not base64!!"}`)
		do("/v3/lease/revoke", fmt.Sprintf(`{"ID":"%d"}`, lease))
	}
	if len(got[0]) != len(got[1]) {
		t.Fatalf("%s: %d answers from etcd, %d from plumb", name, len(got[0]), len(got[1]))
	}
	for j := range got[0] {
		t.Logf("lock and election over %s, answer %d: etcd answered %d %.200s", name, j, got[0][j].code, got[0][j].raw)
		sameAnswer(t, fmt.Sprintf("lock and election over %s, answer %d", name, j), dropRevisions(got[0][j]), dropRevisions(got[1][j]))
	}
}

// firstLine posts body to a streaming path and returns the stream's first
// line (a server stream never ends by itself).
func firstLine(t *testing.T, target gwTarget, path, body string) gwAnswer {
	t.Helper()
	cmd := exec.Command(curlBin(t), append([]string{"-sSN", "--max-time", "10", "-X", "POST", "-d", body}, target.flags...)...)
	cmd.Args = append(cmd.Args, target.url+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		io.Copy(io.Discard, out)
	}()
	select {
	case l, ok := <-line:
		if !ok {
			t.Fatalf("%s%s: the stream ended without a line", target.url, path)
		}
		a := gwAnswer{code: 200, raw: l}
		if err := json.Unmarshal([]byte(l), &a.json); err != nil {
			t.Fatalf("%s%s: not JSON: %q", target.url, path, l)
		}
		return a
	case <-time.After(5 * time.Second):
		t.Fatalf("%s%s: no line within 5s", target.url, path)
	}
	return gwAnswer{}
}
