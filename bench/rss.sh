#!/usr/bin/env bash
# The web node's memory (issue 14: "web node idle RSS <= 30 MB; RSS after a 60 s browse load
# <= 40 MB plus the L1 bound in use"), in each set-up of SETUPS (default "web single"):
#   web     web1 of the default topology (UP_TOPOLOGY, default topologies/local.toml, under
#           `millions up` on free ports: PostgreSQL under Patroni, Redis, etcd, two web nodes, a
#           balancer), as the topology configures it;
#   single  `millions single` with topologies/single.toml (its port and data directory the
#           bench's).
# For each: VmRSS (and VmHWM, the peak) from /proc/PID/status once the node is ready and has sat
# IDLE_WAIT s (default 5) untouched ("idle"), then after `millions load --mix MIX` (default browse)
# with USERS (default 20) closed-loop users for DURATION_LOAD s (default 60) aimed at that node
# alone ("after"); the L1 bound (cache.capacity_bytes) and the bytes the L1 holds
# (millions_cache_bytes{level="l1"} in /metrics, and every other millions_cache_*bytes series
# there). The targets (idle <= 30 MiB; after <= 40 MiB + the L1 bytes in use) are printed as
# information lines: missing one is not a failure. The run fails (exit 1) on a node that does not
# start, a load that exits non-zero or records any answer that is not 2xx or any error.
# BENCH_SELFTEST=1 adds a closed port (127.0.0.1:9) to the load's targets: its connection errors
# must fail the run (exit 1; exit 3 if the load recorded none and the check was not exercised).
# Loopback only; the load is bounded in time; the exit trap stops everything (`millions down`).
# Settings: SETUPS, DURATION_LOAD, USERS, MIX, IDLE_WAIT, UP_TOPOLOGY, BENCH_SELFTEST, BENCH_KEEP.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
SETUPS=${SETUPS:-web single}
DURATION_LOAD=${DURATION_LOAD:-60}
USERS=${USERS:-20}
MIX=${MIX:-browse}
IDLE_WAIT=${IDLE_WAIT:-5}
TARGET_IDLE_MIB=30
TARGET_AFTER_MIB=40
for s in $SETUPS; do
  [ "$s" = web ] || [ "$s" = single ] || bench_die "SETUPS: '$s' is not web or single"
done
bench_init curl python3
bench_binary
bin=$BENCH_BIN
work=$BENCH_WORK

hwm_kb() { awk '$1 == "VmHWM:" {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
cache_bytes_lines() { # BASE: every millions_cache_*bytes series in /metrics
  curl -fsS "$1/metrics" | grep -E '^millions_cache_[a-z_]*bytes[a-z_]*(\{| )' || true
}
l1_bytes() { # BASE: millions_cache_bytes{level="l1"}, or 0 if the node has no such series
  local v
  v=$(metric_sum "$1" millions_cache_bytes 'level="l1"')
  echo "${v:-0}"
}

# load_check NAME JSON RC: fails unless the load exited 0 and recorded only 2xx and no error.
load_check() {
  local res
  if [ "$3" -ne 0 ] || [ ! -s "$2" ]; then
    cat "$work/load-$1.txt" "$work/load-$1.err" >&2
    bench_die "$1: millions load exited $3"
  fi
  res=$(python3 - "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bad = {k: v for k, v in r.get("by_status", {}).items() if not k.startswith("2")}
if r.get("errors", 0):
    bad["errors"] = r["errors"]
for k, v in (r.get("errors_by_kind") or {}).items():
    if v:
        bad[k] = v
print(("BAD " + " ".join(f"{k}:{v}" for k, v in sorted(bad.items()))) if bad else
      f'{r.get("requests", 0)} {r.get("rps", 0):.0f}')
PY
  )
  if [[ $res == BAD* ]]; then
    cat "$work/load-$1.txt" >&2
    bench_die "$1: millions load recorded answers that are not 2xx or errors: ${res#BAD }"
  fi
  if [ "$BENCH_SELFTEST" = 1 ]; then
    echo "bench: BENCH_SELFTEST=1 but the load recorded no error: the check was not exercised" >&2
    exit 3
  fi
  read -r LOAD_REQUESTS LOAD_RPS <<<"$res"
}

# measure NAME PID BASE L1_BOUND: idle RSS, the load, RSS after; a block in $work/summary-NAME.txt.
measure() {
  local name=$1 pid=$2 base=$3 bound=$4 idle idle_hwm after after_hwm l1 targets rc=0
  sleep "$IDLE_WAIT"
  idle=$(rss_kb "$pid")
  idle_hwm=$(hwm_kb "$pid")
  cache_bytes_lines "$base" >"$work/cache-idle-$name.txt"
  targets=$base
  if [ "$BENCH_SELFTEST" = 1 ]; then
    targets="$base,http://127.0.0.1:9"
    echo "bench: BENCH_SELFTEST=1: the load also targets 127.0.0.1:9 (closed), which must fail the bench" >&2
  fi
  echo "$name: idle RSS $(mib "$idle") MiB; millions load --mix $MIX --users $USERS --duration $DURATION_LOAD on $base" >&2
  timeout $((DURATION_LOAD + 300)) "$bin" load --target "$targets" --mix "$MIX" --users "$USERS" \
    --duration "$DURATION_LOAD" --json "$work/load-$name.json" \
    >"$work/load-$name.txt" 2>"$work/load-$name.err" || rc=$?
  load_check "$name" "$work/load-$name.json" "$rc"
  kill -0 "$pid" 2>/dev/null || bench_die "$name: the node (pid $pid) died during the load"
  after=$(rss_kb "$pid")
  after_hwm=$(hwm_kb "$pid")
  l1=$(l1_bytes "$base")
  cache_bytes_lines "$base" >"$work/cache-after-$name.txt"
  {
    echo
    echo "$name (pid $pid): VmRSS from /proc/PID/status; MiB = 2^20 bytes"
    printf '  %-44s %10s kB %8s MiB   (peak VmHWM %s MiB)\n' "RSS idle (ready, then ${IDLE_WAIT} s untouched)" \
      "$idle" "$(mib "$idle")" "$(mib "$idle_hwm")"
    printf '  %-44s %10s kB %8s MiB   (peak VmHWM %s MiB)\n' "RSS after ${DURATION_LOAD} s of load ($MIX, $USERS users)" \
      "$after" "$(mib "$after")" "$(mib "$after_hwm")"
    printf '  %-44s %s requests, %s/s, all 2xx\n' "load" "$LOAD_REQUESTS" "$LOAD_RPS"
    printf '  %-44s %s bytes (%s MiB)\n' "L1 bound (cache.capacity_bytes)" "$bound" \
      "$(mib $((bound / 1024)))"
    printf '  %-44s %s bytes (%s MiB)\n' "L1 bytes in use after the load" "$l1" "$(mib $((l1 / 1024)))"
    echo "  cache byte series in /metrics after the load:"
    sed 's/^/    /' "$work/cache-after-$name.txt"
    awk -v i="$idle" -v a="$after" -v l="$l1" -v b="$bound" -v ti="$TARGET_IDLE_MIB" \
      -v ta="$TARGET_AFTER_MIB" 'BEGIN {
      lim = ta * 1024 + l / 1024
      printf "  target idle  <= %d MiB: %.1f MiB: %s\n", ti, i / 1024, (i <= ti * 1024) ? "met" : "MISSED"
      printf "  target after <= %d MiB + L1 in use (%.1f MiB) = %.1f MiB: %.1f MiB: %s\n", ta, l / 1048576,
        lim / 1024, a / 1024, (a <= lim) ? "met" : "MISSED"
      printf "  (after less L1 in use: %.1f MiB; against %d MiB + the whole L1 bound: %s)\n",
        (a - l / 1024) / 1024, ta, (a <= ta * 1024 + b / 1024) ? "met" : "MISSED" }'
  } >"$work/summary-$name.txt"
  cat "$work/summary-$name.txt"
}

summary=()
for s in $SETUPS; do
  if [ "$s" = web ]; then
    echo
    echo "== set-up web: starting the default topology (${UP_TOPOLOGY:-topologies/local.toml}) under millions up"
    bench_up_default "$work/up"
    n=$(up_nodes "$UP_TOPO" web | awk '{print $1}')
    a=$(up_node_field "$UP_TOPO" "$n" address)
    p=$(up_node_field "$UP_TOPO" "$n" pid)
    if [ -z "$a" ] || [ -z "$p" ] || [ "$p" = 0 ]; then bench_die "no running web node in millions status"; fi
    wait_http "http://$a/readyz"
    bound=$(python3 -c 'import sys, tomllib
print(tomllib.load(open(sys.argv[1], "rb")).get("cache", {}).get("capacity_bytes", 67108864))' "$UP_TOPO")
    echo "millions up took ${UP_SECS}s; measuring $n ($a, pid $p)"
    measure "web-$n" "$p" "http://$a" "$bound"
    summary+=("$work/summary-web-$n.txt")
  else
    echo
    echo "== set-up single: millions single, topologies/single.toml"
    port=$(free_port)
    "$bin" single --topology topologies/single.toml --port "$port" --data "$work/single-data" \
      2>"$work/single.log" &
    sp=$!
    bench_track "$sp"
    if ! (wait_http "http://127.0.0.1:$port/readyz"); then
      tail -20 "$work/single.log" >&2
      bench_die "millions single does not answer"
    fi
    bound=$(python3 -c 'import sys, tomllib
print(tomllib.load(open(sys.argv[1], "rb")).get("cache", {}).get("capacity_bytes", 67108864))' \
      topologies/single.toml)
    measure single "$sp" "http://127.0.0.1:$port" "$bound"
    summary+=("$work/summary-single.txt")
    _bench_stop "$sp"
  fi
done

echo
echo "==== summary, set-ups: $SETUPS ($(nproc) cores; targets are information, not failures; see bench/README.md)"
cat "${summary[@]}"
