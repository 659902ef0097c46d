package faults

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseLeasesAndLocks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		yaml  string
		check func(s *Scenario) bool
	}{
		{"none without the sections", "workload: {clients: 2}", func(s *Scenario) bool {
			return s.Leases == Leases{} && s.Locks == Locks{} && s.Expect.Lease && s.Expect.Lock
		}},
		{"leases defaults", "leases: {}", func(s *Scenario) bool {
			return s.Leases == Leases{Holders: 3, TTL: 5 * time.Second, Keys: 4, PutEvery: 500 * time.Millisecond,
				Life: 5 * time.Second, Expire: 0.4, Revoke: 0.4}
		}},
		{"leases, every field", "leases:\n  holders: 7\n  ttl: 3s\n  keys: 2\n  put_every: 1s\n  life: 2s\n  expire: 1\n  revoke: 0",
			func(s *Scenario) bool {
				return s.Leases == Leases{Holders: 7, TTL: 3 * time.Second, Keys: 2, PutEvery: time.Second,
					Life: 2 * time.Second, Expire: 1}
			}},
		{"the default TTL is the cluster's minimum when that is more",
			"cluster: {heartbeat_interval: 1s, election_timeout: 5s}\nleases: {}\nlocks: {}", func(s *Scenario) bool {
				return s.Leases.TTL == 8*time.Second && s.Locks.TTL == 8*time.Second
			}},
		{"a TTL at the minimum", "cluster: {election_timeout: 2s}\nleases: {ttl: 3s}", func(s *Scenario) bool {
			return s.Leases.TTL == 3*time.Second
		}},
		{"locks defaults", "locks: {}", func(s *Scenario) bool {
			return s.Locks == Locks{Users: 3, TTL: 5 * time.Second, Writes: 3, WriteEvery: 100 * time.Millisecond,
				Every: time.Second, Stall: 0.2}
		}},
		{"locks, every field", "locks: {users: 2, ttl: 10s, writes: 5, write_every: 20ms, every: 3s, stall: 1}",
			func(s *Scenario) bool {
				return s.Locks == Locks{Users: 2, TTL: 10 * time.Second, Writes: 5, WriteEvery: 20 * time.Millisecond,
					Every: 3 * time.Second, Stall: 1}
			}},
		{"checks off", "expect: {lease: false, lock: false}", func(s *Scenario) bool {
			return !s.Expect.Lease && !s.Expect.Lock && s.Expect.Durable
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("x.yaml", []byte("name: x\nduration: 30s\n"+tc.yaml+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(s) {
				t.Errorf("unexpected result: leases %+v, locks %+v, expect %+v", s.Leases, s.Locks, s.Expect)
			}
		})
	}
}

// TestParseLeasesAndLocksErrors: each mistake is reported at its line.
func TestParseLeasesAndLocksErrors(t *testing.T) {
	const head = "name: x\nduration: 30s\n" // lines 1-2
	for _, tc := range []struct {
		name string
		yaml string
		line int
		msg  string
	}{
		{"leases unknown field", head + "leases:\n  holders: 2\n  tll: 5s\n", 5,
			`leases: unknown field "tll" (known: holders, ttl, keys, put_every, life, expire, revoke)`},
		{"leases not a mapping", head + "leases: 3\n", 3, "leases: expected a mapping of fields, got 3"},
		{"too many holders", head + "leases: {holders: 101}\n", 3, "leases.holders: 101 is out of range (0..100)"},
		{"no keys", head + "leases: {keys: 0}\n", 3, "leases.keys: 0 is out of range (1..100)"},
		{"ttl below the minimum", head + "cluster: {election_timeout: 2s}\nleases:\n  ttl: 2s\n", 5,
			"leases.ttl: 2s is less than etcd's minimum for this cluster, 3s (one and a half election timeouts of 2s, rounded up to a second)"},
		{"default ttl on a slow cluster is fine, a written one is not", head + "cluster: {heartbeat_interval: 1s, election_timeout: 5s}\nlocks: {ttl: 5s}\n", 4,
			"locks.ttl: 5s is less than etcd's minimum for this cluster, 8s"},
		{"ttl not whole seconds", head + "leases: {ttl: 2500ms}\n", 3, "leases.ttl: 2.5s is not a whole number of seconds"},
		{"ttl under a second", head + "leases: {ttl: 500ms}\n", 3, "leases.ttl: 500ms is less than the minimum, 1s"},
		{"ttl a number", head + "leases: {ttl: 5}\n", 3, `leases.ttl: "5": not a duration`},
		{"put_every zero", head + "leases: {put_every: 0}\n", 3, "leases.put_every: 0s is less than the minimum, 1ms"},
		{"expire over 1", head + "leases: {expire: 1.5}\n", 3, "leases.expire: 1.5 is not a share in [0,1]"},
		{"shares over 1 together", head + "leases:\n  expire: 0.6\n  revoke: 0.5\n", 5,
			"leases: expire 0.6 and revoke 0.5 are more than 1 together"},
		{"locks unknown field", head + "locks: {users: 2, stal: 0.1}\n", 3,
			`locks: unknown field "stal" (known: users, ttl, writes, write_every, every, stall)`},
		{"too many users", head + "locks: {users: 1000}\n", 3, "locks.users: 1000 is out of range (0..100)"},
		{"no writes", head + "locks: {writes: 0}\n", 3, "locks.writes: 0 is out of range (1..100)"},
		{"stall a word", head + "locks: {stall: often}\n", 3, `locks.stall: expected a share (a number in [0,1]), got "often"`},
		{"expect lease a word", head + "expect: {lease: yes}\n", 3, `expect.lease: expected true or false, got "yes"`},
		{"too many operations", "name: x\nduration: 1h\nworkload: {clients: 0}\nleases: {holders: 100, put_every: 1ms}\n", 4,
			"more than a run can record and check"},
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
		})
	}
}

func TestMinLeaseTTL(t *testing.T) {
	for _, tc := range []struct {
		et, want time.Duration
	}{
		{time.Second, 2 * time.Second}, // 1.5 s rounds up
		{2 * time.Second, 3 * time.Second},
		{500 * time.Millisecond, time.Second},
		{50 * time.Second, 75 * time.Second},
	} {
		if got := (Cluster{ElectionTimeout: tc.et}).MinLeaseTTL(); got != tc.want {
			t.Errorf("election timeout %v: minimum TTL %v, want %v", tc.et, got, tc.want)
		}
	}
}
