package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLeaderReportsPartitionedFollowerUnreachable: once a partition cuts
// a leader off from a follower, the leader's messages to it do not leave
// and its node is told the follower is unreachable (raft then probes it
// instead of streaming appends), as the server's transport does when a
// peer's connection breaks. Before any fault, no link is reported.
func TestLeaderReportsPartitionedFollowerUnreachable(t *testing.T) {
	path := filepath.Join(scenarioDir, "partition.yaml")
	sc := load(t, path)
	firstFault := time.Duration(1<<63 - 1)
	for _, f := range sc.Faults {
		firstFault = min(firstFault, f.At)
	}
	var buf bytes.Buffer
	r := Run(sc, Options{Seed: 3, Trace: &buf})
	if r.Verdict != VerdictOK {
		t.Fatalf("%s\nreproduce: %s", describe(r), reproduce(path, 3, ""))
	}
	leaderOf := map[string]string{} // member -> the leader it knows
	var fromLeader, early int
	lines := bufio.NewScanner(&buf)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	for lines.Scan() {
		var ev TraceEvent
		if err := json.Unmarshal(lines.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		switch {
		case ev.Kind == "leader":
			leaderOf[ev.Node] = ev.Peer
		case ev.Kind == "send" && strings.HasPrefix(ev.Detail, "unreachable"):
			if time.Duration(ev.At) < firstFault {
				early++
			}
			if leaderOf[ev.Node] == ev.Node && (ev.Msg == "MsgHeartbeat" || ev.Msg == "MsgApp") &&
				ev.Detail == "unreachable: the link is cut" {
				fromLeader++
			}
		}
	}
	if early > 0 {
		t.Errorf("%d messages reported unreachable before the first fault at %v", early, firstFault)
	}
	if fromLeader == 0 {
		t.Fatalf("no leader reported a partitioned follower unreachable (seed 3 of %s)", path)
	}
}
