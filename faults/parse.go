package faults

import (
	"cmp"
	"time"

	"gopkg.in/yaml.v3"
)

var requiredFields = []string{"name", "duration"}

// scenario reads the top-level mapping. Sections are read in dependency
// order, not file order: faults need the cluster's size and the duration.
func (p *parser) scenario(root *yaml.Node) (*Scenario, error) {
	if root.Kind != yaml.MappingNode {
		return nil, p.errorf(root, "a scenario is a mapping of fields (name: ..., duration: ...), got %s", describe(root))
	}
	f, err := p.mapping(path{}, root)
	if err != nil {
		return nil, err
	}
	known := []string{"name", "description", "cluster", "network", "workload", "watchers", "leases", "locks", "auth", "duration", "faults", "expect"}
	if err := p.known(path{}, f, known...); err != nil {
		return nil, err
	}
	for _, key := range requiredFields {
		if f.get(key) == nil {
			return nil, p.errorf(root, "missing required field %q (a scenario needs name and duration)", key)
		}
	}
	s := defaults()
	p.members = s.Cluster.Members
	steps := []struct {
		key  string
		read func(n *yaml.Node) error
	}{
		{"name", func(n *yaml.Node) (err error) { s.Name, err = p.name(n); return err }},
		{"description", func(n *yaml.Node) (err error) {
			s.Description, err = p.str(path{field: "description"}, n, maxDescriptionBytes)
			return err
		}},
		{"cluster", func(n *yaml.Node) error { return p.cluster(n, &s.Cluster) }},
		{"network", func(n *yaml.Node) error { return p.network(n, &s.Network) }},
		{"workload", func(n *yaml.Node) error { return p.workload(n, &s.Workload) }},
		{"watchers", func(n *yaml.Node) error { return p.watchers(n, &s.Watchers) }},
		{"leases", func(n *yaml.Node) error { return p.leases(n, &s.Leases, s.Cluster) }},
		{"locks", func(n *yaml.Node) error { return p.locks(n, &s.Locks, s.Cluster) }},
		{"auth", func(n *yaml.Node) error { return p.auth(n, &s.Auth) }},
		{"duration", func(n *yaml.Node) (err error) {
			s.Duration, err = p.duration(path{field: "duration"}, n, time.Nanosecond, maxDuration)
			return err
		}},
		{"faults", func(n *yaml.Node) (err error) { s.Faults, err = p.faults(n, s.Duration); return err }},
		{"expect", func(n *yaml.Node) error { return p.expect(n, &s.Expect) }},
	}
	for _, step := range steps {
		if n := f.get(step.key); n != nil {
			if err := step.read(n); err != nil {
				return nil, err
			}
		}
	}
	if ops := s.Workload.ExpectedOperations(s.Duration); ops > OperationsMax/2 {
		at := cmp.Or(f.get("workload"), f.get("duration"))
		return nil, p.errorf(at, "workload: %d clients at %v/s for %v start about %.0f operations, more than a run can record and check (at most %d: lower clients, rate or duration)",
			s.Workload.Clients, s.Workload.Rate, s.Duration, ops, OperationsMax/2)
	}
	if ops := s.Workload.ExpectedOperations(s.Duration) + s.Leases.ExpectedOperations(s.Duration) +
		s.Locks.ExpectedOperations(s.Duration); ops > OperationsMax/2 {
		at := cmp.Or(f.get("leases"), f.get("locks"))
		return nil, p.errorf(at, "the clients, lease holders and lock users start about %.0f operations in %v, more than a run can record and check (at most %d: fewer of them, or less often)",
			ops, s.Duration, OperationsMax/2)
	}
	return s, nil
}

// name checks that the scenario's name can be used as a file name, in a
// URL and on a command line without quoting.
func (p *parser) name(n *yaml.Node) (string, error) {
	at := path{field: "name"}
	s, err := p.str(at, n, maxNameBytes)
	if err != nil {
		return "", err
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return "", p.errorf(n, "name: %q: use only a-z, 0-9 and - (e.g. leader-partition)", clip(s))
		}
	}
	if s == "" {
		return "", p.errorf(n, "name: must not be empty")
	}
	return s, nil
}

func (p *parser) cluster(n *yaml.Node, c *Cluster) error {
	s, err := p.section(path{field: "cluster"}, n, "members", "heartbeat_interval", "election_timeout", "snapshot_count",
		"auto_compaction_retention", "auto_compaction_interval")
	if err != nil {
		return err
	}
	s.integer("members", &c.Members, 1, maxMembers)
	s.duration("heartbeat_interval", &c.HeartbeatInterval, minHeartbeat, maxHeartbeat)
	s.duration("election_timeout", &c.ElectionTimeout, time.Nanosecond, maxElectionTimeout)
	s.integer("snapshot_count", &c.SnapshotCount, 1, maxSnapshotCount)
	s.integer("auto_compaction_retention", &c.AutoCompactionRetention, 0, maxRetention)
	s.duration("auto_compaction_interval", &c.AutoCompactionInterval, time.Millisecond, maxDuration)
	if s.err != nil {
		return s.err
	}
	p.members = c.Members
	// Blame the line that was written: a defaulted election timeout can only
	// be wrong because of the heartbeat interval.
	line := s.f.get("election_timeout")
	if line == nil {
		line = s.f.get("heartbeat_interval")
	}
	return p.electionTimeout(line, c)
}

// electionTimeout applies etcd's rule (at least 5 heartbeats) and raft's
// (both are counted in ticks of one heartbeat interval).
func (p *parser) electionTimeout(n *yaml.Node, c *Cluster) error {
	hb, et := c.HeartbeatInterval, c.ElectionTimeout
	switch {
	case et < minElectionTicks*hb:
		return p.errorf(n, "cluster.election_timeout: %v is less than %d heartbeat intervals (%d x %v = %v), etcd's minimum",
			et, minElectionTicks, minElectionTicks, hb, minElectionTicks*hb)
	case et%hb != 0:
		return p.errorf(n, "cluster.election_timeout: %v is not a whole multiple of heartbeat_interval %v (raft counts both in ticks)",
			et, hb)
	}
	return nil
}

func (p *parser) network(n *yaml.Node, nw *Network) error {
	s, err := p.section(path{field: "network"}, n, "latency", "loss", "duplicate", "reorder")
	if err != nil {
		return err
	}
	s.latency("latency", &nw.Latency)
	s.probability("loss", &nw.Loss)
	s.probability("duplicate", &nw.Duplicate)
	s.probability("reorder", &nw.Reorder)
	return s.err
}

func (p *parser) workload(n *yaml.Node, w *Workload) error {
	at := path{field: "workload"}
	s, err := p.section(at, n, "clients", "rate", "keys", "ops", "timeout", "serializable")
	if err != nil {
		return err
	}
	s.integer("clients", &w.Clients, 0, maxClients)
	if rate := s.field("rate"); rate != nil {
		w.Rate, s.err = p.rate(at.dot("rate"), rate)
	}
	s.integer("keys", &w.Keys, 1, maxKeys)
	if ops := s.field("ops"); ops != nil {
		w.Ops, s.err = p.ops(at.dot("ops"), ops)
	}
	s.duration("timeout", &w.Timeout, time.Nanosecond, maxDuration)
	s.share("serializable", &w.Serializable)
	if s.err != nil {
		return s.err
	}
	if w.Clients > 0 && w.Rate == 0 {
		return p.errorf(s.f.get("rate"), "workload.rate: 0 with %d clients: they would send nothing (set rate above 0, or clients: 0)",
			w.Clients)
	}
	return nil
}

// watchers reads the watchers section. Its fields default as documented
// (count: 4 once the section is written), shares are in [0,1].
func (p *parser) watchers(n *yaml.Node, w *Watchers) error {
	at := path{field: "watchers"}
	s, err := p.section(at, n, "count", "prefix", "prev_kv", "filter", "replay", "progress_every", "cancel_every")
	if err != nil {
		return err
	}
	w.Count = defaultWatchers
	s.integer("count", &w.Count, 0, maxWatchers)
	s.share("prefix", &w.Prefix)
	s.share("prev_kv", &w.PrevKV)
	s.share("filter", &w.Filter)
	s.share("replay", &w.Replay)
	s.duration("progress_every", &w.ProgressEvery, 0, maxDuration)
	s.duration("cancel_every", &w.CancelEvery, 0, maxDuration)
	return s.err
}

// ops reads the operation weights. Weights left out are 0, not their
// defaults: "ops: {put: 1}" means only puts.
func (p *parser) ops(at path, n *yaml.Node) (OpMix, error) {
	var m OpMix
	s, err := p.section(at, n, "put", "get", "delete", "cas", "txn", "range", "delete_range")
	if err != nil {
		return m, err
	}
	s.integer("put", &m.Put, 0, maxOpWeight)
	s.integer("get", &m.Get, 0, maxOpWeight)
	s.integer("delete", &m.Delete, 0, maxOpWeight)
	s.integer("cas", &m.CAS, 0, maxOpWeight)
	s.integer("txn", &m.Txn, 0, maxOpWeight)
	s.integer("range", &m.Range, 0, maxOpWeight)
	s.integer("delete_range", &m.DeleteRange, 0, maxOpWeight)
	if s.err == nil && m.Put+m.Get+m.Delete+m.CAS+m.Txn+m.Range+m.DeleteRange == 0 {
		return m, p.errorf(n, "%severy weight is 0: give at least one of put, get, delete, cas, txn, range, delete_range a weight above 0", at.prefix())
	}
	return m, s.err
}

func (p *parser) expect(n *yaml.Node, e *Expect) error {
	s, err := p.section(path{field: "expect"}, n, "linearizable", "liveness_within", "converge", "durable", "watch", "lease", "lock", "auth")
	if err != nil {
		return err
	}
	s.boolean("linearizable", &e.Linearizable)
	s.duration("liveness_within", &e.LivenessWithin, 0, maxDuration)
	s.boolean("converge", &e.Converge)
	s.boolean("durable", &e.Durable)
	s.boolean("watch", &e.Watch)
	s.boolean("lease", &e.Lease)
	s.boolean("lock", &e.Lock)
	s.boolean("auth", &e.Auth)
	return s.err
}
