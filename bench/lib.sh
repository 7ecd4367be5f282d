# shellcheck shell=bash
# bench/lib.sh: what every wrk bench shares, so that each keeps the rule in bench/README.md.
# Source it, call bench_init, start the servers, register contenders with bench_contender, then
# bench_rounds and bench_report / bench_ratio.
#
#   free_port                 a free loopback TCP port
#   bench_binary              BENCH_BIN: a copy of build/millions, safe from a rebuild mid-run
#   wrk_run NAME URL [SECS]   one wrk run with --latency; sets WRK_RPS, WRK_P99_MS, WRK_REQUESTS.
#                             The bench fails (exit 1, a "bench: FAIL" line) when wrk exits
#                             non-zero, prints "Non-2xx or 3xx responses" or "Socket errors",
#                             or prints no Requests/sec or no completed request. It sets globals
#                             rather than printing, because an exit inside $(...) would only end
#                             the subshell.
#   cpu_ticks PID...          utime+stime (fields 14 and 15 of /proc/PID/stat), summed, in ticks
#   workers_of PIDFILE        the children of the master named in a pid file (nginx's workers)
#   median N... / spread N... the median; the spread as (max-min)/median in percent
#   resp_bytes URL            "status header_bytes body_bytes" of one GET (curl)
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
C_NAMES=()
C_URLS=()
C_PIDFN=()
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
  timeout $((secs + 30)) wrk -t"$WRK_THREADS" -c"$CONNS" -d"${secs}s" --latency "$url" \
    >"$out" 2>&1 || rc=$?
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

# bench_contender NAME URL PIDS_FN LABEL: PIDS_FN is a function printing the pids whose CPU
# counts for this contender. Prints what one GET of URL returns (status, header and body bytes)
# and fails unless it is 2xx.
bench_contender() {
  local res st hb bb
  res=$(resp_bytes "$2")
  read -r st hb bb <<<"$res"
  [[ $st == 2* ]] || bench_die "$1: GET $2 answered $st"
  printf '  %-26s %s  status %s, headers %s bytes, body %s bytes\n' "$1" "$2" "$st" "$hb" "$bb"
  C_NAMES+=("$1")
  C_URLS+=("$2")
  C_PIDFN+=("$3")
  C_LABELS+=("$4")
}

bench_reset() {
  C_NAMES=()
  C_URLS=()
  C_PIDFN=()
  C_LABELS=()
  : >"$BENCH_WORK/results.tsv"
}

_pids_of() {
  local pids
  pids=$("${C_PIDFN[$1]}")
  [ -n "$pids" ] || bench_die "${C_NAMES[$1]}: no process to measure"
  echo "$pids"
}

_bench_measure() { # index round
  local i=$1 r=$2 pids t0 t1 cpu
  pids=$(_pids_of "$i")
  # shellcheck disable=SC2086 # a list of pids
  t0=$(cpu_ticks $pids)
  wrk_run "${C_NAMES[$i]}" "${C_URLS[$i]}"
  # shellcheck disable=SC2086
  t1=$(cpu_ticks $pids)
  cpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$WRK_REQUESTS" \
    'BEGIN {printf "%.2f", d * 1e6 / hz / n}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "${C_NAMES[$i]}" "$r" "$WRK_RPS" "$WRK_P99_MS" \
    "$WRK_REQUESTS" "$cpu" >>"$BENCH_WORK/results.tsv"
  printf '    round %s %-26s %10s req/s  p99 %8s ms  %8s cpu_us/req\n' "$r" "${C_NAMES[$i]}" \
    "$WRK_RPS" "$WRK_P99_MS" "$cpu" >&2
}

# A warm-up run per contender (WARMUP s, checked like the others, not counted), then ROUNDS
# rounds; round r runs every contender once, starting at contender r-1 (rotated), so drift on a
# shared machine falls on each alike.
bench_rounds() {
  local n=${#C_NAMES[@]} i k r
  [ "$n" -gt 0 ] || bench_die "no contender"
  for ((i = 0; i < n; i++)); do
    _pids_of "$i" >/dev/null
    wrk_run "${C_NAMES[$i]}-warmup" "${C_URLS[$i]}" "$WARMUP"
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

bench_report() {
  local i name
  local -a v
  printf '%-34s %11s %6s %9s %6s %11s %6s\n' contender requests/s spread p99_ms spread \
    cpu_us/req spread
  for ((i = 0; i < ${#C_NAMES[@]}; i++)); do
    name=${C_NAMES[$i]}
    mapfile -t v < <(_col "$name" 3)
    printf '%-34s %11.0f %6s' "${C_LABELS[$i]}" "$(median "${v[@]}")" "$(spread "${v[@]}")"
    mapfile -t v < <(_col "$name" 4)
    printf ' %9.2f %6s' "$(median "${v[@]}")" "$(spread "${v[@]}")"
    mapfile -t v < <(_col "$name" 6)
    printf ' %11.1f %6s\n' "$(median "${v[@]}")" "$(spread "${v[@]}")"
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
