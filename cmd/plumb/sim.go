package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/plumbdb/plumb/faults"
	"github.com/plumbdb/plumb/linearizability"
	"github.com/plumbdb/plumb/sim"
)

func simCommand() *cli.Command {
	return &cli.Command{
		Name:  "sim",
		Usage: "run simulated clusters under faults and check their histories",
		Subcommands: []*cli.Command{{
			Name:      "run",
			Usage:     "simulate scenario files and check every run (exit 0: all held, 1: a check failed, 2: bad input)",
			ArgsUsage: "FILE [FILE...]",
			Flags: []cli.Flag{
				&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "the first seed"},
				&cli.IntFlag{Name: "seeds", Value: 1, Usage: "how many seeds to run, from --seed on"},
				&cli.BoolFlag{Name: "json", Usage: "print one JSON object per run instead of the summary"},
				&cli.StringFlag{Name: "trace", Usage: "write the run's events as JSON lines to `FILE` (one seed only)"},
				&cli.StringFlag{Name: "html", Usage: "write porcupine's view of the history to `FILE` (one seed only)"},
				&cli.StringFlag{Name: "history", Usage: "write the client history as JSON to `FILE` (one seed only)"},
				&cli.StringFlag{Name: "artifacts", Value: filepath.Join(os.TempDir(), "plumb-artifacts"),
					Usage: "where a failed run's trace, history and porcupine view are saved"},
				&cli.DurationFlag{Name: "check-timeout", Value: 5 * time.Minute, Usage: "bound on one linearizability check"},
				&cli.StringFlag{Name: "plant-bug", Hidden: true, Usage: "plant a known bug to prove the checks catch it"},
			},
			Action: simRun,
		}},
	}
}

type simFlags struct {
	seed         uint64
	seeds        int
	json         bool
	trace, html  string
	history      string
	artifacts    string
	checkTimeout time.Duration
	plantBug     string
}

func simRun(c *cli.Context) error {
	f := simFlags{
		seed: c.Uint64("seed"), seeds: c.Int("seeds"), json: c.Bool("json"),
		trace: c.String("trace"), html: c.String("html"), history: c.String("history"),
		artifacts: c.String("artifacts"), checkTimeout: c.Duration("check-timeout"), plantBug: c.String("plant-bug"),
	}
	switch {
	case c.NArg() == 0:
		return badInput(fmt.Errorf("sim run: name at least one scenario file"))
	case f.seeds < 1:
		return badInput(fmt.Errorf("--seeds must be at least 1, not %d", f.seeds))
	case f.seeds > 1 && (f.trace != "" || f.html != "" || f.history != ""):
		return badInput(fmt.Errorf("--trace, --html and --history take one seed; drop --seeds or pick one with --seed"))
	case f.plantBug != "" && !slices.Contains(sim.Bugs, f.plantBug):
		return badInput(fmt.Errorf("--plant-bug: unknown bug %q (known: %s)", f.plantBug, strings.Join(sim.Bugs, ", ")))
	}
	var scenarios []*faults.Scenario
	var paths []string
	for _, path := range c.Args().Slice() {
		sc, err := faults.Load(path)
		if err != nil {
			return badInput(err)
		}
		scenarios, paths = append(scenarios, sc), append(paths, path)
	}
	// A run's live heap is a few megabytes; the default GC target collects
	// far more often than that needs, and costs about a quarter of the time.
	debug.SetGCPercent(400)
	out := bufio.NewWriter(c.App.Writer)
	defer out.Flush()
	var tally tally
	for i, sc := range scenarios {
		for s := range f.seeds {
			res, wall, err := runOne(sc, f, f.seed+uint64(s))
			if err != nil {
				return cli.Exit(err.Error(), exitViolated)
			}
			tally.add(res)
			if err := report(out, paths[i], res, wall, f); err != nil {
				return cli.Exit(err.Error(), exitViolated)
			}
			out.Flush()
		}
	}
	if !f.json && tally.runs > 1 {
		fmt.Fprintf(out, "%d runs: %d ok, %d violations, %d errors\n", tally.runs, tally.ok, tally.violations, tally.errors)
	}
	if tally.ok != tally.runs {
		out.Flush()
		return cli.Exit("", exitViolated)
	}
	return nil
}

type tally struct{ runs, ok, violations, errors int }

func (t *tally) add(r *sim.Result) {
	t.runs++
	switch r.Verdict {
	case sim.VerdictOK:
		t.ok++
	case sim.VerdictViolation:
		t.violations++
	default:
		t.errors++
	}
}

// runOne runs one seed, writing the files asked for. The wall clock is read
// here, outside the simulator, only to report speed.
func runOne(sc *faults.Scenario, f simFlags, seed uint64) (*sim.Result, time.Duration, error) {
	opts := sim.Options{Seed: seed, PlantBug: f.plantBug, CheckTimeout: f.checkTimeout}
	var traceFile *os.File
	var traceBuf *bufio.Writer
	if f.trace != "" {
		var err error
		if traceFile, err = os.Create(f.trace); err != nil {
			return nil, 0, err
		}
		defer traceFile.Close()
		traceBuf = bufio.NewWriter(traceFile)
		opts.Trace = traceBuf
	}
	start := time.Now()
	res := sim.Run(sc, opts)
	wall := time.Since(start)
	if traceBuf != nil {
		if err := traceBuf.Flush(); err != nil {
			return nil, 0, fmt.Errorf("write trace: %w", err)
		}
	}
	if f.html != "" {
		if err := writeFile(f.html, func(w io.Writer) error { return linearizability.WriteHTML(w, res.Check) }); err != nil {
			return nil, 0, err
		}
	}
	if f.history != "" {
		if err := writeFile(f.history, func(w io.Writer) error { return linearizability.WriteJSON(w, res.History) }); err != nil {
			return nil, 0, err
		}
	}
	return res, wall, nil
}

func writeFile(path string, fill func(io.Writer) error) error {
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(file)
	if err := fill(w); err != nil {
		file.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		file.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return file.Close()
}

func report(w io.Writer, path string, res *sim.Result, wall time.Duration, f simFlags) error {
	var repro string
	var artifacts []string
	if res.Verdict != sim.VerdictOK {
		repro = reproduce(path, res.Seed, f.plantBug)
		artifacts = saveArtifacts(path, res, f)
	}
	if f.json {
		sum := res.Summary()
		sum.WallSeconds, sum.Reproduce, sum.Artifacts = wall.Seconds(), repro, artifacts
		return json.NewEncoder(w).Encode(sum)
	}
	fmt.Fprintf(w, "%s seed %d: %s\n", res.Scenario, res.Seed, res.Verdict)
	fmt.Fprintf(w, "  ops %d: %d ok, %d failed, %d unknown; elections %d; crashes %d; snapshots %d taken, %d installed; longest without a write %v\n",
		res.Ops, res.OpsOK, res.OpsFailed, res.OpsUnknown, res.Elections, res.Crashes, res.Snapshots, res.SnapshotsInstalled,
		res.LongestUnavailable.Round(time.Millisecond))
	if res.TornRepaired > 0 || res.RefusedStarts > 0 {
		fmt.Fprintf(w, "  disks: %d torn writes repaired at restart; %d starts refused on a corrupt disk\n", res.TornRepaired, res.RefusedStarts)
	}
	ratio := res.SimTime.Seconds() / max(wall.Seconds(), 1e-9)
	fmt.Fprintf(w, "  %v simulated in %v (%.0fx real time); %d events (%.0f/s); trace %s\n",
		res.SimTime.Round(time.Millisecond), wall.Round(time.Millisecond), ratio, res.Events,
		float64(res.Events)/max(wall.Seconds(), 1e-9), res.TraceHash[:16])
	for _, c := range res.Checks {
		mark := "ok  "
		switch {
		case c.Skipped:
			mark = "skip"
		case !c.OK:
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %-12s %s\n", mark, c.Name, c.Detail)
	}
	if res.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", res.Error)
	}
	for _, a := range artifacts {
		fmt.Fprintf(w, "  saved: %s\n", a)
	}
	if repro != "" {
		fmt.Fprintf(w, "  reproduce: %s\n", repro)
	}
	return nil
}

// reproduce returns the one-line command that repeats a run.
func reproduce(path string, seed uint64, bug string) string {
	cmd := fmt.Sprintf("%s sim run %s --seed %d", selfCommand(), path, seed)
	if bug != "" {
		cmd += " --plant-bug " + bug
	}
	return cmd
}

// selfCommand is how the user can run this binary again: "go run
// ./cmd/plumb" when it was started that way, else its path.
func selfCommand() string {
	exe, err := os.Executable()
	if err != nil || strings.Contains(exe, "go-build") {
		return "go run ./cmd/plumb"
	}
	if p, err := exec.LookPath(filepath.Base(exe)); err == nil && p == exe {
		return filepath.Base(exe)
	}
	return exe
}

// writeIndented writes v as indented JSON.
func writeIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(v)
}

// saveArtifacts writes a failed run's history, porcupine view, lease and
// lock records and trace (by running the seed again with tracing: runs are
// deterministic).
func saveArtifacts(path string, res *sim.Result, f simFlags) []string {
	if err := os.MkdirAll(f.artifacts, 0o755); err != nil {
		return []string{"(could not save artifacts: " + err.Error() + ")"}
	}
	base := filepath.Join(f.artifacts, fmt.Sprintf("%s-seed%d", res.Scenario, res.Seed))
	var saved []string
	save := func(name string, fill func(io.Writer) error) {
		if err := writeFile(name, fill); err != nil {
			saved = append(saved, "(could not save "+name+": "+err.Error()+")")
			return
		}
		saved = append(saved, name)
	}
	save(base+".history.json", func(w io.Writer) error { return linearizability.WriteJSON(w, res.History) })
	if res.Check.Verdict != "" {
		save(base+".html", func(w io.Writer) error { return linearizability.WriteHTML(w, res.Check) })
	}
	// The lease and lock records index into the history beside them.
	if len(res.Leases.Leases) > 0 || len(res.Leases.Revokes) > 0 {
		save(base+".leases.json", func(w io.Writer) error { return writeIndented(w, res.Leases) })
	}
	if len(res.Locks.Holds) > 0 {
		save(base+".locks.json", func(w io.Writer) error { return writeIndented(w, res.Locks) })
	}
	sc, err := faults.Load(path)
	if err != nil {
		return saved
	}
	save(base+".trace.jsonl", func(w io.Writer) error {
		again := sim.Run(sc, sim.Options{Seed: res.Seed, PlantBug: f.plantBug, CheckTimeout: f.checkTimeout, Trace: w})
		if again.TraceHash != res.TraceHash {
			return fmt.Errorf("the second run's trace hash %s differs from the first's %s: determinism is broken",
				again.TraceHash, res.TraceHash)
		}
		return nil
	})
	return saved
}
