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
#   watch      10,000 watchers (100 streams of 100, over 100 connections)
#              on 100 keys, 100 watchers a key, while 1000 clients put
#              WATCH_PUTS times to those keys: events delivered per second
#              (WATCH_PUTS x 100 events in all)
#   watch-latency  100 watchers of one key (10 streams of 10, over 3
#              connections, one a member) while one client puts it 100
#              times a second, LATENCY_PUTS times: put-to-event latency.
#              The put client is on 127.0.0.1, which is made the leader
#              first: where the leader is moves the p50 threefold (the
#              followers' watchers learn a write one message after its
#              reply when the client is on the leader), in both systems.
#   lease-keepalive  1000 clients over 100 connections, a lease each,
#              LEASE_TOTAL keep-alives (each a KeepAliveOnce)
#   put-auth   put-1000 with authentication on: root (role root) made and
#              auth enabled with etcdctl, then the tool logs in as root
#              (one simple token per client) and puts
#   range-auth range-l with authentication on, as put-auth
# It prints, per system and round, requests per second (events per second
# for watch) and p99 latency (p50 and p99 of the events for watch-latency),
# then the median of the rounds and plumb's ratio to etcd. A run that
# fails or passes RUN_TIMEOUT seconds is recorded as nan.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-2}
total=${TOTAL:-100000}
total_one=${TOTAL_ONE:-3000}
watch_puts=${WATCH_PUTS:-10000}
latency_puts=${LATENCY_PUTS:-1000}
lease_total=${LEASE_TOTAL:-100000}
run_timeout=${RUN_TIMEOUT:-600}
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

# lead ENDPOINT: makes the member at ENDPOINT the leader (etcdctl
# move-leader), so that both systems run a workload with one placement.
lead() {
  local id leader
  read -r id leader < <("$ref/etcdctl" --endpoints "$endpoints" endpoint status -w json | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e["Endpoint"] == sys.argv[1]:
        print("%x %x" % (e["Status"]["header"]["member_id"], e["Status"]["leader"]))' "$1")
  if [[ $id != "$leader" ]]; then
    "$ref/etcdctl" --endpoints "$endpoints" move-leader "$id" > /dev/null
  fi
}

# run WORKLOAD: one benchmark; prints "requests/s p99-seconds", for watch
# "events/s nan", for watch-latency "p50-seconds p99-seconds".
run() {
  local b=(timeout "$run_timeout" "$ref/benchmark" --endpoints "$endpoints") parse=rate
  case $1 in
    put-1000) b+=(--conns 100 --clients 1000 put --key-size 8 --sequential-keys --total "$total" --val-size 256) ;;
    put-1) b+=(--conns 1 --clients 1 put --key-size 8 --sequential-keys --total "$total_one" --val-size 256) ;;
    range-l | range-s)
      "$ref/etcdctl" --endpoints "$endpoints" put foo "$(head -c 256 /dev/zero | tr '\0' v)" > /dev/null
      b+=(--conns 100 --clients 1000 range foo --consistency "${1#range-}" --total "$total") ;;
    watch)
      b+=(--precise --conns 100 --clients 1000 watch --streams 100 --watch-per-stream 100
        --watched-key-total 100 --key-space-size 100 --sequential-keys --key-size 8 --put-total "$watch_puts")
      parse=watch ;;
    watch-latency)
      lead 127.0.0.1:23790
      b+=(--precise --conns 3 --clients 3 watch-latency --streams 10 --watchers-per-stream 10
        --put-rate 100 --put-total "$latency_puts" --key-size 8 --val-size 256)
      parse=latency ;;
    lease-keepalive) b+=(--conns 100 --clients 1000 lease-keepalive --total "$lease_total") ;;
    put-auth | range-auth)
      local ctl=("$ref/etcdctl" --endpoints "$endpoints")
      "${ctl[@]}" put foo "$(head -c 256 /dev/zero | tr '\0' v)" > /dev/null
      "${ctl[@]}" user add root:bench > /dev/null
      "${ctl[@]}" user grant-role root root > /dev/null
      "${ctl[@]}" auth enable > /dev/null
      b+=(--user root:bench --conns 100 --clients 1000)
      if [[ $1 == put-auth ]]; then
        b+=(put --key-size 8 --sequential-keys --total "$total" --val-size 256)
      else
        b+=(range foo --consistency l --total "$total")
      fi ;;
  esac
  # The tool prints one summary per measure; watch and watch-latency print
  # two (watch creation, then events; puts, then events): the last counts.
  "${b[@]}" 2>&1 | awk -v parse="$parse" '
    /Summary:/ {rps = ""; p50 = ""; p99 = ""}
    /Requests\/sec:/ {rps = $2}
    /50% in/ {p50 = $3}
    /99% in/ {p99 = $3}
    END {
      if (parse == "latency") print (p50 == "" ? "nan" : p50), (p99 == "" ? "nan" : p99)
      else if (parse == "watch") print (rps == "" ? "nan" : rps), "nan"
      else print (rps == "" ? "nan" : rps), (p99 == "" ? "nan" : p99)
    }'
}

read -r -a workloads <<< "${WORKLOADS:-put-1000 put-1 range-l range-s watch watch-latency lease-keepalive}"
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
import math, statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for w, sys_, r, a, b in rows:
    by.setdefault((w, sys_), []).append((float(a), float(b)))
def med(xs):
    xs = [x for x in xs if not math.isnan(x)]
    return statistics.median(xs) if xs else math.nan
def ratio(p, e):
    return "%.2fx" % (p / e) if e and not math.isnan(p) and not math.isnan(e) else "-"
def ms(x):
    if math.isnan(x):
        return "-"
    return ("%.2f ms" if x < 1e-3 else "%.1f ms") % (x * 1e3)
names = list(dict.fromkeys(k[0] for k in by))
rates = [w for w in names if w != "watch-latency"]
if rates:
    print("| workload | plumb req/s | etcd req/s | ratio | plumb p99 | etcd p99 |")
    print("|---|---:|---:|---:|---:|---:|")
for w in rates:
    p, e = by.get((w, "plumb"), []), by.get((w, "etcd"), [])
    prps, erps = med(x[0] for x in p), med(x[0] for x in e)
    pp99, ep99 = med(x[1] for x in p), med(x[1] for x in e)
    print("| %s | %.0f | %.0f | %s | %s | %s |" % (w, prps, erps, ratio(prps, erps), ms(pp99), ms(ep99)))
if "watch-latency" in names:
    p, e = by.get(("watch-latency", "plumb"), []), by.get(("watch-latency", "etcd"), [])
    pp50, ep50 = med(x[0] for x in p), med(x[0] for x in e)
    pp99, ep99 = med(x[1] for x in p), med(x[1] for x in e)
    print()
    print("| workload | plumb p50 | etcd p50 | ratio | plumb p99 | etcd p99 | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("| watch-latency | %s | %s | %s | %s | %s | %s |" % (ms(pp50), ms(ep50), ratio(pp50, ep50), ms(pp99), ms(ep99), ratio(pp99, ep99)))
PY
