//go:build js && wasm

// Command wasm is plumb's simulator built for GOOS=js GOARCH=wasm. Under
// node it runs a scenario file and prints one JSON line per seed, with the
// same fields as `plumb sim run --json`; the determinism test compares its
// trace hash with a native run's. It imports the simulator, the scenario
// format and the checker, never the server or bbolt (which do not build
// for js).
//
//	node --stack-size=8192 "$(go env GOROOT)/lib/wasm/wasm_exec_node.js" plumb.wasm \
//	    run scenarios/partition.yaml --seed 7 --seeds 1
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/plumbdb/plumb/faults"
	"github.com/plumbdb/plumb/sim"
)

type line struct {
	Scenario     string      `json:"scenario"`
	Seed         uint64      `json:"seed"`
	Verdict      sim.Verdict `json:"verdict"`
	Linearizable bool        `json:"linearizable"`
	Ops          int         `json:"ops"`
	OpsOK        int         `json:"ops_ok"`
	OpsFailed    int         `json:"ops_failed"`
	OpsUnknown   int         `json:"ops_unknown"`
	Elections    int         `json:"elections"`
	SimSeconds   float64     `json:"sim_seconds"`
	Events       int         `json:"events"`
	WallSeconds  float64     `json:"wall_seconds"`
	TraceHash    string      `json:"trace_hash"`
	Error        string      `json:"error,omitempty"`
}

func main() {
	if len(os.Args) < 3 || os.Args[1] != "run" {
		fmt.Fprintln(os.Stderr, "usage: plumb.wasm run FILE [--seed N] [--seeds N]")
		os.Exit(2)
	}
	path := os.Args[2]
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	seed := fs.Uint64("seed", 1, "the first seed")
	seeds := fs.Int("seeds", 1, "how many seeds")
	tracePath := fs.String("trace", "", "write the (first) run's events as JSON lines to this file")
	if err := fs.Parse(os.Args[3:]); err != nil {
		os.Exit(2)
	}
	sc, err := faults.Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	enc := json.NewEncoder(os.Stdout)
	status := 0
	for s := range *seeds {
		opts := sim.Options{Seed: *seed + uint64(s)}
		if *tracePath != "" && s == 0 {
			f, err := os.Create(*tracePath)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			buf := bufio.NewWriter(f)
			opts.Trace = buf
			defer f.Close()
			defer buf.Flush()
		}
		start := time.Now() // main reads the clock only to report speed; sim never does
		r := sim.Run(sc, opts)
		wall := time.Since(start)
		if r.Verdict != sim.VerdictOK {
			status = 1
		}
		if err := enc.Encode(line{Scenario: r.Scenario, Seed: r.Seed, Verdict: r.Verdict, Linearizable: r.Linearizable,
			Ops: r.Ops, OpsOK: r.OpsOK, OpsFailed: r.OpsFailed, OpsUnknown: r.OpsUnknown, Elections: r.Elections,
			SimSeconds: r.SimTime.Seconds(), Events: r.Events, WallSeconds: wall.Seconds(), TraceHash: r.TraceHash, Error: r.Error}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if status != 0 {
		os.Exit(status)
	}
}
