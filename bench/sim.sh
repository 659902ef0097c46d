#!/usr/bin/env bash
# bench/sim.sh: the simulator's speed, natively and under node's js/wasm, in
# one run, alternating, on the same seeds (this machine is noisy: compare
# the two columns of one run, not runs of different days).
#
#   bench/sim.sh [SCENARIO...]      default: every scenario in scenarios/
#   SEEDS=10 bench/sim.sh           seeds per scenario (default 10)
#
# For each scenario it prints, natively and under wasm: simulated events per
# wall second, simulated seconds per wall second, and client operations
# simulated and checked (porcupine) per wall second. The wall time is the
# whole run, simulation and linearizability check, as `plumb sim run`
# reports it, without process start-up.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${SEEDS:-10}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go build -o "$out/plumb" ./cmd/plumb
GOOS=js GOARCH=wasm go build -o "$out/plumb.wasm" ./wasm
wasm_exec="$(go env GOROOT)/lib/wasm/wasm_exec_node.js"
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(scenarios/*.yaml)
printf '%-16s %-6s %12s %10s %12s\n' scenario build events/s x-realtime ops/s
for sc in "${scenarios[@]}"; do
  : > "$out/native.jsonl"
  : > "$out/wasm.jsonl"
  for ((s = 1; s <= seeds; s++)); do
    "$out/plumb" sim run "$sc" --seed "$s" --json >> "$out/native.jsonl" || true
    node --stack-size=8192 "$wasm_exec" "$out/plumb.wasm" run "$sc" --seed "$s" >> "$out/wasm.jsonl" || true
  done
  for build in native wasm; do
    python3 - "$out/$build.jsonl" "$(basename "$sc" .yaml)" "$build" <<'PY'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
wall = sum(r["wall_seconds"] for r in rs)
print("%-16s %-6s %12.0f %10.0f %12.0f" % (sys.argv[2], sys.argv[3],
      sum(r["events"] for r in rs) / wall, sum(r["sim_seconds"] for r in rs) / wall,
      sum(r["ops"] for r in rs) / wall))
PY
  done
done
