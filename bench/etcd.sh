#!/usr/bin/env bash
# bench/etcd.sh: plumb against etcd 3.7.3, side by side in one run, with
# etcd's own benchmark tool, on two 3-member clusters on this machine
# (127.0.0.1, 127.0.0.2, 127.0.0.3; etcd's default timings). The two
# systems alternate, round after round, and every workload runs on a fresh
# cluster, so a noisy neighbour hurts both alike: compare the columns of
# one run, not runs of different days.
#
#   bench/etcd.sh                 ROUNDS=2 rounds of every workload
#   ROUNDS=3 TOTAL=100000 bench/etcd.sh
#   WORKLOADS="range-l range-s" bench/etcd.sh     some workloads only
#
# Workloads (etcd's benchmark tool, as etcd's docs run it):
#   put-1000   put, 100 connections, 1000 clients, 8-byte keys, 256-byte values, TOTAL requests
#   put-1      put, 1 connection, 1 client, TOTAL_ONE requests
#   range-l    linearizable range of one key, 100 connections, 1000 clients, TOTAL requests
#   range-s    the same, serializable
# It prints requests per second and p99 latency per system and round, the
# median of the rounds, and plumb's ratio to etcd.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-2}
total=${TOTAL:-100000}
total_one=${TOTAL_ONE:-3000}
ref=$(../shared/tools/etcd-ref)
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/plumb" ./cmd/plumb

# start SYSTEM: a fresh 3-member cluster of plumb or etcd, same flags.
start() {
  local sys=$1 bin cluster="" i
  for i in 1 2 3; do cluster+="${cluster:+,}m$i=http://127.0.0.$i:23800"; done
  case $sys in
    plumb) bin=("$work/plumb" node serve) ;;
    etcd) bin=("$ref/etcd") ;;
  esac
  pids=()
  for i in 1 2 3; do
    rm -rf "$work/$sys-m$i"
    "${bin[@]}" --name "m$i" --data-dir "$work/$sys-m$i" \
      --listen-peer-urls "http://127.0.0.$i:23800" --initial-advertise-peer-urls "http://127.0.0.$i:23800" \
      --listen-client-urls "http://127.0.0.$i:23790" --advertise-client-urls "http://127.0.0.$i:23790" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "bench-$sys" \
      --log-level error > "$work/$sys-m$i.log" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 300); do
    if "$ref/etcdctl" --endpoints "$endpoints" endpoint health > /dev/null 2>&1; then return; fi
    sleep 0.1
  done
  echo "$sys did not become healthy; logs in $work" >&2
  tail -5 "$work/$sys-m1.log" >&2
  exit 1
}

stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}

endpoints=127.0.0.1:23790,127.0.0.2:23790,127.0.0.3:23790

# run WORKLOAD: one benchmark; prints "requests/s p99-seconds".
run() {
  local b=("$ref/benchmark" --endpoints "$endpoints")
  case $1 in
    put-1000) b+=(--conns 100 --clients 1000 put --key-size 8 --sequential-keys --total "$total" --val-size 256) ;;
    put-1) b+=(--conns 1 --clients 1 put --key-size 8 --sequential-keys --total "$total_one" --val-size 256) ;;
    range-l | range-s)
      "$ref/etcdctl" --endpoints "$endpoints" put foo "$(head -c 256 /dev/zero | tr '\0' v)" > /dev/null
      b+=(--conns 100 --clients 1000 range foo --consistency "${1#range-}" --total "$total") ;;
  esac
  "${b[@]}" 2>&1 | awk '/Requests\/sec:/ {rps=$2} /99% in/ {p99=$3} END {print rps, p99}'
}

read -r -a workloads <<< "${WORKLOADS:-put-1000 put-1 range-l range-s}"
results="$work/results"
: > "$results"
for ((r = 1; r <= rounds; r++)); do
  for w in "${workloads[@]}"; do
    for sys in plumb etcd; do
      start "$sys"
      read -r rps p99 < <(run "$w")
      stop
      echo "$w $sys $r $rps $p99" | tee -a "$results" >&2
    done
  done
done

python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for w, sys_, r, rps, p99 in rows:
    by.setdefault((w, sys_), []).append((float(rps), float(p99)))
print("| workload | plumb req/s | etcd req/s | ratio | plumb p99 | etcd p99 |")
print("|---|---:|---:|---:|---:|---:|")
for w in dict.fromkeys(k[0] for k in by):
    p, e = by[(w, "plumb")], by[(w, "etcd")]
    prps, erps = statistics.median(x[0] for x in p), statistics.median(x[0] for x in e)
    pp99, ep99 = statistics.median(x[1] for x in p), statistics.median(x[1] for x in e)
    print("| %s | %.0f | %.0f | %.2fx | %.1f ms | %.1f ms |" % (w, prps, erps, prps / erps, pp99 * 1e3, ep99 * 1e3))
PY
