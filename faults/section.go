package faults

import (
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// section reads the optional fields of one mapping into their destinations.
// The first error sticks and later reads do nothing, so that a section
// reads as a plain list of its fields (as bufio.Scanner does).
type section struct {
	p   *parser
	at  path
	f   *fields
	err error
}

// section checks that n is a mapping with only the known fields.
func (p *parser) section(at path, n *yaml.Node, known ...string) (*section, error) {
	f, err := p.mapping(at, n)
	if err != nil {
		return nil, err
	}
	if err := p.known(at, f, known...); err != nil {
		return nil, err
	}
	return &section{p: p, at: at, f: f}, nil
}

// field returns the value of key, or nil when it is absent or an earlier
// field failed.
func (s *section) field(key string) *yaml.Node {
	if s.err != nil {
		return nil
	}
	return s.f.get(key)
}

func (s *section) integer(key string, dst *int, lo, hi int) {
	if n := s.field(key); n != nil {
		*dst, s.err = s.p.integer(s.at.dot(key), n, lo, hi)
	}
}

func (s *section) boolean(key string, dst *bool) {
	if n := s.field(key); n != nil {
		*dst, s.err = s.p.boolean(s.at.dot(key), n)
	}
}

func (s *section) duration(key string, dst *time.Duration, lo, hi time.Duration) {
	if n := s.field(key); n != nil {
		*dst, s.err = s.p.duration(s.at.dot(key), n, lo, hi)
	}
}

func (s *section) probability(key string, dst *float64) {
	if n := s.field(key); n != nil {
		*dst, s.err = s.p.probability(s.at.dot(key), n)
	}
}

// probabilityChange reads an optional override: nil when absent.
func (s *section) probabilityChange(key string, dst **float64) {
	if n := s.field(key); n != nil {
		v := new(float64)
		*v, s.err = s.p.probability(s.at.dot(key), n)
		*dst = v
	}
}

func (s *section) share(key string, dst *float64) {
	if n := s.field(key); n != nil {
		*dst, s.err = s.p.share(s.at.dot(key), n)
	}
}

func (s *section) latency(key string, dst *Range) {
	if n := s.field(key); n != nil {
		*dst, s.err = s.p.latency(s.at.dot(key), n)
	}
}

// latencyChange reads an optional override: nil when absent.
func (s *section) latencyChange(key string, dst **Range) {
	if n := s.field(key); n != nil {
		v := new(Range)
		*v, s.err = s.p.latency(s.at.dot(key), n)
		*dst = v
	}
}

// window is the time a fault's effect may span: from the fault's At to the
// end of the scenario.
type window struct{ start, end time.Duration }

// span reads a duration that starts at w.start and must end by w.end: a
// for, restart_after or member_update_after.
func (s *section) span(key string, dst *time.Duration, w window) {
	n := s.field(key)
	if n == nil {
		return
	}
	at := s.at.dot(key)
	if *dst, s.err = s.p.duration(at, n, 0, maxDuration); s.err != nil {
		return
	}
	if stop := w.start + *dst; stop > w.end {
		s.err = s.p.errorf(n, "%s%v ends at %v, after the end of the scenario (duration %v)",
			at.prefix(), *dst, stop, w.end)
	}
}

func (p *parser) str(at path, n *yaml.Node, maxBytes int) (string, error) {
	if err := p.scalar(at, n, "a string", "!!str"); err != nil {
		return "", err
	}
	if len(n.Value) > maxBytes {
		return "", p.errorf(n, "%sis %d bytes long; the limit is %d", at.prefix(), len(n.Value), maxBytes)
	}
	return n.Value, nil
}

func (p *parser) integer(at path, n *yaml.Node, lo, hi int) (int, error) {
	if err := p.scalar(at, n, "a whole number", "!!int"); err != nil {
		return 0, err
	}
	var v int64
	if err := n.Decode(&v); err != nil || v < int64(lo) || v > int64(hi) {
		return 0, p.errorf(n, "%s%s is out of range (%d..%d)", at.prefix(), show(n.Value), lo, hi)
	}
	return int(v), nil
}

func (p *parser) boolean(at path, n *yaml.Node) (bool, error) {
	if err := p.scalar(at, n, "true or false", "!!bool"); err != nil {
		return false, err
	}
	var v bool
	if err := n.Decode(&v); err != nil {
		return false, p.typeError(at, n, "true or false")
	}
	return v, nil
}

func (p *parser) probability(at path, n *yaml.Node) (float64, error) {
	if err := p.scalar(at, n, "a probability (a number in [0,1))", "!!int", "!!float"); err != nil {
		return 0, err
	}
	var v float64
	if err := n.Decode(&v); err != nil || !(v >= 0 && v < 1) {
		return 0, p.errorf(n, "%s%s is not a probability in [0,1)", at.prefix(), show(n.Value))
	}
	return v, nil
}

// share parses a share of a whole, a number in [0,1].
func (p *parser) share(at path, n *yaml.Node) (float64, error) {
	if err := p.scalar(at, n, "a share (a number in [0,1])", "!!int", "!!float"); err != nil {
		return 0, err
	}
	var v float64
	if err := n.Decode(&v); err != nil || !(v >= 0 && v <= 1) {
		return 0, p.errorf(n, "%s%s is not a share in [0,1]", at.prefix(), show(n.Value))
	}
	return v, nil
}

// duration parses a Go duration ("100ms", "1m30s", or 0) within lo..hi.
func (p *parser) duration(at path, n *yaml.Node, lo, hi time.Duration) (time.Duration, error) {
	if err := p.scalar(at, n, "a duration (e.g. 100ms, 1s)", "!!str", "!!int"); err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		return 0, p.errorf(n, "%s%q: not a duration (use e.g. 100ms, 1s)", at.prefix(), clip(n.Value))
	}
	return d, p.within(at, n, d, lo, hi)
}

// within checks lo <= d <= hi, saying which side d is on.
func (p *parser) within(at path, n *yaml.Node, d, lo, hi time.Duration) error {
	switch {
	case d < 0:
		return p.errorf(n, "%s%v is negative", at.prefix(), d)
	case d < lo && lo == time.Nanosecond:
		return p.errorf(n, "%smust be more than 0", at.prefix())
	case d < lo:
		return p.errorf(n, "%s%v is less than the minimum, %v", at.prefix(), d, lo)
	case d > hi:
		return p.errorf(n, "%s%v is more than the maximum, %v", at.prefix(), d, hi)
	}
	return nil
}

// latency parses a Range: "1ms..10ms", or "5ms" for a fixed latency.
func (p *parser) latency(at path, n *yaml.Node) (Range, error) {
	const want = "a latency range (e.g. 1ms..10ms or 5ms)"
	if err := p.scalar(at, n, want, "!!str", "!!int"); err != nil {
		return Range{}, err
	}
	lo, hi, isRange := strings.Cut(n.Value, "..")
	if !isRange {
		hi = lo
	}
	var r Range
	var errMin, errMax error
	r.Min, errMin = time.ParseDuration(lo)
	r.Max, errMax = time.ParseDuration(hi)
	switch {
	case errMin != nil || errMax != nil:
		return Range{}, p.errorf(n, "%s%q: not %s", at.prefix(), clip(n.Value), want)
	case r.Min < 0:
		return Range{}, p.errorf(n, "%s%v is negative", at.prefix(), r.Min)
	case r.Min > r.Max:
		return Range{}, p.errorf(n, "%s%v: the minimum is more than the maximum", at.prefix(), r)
	case r.Max > maxLatency:
		return Range{}, p.errorf(n, "%s%v is more than the maximum, %v", at.prefix(), r.Max, maxLatency)
	}
	return r, nil
}

// rate parses operations per second: "10/s", or a plain number.
func (p *parser) rate(at path, n *yaml.Node) (float64, error) {
	const want = "a rate (e.g. 10/s or 10)"
	if err := p.scalar(at, n, want, "!!str", "!!int", "!!float"); err != nil {
		return 0, err
	}
	var v float64
	var err error
	if n.ShortTag() == "!!str" {
		number, perSecond := strings.CutSuffix(n.Value, "/s")
		if v, err = strconv.ParseFloat(number, 64); err != nil || !perSecond {
			return 0, p.errorf(n, "%s%q: not %s", at.prefix(), clip(n.Value), want)
		}
	} else if err = n.Decode(&v); err != nil {
		return 0, p.errorf(n, "%s%q: not %s", at.prefix(), clip(n.Value), want)
	}
	if math.IsNaN(v) || v < 0 || v > maxRatePerSecond {
		return 0, p.errorf(n, "%s%s is out of range (0..%d per second)", at.prefix(), show(n.Value), maxRatePerSecond)
	}
	return v, nil
}

// target parses a member name: leader, follower, or n1..n<members>. all
// is an error here; killTarget accepts it.
func (p *parser) target(at path, n *yaml.Node) (Target, error) {
	if err := p.scalar(at, n, "a member ("+p.memberNames()+")", "!!str"); err != nil {
		return Target{}, err
	}
	switch s := n.Value; {
	case s == "all":
		return Target{}, p.errorf(n, "%sall is only a kill target; name one member here", at.prefix())
	case s == "leader":
		return Target{Leader: true}, nil
	case s == "follower" && p.members == 1:
		return Target{}, p.errorf(n, "%sfollower: a 1-member cluster has no followers", at.prefix())
	case s == "follower":
		return Target{Follower: true}, nil
	case !memberName(s):
		return Target{}, p.errorf(n, "%s%q is not a member (use %s)", at.prefix(), clip(s), p.memberNames())
	}
	i, err := strconv.Atoi(n.Value[1:])
	if err != nil || i > p.members {
		return Target{}, p.errorf(n, "%sunknown member %q (%s)", at.prefix(), clip(n.Value), p.clusterSize())
	}
	return Target{Member: i}, nil
}

// memberName reports whether s looks like n1, n2, ...: "n" and a number
// without leading zeros.
func memberName(s string) bool {
	if len(s) < 2 || s[0] != 'n' || s[1] < '1' || s[1] > '9' {
		return false
	}
	return strings.Trim(s[2:], "0123456789") == ""
}

func (p *parser) memberNames() string {
	if p.members == 1 {
		return "leader or n1"
	}
	return "leader, follower or n1..n" + strconv.Itoa(p.members)
}

func (p *parser) clusterSize() string {
	if p.members == 1 {
		return "the cluster has 1 member: n1"
	}
	return "the cluster has " + strconv.Itoa(p.members) + " members: n1..n" + strconv.Itoa(p.members)
}
