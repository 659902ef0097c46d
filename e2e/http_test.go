package e2e_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func httpGet(t *testing.T, url string) (string, int) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), resp.StatusCode
}

// TestHTTP: the client port also serves etcd's /health and /version, and
// Prometheus metrics, beside gRPC.
func TestHTTP(t *testing.T) {
	c := newCluster(t, 3)
	m := c.members[1]
	var body string
	var code int
	for range 50 { // the first linearizable read waits for the leader's first commit
		if body, code = httpGet(t, m.clientURL()+"/health"); code == 200 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var h struct{ Health, Reason string }
	if err := json.Unmarshal([]byte(body), &h); code != 200 || err != nil || h.Health != "true" {
		t.Errorf("/health: %d %s", code, body)
	}
	body, code = httpGet(t, m.clientURL()+"/version")
	var v map[string]string
	if err := json.Unmarshal([]byte(body), &v); code != 200 || err != nil || v["etcdserver"] == "" || v["etcdcluster"] == "" {
		t.Errorf("/version: %d %s", code, body)
	}
	body, code = httpGet(t, m.clientURL()+"/metrics")
	for _, metric := range []string{"etcd_server_has_leader 1", "etcd_server_leader_changes_seen_total", "etcd_mvcc_db_total_size_in_bytes", "go_goroutines"} {
		if code != 200 || !strings.Contains(body, metric) {
			t.Errorf("/metrics lacks %q (status %d)", metric, code)
		}
	}
}
