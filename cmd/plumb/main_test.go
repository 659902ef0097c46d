package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func plumb(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(append([]string{"plumb"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestSimRunJSON(t *testing.T) {
	code, out, errOut := plumb(t, "sim", "run", "../../scenarios/partition.yaml", "--seed", "7", "--json")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(out), &line); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	for _, field := range []string{"scenario", "seed", "verdict", "linearizable", "ops", "ops_ok", "ops_failed",
		"ops_unknown", "elections", "sim_seconds", "wall_seconds", "trace_hash"} {
		if _, ok := line[field]; !ok {
			t.Errorf("--json line lacks %q: %s", field, out)
		}
	}
	if line["scenario"] != "partition" || line["seed"] != 7.0 || line["verdict"] != "ok" || len(line["trace_hash"].(string)) != 64 {
		t.Errorf("unexpected line: %s", out)
	}
}

func TestSimRunSummaryAndSeeds(t *testing.T) {
	code, out, _ := plumb(t, "sim", "run", "../../scenarios/baseline.yaml", "--seeds", "2")
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{"baseline seed 1: ok", "baseline seed 2: ok", "linearizable", "converge", "liveness",
		"real time", "2 runs: 2 ok, 0 violations, 0 errors"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestSimRunViolationExitsOneWithReproduction(t *testing.T) {
	dir := t.TempDir()
	code, out, _ := plumb(t, "sim", "run", "../../scenarios/partition.yaml", "--seeds", "20",
		"--plant-bug", "stale-reads", "--artifacts", dir)
	if code != exitViolated {
		t.Fatalf("exit %d, want %d:\n%s", code, exitViolated, out)
	}
	m := regexp.MustCompile(`reproduce: go run ./cmd/plumb sim run ../../scenarios/partition.yaml --seed (\d+) --plant-bug stale-reads`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no reproduction command:\n%s", out)
	}
	for _, suffix := range []string{".history.json", ".html", ".trace.jsonl"} {
		if fi, err := os.Stat(filepath.Join(dir, "partition-seed"+m[1]+suffix)); err != nil || fi.Size() == 0 {
			t.Errorf("artifact %s of seed %s: %v", suffix, m[1], err)
		}
	}
}

// TestSimRunLeaseViolationSavesTheRecords: a run the lease check fails
// saves the lease record beside the history, and the lock record for lock
// users.
func TestSimRunLeaseViolationSavesTheRecords(t *testing.T) {
	dir := t.TempDir()
	code, out, _ := plumb(t, "sim", "run", "../../scenarios/lock.yaml", "--plant-bug", "revoke-leaves-key", "--artifacts", dir)
	if code != exitViolated || !strings.Contains(out, "FAIL lease") {
		t.Fatalf("exit %d, want %d and the lease check failing:\n%s", code, exitViolated, out)
	}
	if !strings.Contains(out, "reproduce: go run ./cmd/plumb sim run ../../scenarios/lock.yaml --seed 1 --plant-bug revoke-leaves-key") {
		t.Errorf("no reproduction command:\n%s", out)
	}
	for _, suffix := range []string{".history.json", ".leases.json", ".locks.json", ".trace.jsonl"} {
		if fi, err := os.Stat(filepath.Join(dir, "lock-seed1"+suffix)); err != nil || fi.Size() == 0 {
			t.Errorf("artifact %s: %v", suffix, err)
		}
	}
}

func TestBadInputExitsTwo(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: x\nduration: 30s\nfaults:\n  - {at: 5s, kill: n4}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sim", "run", bad}, bad + `:4: fault 1: kill: unknown member "n4"`},
		{[]string{"sim", "run", "no-such-file.yaml"}, "no-such-file.yaml"},
		{[]string{"sim", "run"}, "name at least one scenario file"},
		{[]string{"sim", "run", "../../scenarios/baseline.yaml", "--seeds", "0"}, "--seeds must be at least 1"},
		{[]string{"sim", "run", "../../scenarios/baseline.yaml", "--plant-bug", "nope"}, `--plant-bug: unknown bug "nope"`},
		{[]string{"sim", "run", "../../scenarios/baseline.yaml", "--seed", "x"}, "invalid value"},
		{[]string{"sim", "run", "../../scenarios/baseline.yaml", "--seeds", "2", "--trace", "t.jsonl"}, "take one seed"},
	} {
		code, out, errOut := plumb(t, tc.args...)
		if code != exitBadInput || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q (stdout %q); want exit 2 and %q", tc.args, code, errOut, out, tc.want)
		}
	}
}

func TestFlagsAfterArguments(t *testing.T) {
	got := interspersed([]string{"plumb", "sim", "run", "a.yaml", "--seed", "7", "b.yaml", "--json", "--trace=x"}, []*cli.Command{simCommand()})
	want := []string{"plumb", "sim", "run", "--seed", "7", "--json", "--trace=x", "a.yaml", "b.yaml"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v, want %v", got, want)
	}
}
