//go:build js && wasm

package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/plumbdb/plumb/faults"
	"github.com/plumbdb/plumb/sim"
)

// Exit codes, as plumb sim run's.
const (
	exitOK       = 0 // every expectation held
	exitViolated = 1 // a check failed, or a run could not be judged
	exitBadInput = 2 // bad flags or a bad scenario file
)

// main only exits: run returns the status, so that every deferred flush
// and close has happened before os.Exit, which runs none.
func main() { os.Exit(run(os.Args, os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) < 3 || args[1] != "run" {
		fmt.Fprintln(stderr, "usage: plumb.wasm run FILE [--seed N] [--seeds N] [--trace FILE] [--check-timeout D]")
		return exitBadInput
	}
	path := args[2]
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seed := fs.Uint64("seed", 1, "the first seed")
	seeds := fs.Int("seeds", 1, "how many seeds")
	tracePath := fs.String("trace", "", "write the (first) run's events as JSON lines to this file")
	checkTimeout := fs.Duration("check-timeout", 5*time.Minute, "bound on one linearizability check")
	plantBug := fs.String("plant-bug", "", "plant a known bug to prove the checks catch it")
	if err := fs.Parse(args[3:]); err != nil {
		return exitBadInput
	}
	switch {
	case *seeds < 1:
		fmt.Fprintf(stderr, "--seeds must be at least 1, not %d\n", *seeds)
		return exitBadInput
	case *plantBug != "" && !slices.Contains(sim.Bugs, *plantBug):
		fmt.Fprintf(stderr, "--plant-bug: unknown bug %q (known: %s)\n", *plantBug, strings.Join(sim.Bugs, ", "))
		return exitBadInput
	}
	sc, err := faults.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitBadInput
	}
	enc := json.NewEncoder(stdout)
	status := exitOK
	for s := range *seeds {
		opts := sim.Options{Seed: *seed + uint64(s), PlantBug: *plantBug, CheckTimeout: *checkTimeout}
		trace := ""
		if s == 0 {
			trace = *tracePath
		}
		sum, err := runOne(sc, opts, trace)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitViolated
		}
		if sum.Verdict != sim.VerdictOK {
			status = exitViolated
			sum.Reproduce = reproduce(args[0], path, opts)
			if trace != "" {
				sum.Artifacts = []string{trace}
			}
		}
		if err := enc.Encode(sum); err != nil {
			fmt.Fprintln(stderr, err)
			return exitViolated
		}
	}
	return status
}

// runOne runs one seed, writing its trace to tracePath unless that is
// empty. The trace is flushed and closed before runOne returns, whatever
// the verdict: a failing run's trace is the one that matters most.
func runOne(sc *faults.Scenario, opts sim.Options, tracePath string) (sum sim.Summary, err error) {
	var buf *bufio.Writer
	if tracePath != "" {
		f, err := os.Create(tracePath)
		if err != nil {
			return sum, err
		}
		defer func() {
			if cerr := f.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("write trace: %w", cerr)
			}
		}()
		buf = bufio.NewWriter(f)
		opts.Trace = buf
	}
	start := time.Now() // the runner reads the clock only to report speed; sim never does
	r := sim.Run(sc, opts)
	wall := time.Since(start)
	if buf != nil {
		if err := buf.Flush(); err != nil {
			return sum, fmt.Errorf("write trace: %w", err)
		}
	}
	sum = r.Summary()
	sum.WallSeconds = wall.Seconds()
	return sum, nil
}

// reproduce is the command that repeats a run under node.
func reproduce(wasm, path string, opts sim.Options) string {
	cmd := fmt.Sprintf(`node --stack-size=8192 "$(go env GOROOT)/lib/wasm/wasm_exec_node.js" %s run %s --seed %d`, wasm, path, opts.Seed)
	if opts.PlantBug != "" {
		cmd += " --plant-bug " + opts.PlantBug
	}
	return cmd
}
