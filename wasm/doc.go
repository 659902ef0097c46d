//go:build js && wasm

// Command wasm is plumb's simulator built for GOOS=js GOARCH=wasm, run
// under node:
//
//	GOOS=js GOARCH=wasm go build -o plumb.wasm ./wasm
//	node --stack-size=8192 "$(go env GOROOT)/lib/wasm/wasm_exec_node.js" plumb.wasm \
//	    run scenarios/partition.yaml --seed 7 [--seeds N] [--trace FILE] [--plant-bug NAME]
//
// It prints one JSON line per seed, a sim.Summary: the very type `plumb sim
// run --json` prints, so the two builds print the same fields with the same
// values (the wall clock's, the reproduction command and the saved files
// aside). It exits 0 when every run passed, 1 when one did not, 2 on bad
// input, as plumb sim run does, and only after the trace file is flushed
// and closed: main does nothing but exit with what run returns.
//
// What belongs here: that runner, a thin driver of sim.Run like plumb sim
// run. What does not: anything the native build does not also run. This
// package exists to prove that the simulation is the same pure function of
// (scenario, seed, code) under WebAssembly as natively: sim's
// TestWasmSameHash builds it, runs it under node and compares trace hashes,
// summaries and a failing run's whole trace with native runs.
//
// Imports: sim, faults and linearizability may come from the project, with
// the standard library, and nothing that does not build for js: never
// server, cmd or node/backend/bolt (bbolt needs mmap). Nothing imports this
// package (deps_test.go at the root enforces it). Every file carries the
// js && wasm build constraint, so native builds and tests of ./... skip it.
package main
