#!/usr/bin/env bash
# Stage 2: `millions load` against 1 and against 2 web nodes (one event-loop thread each), on
# PostgreSQL under Patroni, all started by `millions up` on a bench topology with its own ports
# and run directory; the second node comes from `millions scale web 2` at run time. Four
# contenders: 1 and 2 nodes at the same open-loop RATE, and 1 and 2 nodes with USERS closed-loop
# users. Interleaved rounds with a warm-up, medians and spread, CPU microseconds per request of
# the web node processes targeted (read after the load's user set-up, from its first progress
# line to its end). Fails on any non-2xx answer or connection error the load counts, or on a
# non-zero exit. Loopback only; every run is bounded in time.
# Settings: RATE (1500/s), USERS (20), DURATION (20 s), ROUNDS, WARMUP, BENCH_SELFTEST=1 (web2 is
# killed during the first two-node run, whose errors must then fail the bench).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-20}
# shellcheck source=bench/lib.sh
. bench/lib.sh
RATE=${RATE:-1500}
USERS=${USERS:-20}
bench_init curl python3
bench_binary
bin=$BENCH_BIN
work=$BENCH_WORK
web1=$(free_port)
python3 - "$work" <<PY
import os, sys; sys.path.insert(0, "tests/integration")
from harness import free_port, node, topology
topology(os.path.join(sys.argv[1], "topology.toml"), name="bench", up=sys.argv[1],
         web={"threads": 1, "blocking_threads": 2, "node": [node("web1", $web1)]},
         postgres=[node("pg1", rest=free_port())], workers={"threads": 1})
PY
runner_pid() { python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["pid"])' "$1"; }
# `millions down`; if it fails, SIGTERM to the runner (it stops its nodes in reverse order too).
bench_before_cleanup() {
  local p
  timeout 120 "$bin" down --topology "$work/topology.toml" >/dev/null 2>&1 && return 0
  p=$(runner_pid "$work/run/runner.json" 2>/dev/null) || return 0
  echo "bench: millions down failed; stopping the runner (pid $p)" >&2
  _bench_stop "$p" 120
}
(cd "$work" && timeout 300 "$bin" up "$work/topology.toml" --detach) ||
  bench_die "millions up failed"
timeout 120 "$bin" scale web 2 --topology "$work/topology.toml" || bench_die "scale web 2 failed"
node_field() { # name field
  "$bin" status --json --topology "$work/topology.toml" | python3 -c '
import json, sys
n = [n for n in json.load(sys.stdin)["nodes"] if n["name"] == sys.argv[1]]
print(n[0][sys.argv[2]] if n and n[0]["state"] == "running" else "")' "$1" "$2"
}
web2=$(node_field web2 address)
[ -n "$web2" ] || bench_die "web2 is not running after scale web 2"
wait_http "http://127.0.0.1:$web1/readyz"
wait_http "http://$web2/readyz"
node_pid() { # name -> its pid, or fail when it is not running
  local p
  p=$(node_field "$1" pid) || return 1
  [ -n "$p" ] && [ "$p" != 0 ] || return 1
  echo "$p"
}
one_pids() { node_pid web1; }
two_pids() {
  local a b
  a=$(node_pid web1) || return 1
  b=$(node_pid web2) || return 1
  echo "$a $b"
}

# load_run NAME TARGETS MODE SECS PIDS_FN [ROUND]: one `millions load`; with ROUND, measured
# (a row in results.tsv), else a warm-up.
load_run() {
  local name=$1 targets=$2 mode=$3 secs=$4 pidfn=$5 round=${6:-} out lp rc=0 seg pids
  local t0='' t1 req0='' res
  local -a args
  out="$work/load-$name"
  args=(load --target "$targets" --users "$USERS" --duration "$secs" --json "$out.json")
  [ "$mode" = open ] && args+=(--rate "$RATE")
  rm -f "$out.json"
  timeout $((secs + 300)) "$bin" "${args[@]}" >"$out.txt" 2>"$out.err" &
  lp=$!
  pids=$("$pidfn") || bench_die "$name: a web node is not running (millions status)"
  # The CPU count starts at the first progress line, after the users' set-up (argon2id sign-ups
  # that are not part of the load), with the requests counted up to that line.
  while kill -0 "$lp" 2>/dev/null; do
    seg=$(tr '\r' '\n' <"$out.err" | grep -m1 -oE '[0-9]+ requests' || true)
    if [ -n "$seg" ]; then
      # shellcheck disable=SC2086 # a list of pids
      t0=$(cpu_ticks $pids)
      req0=${seg% requests}
      if [ "$BENCH_SELFTEST" = 1 ] && [[ $targets == *,* ]]; then
        echo "bench: BENCH_SELFTEST=1: killing web2 during $name, which must fail the bench" >&2
        "$bin" chaos kill web2 --hold 5 --topology "$work/topology.toml" >&2
      fi
      break
    fi
    sleep 0.02
  done
  wait "$lp" || rc=$?
  if [ "$rc" -ne 0 ] || [ ! -s "$out.json" ]; then
    cat "$out.txt" "$out.err" >&2
    bench_die "$name: millions load exited $rc"
  fi
  res=$(python3 - "$out.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bad = {k: v for k, v in r["by_status"].items() if not k.startswith("2")}
if r.get("errors", 0):  # newer `millions load` also counts errors by kind
    bad["errors"] = r["errors"]
if bad:
    print("BAD " + " ".join(f"{k}:{v}" for k, v in sorted(bad.items())))
else:
    print(f'{r["rps"]:.1f} {r["p99_ms"]:.3f} {r["requests"]}')
PY
  )
  if [[ $res == BAD* ]]; then
    cat "$out.txt" >&2
    bench_die "$name: answers that are not 2xx: ${res#BAD }"
  fi
  read -r WRK_RPS WRK_P99_MS WRK_REQUESTS <<<"$res"
  [ -n "$round" ] || return 0
  # shellcheck disable=SC2086
  t1=$(cpu_ticks $pids)
  [ -n "$t0" ] || bench_die "$name: no progress line from millions load"
  [ $((WRK_REQUESTS - req0)) -gt 0 ] || bench_die "$name: no request after the first second"
  cpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n=$((WRK_REQUESTS - req0)) \
    'BEGIN {printf "%.2f", d * 1e6 / hz / n}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$WRK_RPS" "$WRK_P99_MS" "$WRK_REQUESTS" \
    "$cpu" >>"$work/results.tsv"
  printf '    round %s %-12s %10s req/s  p99 %8s ms  %8s cpu_us/req\n' "$round" "$name" \
    "$WRK_RPS" "$WRK_P99_MS" "$cpu" >&2
}

both="http://127.0.0.1:$web1,http://$web2"
names=(one_open two_open one_closed two_closed)
targets=("http://127.0.0.1:$web1" "$both" "http://127.0.0.1:$web1" "$both")
modes=(open open closed closed)
pidfns=(one_pids two_pids one_pids two_pids)
C_NAMES=("${names[@]}")
C_LABELS=("1 node, open $RATE/s" "2 nodes, open $RATE/s" "1 node, closed $USERS users"
  "2 nodes, closed $USERS users")
n=${#names[@]}
for ((i = 0; i < n; i++)); do
  load_run "${names[$i]}-warmup" "${targets[$i]}" "${modes[$i]}" "$WARMUP" "${pidfns[$i]}"
done
for ((r = 1; r <= ROUNDS; r++)); do
  for ((k = 0; k < n; k++)); do
    i=$(((k + r - 1) % n))
    load_run "${names[$i]}" "${targets[$i]}" "${modes[$i]}" "$DURATION" "${pidfns[$i]}" "$r"
  done
done

echo
echo "web nodes: 1 and 2 ([web] threads = 1, blocking_threads = 2 each), PostgreSQL under Patroni,"
echo "millions load --users $USERS, default mix; same machine, same run ($(nproc) cores shared by all)"
printf 'load -d%ss; warm-up %ss per contender; %s rounds, order rotated each round;\n' \
  "$DURATION" "$WARMUP" "$ROUNDS"
printf 'medians over rounds, spread = (max-min)/median; cpu_us/req = utime+stime of the web nodes targeted / requests\n'
bench_report
bench_ratio two_open one_open "2 nodes/1 node, open  "
bench_ratio two_closed one_closed "2 nodes/1 node, closed"
