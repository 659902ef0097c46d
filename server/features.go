package server

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// etcd 3.7's feature gates (--feature-gates=Name=true,Other=false), as
// `etcd --help` lists them: each with its stage and etcd's default, and
// what plumb does. A gate whose behaviour plumb has, or that does not
// apply to plumb, is accepted; one that asks plumb for behaviour it lacks
// is refused with why; one that only tunes speed is accepted with a
// warning when it is set against what plumb does.
type featureGate struct {
	name  string
	stage string // ALPHA or BETA, as etcd labels etcd_server_feature_enabled
	def   bool   // etcd 3.7.3's default
	// plumb is what plumb always does, or nil when the gate does not
	// apply to plumb (then it reports what was asked).
	plumb *bool
	// tuning: the gate only changes speed, so asking for the other value
	// is a warning; otherwise it is refused.
	tuning bool
	why    string // what plumb does, for the warning or the refusal
}

const (
	gateAllAlpha = "AllAlpha"
	gateAllBeta  = "AllBeta"
)

var (
	plumbOn  = func() *bool { b := true; return &b }()
	plumbOff = func() *bool { b := false; return &b }()
)

// featureGates is etcd 3.7.3's list, in its order (by name).
var featureGates = []featureGate{
	{name: gateAllAlpha, stage: "ALPHA"},
	{name: gateAllBeta, stage: "BETA"},
	{name: "CompactHashCheck", stage: "ALPHA", plumb: plumbOff,
		why: "plumb's leader does not check its followers' compacted hashes"},
	{name: "FastLeaseKeepAlive", stage: "BETA", def: true, plumb: plumbOff, tuning: true,
		why: "plumb's leader answers a keep-alive once a ReadIndex round has confirmed its leadership"},
	{name: "InitialCorruptCheck", stage: "ALPHA", plumb: plumbOff,
		why: "plumb does not compare its data with its peers' before serving"},
	{name: "LeaseCheckpoint", stage: "ALPHA", plumb: plumbOn, tuning: true,
		why: "plumb's leader always checkpoints the remaining TTL of leases, so a new leader does not reset them"},
	{name: "LeaseCheckpointPersist", stage: "ALPHA", plumb: plumbOn, tuning: true,
		why: "plumb always keeps the checkpointed remaining TTL in the backend"},
	{name: "PriorityRequest", stage: "ALPHA", plumb: plumbOff,
		why: "plumb serves requests in the order they come"},
	{name: "SetMemberLocalAddr", stage: "ALPHA", plumb: plumbOff,
		why: "plumb dials peers from the address the system picks"},
	{name: "StopGRPCServiceOnDefrag", stage: "ALPHA", plumb: plumbOff,
		why: "plumb has no gRPC health service to stop (a defragmenting member serves nothing meanwhile)"},
	{name: "TxnModeWriteWithSharedBuffer", stage: "BETA", def: true,
		why: "etcd's backend buffers; plumb's write transactions read their own writes either way"},
}

func findGate(name string) (featureGate, bool) {
	i := slices.IndexFunc(featureGates, func(g featureGate) bool { return g.name == name })
	if i < 0 {
		return featureGate{}, false
	}
	return featureGates[i], true
}

// parseFeatureGates reads etcd's "Name=bool,..." with etcd's errors.
func parseFeatureGates(raw string) (map[string]bool, error) {
	gates := map[string]bool{}
	for _, part := range strings.Split(raw, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if _, known := findGate(name); !known {
			return nil, fmt.Errorf("unrecognized feature gate: %s", name)
		}
		if !ok {
			return nil, fmt.Errorf("missing bool value for %s", name)
		}
		b, err := strconv.ParseBool(strings.TrimSpace(val))
		if err != nil {
			return nil, fmt.Errorf("invalid value of %s=%s, err: %v", name, val, err)
		}
		gates[name] = b
	}
	if len(gates) == 0 {
		return nil, nil // none given: etcd's defaults
	}
	return gates, nil
}

// featureValues is each gate's value as etcd would run with: the given
// value, else AllAlpha or AllBeta for its stage when given, else etcd's
// default.
func featureValues(given map[string]bool) map[string]bool {
	out := map[string]bool{}
	for _, g := range featureGates {
		v, ok := given[g.name]
		switch {
		case ok:
		case g.name == gateAllAlpha || g.name == gateAllBeta:
			v = false
		case g.stage == "ALPHA" && given[gateAllAlpha]:
			v = true
		case g.stage == "BETA" && given[gateAllBeta]:
			v = true
		default:
			v = g.def
		}
		out[g.name] = v
	}
	return out
}

// checkFeatureGates refuses gates that ask for behaviour plumb lacks, and
// returns warnings for the tuning ones set against what plumb does. Only
// what was asked (a gate, or AllAlpha/AllBeta) is judged: etcd's defaults
// are not the user's request.
func checkFeatureGates(given map[string]bool) (warnings []string, err error) {
	values := featureValues(given)
	var refused []string
	for _, g := range featureGates {
		_, asked := given[g.name]
		asked = asked || (g.stage == "ALPHA" && given[gateAllAlpha]) || (g.stage == "BETA" && given[gateAllBeta])
		if !asked || g.plumb == nil || values[g.name] == *g.plumb {
			continue
		}
		msg := fmt.Sprintf("%s=%t: %s", g.name, values[g.name], g.why)
		if g.tuning {
			warnings = append(warnings, msg+"; ignoring it")
		} else {
			refused = append(refused, msg)
		}
	}
	if len(refused) > 0 {
		return warnings, fmt.Errorf("plumb does not support %s", strings.Join(refused, "; "))
	}
	return warnings, nil
}

// featureCollector is etcd's etcd_server_feature_enabled: 1 for each gate
// the member runs with, 0 for the others. A gate plumb's behaviour fixes
// reports that behaviour; one that does not apply reports what was asked.
func featureCollector(given map[string]bool) prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "etcd_server_feature_enabled",
		Help: "Whether or not a feature is enabled. 1 is enabled, 0 is not."}, []string{"name", "stage"})
	values := featureValues(given)
	for _, f := range featureGates {
		v := values[f.name]
		if f.plumb != nil {
			v = *f.plumb
		}
		g.WithLabelValues(f.name, f.stage).Set(boolGauge(v))
	}
	return g
}

// featureGateHelp lists the gates as etcd's help does.
func featureGateHelp() string {
	var parts []string
	for _, g := range featureGates {
		parts = append(parts, fmt.Sprintf("%s=true|false (%s - default=%t)", g.name, g.stage, g.def))
	}
	return strings.Join(parts, ", ")
}
