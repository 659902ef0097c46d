package faults

import (
	"fmt"
	"os"
	"time"
)

// Scenario is one parsed and validated scenario file. Parse fills in every
// default, so a consumer never has to tell "absent" from "zero".
type Scenario struct {
	Name        string // required; [a-z0-9-]+, at most 64 bytes
	Description string
	Cluster     Cluster
	Network     Network
	Workload    Workload
	Watchers    Watchers
	Leases      Leases        // lease holders; none without a leases section
	Locks       Locks         // lock users; none without a locks section
	Auth        Auth          // authentication; off without an auth section
	Duration    time.Duration // required; > 0, <= 1h
	Faults      []Fault       // sorted by At, stable (file order for ties)
	Expect      Expect
}

// Cluster is the shape of the simulated cluster.
type Cluster struct {
	Members           int           // default 3; 1..7
	HeartbeatInterval time.Duration // default 100ms (etcd's); 1ms..1s
	// ElectionTimeout defaults to 1s (etcd's). It must be at least
	// 5*HeartbeatInterval (etcd's rule), at most 50s (etcd's limit), and a
	// whole multiple of HeartbeatInterval, because raft counts both in ticks.
	ElectionTimeout time.Duration
	// SnapshotCount is etcd's --snapshot-count: how many applied entries
	// a member takes between snapshots. Default 10000 (etcd's);
	// 1..10000000. Scenarios set it low (e.g. 100) to exercise snapshots.
	SnapshotCount int
	// AutoCompactionRetention is etcd's --auto-compaction-retention in
	// revision mode: every AutoCompactionInterval the leader compacts the
	// history to its revision minus this many. Default 0: never compacts;
	// 0..1000000000.
	AutoCompactionRetention int
	// AutoCompactionInterval is how often the leader compacts, when
	// AutoCompactionRetention is set. Default 1s (etcd's revision mode
	// compacts every 5 minutes; simulated runs are shorter); 1ms..1h.
	AutoCompactionInterval time.Duration
}

// Network is the base network every link starts with and a heal restores.
type Network struct {
	Latency   Range   // default 1ms..10ms; every link, member<->member and client<->member
	Loss      float64 // probability a message is dropped; [0,1)
	Duplicate float64 // probability a message is delivered twice; [0,1)
	// Reorder is the probability a message is held back by an extra delay
	// (up to 10x Latency.Max), so later ones overtake it; [0,1).
	Reorder float64
}

// Range is a closed interval of durations. In YAML it is "1ms..10ms", or a
// single duration "5ms" for Min == Max.
type Range struct{ Min, Max time.Duration }

// String returns the range in the form Parse accepts.
func (r Range) String() string {
	if r.Min == r.Max {
		return r.Min.String()
	}
	return r.Min.String() + ".." + r.Max.String()
}

// Workload is the simulated clients' load.
type Workload struct {
	Clients int           // default 8; 0..1000 (0 = no clients)
	Rate    float64       // operations per second per client; default 10; > 0 when Clients > 0; <= 10000
	Keys    int           // default 16; 1..100000
	Ops     OpMix         // default {Put: 4, Get: 4, Delete: 1, CAS: 1, Txn: 1, Range: 1, DeleteRange: 1}
	Timeout time.Duration // per-operation client timeout; default 1s; > 0, <= 1h
	// Serializable is the share of reads (get and range) that are
	// serializable: served from the member's local state, which may be
	// stale, without a round to the leader. Default 0.2; 0..1.
	Serializable float64
}

// OperationsMax bounds the client operations one run may record: a scenario
// whose clients, rate and duration would expect more than half of it is
// refused, and clients stop once a run has recorded it. It is the
// linearizability checker's own bound (sim's tests hold the two equal), so
// a run never records a history its checker refuses.
const OperationsMax = 1 << 22

// ExpectedOperations is how many operations the clients start over the
// scenario, on average.
func (w Workload) ExpectedOperations(d time.Duration) float64 {
	return float64(w.Clients) * w.Rate * d.Seconds()
}

// OpMix weighs the kinds of operation a client picks from. Only the ratios
// matter; each weight is 0..1000000 and at least one is above 0.
type OpMix struct {
	Put    int // put one key
	Get    int // read one key
	Delete int // delete one key
	CAS    int // compare-and-swap one key: a txn comparing its value (or absence) and putting a new one
	// Txn: a txn of 2 to 4 puts and deletes on distinct keys, applied at
	// one revision.
	Txn int
	// Range: read a span of 2 to 5 consecutive keys, or every key with a
	// prefix, at one revision.
	Range int
	// DeleteRange: delete a span of 2 to 3 consecutive keys, or every key
	// with a prefix, at one revision.
	DeleteRange int
}

// Watchers are the simulated applications that watch keys: each watches
// one of the workload's keys or a prefix of them on a member the seed
// picks, and watches again from where it was when its watch ends (its
// member crashed or lost the leader, it was compacted, or it cancelled it
// itself). What each one watches with is drawn from the shares below.
type Watchers struct {
	// Count is how many: 0 (the default) without a watchers section, 4
	// with one; 0..100.
	Count int
	// Prefix is the share watching a prefix of the keys (one key's name
	// but its last digit, or every key) rather than one key; default 0.5.
	Prefix float64
	// PrevKV is the share asking for each event's previous key-value;
	// default 0.5.
	PrevKV float64
	// Filter is the share filtering out puts or deletes (half each);
	// default 0.25.
	Filter float64
	// Replay is the share whose first watch replays the history from
	// revision 1 rather than starting at the next revision; default 0.5.
	Replay float64
	// ProgressEvery is the mean time between a watcher's progress requests
	// (exponentially distributed); 0 never asks. Default 1s; 0..1h.
	ProgressEvery time.Duration
	// CancelEvery is the mean time between a watcher cancelling its watch
	// and watching again from where it was; 0 (the default) never
	// cancels. 0..1h.
	CancelEvery time.Duration
}

// Expect lists the checks a run must pass.
type Expect struct {
	Linearizable bool // default true
	// LivenessWithin bounds how long after LastFaultEnd the cluster may take
	// to serve writes again; 0 (the default) skips the check.
	LivenessWithin time.Duration
	Converge       bool // default true: all members hold the same KV state once healed
	// Durable defaults to true: every acknowledged write is present after
	// the cluster recovers, whatever crashes and disk faults came before.
	Durable bool
	// Watch defaults to true: every watcher's events agree with the
	// history's revisions (see linearizability.CheckWatches). It is
	// judged only in a scenario with watchers.
	Watch bool
	// Lease and Lock default to true: the lease check, and the lock
	// check, pass (see linearizability.CheckLeases and CheckLocks). Each
	// is judged only in a scenario with lease holders or lock users, and
	// lock users.
	Lease, Lock bool
	// Auth defaults to true: the auth check passes (see sim's auth.go).
	// It is judged only in a scenario with an auth section.
	Auth bool
}

// LastFaultEnd returns the latest time at which any fault's effect ends:
// its At, plus its For, RestartAfter or MemberUpdateAfter when it has one
// (a disk fault's For included).
// The simulator measures liveness from there. It is 0 without faults.
func (s *Scenario) LastFaultEnd() time.Duration {
	var last time.Duration
	for _, f := range s.Faults {
		last = max(last, f.end())
	}
	return last
}

// Error is a problem with a scenario file: where it is and what is wrong.
// Every error Parse returns is an *Error.
type Error struct {
	File string
	Line int // 1-based
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Load reads the file at path and parses it with Parse.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load scenario: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and validates a scenario. filename is used only in error
// messages. It returns the first problem found as an *Error.
func Parse(filename string, data []byte) (*Scenario, error) {
	p := &parser{file: filename}
	root, err := p.document(data)
	if err != nil {
		return nil, err
	}
	return p.scenario(root)
}

// Limits. Each is documented in doc.go; a value beyond one is an error, so
// a typo cannot ask the simulator for an unbounded run.
const (
	maxFileBytes        = 1 << 20
	maxNameBytes        = 64
	maxDescriptionBytes = 4096
	maxDuration         = time.Hour
	maxMembers          = 7
	minHeartbeat        = time.Millisecond
	maxHeartbeat        = time.Second
	minElectionTicks    = 5                // etcd: election timeout >= 5 heartbeats
	maxElectionTimeout  = 50 * time.Second // etcd refuses longer
	maxSnapshotCount    = 10000000
	maxLatency          = time.Minute
	maxClients          = 1000
	maxRatePerSecond    = 10000
	maxKeys             = 100000
	maxOpWeight         = 1000000
	maxFaults           = 1000
	maxWatchers         = 100
	maxRetention        = 1000000000
	defaultWatchers     = 4 // with a watchers section that does not say
)

// defaults returns a scenario holding every default value.
func defaults() *Scenario {
	return &Scenario{
		Cluster: Cluster{
			Members:           3,
			HeartbeatInterval: 100 * time.Millisecond,
			ElectionTimeout:   time.Second,
			SnapshotCount:     10000, // etcd's --snapshot-count
			// etcd's revision-mode compactor runs every 5 minutes, longer
			// than a simulated run.
			AutoCompactionInterval: time.Second,
		},
		Network: Network{Latency: Range{Min: time.Millisecond, Max: 10 * time.Millisecond}},
		Workload: Workload{
			Clients:      8,
			Rate:         10,
			Keys:         16,
			Ops:          OpMix{Put: 4, Get: 4, Delete: 1, CAS: 1, Txn: 1, Range: 1, DeleteRange: 1},
			Timeout:      time.Second,
			Serializable: 0.2,
		},
		Watchers: Watchers{Prefix: 0.5, PrevKV: 0.5, Filter: 0.25, Replay: 0.5, ProgressEvery: time.Second},
		Expect:   Expect{Linearizable: true, Converge: true, Durable: true, Watch: true, Lease: true, Lock: true, Auth: true},
	}
}
