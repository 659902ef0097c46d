package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/plumbdb/plumb/faults"
)

var seedsFlag = flag.Int("sim.seeds", 20, "seeds per scenario in TestScenarios")

const scenarioDir = "../scenarios"

func scenarioPaths(t testing.TB) []string {
	paths, err := filepath.Glob(filepath.Join(scenarioDir, "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no scenarios in %s: %v", scenarioDir, err)
	}
	return paths
}

func load(t testing.TB, path string) *faults.Scenario {
	t.Helper()
	sc, err := faults.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// reproduce is the command that repeats a failed run, printed with every
// failure.
func reproduce(path string, seed uint64, bug string) string {
	cmd := fmt.Sprintf("go run ./cmd/plumb sim run scenarios/%s --seed %d", filepath.Base(path), seed)
	if bug != "" {
		cmd += " --plant-bug " + bug
	}
	return cmd
}

func describe(r *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s seed %d: %s", r.Scenario, r.Seed, r.Verdict)
	for _, c := range r.Checks {
		if !c.OK {
			fmt.Fprintf(&b, "\n  %s failed: %s", c.Name, c.Detail)
		}
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "\n  error: %s", r.Error)
	}
	return b.String()
}

// TestScenarios runs every shipped scenario over -sim.seeds seeds (20 by
// default; CI's matrix and the README's figures use more), and every
// expectation must hold.
func TestScenarios(t *testing.T) {
	for _, path := range scenarioPaths(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			sc := load(t, path)
			for seed := uint64(1); seed <= uint64(*seedsFlag); seed++ {
				r := Run(sc, Options{Seed: seed})
				if r.Verdict != VerdictOK {
					t.Errorf("%s\nreproduce: %s", describe(r), reproduce(path, seed, ""))
				}
			}
		})
	}
}

// TestSameSeedSameRun: a run is a pure function of scenario and seed.
func TestSameSeedSameRun(t *testing.T) {
	for _, path := range scenarioPaths(t) {
		sc := load(t, path)
		a, b := Run(sc, Options{Seed: 7}), Run(sc, Options{Seed: 7})
		if a.TraceHash != b.TraceHash || a.Events != b.Events || a.Ops != b.Ops || a.OpsOK != b.OpsOK {
			t.Errorf("%s seed 7 twice: hash %s, %d events, %d ops; then %s, %d events, %d ops",
				sc.Name, a.TraceHash, a.Events, a.Ops, b.TraceHash, b.Events, b.Ops)
		}
		if c := Run(sc, Options{Seed: 8}); c.TraceHash == a.TraceHash {
			t.Errorf("%s: seeds 7 and 8 gave the same trace hash %s: the seed does not reach the run", sc.Name, a.TraceHash)
		}
	}
}

// TestTraceDoesNotChangeTheRun: writing the trace out is observation only,
// and what is written is the whole run: checkTrace recomputes the trace
// hash from the written lines. A wrong trace must fail that check, and the
// sub-test shows each kind of damage failing it.
func TestTraceDoesNotChangeTheRun(t *testing.T) {
	sc := load(t, filepath.Join(scenarioDir, "partition.yaml"))
	var buf bytes.Buffer
	traced := Run(sc, Options{Seed: 3, Trace: &buf})
	plain := Run(sc, Options{Seed: 3})
	if traced.TraceHash != plain.TraceHash {
		t.Fatalf("hash with trace %s, without %s", traced.TraceHash, plain.TraceHash)
	}
	kinds, err := checkTrace(buf.Bytes(), traced.TraceHash)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"send", "deliver", "call", "return", "leader", "fault"} {
		if kinds[k] == 0 {
			t.Errorf("trace has no %q events: %v", k, kinds)
		}
	}

	t.Run("a wrong trace fails the check", func(t *testing.T) {
		lines := bytes.SplitAfter(buf.Bytes(), []byte("\n"))
		lines = lines[:len(lines)-1] // the empty string after the last newline
		at := func(line []byte) int64 {
			var ev TraceEvent
			if err := json.Unmarshal(line, &ev); err != nil {
				t.Fatal(err)
			}
			return ev.At
		}
		// Lines mid and mid+1 are two different events of one instant, so
		// that swapping them keeps time in order: only the hash can tell.
		mid := len(lines) / 2
		for at(lines[mid]) != at(lines[mid+1]) || bytes.Equal(lines[mid], lines[mid+1]) {
			mid++
		}
		join := func(ls ...[][]byte) []byte {
			var b []byte
			for _, l := range ls {
				b = append(b, bytes.Join(l, nil)...)
			}
			return b
		}
		with := func(i int, line string) []byte {
			return join(lines[:i], [][]byte{[]byte(line)}, lines[i+1:])
		}
		altered := func(line []byte) string {
			var ev TraceEvent
			if err := json.Unmarshal(line, &ev); err != nil {
				t.Fatal(err)
			}
			ev.Detail += "!"
			b, _ := json.Marshal(ev)
			return string(b) + "\n"
		}
		for _, c := range []struct {
			name  string
			trace []byte
		}{
			{"empty", nil},
			{"a line dropped", join(lines[:mid], lines[mid+1:])},
			{"the last line dropped", join(lines[:len(lines)-1])},
			{"the first line dropped", join(lines[1:])},
			{"a line repeated", join(lines[:mid+1], lines[mid:])},
			{"two lines of one instant swapped", join(lines[:mid], [][]byte{lines[mid+1], lines[mid]}, lines[mid+2:])},
			{"a line moved back in time", join(lines[:mid-10], [][]byte{lines[mid+1]}, lines[mid-10:mid+1], lines[mid+2:])},
			{"a field altered", with(mid, altered(lines[mid]))},
			{"an unknown field", with(mid, strings.TrimSuffix(string(lines[mid]), "}\n")+`,"extra":1}`+"\n")},
			{"a line that is not JSON", with(mid, "{\n")},
			{"the last line cut short", buf.Bytes()[:buf.Len()-3]},
			{"an empty line", join(lines[:mid], [][]byte{[]byte("\n")}, lines[mid:])},
		} {
			if _, err := checkTrace(c.trace, traced.TraceHash); err == nil {
				t.Errorf("%s: the check passed", c.name)
			} else {
				t.Logf("%s: %v", c.name, err)
			}
		}
	})
}

// checkTrace checks that trace is exactly the trace of the run whose trace
// hash is wantHash: every line is the JSON encoding of one TraceEvent (the
// event parsed and encoded again gives the line back, so nothing is added,
// renamed or lost in parsing), virtual time never goes back, and the
// events, hashed again as the run hashed them, give wantHash, so no event
// is missing, extra, out of order or altered. It returns how many events
// of each kind the trace holds.
func checkTrace(trace []byte, wantHash string) (map[string]int, error) {
	if len(trace) == 0 {
		return nil, fmt.Errorf("the trace is empty")
	}
	if trace[len(trace)-1] != '\n' {
		return nil, fmt.Errorf("the trace's last line is cut short (no newline)")
	}
	again := newTracer(nil)
	kinds := map[string]int{}
	var prev int64
	for i, line := range bytes.Split(trace[:len(trace)-1], []byte("\n")) {
		var ev TraceEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return nil, fmt.Errorf("trace line %d: %v: %q", i+1, err, line)
		}
		if canonical, err := json.Marshal(ev); err != nil || !bytes.Equal(canonical, line) {
			return nil, fmt.Errorf("trace line %d is not a TraceEvent as the run writes it: %q, want %q", i+1, line, canonical)
		}
		if ev.At < prev {
			return nil, fmt.Errorf("trace line %d goes back in time: %d after %d", i+1, ev.At, prev)
		}
		prev = ev.At
		again.record(ev)
		kinds[ev.Kind]++
	}
	if got := again.sum(); got != wantHash {
		return nil, fmt.Errorf("the trace's %d events hash to %s, the run's trace hash is %s: an event is missing, extra, out of order or altered",
			again.events, got, wantHash)
	}
	return kinds, nil
}

// TestSameHashInAnotherProcess: nothing process-specific (map seeds,
// addresses, time) reaches the run, with watchers, lease holders and lock
// users too. The test binary runs itself again.
func TestSameHashInAnotherProcess(t *testing.T) {
	if os.Getenv("PLUMB_SIM_CHILD") != "" {
		sc := load(t, os.Getenv("PLUMB_SIM_CHILD"))
		fmt.Printf("hash=%s\n", Run(sc, Options{Seed: 11}).TraceHash)
		return
	}
	for _, name := range []string{"ip-change.yaml", "watch.yaml", "lease.yaml", "lock.yaml", "member-add.yaml", "ip-reuse.yaml"} {
		path := filepath.Join(scenarioDir, name)
		want := Run(load(t, path), Options{Seed: 11}).TraceHash
		cmd := exec.Command(os.Args[0], "-test.run=^TestSameHashInAnotherProcess$")
		cmd.Env = append(os.Environ(), "PLUMB_SIM_CHILD="+path)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: child: %v\n%s", name, err, out)
		}
		if !strings.Contains(string(out), "hash="+want) {
			t.Fatalf("%s: this process: hash=%s; child process:\n%s", name, want, out)
		}
	}
}

// TestWasmSameHash builds the simulator for GOOS=js GOARCH=wasm, runs it
// under node, and compares trace hashes with native runs of the same seeds.
// It also holds the wasm runner to the CLI: both print a sim.Summary, so
// `plumb sim run --json` and the wasm runner print the same fields with the
// same values (the wall clock and the command's own aside), for a passing
// run and a failing one; and the trace of a failing run under wasm is
// complete, byte for byte the native run's.
func TestWasmSameHash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a wasm binary and runs node")
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is needed to run the wasm build (apt-get install nodejs); .ci/run installs it")
	}
	goroot := goEnv(t, "GOROOT")
	dir := t.TempDir()
	wasm := filepath.Join(dir, "plumb.wasm")
	build := exec.Command("go", "build", "-o", wasm, "../wasm")
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build wasm: %v\n%s", err, out)
	}
	// runWasm runs the wasm build with args and returns its JSON lines; a
	// run that did not pass exits 1, anything else is a failure.
	runWasm := func(t *testing.T, wantExit int, args ...string) []string {
		t.Helper()
		run := exec.Command(nodeBin, append([]string{"--stack-size=8192",
			filepath.Join(goroot, "lib", "wasm", "wasm_exec_node.js"), wasm}, args...)...)
		var stderr bytes.Buffer
		run.Stderr = &stderr
		out, err := run.Output()
		if code := run.ProcessState.ExitCode(); code != wantExit {
			t.Fatalf("wasm %v: exit %d (%v), want %d\n%s%s", args, code, err, wantExit, out, stderr.Bytes())
		}
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}

	var partition5 string // the wasm line of partition.yaml, seed 5
	for _, name := range []string{"partition", "flaky-network", "watch", "lease", "lock", "member-replace", "ip-reuse"} {
		path := filepath.Join(scenarioDir, name+".yaml")
		const seeds = 2
		lines := runWasm(t, 0, "run", path, "--seed", "5", "--seeds", strconv.Itoa(seeds))
		if len(lines) != seeds {
			t.Fatalf("wasm run of %s printed %d lines, want %d:\n%s", name, len(lines), seeds, strings.Join(lines, "\n"))
		}
		if name == "partition" {
			partition5 = lines[0]
		}
		sc := load(t, path)
		for i, l := range lines {
			var got struct {
				Seed      uint64 `json:"seed"`
				TraceHash string `json:"trace_hash"`
				Verdict   string `json:"verdict"`
			}
			if err := json.Unmarshal([]byte(l), &got); err != nil {
				t.Fatalf("wasm output %q: %v", l, err)
			}
			native := Run(sc, Options{Seed: 5 + uint64(i)})
			if got.Seed != native.Seed || got.TraceHash != native.TraceHash || got.Verdict != string(native.Verdict) {
				t.Errorf("%s seed %d: native hash %s (%s), wasm hash %s (%s)",
					name, native.Seed, native.TraceHash, native.Verdict, got.TraceHash, got.Verdict)
			}
		}
	}

	plumb := filepath.Join(dir, "plumb")
	if out, err := exec.Command("go", "build", "-o", plumb, "../cmd/plumb").CombinedOutput(); err != nil {
		t.Fatalf("build plumb: %v\n%s", err, out)
	}
	runCLI := func(t *testing.T, wantExit int, args ...string) string {
		t.Helper()
		cmd := exec.Command(plumb, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if code := cmd.ProcessState.ExitCode(); code != wantExit {
			t.Fatalf("plumb %v: exit %d (%v), want %d\n%s%s", args, code, err, wantExit, out, stderr.Bytes())
		}
		return strings.TrimSpace(string(out))
	}
	path := filepath.Join(scenarioDir, "partition.yaml")

	t.Run("passing run: same summary as the CLI", func(t *testing.T) {
		cli := runCLI(t, 0, "sim", "run", path, "--seed", "5", "--json")
		sameSummary(t, cli, partition5, "error", "reproduce", "artifacts")
	})

	t.Run("failing run: same summary as the CLI, and the whole trace", func(t *testing.T) {
		sc := load(t, path)
		var native *Result
		var nativeTrace bytes.Buffer
		for seed := uint64(1); seed <= 20 && native == nil; seed++ {
			nativeTrace.Reset()
			if r := Run(sc, Options{Seed: seed, PlantBug: BugStaleReads, Trace: &nativeTrace}); r.Verdict == VerdictViolation {
				native = r
			}
		}
		if native == nil {
			t.Fatalf("no seed of 20 fails with %s on %s", BugStaleReads, path)
		}
		seed := strconv.FormatUint(native.Seed, 10)
		trace := filepath.Join(t.TempDir(), "wasm.trace.jsonl")
		lines := runWasm(t, 1, "run", path, "--seed", seed, "--plant-bug", BugStaleReads, "--trace", trace)
		if len(lines) != 1 {
			t.Fatalf("wasm printed %d lines, want 1:\n%s", len(lines), strings.Join(lines, "\n"))
		}
		cli := runCLI(t, 1, "sim", "run", path, "--seed", seed, "--plant-bug", BugStaleReads, "--json",
			"--artifacts", t.TempDir())
		sameSummary(t, cli, lines[0], "error")

		var got Summary
		if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
			t.Fatal(err)
		}
		if got.Verdict != VerdictViolation || got.TraceHash != native.TraceHash || !slices.Contains(got.Artifacts, trace) ||
			!strings.Contains(got.Reproduce, "--seed "+seed+" --plant-bug "+BugStaleReads) {
			t.Errorf("wasm summary %s\nwant a violation with trace hash %s, the trace among its artifacts and a reproduction",
				lines[0], native.TraceHash)
		}
		written, err := os.ReadFile(trace)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(written, nativeTrace.Bytes()) {
			t.Fatalf("the failing run's trace under wasm has %d lines (sha256 %x), natively %d lines (sha256 %x)",
				bytes.Count(written, []byte("\n")), sha256.Sum256(written),
				bytes.Count(nativeTrace.Bytes(), []byte("\n")), sha256.Sum256(nativeTrace.Bytes()))
		}
	})
}

// sameSummary checks that the CLI's --json line and the wasm runner's line
// are both a sim.Summary with every field (those in absent aside, which
// neither may print), and hold the same values but for the wall clock's and
// the command's own (reproduce, artifacts).
func sameSummary(t *testing.T, cli, wasm string, absent ...string) {
	t.Helper()
	var want []string
	for f := range reflect.TypeFor[Summary]().Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !slices.Contains(absent, name) {
			want = append(want, name)
		}
	}
	slices.Sort(want)
	var c, w map[string]json.RawMessage
	if err := json.Unmarshal([]byte(cli), &c); err != nil {
		t.Fatalf("CLI line %q: %v", cli, err)
	}
	if err := json.Unmarshal([]byte(wasm), &w); err != nil {
		t.Fatalf("wasm line %q: %v", wasm, err)
	}
	if got := slices.Sorted(maps.Keys(c)); !slices.Equal(got, want) {
		t.Errorf("the CLI's fields %v, want %v", got, want)
	}
	if got := slices.Sorted(maps.Keys(w)); !slices.Equal(got, want) {
		t.Errorf("the wasm runner's fields %v, want %v", got, want)
	}
	for _, k := range want {
		switch k {
		case "wall_seconds", "reproduce", "artifacts":
			continue
		}
		if !bytes.Equal(c[k], w[k]) {
			t.Errorf("%s: CLI %s, wasm %s", k, c[k], w[k])
		}
	}
}

// goEnv returns a setting of the go command that runs the tests (not
// runtime.GOROOT, which names where this test binary was built).
func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}

// TestRejectsUnknownBug: a typo in a bug name must not run plumb unplanted.
func TestRejectsUnknownBug(t *testing.T) {
	sc := load(t, filepath.Join(scenarioDir, "baseline.yaml"))
	r := Run(sc, Options{Seed: 1, PlantBug: "stale-read"})
	if r.Verdict != VerdictError || !strings.Contains(r.Error, "stale-read") {
		t.Fatalf("got %s %q", r.Verdict, r.Error)
	}
}

// TestCorruptMemberRefusesToStart: a member whose WAL has a flipped bit in
// the middle refuses to start (it must not come back with a log it cannot
// trust), and the others go on: the run passes its checks.
func TestCorruptMemberRefusesToStart(t *testing.T) {
	path := filepath.Join(scenarioDir, "disk-corrupt.yaml")
	sc := load(t, path)
	for seed := uint64(1); seed <= 5; seed++ {
		r := Run(sc, Options{Seed: seed})
		if r.Verdict != VerdictOK || r.RefusedStarts == 0 {
			t.Errorf("%s; refused starts %d, want at least 1\nreproduce: %s", describe(r), r.RefusedStarts, reproduce(path, seed, ""))
		}
	}
}
