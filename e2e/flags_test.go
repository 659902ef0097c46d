package e2e_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// etcdHelp is etcd 3.7.3's `etcd --help`.
func etcdHelp(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(filepath.Dir(etcdctl(t)), "etcd")
	if _, err := os.Stat(bin); err != nil {
		missing(t, "no etcd beside etcdctl: "+err.Error())
	}
	_, out, errOut := runBin(t, bin, "--help")
	return out + errOut
}

// TestEveryEtcdFlag: every flag `etcd --help` (3.7.3) lists is taken by
// `plumb node serve` with etcd's default value (bare, for a switch listed
// without one): none is "not defined" or "unknown", and none is refused
// at its default, since the default asks for nothing. Each run also has
// --election-timeout=1, which plumb refuses, so that no member starts:
// the exit status must be 2, with only that complaint.
func TestEveryEtcdFlag(t *testing.T) {
	// etcd lists these switches without a default ('false'), as it lists
	// the value flags that have none.
	etcdBareSwitches := map[string]bool{"memory-mlock": true, "enable-grpc-gateway": true}
	// As etcd, a listen URL given requires its advertised one.
	etcdRequires := map[string]string{
		"listen-peer-urls":   "--initial-advertise-peer-urls is required when --listen-peer-urls is set",
		"listen-client-urls": "--advertise-client-urls is required when --listen-client-urls is set",
	}
	help := etcdHelp(t)
	flagLine := regexp.MustCompile(`(?m)^\s+--([a-z0-9-]+)(?: '([^']*)')?\s*$`)
	matches := flagLine.FindAllStringSubmatch(help, -1)
	if len(matches) < 100 {
		t.Fatalf("found %d flags in etcd --help; the format changed?\n%s", len(matches), help)
	}
	dir := t.TempDir()
	for _, m := range matches {
		name, def := m[1], m[2]
		if name == "config-file" || name == "version" || name == "help" {
			continue
		}
		arg := "--" + name + "=" + def // for a flag listed without a default: empty, no value
		if etcdBareSwitches[name] {
			arg = "--" + name
		}
		code, _, errOut := runBin(t, plumbBin, "node", "serve", "--data-dir", filepath.Join(dir, "d"), arg, "--election-timeout=1")
		bad := []string{"flag provided but not defined", "unknown flag", "--" + name + ":"}
		if name != "election-timeout" && name != "heartbeat-interval" { // named in the planted complaint
			bad = append(bad, "--"+name+"[")
		}
		for _, b := range bad {
			if strings.Contains(errOut, b) {
				t.Errorf("plumb node serve %s: %q in:\n%s", arg, b, errOut)
			}
		}
		complaint := "--election-timeout[1ms]"
		if pair, ok := etcdRequires[name]; ok {
			complaint = pair // etcd's rule, refused before the timings are looked at
		}
		if code != 2 || !strings.Contains(errOut, complaint) {
			t.Errorf("plumb node serve %s --election-timeout=1: exit %d, want 2 and %q:\n%s", arg, code, complaint, errOut)
		}
	}
}

// TestFeatureGatesAsEtcd: plumb's --feature-gates knows etcd 3.7.3's
// gates, each with etcd's stage and default as its help lists them; an
// unknown gate and a gate without a bool are refused with etcd's words;
// a gate plumb lacks the behaviour of is refused naming it, and one it
// has is accepted.
func TestFeatureGatesAsEtcd(t *testing.T) {
	gateLine := regexp.MustCompile(`(?m)^\s+([A-Za-z]+)=true\|false \((ALPHA|BETA) - default=(true|false)\)\s*$`)
	want := gateLine.FindAllString(etcdHelp(t), -1)
	if len(want) < 5 {
		t.Fatalf("found %d feature gates in etcd --help; the format changed?", len(want))
	}
	_, out, _ := runBin(t, plumbBin, "node", "serve", "--help")
	for _, line := range want {
		gate := strings.TrimSpace(line)
		if !strings.Contains(out, gate) {
			t.Errorf("plumb node serve --help lacks etcd's gate %q", gate)
		}
	}
	dir := t.TempDir()
	for _, tc := range []struct{ gates, want string }{
		{"Bogus=true", "unrecognized feature gate: Bogus"},
		{"InitialCorruptCheck", "missing bool value for InitialCorruptCheck"},
		{"InitialCorruptCheck=maybe", `invalid value of InitialCorruptCheck=maybe, err: strconv.ParseBool: parsing "maybe": invalid syntax`},
		{"StopGRPCServiceOnDefrag=true", "--feature-gates: plumb does not support StopGRPCServiceOnDefrag=true: "},
		{"AllAlpha=true", "plumb does not support CompactHashCheck=true"},
		{"LeaseCheckpoint=true,TxnModeWriteWithSharedBuffer=false,AllBeta=true,InitialCorruptCheck=false", ""},
	} {
		_, _, errOut := runBin(t, plumbBin, "node", "serve", "--data-dir", filepath.Join(dir, "d"), "--feature-gates="+tc.gates, "--election-timeout=1")
		if tc.want == "" {
			if strings.Contains(errOut, "feature-gates") {
				t.Errorf("--feature-gates=%s refused:\n%s", tc.gates, errOut)
			}
			continue
		}
		if !strings.Contains(errOut, tc.want) {
			t.Errorf("--feature-gates=%s: want %q in:\n%s", tc.gates, tc.want, errOut)
		}
	}
}
