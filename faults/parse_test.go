package faults

import (
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseFull(t *testing.T) {
	s, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	loss, latency := 0.2, Range{Min: 50 * time.Millisecond, Max: 200 * time.Millisecond}
	fsync := Range{Min: 5 * time.Millisecond, Max: 50 * time.Millisecond}
	want := &Scenario{
		Name:        "partition",
		Description: "the leader is cut off from the majority, then healed",
		Cluster: Cluster{Members: 3, HeartbeatInterval: 100 * time.Millisecond, ElectionTimeout: time.Second,
			SnapshotCount: 100, AutoCompactionRetention: 500, AutoCompactionInterval: 2 * time.Second},
		Network: Network{Latency: Range{Min: time.Millisecond, Max: 10 * time.Millisecond}, Loss: 0.01},
		Workload: Workload{Clients: 8, Rate: 10, Keys: 16,
			Ops: OpMix{Put: 4, Get: 4, Delete: 1, CAS: 1}, Timeout: time.Second, Serializable: 0.2},
		Watchers: Watchers{Count: 4, Prefix: 0.5, PrevKV: 0.5, Filter: 0.25, Replay: 0.5,
			ProgressEvery: time.Second, CancelEvery: 10 * time.Second},
		Leases: Leases{Holders: 3, TTL: 5 * time.Second, Keys: 4, PutEvery: 500 * time.Millisecond, Life: 5 * time.Second,
			Expire: 0.4, Revoke: 0.4},
		Locks:    Locks{Users: 3, TTL: 5 * time.Second, Writes: 3, WriteEvery: 100 * time.Millisecond, Every: time.Second, Stall: 0.2},
		Duration: 30 * time.Second,
		Faults: []Fault{
			{At: 5 * time.Second, Line: 12, Partition: &Partition{Isolate: &Target{Leader: true}}},
			{At: 6 * time.Second, Line: 13, Partition: &Partition{
				Groups: [][]Target{{{Member: 1}, {Member: 2}}, {{Member: 3}}}, For: 3 * time.Second}},
			{At: 7 * time.Second, Line: 14, Partition: &Partition{OneWay: &OneWay{
				From: []Target{{Member: 1}}, To: []Target{{Member: 2}, {Member: 3}}}}},
			{At: 8 * time.Second, Line: 15, Disk: &Disk{Target: Target{Member: 3}, Corrupt: CorruptWAL}},
			{At: 9 * time.Second, Line: 16, Disk: &Disk{Target: Target{Member: 2}, Torn: true}},
			{At: 10 * time.Second, Line: 17, Disk: &Disk{Target: Target{Member: 1}, Corrupt: CorruptSnapshot}},
			{At: 12 * time.Second, Line: 18, Heal: &Heal{All: true}},
			{At: 13 * time.Second, Line: 19, Disk: &Disk{Target: Target{Leader: true}, Full: true, For: 5 * time.Second}},
			{At: 15 * time.Second, Line: 20, Kill: &Kill{Target: Target{Leader: true}, RestartAfter: 2 * time.Second}},
			{At: 18 * time.Second, Line: 21, Restart: &Target{Member: 2}},
			{At: 20 * time.Second, Line: 22, ChangeIP: &ChangeIP{Target: Target{Member: 2}, MemberUpdateAfter: time.Second}},
			{At: 22 * time.Second, Line: 23, Network: &NetworkChange{Loss: &loss, Latency: &latency, For: 5 * time.Second}},
			{At: 23 * time.Second, Line: 24, Disk: &Disk{Target: Target{Follower: true}, Latency: &fsync, For: 5 * time.Second}},
			{At: 25 * time.Second, Line: 25, Kill: &Kill{Target: Target{All: true}, RestartAfter: 2 * time.Second}},
		},
		Expect: Expect{Linearizable: true, LivenessWithin: 5 * time.Second, Converge: true, Durable: true, Watch: true, Lease: true, Lock: true, Auth: true},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got\n%#v\nwant\n%#v", s, want)
	}
	kinds := []string{"partition", "partition", "partition", "disk", "disk", "disk", "heal", "disk",
		"kill", "restart", "change_ip", "network", "disk", "kill"}
	if len(s.Faults) != len(kinds) {
		t.Fatalf("%d faults, want %d", len(s.Faults), len(kinds))
	}
	for i, f := range s.Faults {
		if f.Kind() != kinds[i] {
			t.Errorf("fault %d: Kind() = %q, want %q", i+1, f.Kind(), kinds[i])
		}
	}
	if got := s.LastFaultEnd(); got != 28*time.Second {
		t.Errorf("LastFaultEnd() = %v, want 28s (disk latency at 23s for 5s)", got)
	}
}

func TestParseDefaults(t *testing.T) {
	s, err := Load("testdata/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := defaults()
	want.Name, want.Duration = "baseline", 10*time.Second
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got\n%#v\nwant\n%#v", s, want)
	}
	if !s.Expect.Durable || s.Cluster.SnapshotCount != 10000 {
		t.Errorf("Durable = %v, SnapshotCount = %d; want true and 10000 (etcd's)", s.Expect.Durable, s.Cluster.SnapshotCount)
	}
	if s.LastFaultEnd() != 0 {
		t.Errorf("LastFaultEnd() = %v without faults, want 0", s.LastFaultEnd())
	}
}

// TestParseSortsFaults checks that faults come out by At, with file order
// kept for ties, and that each keeps its own line.
func TestParseSortsFaults(t *testing.T) {
	s, err := Load("testdata/block.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range s.Faults {
		got = append(got, f.At.String()+" "+f.Kind()+" line "+strconv.Itoa(f.Line))
	}
	want := []string{"10s kill line 19", "20s restart line 17", "20s network line 21"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("faults = %q, want %q", got, want)
	}
	if s.Cluster.Members != 5 || s.Workload.Clients != 0 || s.Expect.Linearizable || s.Expect.Converge {
		t.Errorf("block-style fields not read: %+v", s)
	}
	if s.Network.Latency != (Range{Min: 5 * time.Millisecond, Max: 5 * time.Millisecond}) {
		t.Errorf("latency = %v, want 5ms", s.Network.Latency)
	}
	if !strings.HasPrefix(s.Description, "Kill a follower") {
		t.Errorf("description = %q", s.Description)
	}
}

func TestParseValues(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		check      func(*Scenario) bool
	}{
		{"rate as a number", "workload: {rate: 2.5}", func(s *Scenario) bool { return s.Workload.Rate == 2.5 }},
		{"rate per second", "workload: {rate: 100/s}", func(s *Scenario) bool { return s.Workload.Rate == 100 }},
		{"partial ops are zero, not default", "workload: {ops: {put: 1}}",
			func(s *Scenario) bool { return s.Workload.Ops == OpMix{Put: 1} }},
		{"no clients, no rate", "workload: {clients: 0, rate: 0}", func(s *Scenario) bool { return s.Workload.Rate == 0 }},
		{"at zero", "faults: [{at: 0, heal: all}]", func(s *Scenario) bool { return s.Faults[0].At == 0 }},
		{"empty faults", "faults: []", func(s *Scenario) bool { return len(s.Faults) == 0 }},
		{"follower", "faults: [{at: 1s, kill: follower}]",
			func(s *Scenario) bool { return s.Faults[0].Kill.Target == Target{Follower: true} }},
		{"partition for ends exactly at the end", "faults: [{at: 10s, partition: {isolate: n1, for: 20s}}]",
			func(s *Scenario) bool { return s.LastFaultEnd() == 30*time.Second }},
		{"leader and follower in groups", "faults: [{at: 1s, partition: {groups: [[leader], [follower, n3]]}}]",
			func(s *Scenario) bool { return len(s.Faults[0].Partition.Groups) == 2 }},
		{"one group leaves the rest as another", "faults: [{at: 1s, partition: {groups: [[n1, n2]]}}]",
			func(s *Scenario) bool { return len(s.Faults[0].Partition.Groups) == 1 }},
		{"network change of one field", "faults: [{at: 1s, network: {duplicate: 0.5}}]", func(s *Scenario) bool {
			c := s.Faults[0].Network
			return *c.Duplicate == 0.5 && c.Loss == nil && c.Reorder == nil && c.Latency == nil
		}},
		{"seven members", "cluster: {members: 7}\nfaults: [{at: 1s, kill: n7}]",
			func(s *Scenario) bool { return s.Faults[0].Kill.Target.Member == 7 }},
		{"election timeout default follows etcd", "cluster: {heartbeat_interval: 200ms}",
			func(s *Scenario) bool { return s.Cluster.ElectionTimeout == time.Second }},

		// The storage issue's additions.
		{"snapshot_count", "cluster: {snapshot_count: 100}", func(s *Scenario) bool { return s.Cluster.SnapshotCount == 100 }},
		{"snapshot_count at its maximum", "cluster: {snapshot_count: 10000000}",
			func(s *Scenario) bool { return s.Cluster.SnapshotCount == 10000000 }},
		{"durable off", "expect: {durable: false}",
			func(s *Scenario) bool { return !s.Expect.Durable && s.Expect.Linearizable && s.Expect.Converge }},
		{"kill all", "faults: [{at: 1s, kill: all}]", func(s *Scenario) bool {
			k := s.Faults[0].Kill
			return k.Target == Target{All: true} && k.RestartAfter == 0 && s.LastFaultEnd() == time.Second
		}},
		{"kill all, restart after", "faults: [{at: 1s, kill: all, restart_after: 3s}]", func(s *Scenario) bool {
			return s.Faults[0].Kill.Target.All && s.LastFaultEnd() == 4*time.Second
		}},
		{"kill all in block style", "faults:\n  - at: 1s\n    kill: all\n    restart_after: 1s",
			func(s *Scenario) bool { return s.Faults[0].Kill.Target.String() == "all" }},
		{"disk latency without for", "faults: [{at: 10s, disk: {member: n2, latency: 5ms}}]", func(s *Scenario) bool {
			d := s.Faults[0].Disk
			return *d.Latency == Range{Min: 5 * time.Millisecond, Max: 5 * time.Millisecond} && d.For == 0 &&
				!d.Full && !d.Torn && d.Corrupt == "" && s.LastFaultEnd() == 10*time.Second
		}},
		{"disk latency of zero", "faults: [{at: 1s, disk: {member: n1, latency: 0..1ms}}]",
			func(s *Scenario) bool { return s.Faults[0].Disk.Latency.Min == 0 }},
		{"disk full for ends exactly at the end", "faults: [{at: 10s, disk: {member: leader, full: true, for: 20s}}]",
			func(s *Scenario) bool { return s.Faults[0].Disk.Full && s.LastFaultEnd() == 30*time.Second }},
		{"disk full outlasts a kill",
			"faults:\n  - {at: 1s, kill: n1, restart_after: 2s}\n  - {at: 2s, disk: {member: n1, full: true, for: 5s}}",
			func(s *Scenario) bool { return s.LastFaultEnd() == 7*time.Second }},
		{"disk corrupt snapshot", "faults: [{at: 1s, disk: {corrupt: snapshot, member: follower}}]", func(s *Scenario) bool {
			d := s.Faults[0].Disk
			return d.Corrupt == CorruptSnapshot && d.Target == Target{Follower: true} && s.Faults[0].Kind() == "disk"
		}},
		// The watch issue's additions.
		{"watchers section defaults", "watchers: {}", func(s *Scenario) bool {
			return s.Watchers == Watchers{Count: 4, Prefix: 0.5, PrevKV: 0.5, Filter: 0.25, Replay: 0.5, ProgressEvery: time.Second}
		}},
		{"no watchers without the section", "workload: {clients: 2}", func(s *Scenario) bool { return s.Watchers.Count == 0 && s.Expect.Watch }},
		{"watchers, every field", "watchers:\n  count: 0\n  prefix: 1\n  prev_kv: 0\n  filter: 1\n  replay: 0\n  progress_every: 0\n  cancel_every: 2s",
			func(s *Scenario) bool {
				return s.Watchers == Watchers{Prefix: 1, Filter: 1, CancelEvery: 2 * time.Second}
			}},
		{"watchers at their bound", "watchers: {count: 100}", func(s *Scenario) bool { return s.Watchers.Count == 100 }},
		{"auto compaction", "cluster: {auto_compaction_retention: 50}", func(s *Scenario) bool {
			return s.Cluster.AutoCompactionRetention == 50 && s.Cluster.AutoCompactionInterval == time.Second
		}},
		{"auto compaction off by default", "cluster: {members: 3}", func(s *Scenario) bool { return s.Cluster.AutoCompactionRetention == 0 }},
		{"watch check off", "expect: {watch: false}", func(s *Scenario) bool { return !s.Expect.Watch && s.Expect.Durable }},
		{"disk torn, block style", "faults:\n  - at: 1s\n    disk:\n      member: n3\n      torn: true",
			func(s *Scenario) bool { return s.Faults[0].Disk.Torn && s.Faults[0].Line == 4 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("x.yaml", []byte("name: x\nduration: 30s\n"+tc.yaml+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(s) {
				t.Errorf("unexpected result: %+v", s)
			}
		})
	}
}

func TestTargetString(t *testing.T) {
	for target, want := range map[Target]string{
		{Leader: true}: "leader", {Follower: true}: "follower", {Member: 2}: "n2", {All: true}: "all", {}: "(no target)",
	} {
		if got := target.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", target, got, want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load("testdata/no-such-file.yaml"); err == nil || !strings.Contains(err.Error(), "no-such-file") {
		t.Errorf("Load of a missing file: err = %v", err)
	}
}

// TestParseErrors has one case per kind of mistake. Each asserts the line
// and a distinctive part of the message; every error is an *Error whose
// text is file:line: message on one line.
func TestParseErrors(t *testing.T) {
	const head = "name: x\nduration: 30s\n" // lines 1-2
	// faults builds a file whose fault i (1-based) is on line 3+i.
	faults := func(lines ...string) string {
		return head + "faults:\n  - " + strings.Join(lines, "\n  - ") + "\n"
	}
	for _, tc := range []struct {
		name string
		yaml string
		line int
		msg  string
	}{
		// The file as a whole.
		{"empty file", "", 1, "empty file"},
		{"only comments", "# nothing\n", 1, "empty file"},
		{"null document", "---\n~\n", 2, "empty file"},
		{"unclosed list", "name: x\nduration: [30s\n", 2, "not valid YAML: did not find expected ',' or ']'"},
		{"unclosed mapping", "name: x\n\ncluster: {members: 3\n", 3, "not valid YAML: did not find expected ',' or '}'"},
		{"bad indentation", "name: x\n b: 2\n", 2, "not valid YAML: mapping values are not allowed in this context"},
		{"list after mapping", "name: x\nfaults:\n  - {at: 1s}\n - {at: 2s}\n", 4, "not valid YAML: did not find expected key"},
		{"mapping after list", "- a\nb: 1\n", 2, "not valid YAML: did not find expected '-' indicator"},
		{"unterminated string", "name: x\ndescription: 'abc\n\n", 2, "not valid YAML: found unexpected end of stream"},
		{"unknown anchor", "name: x\n\nduration: *d\n", 3, "alias *d: aliases are not supported"},
		{"not UTF-8", "name: x\ndescription: \xff\n", 2, "not valid UTF-8"},
		{"control character", "name: x\n\ndescription: a\x01b\n", 3, "control character U+0001 is not allowed"},
		{"tab indentation", "name: x\ncluster:\n\tmembers: 3\n", 3, "not valid YAML"},
		{"two documents", "name: x\nduration: 1s\n---\nname: y\n", 3, "a second YAML document"},
		{"not a mapping", "- name: x\n", 1, "a scenario is a mapping of fields (name: ..., duration: ...), got a list"},
		{"alias", "name: x\nduration: &d 30s\nexpect: {liveness_within: *d}\n", 3, "alias *d: aliases are not supported"},
		{"too big", head + "description: " + strings.Repeat("a", maxFileBytes) + "\n", 1, "a scenario may be at most"},

		// Top-level fields.
		{"unknown field", head + "netwrok: {}\n", 3,
			`unknown field "netwrok" (known: name, description, cluster, network, workload, watchers, leases, locks, auth, duration, faults, expect)`},
		{"duplicate field", "name: x\nname: y\nduration: 1s\n", 2, `duplicate field "name" (first at line 1)`},
		{"missing name", "duration: 1s\n", 1, `missing required field "name"`},
		{"missing duration", "\nname: x\n", 2, `missing required field "duration"`},
		{"name with capitals", "name: Big Test\nduration: 1s\n", 1, `name: "Big Test": use only a-z, 0-9 and -`},
		{"name empty", "name: ''\nduration: 1s\n", 1, "name: must not be empty"},
		{"name a number", "name: 12\nduration: 1s\n", 1, "name: expected a string, got 12"},
		{"name too long", "name: " + strings.Repeat("a", 65) + "\nduration: 1s\n", 1, "name: is 65 bytes long; the limit is 64"},
		{"description a list", head + "description: [a]\n", 3, "description: expected a string, got a list"},
		{"duration not a duration", "name: x\nduration: 30\n", 2, `duration: "30": not a duration (use e.g. 100ms, 1s)`},
		{"duration zero", "name: x\nduration: 0s\n", 2, "duration: must be more than 0"},
		{"duration negative", "name: x\nduration: -1s\n", 2, "duration: -1s is negative"},
		{"duration over an hour", "name: x\nduration: 2h\n", 2, "duration: 2h0m0s is more than the maximum, 1h0m0s"},
		{"section not a mapping", head + "cluster: 3\n", 3, "cluster: expected a mapping of fields, got 3"},
		{"section empty", head + "cluster:\n", 3, "cluster: expected a mapping of fields, got nothing"},
		{"custom tag", head + "cluster: {members: !big 3}\n", 3, `cluster.members: expected a whole number, got "3" tagged !big`},

		// cluster
		{"cluster unknown field", head + "cluster:\n  members: 3\n  heartbeat: 1s\n", 5,
			`cluster: unknown field "heartbeat" (known: members, heartbeat_interval, election_timeout, snapshot_count, auto_compaction_retention, auto_compaction_interval)`},
		{"cluster duplicate field", head + "cluster:\n  members: 3\n  members: 5\n", 5,
			`cluster: duplicate field "members" (first at line 4)`},
		{"members wrong type", head + "cluster: {members: three}\n", 3, `cluster.members: expected a whole number, got "three"`},
		{"members a float", head + "cluster: {members: 3.5}\n", 3, "cluster.members: expected a whole number, got 3.5"},
		{"members too many", head + "cluster: {members: 9}\n", 3, "cluster.members: 9 is out of range (1..7)"},
		{"members zero", head + "cluster: {members: 0}\n", 3, "cluster.members: 0 is out of range (1..7)"},
		{"members overflow", head + "cluster: {members: 99999999999999999999}\n", 3, "cluster.members: expected a whole number"},
		{"election timeout not a duration", head + "cluster: {election_timeout: 1x}\n", 3,
			`cluster.election_timeout: "1x": not a duration (use e.g. 100ms, 1s)`},
		{"election timeout under 5 heartbeats", head + "cluster: {election_timeout: 300ms}\n", 3,
			"cluster.election_timeout: 300ms is less than 5 heartbeat intervals (5 x 100ms = 500ms), etcd's minimum"},
		{"election timeout not a multiple", head + "cluster: {election_timeout: 1050ms}\n", 3,
			"cluster.election_timeout: 1.05s is not a whole multiple of heartbeat_interval 100ms"},
		{"heartbeat breaks default election timeout", head + "cluster:\n  members: 3\n  heartbeat_interval: 150ms\n", 5,
			"cluster.election_timeout: 1s is not a whole multiple of heartbeat_interval 150ms"},
		{"election timeout over etcd's limit", head + "cluster: {election_timeout: 60s}\n", 3,
			"cluster.election_timeout: 1m0s is more than the maximum, 50s"},
		{"heartbeat too short", head + "cluster: {heartbeat_interval: 100us}\n", 3,
			"cluster.heartbeat_interval: 100µs is less than the minimum, 1ms"},

		// network
		{"latency reversed", head + "network: {latency: 10ms..1ms}\n", 3,
			"network.latency: 10ms..1ms: the minimum is more than the maximum"},
		{"latency not a range", head + "network: {latency: fast}\n", 3,
			`network.latency: "fast": not a latency range (e.g. 1ms..10ms or 5ms)`},
		{"latency half a range", head + "network: {latency: 1ms..}\n", 3, `network.latency: "1ms..": not a latency range`},
		{"latency negative", head + "network: {latency: -1ms..1ms}\n", 3, "network.latency: -1ms is negative"},
		{"latency too long", head + "network: {latency: 1ms..2m}\n", 3, "network.latency: 2m0s is more than the maximum, 1m0s"},
		{"loss is 1", head + "network: {loss: 1}\n", 3, "network.loss: 1 is not a probability in [0,1)"},
		{"loss negative", head + "network: {loss: -0.1}\n", 3, "network.loss: -0.1 is not a probability in [0,1)"},
		{"reorder not a number", head + "network: {reorder: .nan}\n", 3, "network.reorder: .nan is not a probability in [0,1)"},
		{"duplicate a string", head + "network: {duplicate: often}\n", 3,
			`network.duplicate: expected a probability (a number in [0,1)), got "often"`},

		// workload
		{"rate per minute", head + "workload: {rate: 10/min}\n", 3, `workload.rate: "10/min": not a rate (e.g. 10/s or 10)`},
		{"rate too high", head + "workload: {rate: 20000/s}\n", 3, "workload.rate: 20000/s is out of range (0..10000 per second)"},
		{"rate infinite", head + "workload: {rate: .inf}\n", 3, "workload.rate: .inf is out of range"},
		{"rate zero with clients", head + "workload:\n  clients: 8\n  rate: 0\n", 5,
			"workload.rate: 0 with 8 clients: they would send nothing"},
		{"clients too many", head + "workload: {clients: 1001}\n", 3, "workload.clients: 1001 is out of range (0..1000)"},
		{"keys zero", head + "workload: {keys: 0}\n", 3, "workload.keys: 0 is out of range (1..100000)"},
		{"ops all zero", head + "workload: {ops: {put: 0, get: 0}}\n", 3, "workload.ops: every weight is 0"},
		{"ops negative", head + "workload: {ops: {put: -1}}\n", 3, "workload.ops.put: -1 is out of range (0..1000000)"},
		{"ops unknown", head + "workload: {ops: {scan: 1}}\n", 3,
			`workload.ops: unknown field "scan" (known: put, get, delete, cas, txn, range, delete_range)`},
		{"timeout zero", head + "workload: {timeout: 0}\n", 3, "workload.timeout: must be more than 0"},
		{"serializable over 1", head + "workload: {serializable: 1.5}\n", 3, "workload.serializable: 1.5 is not a share in [0,1]"},
		{"ops txn negative", head + "workload: {ops: {txn: -1}}\n", 3, "workload.ops.txn: -1 is out of range (0..1000000)"},
		{"more operations than a run can check", "name: x\nduration: 1h\nworkload: {clients: 1000, rate: 10000/s}\n", 3,
			"workload: 1000 clients at 10000/s for 1h0m0s start about 36000000000 operations, more than a run can record and check (at most 2097152"},

		// expect
		{"expect yes", head + "expect: {linearizable: yes}\n", 3, `expect.linearizable: expected true or false, got "yes"`},
		{"expect unknown", head + "expect: {durabel: true}\n", 3,
			`expect: unknown field "durabel" (known: linearizable, liveness_within, converge, durable, watch, lease, lock, auth)`},
		{"auth users out of range", head + "auth: {users: 17}\n", 3, "auth.users: 17 is out of range (1..16)"},
		{"auth toggle too fast", head + "auth: {toggle_every: 1ms}\n", 3, "auth.toggle_every"},
		{"liveness negative", head + "expect: {liveness_within: -5s}\n", 3, "expect.liveness_within: -5s is negative"},

		// The fault list and a fault's shape.
		{"faults empty", head + "faults:\n", 3, "faults: expected a list of faults (write faults: [] for none), got nothing"},
		{"fault not a mapping", faults("kill"), 4, `fault 1: expected a mapping of fields, got "kill"`},
		{"fault unknown option", faults("{at: 5s, kill: leader}", "{at: 6s, kill: n1, restart_afterr: 2s}"), 5,
			`fault 2: unknown field "restart_afterr" (known: at, kill, restart_after)`},
		{"fault misspelt kind", faults("{at: 5s, kil: n1}"), 4,
			`fault 1: unknown field "kil" (known: at, partition, heal, kill, restart, change_ip, network, disk, member_add, member_promote, member_remove, member_replace, ip_reuse, restart_after, member_update_after)`},
		{"fault two kinds", faults("{at: 5s, kill: n1, heal: all}"), 4,
			"fault 1 has both kill and heal: a fault has exactly one of partition, heal, kill, restart, change_ip, network"},
		{"fault no kind", faults("{at: 5s}"), 4, "fault 1 has none of partition, heal, kill, restart, change_ip, network"},
		{"fault without at", faults("{kill: n1}"), 4, "fault 1 has no at: every fault needs a time"},
		{"fault duplicate key", faults("{at: 5s, kill: n1, at: 6s}"), 4, `fault 1: duplicate field "at"`},
		{"fault block style", faults("at: 5s\n    kill: n1\n    restart_afterr: 1s"), 6,
			`fault 1: unknown field "restart_afterr"`},
		{"at not a duration", faults("{at: 5, kill: n1}"), 4, `fault 1: at: "5": not a duration (use e.g. 100ms, 1s)`},
		{"at negative", faults("{at: -5s, kill: n1}"), 4, "fault 1: at: -5s is negative"},
		{"at after the end", faults("{at: 40s, heal: all}"), 4,
			"fault 1 at 40s is after the end of the scenario (duration 30s)"},
		{"at the end", faults("{at: 30s, heal: all}"), 4, "fault 1 at 30s is at the end of the scenario (duration 30s)"},
		{"option of another kind", faults("{at: 5s, heal: all, restart_after: 2s}"), 4,
			"fault 1: restart_after is only for kill faults; this fault is a heal"},
		{"member_update_after on kill", faults("{at: 5s, kill: n1, member_update_after: 2s}"), 4,
			"fault 1: member_update_after is only for change_ip faults; this fault is a kill"},

		// Times that reach past the end.
		{"restart_after past the end", faults("{at: 25s, kill: n1, restart_after: 10s}"), 4,
			"fault 1: restart_after: 10s ends at 35s, after the end of the scenario (duration 30s)"},
		{"restart_after negative", faults("{at: 5s, kill: n1, restart_after: -1s}"), 4, "fault 1: restart_after: -1s is negative"},
		{"partition for past the end", faults("{at: 25s, partition: {isolate: n1, for: 6s}}"), 4,
			"fault 1: partition.for: 6s ends at 31s, after the end of the scenario"},
		{"member_update_after past the end", faults("{at: 29s, change_ip: n1, member_update_after: 2s}"), 4,
			"fault 1: member_update_after: 2s ends at 31s"},
		{"network for past the end", faults("{at: 20s, network: {loss: 0.5, for: 20s}}"), 4,
			"fault 1: network.for: 20s ends at 40s"},

		// Targets.
		{"unknown member", faults("{at: 5s, partition: {isolate: n5}}"), 4,
			`fault 1: partition.isolate: unknown member "n5" (the cluster has 3 members: n1..n3)`},
		{"unknown member, one member", "name: x\nduration: 30s\ncluster: {members: 1}\nfaults: [{at: 1s, kill: n2}]\n", 4,
			`fault 1: kill: unknown member "n2" (the cluster has 1 member: n1)`},
		{"not a member", faults("{at: 5s, kill: bob}"), 4, `fault 1: kill: "bob" is not a member (use leader, follower or n1..n3)`},
		{"member with leading zero", faults("{at: 5s, kill: n01}"), 4, `fault 1: kill: "n01" is not a member`},
		{"member n0", faults("{at: 5s, kill: n0}"), 4, `fault 1: kill: "n0" is not a member`},
		{"target a list", faults("{at: 5s, kill: [n1]}"), 4, "fault 1: kill: expected a member (leader, follower or n1..n3), got a list"},
		{"follower of one member", "name: x\nduration: 30s\ncluster: {members: 1}\nfaults: [{at: 1s, kill: follower}]\n", 4,
			"fault 1: kill: follower: a 1-member cluster has no followers"},
		{"restart the leader", faults("{at: 5s, restart: leader}"), 4,
			"fault 1: restart: leader: name the killed member instead (n1..n3)"},

		// heal
		{"heal some", faults("{at: 5s, heal: some}"), 4, `fault 1: heal: "some" is not a heal (the only one is all)`},
		{"heal true", faults("{at: 5s, heal: true}"), 4, "fault 1: heal: expected all, got true"},

		// partition
		{"partition two ways", faults("{at: 5s, partition: {isolate: n1, groups: [[n2]]}}"), 4,
			"fault 1: partition has both isolate and groups: a partition has exactly one of isolate, groups, one_way"},
		{"partition no way", faults("{at: 5s, partition: {for: 1s}}"), 4,
			"fault 1: partition has none of isolate, groups, one_way"},
		{"partition unknown field", faults("{at: 5s, partition: {isolate: n1, until: 1s}}"), 4,
			`fault 1: partition: unknown field "until" (known: isolate, groups, one_way, for)`},
		{"groups empty", faults("{at: 5s, partition: {groups: []}}"), 4, "fault 1: partition.groups: no groups"},
		{"group empty", faults("{at: 5s, partition: {groups: [[n1], []]}}"), 4, "fault 1: partition.groups: group 2 is empty"},
		{"groups flat", faults("{at: 5s, partition: {groups: [n1, n2]}}"), 4,
			`fault 1: partition.groups: expected a group (a list of members, e.g. [n1, n2]), got "n1"`},
		{"member in two groups", faults("{at: 5s, partition: {groups: [[n1, n2], [n2, n3]]}}"), 4,
			"fault 1: partition.groups: n2 is in group 1 and group 2"},
		{"member twice in a group", faults("{at: 5s, partition: {groups: [[n1, n1]]}}"), 4,
			"fault 1: partition.groups: n1 is twice in group 1"},
		{"leader in two groups", faults("{at: 5s, partition: {groups: [[leader], [n2, leader]]}}"), 4,
			"fault 1: partition.groups: leader is in group 1 and group 2"},
		{"one group of everyone", faults("{at: 5s, partition: {groups: [[n1, n2, n3]]}}"), 4,
			"fault 1: partition.groups: one group that holds every member cuts nothing"},
		{"groups unknown member", faults("{at: 5s, partition: {groups: [[n1], [n4]]}}"), 4,
			`fault 1: partition.groups: unknown member "n4"`},
		{"one_way empty from", faults("{at: 5s, partition: {one_way: {from: [], to: [n1]}}}"), 4,
			"fault 1: partition.one_way.from: is empty: name at least one member"},
		{"one_way empty to", faults("{at: 5s, partition: {one_way: {from: [n1], to: []}}}"), 4,
			"fault 1: partition.one_way.to: is empty"},
		{"one_way missing to", faults("{at: 5s, partition: {one_way: {from: [n1]}}}"), 4,
			"fault 1: partition.one_way: missing to (one_way needs both from and to)"},
		{"one_way both sides", faults("{at: 5s, partition: {one_way: {from: [n1, n2], to: [n3, n2]}}}"), 4,
			"fault 1: partition.one_way: n2 is on both sides (from and to)"},
		{"one_way named twice", faults("{at: 5s, partition: {one_way: {from: [n1, n1], to: [n3]}}}"), 4,
			"fault 1: partition.one_way.from: n1 is named twice"},
		{"one_way a scalar", faults("{at: 5s, partition: {one_way: {from: n1, to: [n3]}}}"), 4,
			`fault 1: partition.one_way.from: expected a list of members (e.g. [n1, n2]), got "n1"`},
		{"one_way unknown field", faults("{at: 5s, partition: {one_way: {from: [n1], too: [n3]}}}"), 4,
			`fault 1: partition.one_way: unknown field "too" (known: from, to)`},

		// network changes
		{"network change of nothing", faults("{at: 5s, network: {for: 1s}}"), 4,
			"fault 1: network: changes nothing: set at least one of latency, loss, duplicate, reorder"},
		{"network change bad loss", faults("{at: 5s, network: {loss: 2}}"), 4,
			"fault 1: network.loss: 2 is not a probability in [0,1)"},
		{"network change unknown field", faults("{at: 5s, network: {jitter: 1ms}}"), 4,
			`fault 1: network: unknown field "jitter" (known: latency, loss, duplicate, reorder, for)`},
		{"network change bad latency", faults("{at: 5s, network: {latency: 9ms..2ms}}"), 4,
			"fault 1: network.latency: 9ms..2ms: the minimum is more than the maximum"},

		// snapshot_count and durable
		{"snapshot_count zero", head + "cluster: {snapshot_count: 0}\n", 3, "cluster.snapshot_count: 0 is out of range (1..10000000)"},
		{"snapshot_count too big", head + "cluster:\n  snapshot_count: 10000001\n", 4,
			"cluster.snapshot_count: 10000001 is out of range (1..10000000)"},
		{"snapshot_count a duration", head + "cluster: {snapshot_count: 10s}\n", 3,
			`cluster.snapshot_count: expected a whole number, got "10s"`},
		{"durable a string", head + "expect: {durable: always}\n", 3, `expect.durable: expected true or false, got "always"`},

		// watchers and auto compaction
		{"watchers unknown field", head + "watchers:\n  count: 2\n  prevkv: 0.5\n", 5,
			`watchers: unknown field "prevkv" (known: count, prefix, prev_kv, filter, replay, progress_every, cancel_every)`},
		{"watchers not a mapping", head + "watchers: 4\n", 3, "watchers: expected a mapping of fields, got 4"},
		{"watchers too many", head + "watchers: {count: 101}\n", 3, "watchers.count: 101 is out of range (0..100)"},
		{"watchers negative", head + "watchers: {count: -1}\n", 3, "watchers.count: -1 is out of range (0..100)"},
		{"watchers prefix over 1", head + "watchers: {prefix: 1.5}\n", 3, "watchers.prefix: 1.5 is not a share in [0,1]"},
		{"watchers prev_kv a word", head + "watchers: {prev_kv: yes}\n", 3,
			`watchers.prev_kv: expected a share (a number in [0,1]), got "yes"`},
		{"watchers filter negative", head + "watchers: {filter: -0.1}\n", 3, "watchers.filter: -0.1 is not a share in [0,1]"},
		{"watchers replay not a number", head + "watchers: {replay: .nan}\n", 3, "watchers.replay: .nan is not a share in [0,1]"},
		{"watchers progress negative", head + "watchers:\n  progress_every: -1s\n", 4, "watchers.progress_every: -1s is negative"},
		{"watchers progress bare number", head + "watchers: {progress_every: 5}\n", 3,
			`watchers.progress_every: "5": not a duration (use e.g. 100ms, 1s)`},
		{"watchers cancel too long", head + "watchers: {cancel_every: 2h}\n", 3,
			"watchers.cancel_every: 2h0m0s is more than the maximum, 1h0m0s"},
		{"retention negative", head + "cluster: {auto_compaction_retention: -1}\n", 3,
			"cluster.auto_compaction_retention: -1 is out of range (0..1000000000)"},
		{"retention a duration", head + "cluster: {auto_compaction_retention: 1h}\n", 3,
			`cluster.auto_compaction_retention: expected a whole number, got "1h"`},
		{"compaction interval zero", head + "cluster: {auto_compaction_interval: 0}\n", 3,
			"cluster.auto_compaction_interval: 0s is less than the minimum, 1ms"},
		{"expect watch a string", head + "expect: {watch: sometimes}\n", 3, `expect.watch: expected true or false, got "sometimes"`},

		// all
		{"all isolated", faults("{at: 5s, partition: {isolate: all}}"), 4,
			"fault 1: partition.isolate: all is only a kill target; name one member here"},
		{"all in groups", faults("{at: 5s, partition: {groups: [[n1], [all]]}}"), 4,
			"fault 1: partition.groups: all is only a kill target"},
		{"all in one_way", faults("{at: 5s, partition: {one_way: {from: [all], to: [n1]}}}"), 4,
			"fault 1: partition.one_way.from: all is only a kill target"},
		{"restart all", faults("{at: 5s, restart: all}"), 4, "fault 1: restart: all is only a kill target"},
		{"change_ip all", faults("{at: 5s, change_ip: all}"), 4, "fault 1: change_ip: all is only a kill target"},
		{"disk member all", faults("{at: 5s, disk: {member: all, torn: true}}"), 4,
			"fault 1: disk.member: all is only a kill target"},
		{"kill all twice over", faults("{at: 5s, kill: [all]}"), 4, "fault 1: kill: expected a member"},
		{"kill ALL", faults("{at: 5s, kill: ALL}"), 4, `fault 1: kill: "ALL" is not a member`},
		{"kill all past the end", faults("{at: 25s, kill: all, restart_after: 6s}"), 4,
			"fault 1: restart_after: 6s ends at 31s, after the end of the scenario (duration 30s)"},

		// disk
		{"disk missing member", faults("{at: 5s, disk: {torn: true}}"), 4,
			"fault 1: disk: missing member: a disk fault names the member whose disk it is (e.g. member: n2)"},
		{"disk missing member, block style", faults("at: 5s\n    disk:\n      full: true"), 6, "fault 1: disk: missing member"},
		{"disk unknown member", faults("{at: 5s, disk: {member: n4, torn: true}}"), 4,
			`fault 1: disk.member: unknown member "n4" (the cluster has 3 members: n1..n3)`},
		{"disk member a list", faults("{at: 5s, disk: {member: [n1], torn: true}}"), 4,
			"fault 1: disk.member: expected a member (leader, follower or n1..n3), got a list"},
		{"disk no effect", faults("{at: 5s, disk: {member: n1, for: 1s}}"), 4,
			"fault 1: disk has none of latency, full, corrupt, torn: a disk fault has exactly one"},
		{"disk two effects", faults("at: 5s\n    disk:\n      member: n1\n      full: true\n      torn: true"), 8,
			"fault 1: disk has both full and torn: a disk fault has exactly one of latency, full, corrupt, torn"},
		{"disk unknown field", faults("{at: 5s, disk: {member: n1, slow: 5ms}}"), 4,
			`fault 1: disk: unknown field "slow" (known: member, latency, full, corrupt, torn, for)`},
		{"disk not a mapping", faults("{at: 5s, disk: n1}"), 4, `fault 1: disk: expected a mapping of fields, got "n1"`},
		{"disk option outside", faults("{at: 5s, disk: {member: n1, torn: true}, restart_after: 1s}"), 4,
			"fault 1: restart_after is only for kill faults; this fault is a disk"},
		{"disk for outside", faults("{at: 5s, disk: {member: n1, full: true}, for: 1s}"), 4,
			`fault 1: unknown field "for" (known: at, disk)`},
		{"disk full false", faults("{at: 5s, disk: {member: n1, full: false}}"), 4,
			"fault 1: disk.full: false changes nothing; leave the fault out"},
		{"disk torn false", faults("{at: 5s, disk: {member: n1, torn: false}}"), 4,
			"fault 1: disk.torn: false changes nothing; leave the fault out"},
		{"disk full yes", faults("{at: 5s, disk: {member: n1, full: yes}}"), 4,
			`fault 1: disk.full: expected true or false, got "yes"`},
		{"disk corrupt unknown file", faults("{at: 5s, disk: {member: n1, corrupt: db}}"), 4,
			`fault 1: disk.corrupt: "db" is not a file to corrupt (use wal or snapshot)`},
		{"disk corrupt true", faults("{at: 5s, disk: {member: n1, corrupt: true}}"), 4,
			"fault 1: disk.corrupt: expected wal or snapshot, got true"},
		{"disk corrupt with for", faults("at: 5s\n    disk: {member: n1, corrupt: wal,\n      for: 1s}"), 6,
			"fault 1: disk.for: corrupt has no for: a flipped bit stays flipped (only latency and full last)"},
		{"disk torn with for", faults("{at: 5s, disk: {member: n1, torn: true, for: 1s}}"), 4,
			"fault 1: disk.for: torn has no for: it tears the member's next crash"},
		{"disk latency for past the end", faults("{at: 25s, disk: {member: n1, latency: 5ms, for: 6s}}"), 4,
			"fault 1: disk.for: 6s ends at 31s, after the end of the scenario (duration 30s)"},
		{"disk full for past the end", faults("{at: 29s, disk: {member: n1, full: true, for: 2s}}"), 4,
			"fault 1: disk.for: 2s ends at 31s"},
		{"disk for negative", faults("{at: 5s, disk: {member: n1, full: true, for: -1s}}"), 4,
			"fault 1: disk.for: -1s is negative"},
		{"disk latency reversed", faults("{at: 5s, disk: {member: n1, latency: 50ms..5ms}}"), 4,
			"fault 1: disk.latency: 50ms..5ms: the minimum is more than the maximum"},
		{"disk latency too long", faults("{at: 5s, disk: {member: n1, latency: 2m}}"), 4,
			"fault 1: disk.latency: 2m0s is more than the maximum, 1m0s"},
		{"disk latency negative", faults("{at: 5s, disk: {member: n1, latency: -1ms}}"), 4,
			"fault 1: disk.latency: -1ms is negative"},
		{"disk latency not a range", faults("{at: 5s, disk: {member: n1, latency: slow}}"), 4,
			`fault 1: disk.latency: "slow": not a latency range (e.g. 1ms..10ms or 5ms)`},
		{"disk follower of one member",
			"name: x\nduration: 30s\ncluster: {members: 1}\nfaults: [{at: 1s, disk: {member: follower, torn: true}}]\n", 4,
			"fault 1: disk.member: follower: a 1-member cluster has no followers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("x.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error; parsed %+v", s)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is a %T, want *Error", err, err)
			}
			if e.File != "x.yaml" || e.Line != tc.line || !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("got  %v\nwant x.yaml:%d: ...%s...", err, tc.line, tc.msg)
			}
			if want := e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg; err.Error() != want || strings.Contains(want, "\n") {
				t.Errorf("Error() = %q, want one line %q", err.Error(), want)
			}
		})
	}
}

// TestDocExample keeps the example in the package documentation (which the
// README copies) parseable and equal to testdata/full.yaml.
func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := strings.Cut(string(doc), "// # A scenario file\n//\n")
	example, _, _ := strings.Cut(after, "//\n")
	fromDoc, err := Parse("doc.go", []byte(strings.ReplaceAll(example, "//\t", "")))
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Scenario{fromDoc, fromFile} {
		for i := range s.Faults {
			s.Faults[i].Line = 0 // the file has a comment line the doc lacks
		}
	}
	if !reflect.DeepEqual(fromDoc, fromFile) {
		t.Errorf("doc.go's example differs from testdata/full.yaml:\n%+v\n%+v", fromDoc, fromFile)
	}
}
