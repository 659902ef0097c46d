package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// waitLog waits, as tooling tails a log, until member m's log has a line
// containing s, and returns the line and its number.
func waitLog(t *testing.T, m *member, s string, timeout time.Duration) (string, int) {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(m.logPath)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, s) {
				return line, i
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s logged no %q within %v", m.name, s, timeout)
		}
	}
}

// TestMilestoneLogs: the lines tooling waits for in etcd's logs, with
// etcd's words and fields. Three members start; each is waited for as a
// script waits for etcd, on "ready to serve client requests", and a write
// through it works at once. Before it, the member logged that it
// published itself through raft and raft's "elected leader"; after it,
// that it serves client traffic (insecurely, on its address). The leader
// is then killed: the others log raft's "lost leader" (or "changed
// leader from") naming it, then a new leader.
func TestMilestoneLogs(t *testing.T) {
	c := &cluster{t: t, token: "e2e-logs", base: t.TempDir()}
	for i := range 3 {
		c.members = append(c.members, c.newMember(fmt.Sprintf("n%d", i+1), fmt.Sprintf("127.0.0.%d", i+1)))
	}
	for _, m := range c.members {
		c.start(m)
	}
	t.Cleanup(c.stopAll)

	for _, m := range c.members {
		ready, readyAt := waitLog(t, m, `"msg":"ready to serve client requests"`, startTimeout)
		cli := c.client(m.endpoint())
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := cli.Put(ctx, "ready-"+m.name, "yes")
		cancel()
		cli.Close()
		if err != nil {
			t.Fatalf("%s logged it was ready, but a put through it failed: %v", m.name, err)
		}
		var fields struct {
			Level, Ts, Msg string
		}
		if err := json.Unmarshal([]byte(ready), &fields); err != nil {
			t.Fatalf("%s: not a JSON line: %s", m.name, ready)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000000Z07:00", fields.Ts); err != nil || fields.Level != "info" {
			t.Errorf("%s: want etcd's \"level\":\"info\" and \"ts\" with microseconds: %s", m.name, ready)
		}
		attrs := fmt.Sprintf(`"local-member-attributes":"{Name:%s ClientURLs:[%s]}"`, m.name, m.clientURL())
		published, publishedAt := waitLog(t, m, `"msg":"published local member to cluster through raft"`, 0)
		if !strings.Contains(published, attrs) || !strings.Contains(published, `"publish-timeout":"7s"`) ||
			!strings.Contains(published, `"cluster-id":`) || !strings.Contains(published, `"local-member-id":`) {
			t.Errorf("%s: want etcd's fields (%s, publish-timeout, cluster-id, local-member-id): %s", m.name, attrs, published)
		}
		elected, electedAt := waitLog(t, m, "elected leader", 0)
		if !strings.Contains(elected, `"logger":"raft"`) || !strings.Contains(elected, "raft.node: ") {
			t.Errorf("%s: want raft's line: %s", m.name, elected)
		}
		serving, servingAt := waitLog(t, m, "serving client traffic insecurely; this is strongly discouraged!", 5*time.Second)
		if !strings.Contains(serving, fmt.Sprintf(`"traffic":"grpc+http","address":"%s"`, m.endpoint())) {
			t.Errorf("%s: want etcd's traffic and address fields: %s", m.name, serving)
		}
		if !(electedAt < publishedAt && publishedAt < readyAt && readyAt < servingAt) {
			t.Errorf("%s: want elected leader (line %d), published (%d), ready (%d), serving (%d) in that order",
				m.name, electedAt, publishedAt, readyAt, servingAt)
		}
	}

	leader, lead := c.waitLeader(startTimeout)
	c.kill(leader)
	for _, m := range c.members {
		if m == leader {
			continue
		}
		lost := fmt.Sprintf("lost leader %x at term", lead)
		changed := fmt.Sprintf("changed leader from %x to", lead)
		for deadline := time.Now().Add(startTimeout); !logContains(t, m, lost) && !logContains(t, m, changed); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s logged neither %q nor %q", m.name, lost, changed)
			}
		}
	}
	_, newLead := c.waitLeader(startTimeout)
	for _, m := range c.members {
		if m == leader {
			continue
		}
		elected := fmt.Sprintf("elected leader %x at term", newLead)
		changed := fmt.Sprintf("changed leader from %x to %x at term", lead, newLead)
		for deadline := time.Now().Add(5 * time.Second); !logContains(t, m, elected) && !logContains(t, m, changed); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s logged neither %q nor %q", m.name, elected, changed)
			}
		}
	}
}
