#!/usr/bin/env bash
# Where a request's CPU goes (issue 14, docs/performance.md): under a bounded wrk load
# (wrk -t1 -c64, loopback only) on (a) the balancer, one thread, round robin, in front of two nginx
# backends returning 224 bytes (as bench/lb.sh), and (b) the web node (`millions single`, one
# thread) answering a cached GET /api/users/{id} (as bench/single.sh), it writes for each:
#   - cpu.txt: the server's CPU µs per request (utime+stime over a plain run, no tool attached);
#   - perf-*.txt: `perf report --no-children` by symbol and by shared object (perf record
#     --call-graph dwarf on the server's pid: the release build has no frame pointers), and
#     steps.txt: the samples split into the request's steps by bench/profile_steps.py;
#   - strace.txt: `strace -c -f` over a whole wrk run, and syscalls per request;
#   - malloc.txt: calls of libc's malloc per request (a uprobe counted by `perf stat`; operator
#     new goes through it), over a whole wrk run.
# Results go to PROFILE_OUT (default /tmp/millions-profile). MILLIONS_BIN selects the binary.
# Needs root (perf probe, strace -p). Settings: DURATION (10), CONNS (64).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init wrk nginx curl perf strace python3
bench_binary
bin=$BENCH_BIN
work=$BENCH_WORK
out=${PROFILE_OUT:-/tmp/millions-profile}
secs=${DURATION:-10}
conns=${CONNS:-64}
mkdir -p "$out"
libc=$(ldd "$bin" | awk '$1 ~ /^libc\.so/ {print $3}')

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# load NAME URL SECS: one wrk run; sets REQS.
load() {
  timeout $(($3 + 30)) wrk -t1 -c"$conns" -d"$3s" "$2" >"$out/$1.wrk" 2>&1
  grep -q 'Non-2xx\|Socket errors' "$out/$1.wrk" && bench_die "$1: errors: $(cat "$out/$1.wrk")"
  REQS=$(awk '/ requests in / {print $1}' "$out/$1.wrk")
}

# profile NAME PID URL
profile() {
  local name=$1 pid=$2 url=$3 t0 t1 hz sp lp calls
  hz=$(getconf CLK_TCK)
  load "$name-warm" "$url" 3
  t0=$(ticks "$pid")
  load "$name-plain" "$url" "$secs"
  t1=$(ticks "$pid")
  awk -v t=$((t1 - t0)) -v hz="$hz" -v r="$REQS" 'BEGIN {
    printf "requests %d  cpu %.2f s  cpu_us/req %.2f\n", r, t / hz, t / hz * 1e6 / r}' |
    tee "$out/$name-cpu.txt"

  # perf: attached for most of the run, so the start and end of the load are not sampled.
  load "$name-perf" "$url" "$secs" &
  lp=$!
  sleep 1
  perf record -q -F 999 --call-graph dwarf,16384 -p "$pid" -o "$out/$name.data" -- sleep $((secs - 2)) \
    2>/dev/null
  wait "$lp" # not a bare wait: the servers are this shell's background jobs too
  perf report -i "$out/$name.data" --no-children --stdio --sort symbol -g none --percent-limit 0.3 \
    2>/dev/null >"$out/$name-perf-symbol.txt"
  perf report -i "$out/$name.data" --no-children --stdio --sort dso -g none \
    2>/dev/null >"$out/$name-perf-dso.txt"
  perf report -i "$out/$name.data" --children --stdio --sort symbol -g none --percent-limit 2 \
    2>/dev/null >"$out/$name-perf-children.txt"
  # The same samples split into the request's steps (bench/profile_steps.py).
  perf script -i "$out/$name.data" -F comm,ip,sym 2>/dev/null | python3 bench/profile_steps.py |
    tee "$out/$name-steps.txt"

  # strace: attached before the load starts and detached after it ends, so every request's
  # syscalls are counted (and only a few of the idle loop's).
  strace -c -f -p "$pid" -o "$out/$name-strace.txt" &
  sp=$!
  sleep 1
  load "$name-strace" "$url" 5
  kill -INT "$sp"
  wait "$sp" || true
  calls=$(awk '$NF == "total" {print $(NF-2)}' "$out/$name-strace.txt")
  echo "requests $REQS  syscalls $calls  per request $(awk -v c="$calls" -v r="$REQS" \
    'BEGIN {printf "%.2f", c / r}')" | tee -a "$out/$name-strace.txt"

  # malloc: a uprobe on libc's malloc, counted over the whole load.
  perf stat -e probe_libc:malloc -p "$pid" -o "$out/$name-malloc.txt" &
  sp=$!
  sleep 1
  load "$name-malloc" "$url" 5
  kill -INT "$sp"
  wait "$sp" || true
  calls=$(awk '/probe_libc:malloc/ {gsub(",", "", $1); print $1}' "$out/$name-malloc.txt")
  echo "requests $REQS  malloc calls $calls  per request $(awk -v c="$calls" -v r="$REQS" \
    'BEGIN {printf "%.2f", c / r}')" | tee -a "$out/$name-malloc.txt"
}

perf probe -q -d probe_libc:malloc 2>/dev/null || true
perf probe -q -x "$libc" malloc
trap 'perf probe -q -d probe_libc:malloc 2>/dev/null || true; bench_cleanup' EXIT

# (a) the balancer in front of two nginx backends, as bench/lb.sh sets them up.
b1=$(free_port)
b2=$(free_port)
bench_nginx_backends 1 "$b1" "$b2"
lb=$(free_port)
lb_admin=$(free_port)
python3 - "$work/lb.toml" <<PY
import sys; sys.path.insert(0, "tests/integration")
from harness import node, topology
topology(sys.argv[1], lb={"threads": 1, "policy": "round_robin",
                          "node": [node("lb1", $lb, admin=$lb_admin)]},
         web=[node("b1", $b1), node("b2", $b2)])
PY
"$bin" serve lb --config "$work/lb.toml" --node lb1 2>"$work/lb.log" &
lb_pid=$!
bench_track "$lb_pid"
wait_http "http://127.0.0.1:$lb/"
echo "== lb (1 thread, round robin, two nginx backends)"
profile lb "$lb_pid" "http://127.0.0.1:$lb/"
_bench_stop "$lb_pid"

# (b) the web node, cached GET /api/users/{id}, as bench/single.sh sets it up.
port=$(free_port)
base="http://127.0.0.1:$port"
cat >"$work/single.toml" <<TOML
[node]
name = "single"
listen = "127.0.0.1:$port"
data_dir = "$work/data"
threads = 1
blocking_threads = 4
log_level = "info"
TOML
"$bin" single --topology "$work/single.toml" 2>"$work/single.log" &
web_pid=$!
bench_track "$web_pid"
wait_http "$base/readyz"
uid=$(curl -fsS -H 'Content-Type: application/json' \
  -d '{"handle":"bench_user","password":"password123"}' "$base/api/users" |
  python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
curl -fsS "$base/api/users/$uid" >/dev/null # fill the cache
echo "== web (single, 1 thread, cached GET /api/users/{id})"
profile web "$web_pid" "$base/api/users/$uid"
echo "results in $out"
