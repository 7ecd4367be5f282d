# shellcheck shell=bash
# bench/lib.sh: what every wrk bench shares, so that each keeps the rule in bench/README.md.
# Source it, call bench_init, start the servers, register contenders with bench_contender, then
# bench_rounds and bench_report / bench_ratio.
#
#   free_port                 a free loopback TCP port
#   bench_binary              BENCH_BIN: a copy of build/millions, safe from a rebuild mid-run
#   wrk_run NAME URL [SECS]   one wrk run with --latency; sets WRK_RPS, WRK_P99_MS, WRK_REQUESTS,
#                             WRK_MBPS (Transfer/sec in MB/s, 2^20 bytes), WRK_CORES (wrk's
#                             CPU time / SECS: near WRK_THREADS, the load generator limits).
#                             The bench fails (exit 1, a "bench: FAIL" line) when wrk exits
#                             non-zero, prints "Non-2xx or 3xx responses" or "Socket errors",
#                             or prints no Requests/sec or no completed request. It sets globals
#                             rather than printing, because an exit inside $(...) would only end
#                             the subshell.
#   cpu_ticks PID...          utime+stime (fields 14 and 15 of /proc/PID/stat), summed, in ticks
#   workers_of PIDFILE        the children of the master named in a pid file (nginx's workers)
#   median N... / spread N... the median; the spread as (max-min)/median in percent
#   resp_bytes URL            "status header_bytes body_bytes" of one GET (curl)
#   bench_up_default DIR      `millions up --detach` of the default topology (UP_TOPOLOGY, default
#                             topologies/local.toml) rewritten to free loopback ports and run dir
#                             DIR/run; `millions down` and the run dir's removal on exit.
#                             Sets UP_TOPO (the file); see up_node_field, up_node_addr.
#   l1_count BASE KIND RESULT the L1 cache lookups of KIND with RESULT (hit|miss), from /metrics
#   bench_user BASE HANDLE    creates a user through the API (POST /api/users); prints its id
#   l1_warm BASE PATH KIND    GETs PATH until one counts an L1 hit (hot keys only go to L1)
#
# Settings (environment): DURATION seconds per measured run (10), ROUNDS (3), WARMUP seconds per
# contender before round 1, not counted (2), CONNS wrk connections (64), WRK_THREADS (1),
# BENCH_SELFTEST=1 points every wrk run at /__bench_selftest_404, which must 404 (the run must
# then fail with exit 1; exit 3 if that path answered 2xx and the check was not exercised),
# BENCH_KEEP=1 keeps the work directory.

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
WRK_THREADS=${WRK_THREADS:-1}
BENCH_SELFTEST=${BENCH_SELFTEST:-0}
CLK_TCK=$(getconf CLK_TCK)

BENCH_WORK=
BENCH_PIDS=()
BENCH_PIDFILES=()
BENCH_UPS=()
C_NAMES=()
C_URLS=()
C_PIDFN=()
C_PIDFN2=()
C_LABELS=()

bench_die() {
  echo "bench: FAIL: $*" >&2
  exit 1
}

free_port() {
  python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

# Makes the work directory and the trap that stops every process the bench registered (with
# bench_track PID or bench_track_pidfile FILE) and removes the directory. A bench may define
# bench_before_cleanup (run first, e.g. `millions down`).
bench_init() {
  BENCH_WORK=$(mktemp -d /tmp/millions-bench.XXXXXX)
  chmod 755 "$BENCH_WORK" # nginx workers run as another user
  : >"$BENCH_WORK/results.tsv"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  for tool in "$@"; do
    command -v "$tool" >/dev/null || bench_die "$tool is not installed (scripts/deps.sh all)"
  done
}

# Copies the binary under test (MILLIONS_BIN, else build/millions) into the work directory and
# sets BENCH_BIN to the copy, so that a rebuild during the run cannot change or remove it.
bench_binary() {
  local src=${MILLIONS_BIN:-$PWD/build/millions}
  [ -x "$src" ] || src=$PWD/build/release/millions
  [ -x "$src" ] || bench_die "no build/millions: run make build"
  cp "$(readlink -f "$src")" "$BENCH_WORK/millions"
  # The libvips module the binary loads from beside itself (src/media/media.cc).
  local module
  module=$(dirname "$(readlink -f "$src")")/millions-media-vips.so
  if [ -f "$module" ]; then cp "$module" "$BENCH_WORK/"; fi
  "$BENCH_WORK/millions" --help >/dev/null 2>&1 || bench_die "$src does not run (a build under way?)"
  # shellcheck disable=SC2034 # read by the bench that sources this file
  BENCH_BIN=$BENCH_WORK/millions
}

bench_track() { BENCH_PIDS+=("$@"); }
bench_track_pidfile() { BENCH_PIDFILES+=("$@"); }

_bench_stop() { # pid [secs]: TERM, then wait up to secs (5), then KILL
  local p=$1 i
  kill "$p" 2>/dev/null || return 0
  for i in $(seq $((${2:-5} * 10))); do
    kill -0 "$p" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$p" 2>/dev/null || true
}

bench_cleanup() {
  local rc=$? p f
  trap - EXIT
  if declare -F bench_before_cleanup >/dev/null; then bench_before_cleanup || true; fi
  for p in "${BENCH_PIDS[@]}"; do _bench_stop "$p"; done
  for f in "${BENCH_PIDFILES[@]}"; do
    if [ -s "$f" ]; then _bench_stop "$(cat "$f")"; fi
  done
  for f in "${BENCH_UPS[@]}"; do _bench_down "$f"; done
  if [ -n "$BENCH_WORK" ]; then
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $BENCH_WORK" >&2; else rm -rf "$BENCH_WORK"; fi
  fi
  exit "$rc"
}

# Waits (up to 10 s) until URL answers 2xx.
wait_http() {
  local i
  for i in $(seq 100); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  bench_die "$1 did not answer within 10 s"
}

_to_ms() { # wrk's 1.23ms / 456.00us / 1.20s / 1.00m -> milliseconds
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
    else if (u != "ms") exit 1
    printf "%.3f\n", n }' || bench_die "wrk printed a latency I cannot read: '$1'"
}

wrk_run() {
  local name=$1 url=$2 secs=${3:-$DURATION} out rc=0 p99
  out="$BENCH_WORK/wrk-$name.txt"
  if [ "$BENCH_SELFTEST" = 1 ]; then
    url="$(sed -E 's#^(https?://[^/]+).*#\1#' <<<"$url")/__bench_selftest_404"
    echo "bench: BENCH_SELFTEST=1: $name runs against $url, which must fail the bench" >&2
  fi
  local -a st0 st1
  read -r -a st0 </proc/$$/stat # no fork: cutime+cstime (fields 16, 17) of this shell
  timeout $((secs + 30)) wrk -t"$WRK_THREADS" -c"$CONNS" -d"${secs}s" --latency "$url" \
    >"$out" 2>&1 || rc=$?
  read -r -a st1 </proc/$$/stat
  # The load generator's busy cores over the run (wrk, reaped: its CPU is in this shell's
  # children's time), to tell a run limited by wrk from one limited by the server.
  WRK_CORES=$(awk -v d=$((st1[15] + st1[16] - st0[15] - st0[16])) -v hz="$CLK_TCK" -v s="$secs" \
    'BEGIN {printf "%.2f", d / hz / s}')
  if [ "$rc" -ne 0 ]; then
    cat "$out" >&2
    bench_die "$name: wrk exited $rc ($url)"
  fi
  if grep -q 'Non-2xx or 3xx responses' "$out"; then
    cat "$out" >&2
    bench_die "$name: $(grep 'Non-2xx or 3xx responses' "$out" | xargs) ($url)"
  fi
  if grep -q 'Socket errors' "$out"; then
    cat "$out" >&2
    bench_die "$name: $(grep 'Socket errors' "$out" | xargs) ($url)"
  fi
  WRK_RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  WRK_REQUESTS=$(awk '/ requests in / {print $1}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  if [ -z "$WRK_RPS" ] || [ -z "$WRK_REQUESTS" ] || [ -z "$p99" ] || [ "$WRK_REQUESTS" -eq 0 ]; then
    cat "$out" >&2
    bench_die "$name: wrk printed no Requests/sec, no latency or no completed request ($url)"
  fi
  WRK_P99_MS=$(_to_ms "$p99")
  WRK_MBPS=$(awk '/^Transfer\/sec:/ {
    v = $2; n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "B") n /= 1048576; else if (u == "KB") n /= 1024; else if (u == "GB") n *= 1024
    else if (u == "TB") n *= 1048576
    printf "%.2f\n", n }' "$out")
  if [ "$BENCH_SELFTEST" = 1 ]; then
    echo "bench: BENCH_SELFTEST=1 but $url answered only 2xx: the check was not exercised" >&2
    exit 3
  fi
}

cpu_ticks() {
  local total=0 p stat
  local -a f
  [ $# -gt 0 ] || bench_die "cpu_ticks: no pid"
  for p in "$@"; do
    stat=$(cat "/proc/$p/stat" 2>/dev/null) || bench_die "process $p is gone"
    stat=${stat##*) } # past "pid (comm) ": field 3 is index 0
    read -r -a f <<<"$stat"
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}

workers_of() {
  local master
  master=$(cat "$1" 2>/dev/null) || bench_die "no pid file $1"
  pgrep -P "$master" | xargs
}

median() {
  printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1}
    END { if (NR == 0) exit 1
          if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

spread() {
  printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1; s += $1}
    END { if (NR == 0) exit 1
          m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
          if (m == 0) print "n/a"; else printf "%.0f%%\n", (a[NR] - a[1]) / m * 100 }'
}

resp_bytes() {
  local code
  code=$(curl -sS -o "$BENCH_WORK/resp.body" -D "$BENCH_WORK/resp.head" -w '%{http_code}' "$1") ||
    bench_die "GET $1 failed"
  echo "$code $(wc -c <"$BENCH_WORK/resp.head") $(wc -c <"$BENCH_WORK/resp.body")"
}

# bench_contender NAME URL PIDS_FN LABEL [PIDS_FN2]: PIDS_FN is a function printing the pids whose
# CPU counts for this contender; PIDS_FN2, when given, the pids whose CPU is printed beside it
# (e.g. the web nodes behind a proxy: column "+cpu_us/req"). Prints what one GET of URL returns
# (status, header and body bytes) and fails unless it is 2xx.
bench_contender() {
  local res st hb bb
  res=$(resp_bytes "$2")
  read -r st hb bb <<<"$res"
  [[ $st == 2* ]] || bench_die "$1: GET $2 answered $st"
  printf '  %-26s %s  status %s, headers %s bytes, body %s bytes\n' "$1" "$2" "$st" "$hb" "$bb"
  C_NAMES+=("$1")
  C_URLS+=("$2")
  C_PIDFN+=("$3")
  C_PIDFN2+=("${5:-}")
  C_LABELS+=("$4")
}

bench_reset() {
  C_NAMES=()
  C_URLS=()
  C_PIDFN=()
  C_PIDFN2=()
  C_LABELS=()
  : >"$BENCH_WORK/results.tsv"
}

_pids_of() {
  local pids
  pids=$("${C_PIDFN[$1]}")
  [ -n "$pids" ] || bench_die "${C_NAMES[$1]}: no process to measure"
  echo "$pids"
}

_pids2_of() { # the pids of PIDS_FN2, or nothing
  local pids
  [ -n "${C_PIDFN2[$1]:-}" ] || return 0
  pids=$("${C_PIDFN2[$1]}")
  [ -n "$pids" ] || bench_die "${C_NAMES[$1]}: no process to measure beside it"
  echo "$pids"
}

# A bench may define bench_check_before NAME ROUND and bench_check_after NAME ROUND (ROUND is
# "warm-up" for the warm-up run): called around each wrk run of contender NAME, outside the CPU
# window, e.g. to read cache hit counters and fail the run on a miss.
_bench_hook() { # before|after index round
  if declare -F "bench_check_$1" >/dev/null; then "bench_check_$1" "${C_NAMES[$2]}" "$3"; fi
}

_bench_measure() { # index round
  local i=$1 r=$2 pids pids2 t0 t1 u0=0 u1=0 cpu cpu2=
  _bench_hook before "$i" "$r"
  pids=$(_pids_of "$i")
  pids2=$(_pids2_of "$i")
  # shellcheck disable=SC2086 # a list of pids
  t0=$(cpu_ticks $pids)
  # shellcheck disable=SC2086
  [ -z "$pids2" ] || u0=$(cpu_ticks $pids2)
  wrk_run "${C_NAMES[$i]}" "${C_URLS[$i]}"
  # shellcheck disable=SC2086
  t1=$(cpu_ticks $pids)
  # shellcheck disable=SC2086
  [ -z "$pids2" ] || u1=$(cpu_ticks $pids2)
  cpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$WRK_REQUESTS" \
    'BEGIN {printf "%.2f", d * 1e6 / hz / n}')
  [ -z "$pids2" ] || cpu2=$(awk -v d=$((u1 - u0)) -v hz="$CLK_TCK" -v n="$WRK_REQUESTS" \
    'BEGIN {printf "%.2f", d * 1e6 / hz / n}')
  _bench_hook after "$i" "$r"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${C_NAMES[$i]}" "$r" "$WRK_RPS" "$WRK_P99_MS" \
    "$WRK_REQUESTS" "$cpu" "$cpu2" "$WRK_MBPS" "$WRK_CORES" >>"$BENCH_WORK/results.tsv"
  printf '    round %s %-26s %10s req/s  p99 %8s ms  %8s cpu_us/req%s\n' "$r" "${C_NAMES[$i]}" \
    "$WRK_RPS" "$WRK_P99_MS" "$cpu" "${cpu2:+  +$cpu2 behind}" >&2
}

# A warm-up run per contender (WARMUP s, checked like the others, not counted), then ROUNDS
# rounds; round r runs every contender once, starting at contender r-1 (rotated), so drift on a
# shared machine falls on each alike.
bench_rounds() {
  local n=${#C_NAMES[@]} i k r
  [ "$n" -gt 0 ] || bench_die "no contender"
  for ((i = 0; i < n; i++)); do
    _pids_of "$i" >/dev/null
    _bench_hook before "$i" warm-up
    wrk_run "${C_NAMES[$i]}-warmup" "${C_URLS[$i]}" "$WARMUP"
    _bench_hook after "$i" warm-up
  done
  for ((r = 1; r <= ROUNDS; r++)); do
    for ((k = 0; k < n; k++)); do
      _bench_measure $(((k + r - 1) % n)) "$r"
    done
  done
}

_col() { # name column -> values across rounds
  awk -F'\t' -v n="$1" -v c="$2" '$1 == n {print $c}' "$BENCH_WORK/results.tsv"
}

bench_settings() {
  printf 'wrk -t%s -c%s -d%ss --latency, loopback; warm-up %ss per contender; %s rounds, order rotated each round;\n' \
    "$WRK_THREADS" "$CONNS" "$DURATION" "$WARMUP" "$ROUNDS"
  printf 'medians over rounds, spread = (max-min)/median; cpu_us/req = utime+stime of the processes under test / requests\n'
}

# One line per contender: medians and spreads of requests/s, p99 and CPU per request; when some
# contender has a PIDS_FN2, a last column "+cpu_us/req" (median) of those processes ("-" if none).
bench_report() {
  local i name extra=0
  local -a v
  for ((i = 0; i < ${#C_NAMES[@]}; i++)); do [ -z "${C_PIDFN2[$i]:-}" ] || extra=1; done
  printf '%-34s %11s %6s %9s %6s %11s %6s' contender requests/s spread p99_ms spread \
    cpu_us/req spread
  if [ "$extra" = 1 ]; then printf ' %12s\n' +cpu_us/req; else printf '\n'; fi
  for ((i = 0; i < ${#C_NAMES[@]}; i++)); do
    name=${C_NAMES[$i]}
    mapfile -t v < <(_col "$name" 3)
    printf '%-34s %11.0f %6s' "${C_LABELS[$i]}" "$(median "${v[@]}")" "$(spread "${v[@]}")"
    mapfile -t v < <(_col "$name" 4)
    printf ' %9.2f %6s' "$(median "${v[@]}")" "$(spread "${v[@]}")"
    mapfile -t v < <(_col "$name" 6)
    printf ' %11.1f %6s' "$(median "${v[@]}")" "$(spread "${v[@]}")"
    if [ "$extra" = 0 ]; then
      printf '\n'
    elif [ -n "${C_PIDFN2[$i]:-}" ]; then
      mapfile -t v < <(_col "$name" 7)
      printf ' %12.1f\n' "$(median "${v[@]}")"
    else
      printf ' %12s\n' -
    fi
  done
}

# bench_ratio A B LABEL: the ratios A/B of requests/s and of CPU per request, each the median of
# the per-round ratios (A and B ran in the same round), with their min-max across rounds.
bench_ratio() {
  local col what
  for col in 3 6; do
    [ "$col" = 3 ] && what="throughput" || what="cpu/request"
    paste <(_col "$1" "$col") <(_col "$2" "$col") | awk -v l="$3" -v w="$what" '
      $2 > 0 { r[++n] = $1 / $2 }
      END { if (n == 0) { printf "%s %s: n/a\n", l, w; exit }
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
            m = (n % 2) ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2
            printf "%s %-12s %.2fx  (rounds %.2f-%.2f)\n", l, w, m, r[1], r[n] }'
  done
}

# Two nginx backends (WORKERS worker processes) on 127.0.0.1:B1 and :B2 answering every path with
# the same 224-byte JSON file ($work/www/index.json), and 404 on /__bench_selftest_404
# (BENCH_SELFTEST=1); pid file $work/backends.pid, stopped with the bench.
bench_nginx_backends() {
  local workers=$1 p1=$2 p2=$3
  mkdir -p "$work/www"
  printf '{"ok":true,"payload":"%s"}' "$(head -c 200 /dev/zero | tr '\0' x)" >"$work/www/index.json"
  cat >"$work/backends.conf" <<NGINX
worker_processes $workers;
daemon on;
pid $work/backends.pid;
error_log $work/backends-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  default_type application/json;
  server {
    listen 127.0.0.1:$p1;
    listen 127.0.0.1:$p2;
    root $work/www;
    location / { try_files /index.json =404; }
    location = /__bench_selftest_404 { return 404; } # for BENCH_SELFTEST=1
  }
}
NGINX
  bench_track_pidfile "$work/backends.pid"
  nginx -c "$work/backends.conf"
  wait_http "http://127.0.0.1:$p1/"
  wait_http "http://127.0.0.1:$p2/"
}

# --- The default topology under `millions up` (bench/lb.sh, bench/single.sh, bench/rss.sh).

# bench_up_default DIR: writes DIR/topology.toml, the default topology (UP_TOPOLOGY, default
# topologies/local.toml) with every address on a free loopback port, [runner] run_dir DIR/run and
# the TLS pair and the edge's files under it; everything else (node counts, threads, policies,
# cache) as in the file. Then `millions up --detach` (from DIR, at most 300 s). The exit trap
# runs `millions down` for it (or stops its runner when down fails) and removes DIR/run. Sets
# UP_TOPO and UP_SECS (start time).
# bench_lb_config UP_TOPO OUT THREADS PORT ADMIN "NAMES" "ADDRS" [POLICY]: a balancer's config
# in OUT with UP_TOPO's [lb] keys (its policy unless POLICY), THREADS threads, listening on PORT
# (admin ADMIN), in front of the web nodes NAMES at ADDRS (space-separated, in order).
bench_lb_config() {
  python3 - "$@" <<'PY'
import sys, tomllib
sys.path.insert(0, "tests/integration")
from harness import node, topology
src, out, threads, port, admin, names, addrs = sys.argv[1:8]
t = tomllib.load(open(src, "rb"))
lb = {k: v for k, v in t.get("lb", {}).items() if k not in ("node", "tls_cert", "tls_key")}
lb.update(threads=int(threads), node=[node("lb1", int(port), admin=int(admin))])
if len(sys.argv) > 8 and sys.argv[8]:
    lb["policy"] = sys.argv[8]
topology(out, lb=lb, web=[{"name": n, "listen": a} for n, a in zip(names.split(), addrs.split())])
PY
}

bench_up_default() {
  local dir=$1 t0
  mkdir -p "$dir"
  chmod 755 "$dir" # PostgreSQL runs as another user
  UP_TOPO=$dir/topology.toml
  python3 - "${UP_TOPOLOGY:-topologies/local.toml}" "$UP_TOPO" "$dir/run" <<'PY' ||
import sys, tomllib
sys.path.insert(0, "tests/integration")
from harness import free_port, topology
src, out, run = sys.argv[1:4]
ADDR = ("listen", "admin", "rest", "peer_listen", "tls_listen")
def fix(v):
    if isinstance(v, dict):
        return {k: f"127.0.0.1:{free_port()}" if k in ADDR and isinstance(x, str) else fix(x)
                for k, x in v.items()}
    return [fix(x) for x in v] if isinstance(v, list) else v
with open(src, "rb") as f:
    t = fix(tomllib.load(f))
t.pop("deployment", None)  # name= below writes [deployment] name = "bench" and [[dc]] dc1
if [d.get("name") for d in t.pop("dc", [{"name": "dc1"}])] != ["dc1"]:
    sys.exit(f"{src}: bench_up_default handles one data centre, dc1")
t.setdefault("runner", {})["run_dir"] = run
if "lb" in t:
    for k in ("tls_cert", "tls_key"):
        if k in t["lb"]:
            t["lb"][k] = f"{run}/tls/{t['lb'][k].rsplit('/', 1)[-1]}"
if "edge" in t:  # the edge's disk tier and purge token: this run's, not the repository's run/
    for k in ("disk_dir", "purge_token_file"):
        if k in t["edge"]:
            t["edge"][k] = f"{run}/{t['edge'][k].rsplit('/', 1)[-1]}"
topology(out, name="bench", **t)
PY
    bench_die "could not write the bench topology from ${UP_TOPOLOGY:-topologies/local.toml}"
  BENCH_UPS+=("$UP_TOPO")
  t0=$(date +%s)
  if ! (cd "$dir" && timeout 300 "$BENCH_BIN" up "$UP_TOPO" --detach) >"$dir/up.log" 2>&1; then
    tail -30 "$dir/up.log" >&2
    bench_die "millions up failed (${UP_TOPOLOGY:-topologies/local.toml}, log above)"
  fi
  # shellcheck disable=SC2034 # read by the bench that sources this file
  UP_SECS=$(($(date +%s) - t0))
}

_bench_down() { # topology: `millions down`; if it fails, SIGTERM to the runner; remove run dir
  local topo=$1 dir p
  dir=$(dirname "$topo")
  if ! timeout 120 "$BENCH_BIN" down --topology "$topo" >>"$dir/down.log" 2>&1; then
    p=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["pid"])' \
      "$dir/run/runner.json" 2>/dev/null) || p=
    if [ -n "$p" ]; then
      echo "bench: millions down failed; stopping the runner (pid $p)" >&2
      _bench_stop "$p" 120
    fi
  fi
  [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$dir/run"
}

# up_node_field TOPO NAME FIELD: FIELD (address, pid, ...) of node NAME from `millions status
# --json`, or nothing unless it is running.
up_node_field() {
  "$BENCH_BIN" status --json --topology "$1" | python3 -c '
import json, sys
n = [n for n in json.load(sys.stdin)["nodes"] if n["name"] == sys.argv[1]]
print(n[0][sys.argv[2]] if n and n[0]["state"] == "running" else "")' "$2" "$3"
}

# up_nodes TOPO ROLE: the names of the nodes of ROLE in `millions status --json`, in order.
up_nodes() {
  "$BENCH_BIN" status --json --topology "$1" | python3 -c '
import json, sys
print(" ".join(n["name"] for n in json.load(sys.stdin)["nodes"] if n["role"] == sys.argv[1]))' "$2"
}

# l1_count BASE KIND RESULT: millions_cache_requests_total{kind=KIND,level="l1",result=RESULT}.
l1_count() {
  local m
  m=$(curl -fsS "$1/metrics") || bench_die "no /metrics at $1"
  awk -v k="$2" -v r="$3" '/^millions_cache_requests_total\{/ && /level="l1"/ &&
    index($0, "kind=\"" k "\"") && index($0, "result=\"" r "\"") {s += $NF; n++}
    END {if (!n) exit 1; printf "%d\n", s}' <<<"$m" ||
    bench_die "$1/metrics has no millions_cache_requests_total{kind=\"$2\",level=\"l1\",result=\"$3\"}"
}

# metric_sum BASE NAME [LABEL]: the sum of the series of NAME in BASE/metrics (those whose labels
# hold the text LABEL, e.g. 'kind="user"'); nothing if there is none.
metric_sum() {
  curl -fsS "$1/metrics" | awk -v n="$2" -v l="${3:-}" '
    ($1 == n || index($1, n "{") == 1) && index($1, l) {s += $NF; k++}
    END {if (k) printf "%.0f\n", s}'
}

# bench_user BASE HANDLE: POST /api/users {"handle","password"}; prints the new user's id.
bench_user() {
  local out
  out=$(curl -fsS -H 'Content-Type: application/json' \
    -d "{\"handle\":\"$2\",\"password\":\"password123\"}" "$1/api/users") ||
    bench_die "POST $1/api/users ($2) failed"
  python3 -c 'import json,sys;print(json.loads(sys.argv[1])["id"])' "$out" ||
    bench_die "POST /api/users answered no id: $out"
}

# l1_warm BASE PATH KIND: bursts of 100 GETs of BASE PATH on one connection (at most 20) until a
# GET after a burst counts an L1 hit of KIND: with cache nodes a key only goes to L1 once read
# often enough (cache.hot_key_reads_per_s).
l1_warm() {
  local i h0 h1
  local -a burst=()
  for i in $(seq 100); do burst+=(-o /dev/null "$1$2"); done
  for i in $(seq 20); do
    curl -fsS "${burst[@]}" || bench_die "GET $1$2 failed"
    h0=$(l1_count "$1" "$3" hit)
    curl -fsS -o /dev/null "$1$2" || bench_die "GET $1$2 failed"
    h1=$(l1_count "$1" "$3" hit)
    [ "$h1" -le "$h0" ] || return 0
  done
  bench_die "GET $1$2 never hit the L1 cache"
}

# rss_kb PID: VmRSS of PID in kB (from /proc/PID/status).
rss_kb() {
  awk '$1 == "VmRSS:" {print $2; f = 1} END {exit !f}' "/proc/$1/status" 2>/dev/null ||
    bench_die "no VmRSS for process $1"
}

# l1_check HITS MISSES DB_LOADS SECS NODES L1_TTL_MS [L2_TTL_MS]: the "L1 hit" check of a cached
# GET on web nodes with cache nodes, where an L1 entry lives cache.l1_ttl_ms and is then read
# again from L2 (an L1 miss and an L2 hit), and the L2 entry lives cache.ttl.user_ms (300000 in
# the default topology, less 10% jitter) and is then read once from the database. Fails on more
# database reads than NODES x (SECS / (0.9 x l2_ttl) + 1) such expiries, and on more L1 misses
# than NODES x (SECS / l1_ttl + 1) refreshes, each of which the CONNS requests in flight may all
# see. Sets L1_LINE, the counts for the summary.
l1_check() {
  local hits=$1 misses=$2 loads=$3 secs=$4 nodes=$5 ttl=$6 l2ttl=${7:-300000} bound load_bound
  bound=$((nodes * (secs * 1000 / ttl + 1) * CONNS))
  load_bound=$((nodes * (secs * 1000 * 10 / (l2ttl * 9) + 1)))
  L1_LINE="$hits hits, $misses misses ($(awk -v h="$hits" -v m="$misses" \
    'BEGIN {printf "%.3f%%", (h + m) ? 100 * h / (h + m) : 0}') hits; L1 entries live $ttl ms, then are read again from L2; at most $bound allowed), $loads database reads (L2 expiries allow $load_bound)"
  [ "$hits" -gt 0 ] || bench_die "the user GET counted no L1 hit during the runs"
  [ "$loads" -le "$load_bound" ] ||
    bench_die "the user GET went to the database $loads times during the runs (L2 expiries allow $load_bound)"
  [ "$misses" -le "$bound" ] ||
    bench_die "the user GET missed the L1 cache $misses times in $secs s (more than L1 refreshes: $bound)"
}

# ratio_median A B COL: the median over rounds of A/B in column COL of results.tsv (3 requests/s,
# 6 CPU per request), as bench_ratio computes it; "n/a" when there is none.
ratio_median() {
  paste <(_col "$1" "$3") <(_col "$2" "$3") | awk '$2 > 0 {print $1 / $2}' | sort -g |
    awk '{a[NR] = $1} END { if (NR == 0) { print "n/a"; exit }
      printf "%.2f\n", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
