package faults

import (
	"slices"
	"sort"
	"time"

	"gopkg.in/yaml.v3"
)

// faultKinds are the keys that say what a fault does, in the order
// messages list them.
var faultKinds = []string{"partition", "heal", "kill", "restart", "change_ip", "network", "disk",
	"member_add", "member_promote", "member_remove", "member_replace", "ip_reuse"}

// faultOptions are the sibling keys that belong to one kind of fault.
var faultOptions = []struct{ key, kind string }{
	{"restart_after", "kill"},
	{"member_update_after", "change_ip"},
}

// faults reads the timeline and sorts it by At, keeping file order for
// ties so that "kill then restart at 5s" happens in that order.
func (p *parser) faults(n *yaml.Node, duration time.Duration) ([]Fault, error) {
	list, err := p.sequence(path{field: "faults"}, n, "a list of faults (write faults: [] for none)")
	if err != nil {
		return nil, err
	}
	if len(list) > maxFaults {
		return nil, p.errorf(n, "faults: %d faults; a scenario may have at most %d", len(list), maxFaults)
	}
	// Member names: the initial members, and one more for each fault that
	// adds one (checkMembership then checks each name against the time).
	p.initial = p.members
	p.members += countMemberAdds(list)
	var out []Fault
	for i, fn := range list {
		f, err := p.fault(path{fault: i + 1}, fn, duration)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	if err := p.checkMembership(out); err != nil {
		return nil, err
	}
	return out, nil
}

func (p *parser) fault(at path, n *yaml.Node, duration time.Duration) (Fault, error) {
	f, err := p.mapping(at, n)
	if err != nil {
		return Fault{}, err
	}
	kind, err := p.faultKind(at, f)
	if err != nil {
		return Fault{}, err
	}
	timeNode := f.get("at")
	if timeNode == nil {
		return Fault{}, p.errorf(n, "%s has no at: every fault needs a time, e.g. at: 5s", at)
	}
	fault := Fault{Line: n.Line}
	if fault.At, err = p.duration(at.dot("at"), timeNode, 0, maxDuration); err != nil {
		return Fault{}, err
	}
	if err := p.beforeEnd(at, timeNode, fault.At, duration); err != nil {
		return Fault{}, err
	}
	s := &section{p: p, at: at, f: f}
	return fault, p.faultBody(s, kind, &fault, window{start: fault.At, end: duration})
}

// faultKind finds the one kind key of a fault and checks that every other
// key belongs to that kind.
func (p *parser) faultKind(at path, f *fields) (string, error) {
	kind, err := p.exactlyOne(at, f, "a fault", faultKinds)
	if err != nil {
		// A misspelt kind ("kil") explains a missing kind better.
		if unknown := p.known(at, f, allFaultKeys()...); unknown != nil {
			return "", unknown
		}
		return "", err
	}
	known := []string{"at", kind}
	for _, opt := range faultOptions {
		switch v := f.get(opt.key); {
		case opt.kind == kind:
			known = append(known, opt.key)
		case v != nil:
			return "", p.errorf(v, "%s is only for %s faults; this fault is a %s", at.dot(opt.key), opt.kind, kind)
		}
	}
	return kind, p.known(at, f, known...)
}

func allFaultKeys() []string {
	keys := append([]string{"at"}, faultKinds...)
	for _, opt := range faultOptions {
		keys = append(keys, opt.key)
	}
	return keys
}

func (p *parser) beforeEnd(at path, n *yaml.Node, start, duration time.Duration) error {
	switch {
	case start > duration:
		return p.errorf(n, "%s at %v is after the end of the scenario (duration %v)", at, start, duration)
	case start == duration:
		return p.errorf(n, "%s at %v is at the end of the scenario (duration %v): it would never run", at, start, duration)
	}
	return nil
}

// faultBody reads the value of the kind key and the kind's options.
func (p *parser) faultBody(s *section, kind string, f *Fault, w window) error {
	value := s.f.get(kind)
	at := s.at.dot(kind)
	var err error
	switch kind {
	case "partition":
		f.Partition, err = p.partition(at, value, w)
	case "heal":
		f.Heal, err = p.heal(at, value)
	case "kill":
		f.Kill = &Kill{}
		f.Kill.Target, err = p.killTarget(at, value)
		s.span("restart_after", &f.Kill.RestartAfter, w)
	case "restart":
		f.Restart, err = p.restart(at, value)
	case "change_ip":
		f.ChangeIP = &ChangeIP{}
		f.ChangeIP.Target, err = p.target(at, value)
		s.span("member_update_after", &f.ChangeIP.MemberUpdateAfter, w)
	case "network":
		f.Network, err = p.networkChange(at, value, w)
	case "disk":
		f.Disk, err = p.disk(at, value, w)
	default:
		err = p.memberFault(at, kind, value, f)
	}
	if err != nil {
		return err
	}
	return s.err
}

func (p *parser) heal(at path, n *yaml.Node) (*Heal, error) {
	if err := p.scalar(at, n, "all", "!!str"); err != nil {
		return nil, err
	}
	if n.Value != "all" {
		return nil, p.errorf(n, "%s%q is not a heal (the only one is all)", at.prefix(), clip(n.Value))
	}
	return &Heal{All: true}, nil
}

// killTarget is target, and all: a whole-cluster crash is the one fault
// that acts on every member at once.
func (p *parser) killTarget(at path, n *yaml.Node) (Target, error) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" && n.Value == "all" {
		return Target{All: true}, nil
	}
	return p.target(at, n)
}

// restart takes a member by name: the leader and the followers are alive
// by definition, and only a killed member can be restarted.
func (p *parser) restart(at path, n *yaml.Node) (*Target, error) {
	t, err := p.target(at, n)
	if err != nil {
		return nil, err
	}
	if t.Member == 0 {
		return nil, p.errorf(n, "%s%s: name the killed member instead (n1..n%d)", at.prefix(), t, p.members)
	}
	return &t, nil
}

func (p *parser) partition(at path, n *yaml.Node, w window) (*Partition, error) {
	s, err := p.section(at, n, "isolate", "groups", "one_way", "for")
	if err != nil {
		return nil, err
	}
	how, err := p.exactlyOne(at, s.f, "a partition", []string{"isolate", "groups", "one_way"})
	if err != nil {
		return nil, err
	}
	part := &Partition{}
	value := s.f.get(how)
	switch how {
	case "isolate":
		var t Target
		t, err = p.target(at.dot(how), value)
		part.Isolate = &t
	case "groups":
		part.Groups, err = p.groups(at.dot(how), value)
	case "one_way":
		part.OneWay, err = p.oneWay(at.dot(how), value)
	}
	if err != nil {
		return nil, err
	}
	s.span("for", &part.For, w)
	return part, s.err
}

// groups reads [[n1, n2], [n3]]. A member named twice would belong to two
// sides of one cut, which means nothing.
func (p *parser) groups(at path, n *yaml.Node) ([][]Target, error) {
	list, err := p.sequence(at, n, "a list of groups (e.g. [[n1, n2], [n3]])")
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, p.errorf(n, "%sno groups (write e.g. [[n1, n2], [n3]])", at.prefix())
	}
	seen := map[Target]int{} // target -> 1-based group
	var groups [][]Target
	for i, gn := range list {
		members, err := p.sequence(at, gn, "a group (a list of members, e.g. [n1, n2])")
		if err != nil {
			return nil, err
		}
		if len(members) == 0 {
			return nil, p.errorf(gn, "%sgroup %d is empty", at.prefix(), i+1)
		}
		group, err := p.group(at, members, i+1, seen)
		if err != nil {
			return nil, err
		}
		groups = append(groups, group)
	}
	if len(groups) == 1 && len(groups[0]) == p.members && !slices.ContainsFunc(groups[0], dynamic) {
		return nil, p.errorf(n, "%sone group that holds every member cuts nothing", at.prefix())
	}
	return groups, nil
}

func (p *parser) group(at path, members []*yaml.Node, index int, seen map[Target]int) ([]Target, error) {
	var group []Target
	for _, mn := range members {
		t, err := p.target(at, mn)
		if err != nil {
			return nil, err
		}
		switch prev := seen[t]; {
		case prev == index:
			return nil, p.errorf(mn, "%s%s is twice in group %d", at.prefix(), t, index)
		case prev != 0:
			return nil, p.errorf(mn, "%s%s is in group %d and group %d", at.prefix(), t, prev, index)
		}
		seen[t] = index
		group = append(group, t)
	}
	return group, nil
}

// dynamic reports whether t is resolved only when the fault fires.
func dynamic(t Target) bool { return t.Member == 0 }

func (p *parser) oneWay(at path, n *yaml.Node) (*OneWay, error) {
	s, err := p.section(at, n, "from", "to")
	if err != nil {
		return nil, err
	}
	for _, key := range []string{"from", "to"} {
		if s.f.get(key) == nil {
			return nil, p.errorf(n, "%smissing %s (one_way needs both from and to)", at.prefix(), key)
		}
	}
	from, err := p.targets(at.dot("from"), s.f.get("from"))
	if err != nil {
		return nil, err
	}
	toNode := s.f.get("to")
	to, err := p.targets(at.dot("to"), toNode)
	if err != nil {
		return nil, err
	}
	for i, t := range to {
		if slices.Contains(from, t) {
			return nil, p.errorf(toNode.Content[i], "%s%s is on both sides (from and to)", at.prefix(), t)
		}
	}
	return &OneWay{From: from, To: to}, nil
}

// targets reads a non-empty list of distinct members.
func (p *parser) targets(at path, n *yaml.Node) ([]Target, error) {
	list, err := p.sequence(at, n, "a list of members (e.g. [n1, n2])")
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, p.errorf(n, "%sis empty: name at least one member", at.prefix())
	}
	var out []Target
	for _, mn := range list {
		t, err := p.target(at, mn)
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, t) {
			return nil, p.errorf(mn, "%s%s is named twice", at.prefix(), t)
		}
		out = append(out, t)
	}
	return out, nil
}

func (p *parser) networkChange(at path, n *yaml.Node, w window) (*NetworkChange, error) {
	s, err := p.section(at, n, "latency", "loss", "duplicate", "reorder", "for")
	if err != nil {
		return nil, err
	}
	c := &NetworkChange{}
	s.latencyChange("latency", &c.Latency)
	s.probabilityChange("loss", &c.Loss)
	s.probabilityChange("duplicate", &c.Duplicate)
	s.probabilityChange("reorder", &c.Reorder)
	s.span("for", &c.For, w)
	if s.err != nil {
		return nil, s.err
	}
	if c.Latency == nil && c.Loss == nil && c.Duplicate == nil && c.Reorder == nil {
		return nil, p.errorf(n, "%schanges nothing: set at least one of latency, loss, duplicate, reorder", at.prefix())
	}
	return c, nil
}

// diskEffects are the keys of a disk fault of which it has exactly one.
var diskEffects = []string{"latency", "full", "corrupt", "torn"}

func (p *parser) disk(at path, n *yaml.Node, w window) (*Disk, error) {
	s, err := p.section(at, n, "member", "latency", "full", "corrupt", "torn", "for")
	if err != nil {
		return nil, err
	}
	memberNode := s.f.get("member")
	if memberNode == nil {
		return nil, p.errorf(n, "%smissing member: a disk fault names the member whose disk it is (e.g. member: n2)", at.prefix())
	}
	d := &Disk{}
	if d.Target, err = p.target(at.dot("member"), memberNode); err != nil {
		return nil, err
	}
	effect, err := p.exactlyOne(at, s.f, "a disk fault", diskEffects)
	if err != nil {
		return nil, err
	}
	value := s.f.get(effect)
	switch effect {
	case "latency":
		s.latencyChange(effect, &d.Latency)
	case "full":
		d.Full, err = p.flag(at.dot(effect), value)
	case "corrupt":
		d.Corrupt, err = p.corrupt(at.dot(effect), value)
	case "torn":
		d.Torn, err = p.flag(at.dot(effect), value)
	}
	if err != nil {
		return nil, err
	}
	if err := p.diskFor(at, s.f.get("for"), effect); err != nil {
		return nil, err
	}
	s.span("for", &d.For, w)
	return d, s.err
}

// diskFor rejects a for on the disk faults that happen once.
func (p *parser) diskFor(at path, n *yaml.Node, effect string) error {
	if n == nil {
		return nil
	}
	switch effect {
	case "corrupt":
		return p.errorf(n, "%scorrupt has no for: a flipped bit stays flipped (only latency and full last)",
			at.dot("for").prefix())
	case "torn":
		return p.errorf(n, "%storn has no for: it tears the member's next crash (only latency and full last)",
			at.dot("for").prefix())
	}
	return nil
}

// flag reads a switch that is only ever written on: false would describe
// a fault that changes nothing.
func (p *parser) flag(at path, n *yaml.Node) (bool, error) {
	v, err := p.boolean(at, n)
	if err == nil && !v {
		return false, p.errorf(n, "%sfalse changes nothing; leave the fault out", at.prefix())
	}
	return v, err
}

// corrupt reads which durable file a disk fault damages.
func (p *parser) corrupt(at path, n *yaml.Node) (string, error) {
	if err := p.scalar(at, n, "wal or snapshot", "!!str"); err != nil {
		return "", err
	}
	if n.Value != CorruptWAL && n.Value != CorruptSnapshot {
		return "", p.errorf(n, "%s%q is not a file to corrupt (use wal or snapshot)", at.prefix(), clip(n.Value))
	}
	return n.Value, nil
}
