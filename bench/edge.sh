#!/usr/bin/env bash
# shellcheck disable=SC2317 # the pid and check functions are called indirectly, by bench_rounds
# The CDN edge (`millions serve edge`) beside Varnish and nginx proxy_cache (issue 17): cache hits
# on a 20 KB and a 1 MB object, the same origin behind all three, for each N in EDGE_THREADS
# (default "1 2"):
#   ours     `millions serve edge`, `[edge] threads = N` (N event loops), memory 256mb;
#   varnish  varnishd (Debian's 7.1), `-p thread_pools=N`, `-s malloc,256m`, the other parameters
#            at their defaults, and a VCL that adds X-Cache: HIT|MISS (obj.hits);
#   nginx    nginx (Debian's 1.22) proxy_cache, `worker_processes N`, sendfile on.
# Equal threads: Varnish runs a thread per connection with a request in progress (wrk's CONNS
# connections keep up to CONNS worker threads busy), so its thread count is not a parallelism
# knob: capping it at N would queue CONNS connections on N threads. What is made equal is the
# cores: at N below the machine's cores every contender's processes (all their threads) run on
# the same N cores (taskset -c, inherited by threads and children); at N = the cores, on all.
# Varnish gets thread_pools = N (a pool per core, as its documentation advises).
# The origin: one nginx (ORIGIN_WORKERS workers) serving /obj/20k.bin (20,480 bytes) and
# /obj/1m.bin (1,048,576 bytes), fixed pseudo-random bytes, `Cache-Control: public,
# max-age=3600`, with an access log: its count of object requests may not move during a run.
# Every response measured must be a cache hit: per run the origin's access log stays flat; ours'
# millions_edge_requests_total counts only hits (>= wrk's requests); Varnish's MAIN.cache_miss,
# cache_hitmiss, cache_hitpass, s_pass, s_pipe stay flat and cache_hit grows by >= wrk's requests;
# nginx (no counter without a log): the origin flat, which without proxy_cache_use_stale leaves
# it nothing but HIT; and one GET after each run must say X-Cache: HIT on each. Before measuring,
# one GET per contender and object must return the origin's bytes (sha256), its header bytes
# printed. Interleaved rounds with a warm-up (bench/lib.sh), medians and spread, MB/s from wrk's
# Transfer/sec, p99 from wrk --latency, CPU microseconds per request (/proc/PID/stat): ours the one
# process, Varnish every varnishd process (manager and cache child), nginx the workers and the
# cache manager; the cores each kept busy, and wrk's (near 1: the load generator is the limit).
# Ratios ours/Varnish and ours/nginx: the median of per-round ratios with their
# range, for requests/s, CPU per request and p99. Loopback only; bounded in time (4-5 minutes
# with the defaults); the exit trap stops everything it started.
# Settings: EDGE_THREADS ("1 2"), OBJECTS ("20k 1m"), ORIGIN_WORKERS (1), PIN (1: pin to N cores
# when N < cores), DURATION (5 here), ROUNDS (3), WARMUP (2), CONNS (64), WRK_THREADS (1),
# BENCH_SELFTEST, BENCH_KEEP, MILLIONS_BIN (lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
# shellcheck source=bench/lib.sh
. bench/lib.sh
EDGE_THREADS=${EDGE_THREADS:-1 2}
ORIGIN_WORKERS=${ORIGIN_WORKERS:-1}
PIN=${PIN:-1}
bench_init wrk nginx varnishd varnishstat curl python3 taskset sha256sum
bench_binary
bin=$BENCH_BIN
work=$BENCH_WORK
cores=$(nproc)
ngx_version=$(nginx -v 2>&1 | sed 's#.*/##')
varnish_version=$(varnishd -V 2>&1 | sed -n 's/.*varnish-\([0-9.]*\).*/\1/p')
read -r -a OBJS <<<"${OBJECTS:-20k 1m}"
for o in "${OBJS[@]}"; do
  [ "$o" = 20k ] || [ "$o" = 1m ] || bench_die "OBJECTS: '$o' is not 20k or 1m"
done
declare -A OBJ_PATH=([20k]=/obj/20k.bin [1m]=/obj/1m.bin)
declare -A OBJ_LABEL=([20k]="20 KB" [1m]="1 MB")

machine_busy() { # busy and total jiffies of the whole machine, from /proc/stat
  awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat
}
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
read -r busy0 total0 < <(machine_busy)
t_start=$(date +%s)

# --- The origin: one nginx, two files of fixed bytes, an access log to count its requests.
mkdir -p "$work/www/obj"
python3 - "$work/www/obj" <<'PY'
import random, sys
r = random.Random(17)  # fixed bytes, the same on every run
open(sys.argv[1] + "/20k.bin", "wb").write(r.randbytes(20480))
open(sys.argv[1] + "/1m.bin", "wb").write(r.randbytes(1048576))
PY
declare -A OBJ_SHA
for o in "${OBJS[@]}"; do OBJ_SHA[$o]=$(sha256sum <"$work/www${OBJ_PATH[$o]}" | cut -d' ' -f1); done
origin=$(free_port)
cat >"$work/origin.conf" <<NGINX
worker_processes $ORIGIN_WORKERS;
daemon on;
pid $work/origin.pid;
error_log $work/origin-error.log;
events { worker_connections 4096; }
http {
  log_format counted '\$request_uri \$status';
  access_log $work/origin-access.log counted; # every request the origin answers, one line
  keepalive_requests 1000000;
  sendfile on;
  types { }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$origin;
    root $work/www;
    location /obj/ { add_header Cache-Control "public, max-age=3600"; }
    location = /__bench_selftest_404 { return 404; } # for BENCH_SELFTEST=1
    location = /readyz { return 200 "ok\n"; }       # our edge's health checks (once a second)
  }
}
NGINX
bench_track_pidfile "$work/origin.pid"
nginx -c "$work/origin.conf"
wait_http "http://127.0.0.1:$origin${OBJ_PATH[20k]}"
origin_count() { grep -c '^/obj/' "$work/origin-access.log" || true; } # objects, not /readyz
echo "origin: nginx $ngx_version ($ORIGIN_WORKERS worker) on 127.0.0.1:$origin, Cache-Control: public, max-age=3600"
for o in "${OBJS[@]}"; do
  read -r st hb bb <<<"$(resp_bytes "http://127.0.0.1:$origin${OBJ_PATH[$o]}")"
  printf '  %-6s %s  status %s, headers %s bytes, body %s bytes, sha256 %s\n' "$o" \
    "${OBJ_PATH[$o]}" "$st" "$hb" "$bb" "${OBJ_SHA[$o]:0:16}..."
done

# --- The three caches, N threads each.
start_caches() { # N CPUS (a taskset list, or "" for no pinning)
  local n=$1 cpus=$2
  local -a pin=()
  [ -z "$cpus" ] || pin=(taskset -c "$cpus")
  ours=$(free_port)
  ours_admin=$(free_port)
  vport=$(free_port)
  ngx=$(free_port)

  python3 - "$work/edge-$n.toml" "$n" "$ours" "$ours_admin" "$origin" <<'PY'
import sys
sys.path.insert(0, "tests/integration")
from harness import node, topology
out, n, port, admin, origin = sys.argv[1], *map(int, sys.argv[2:6])
# The origin is named as the topology's one web node: without balancers the edge's origins are
# the web nodes' listen addresses.
topology(out, name="bench", web=[node("origin", origin)],
         edge={"threads": n, "memory": "256mb", "max_object": "8mb",
               "node": [node("edge1", port, admin=admin)]})
PY
  "${pin[@]}" "$bin" serve edge --config "$work/edge-$n.toml" --node edge1 \
    2>"$work/edge-$n.log" &
  ours_pid=$!
  bench_track "$ours_pid"

  cat >"$work/varnish-$n.vcl" <<VCL
vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "$origin"; }
sub vcl_deliver {
  if (obj.hits > 0) { set resp.http.X-Cache = "HIT"; } else { set resp.http.X-Cache = "MISS"; }
}
VCL
  "${pin[@]}" varnishd -F -a "127.0.0.1:$vport" -f "$work/varnish-$n.vcl" -s malloc,256m \
    -n "$work/varnish-$n" -P "$work/varnish-$n.pid" -p thread_pools="$n" \
    >"$work/varnish-$n.log" 2>&1 &
  varnish_pid=$!
  bench_track "$varnish_pid"

  cat >"$work/proxy-$n.conf" <<NGINX
worker_processes $n;
daemon on;
pid $work/proxy-$n.pid;
error_log $work/proxy-error-$n.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  sendfile on;
  tcp_nopush on;
  proxy_cache_path $work/proxy-cache-$n levels=1:2 keys_zone=edge:10m max_size=256m inactive=1h
                   use_temp_path=off;
  upstream origin { server 127.0.0.1:$origin; keepalive 16; }
  server {
    listen 127.0.0.1:$ngx;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache edge;
      add_header X-Cache \$upstream_cache_status;
    }
  }
}
NGINX
  bench_track_pidfile "$work/proxy-$n.pid"
  "${pin[@]}" nginx -c "$work/proxy-$n.conf"

  if ! (wait_http "http://127.0.0.1:$ours_admin/readyz"); then
    tail -20 "$work/edge-$n.log" >&2
    bench_die "our edge does not answer"
  fi
  if ! (wait_http "http://127.0.0.1:$vport${OBJ_PATH[20k]}"); then
    tail -20 "$work/varnish-$n.log" >&2
    bench_die "varnishd does not answer"
  fi
  wait_http "http://127.0.0.1:$ngx${OBJ_PATH[20k]}"
  [ "$(wc -w <<<"$(nginx_workers)")" = "$n" ] || bench_die "nginx has not $n workers"
}

stop_caches() {
  _bench_stop "$ours_pid"
  _bench_stop "$varnish_pid" 10
  _bench_stop "$(cat "$work/proxy-$1.pid")"
}

ours_pids() { echo "$ours_pid"; }
varnish_pids() { # the manager and its children (the cache process)
  kill -0 "$varnish_pid" 2>/dev/null || return 0
  echo "$varnish_pid $(pgrep -P "$varnish_pid" | xargs)"
}
nginx_workers() { # the workers that serve; cache manager and loader apart
  ps -o pid=,args= --ppid "$(cat "$work/proxy-$nthr.pid")" | awk '/worker process/ {print $1}' | xargs
}
nginx_pids() { # the workers and the cache manager (the cache loader runs once and exits)
  ps -o pid=,args= --ppid "$(cat "$work/proxy-$nthr.pid")" |
    awk '/worker process|cache manager process/ {print $1}' | xargs
}
port_of() { # contender kind -> port
  case $1 in ours) echo "$ours" ;; varnish) echo "$vport" ;; nginx) echo "$ngx" ;; esac
}

# x_cache URL: the X-Cache header of one GET (the body is not kept)
x_cache() {
  curl -fsS -D - -o /dev/null "$1" | awk -F': ' 'tolower($1) == "x-cache" {sub(/\r$/, "", $2); print $2}'
}

ours_count() { # RESULT: millions_edge_requests_total{result=RESULT}
  local v
  v=$(metric_sum "http://127.0.0.1:$ours_admin" millions_edge_requests_total "result=\"$1\"")
  echo "${v:-0}"
}
# varnish_counters: "hit miss_like" from varnishstat: MAIN.cache_hit and the sum of every counter
# of a request that did not come from the cache.
varnish_counters() {
  varnishstat -n "$work/varnish-$nthr" -1 -f MAIN.cache_hit -f MAIN.cache_miss \
    -f MAIN.cache_hitmiss -f MAIN.cache_hitpass -f MAIN.s_pass -f MAIN.s_pipe |
    awk '$1 == "MAIN.cache_hit" {h = $2; f = 1} $1 != "MAIN.cache_hit" {m += $2}
         END {if (!f) exit 1; print h, m + 0}' || bench_die "varnishstat read nothing"
}

# The hit checks around every run (bench_rounds calls them; outside the CPU window).
bench_check_before() { # NAME ROUND
  CHK_ORIGIN=$(origin_count)
  case ${1%%_*} in
    ours) CHK_HIT=$(ours_count hit) CHK_OTHER=$(($(ours_count miss) + $(ours_count stale) + $(ours_count pass))) ;;
    varnish) read -r CHK_HIT CHK_OTHER < <(varnish_counters) ;;
  esac
}
bench_check_after() { # NAME ROUND
  local kind=${1%%_*} obj=${1#*_} o hit other i xc
  o=$(origin_count)
  [ "$o" = "$CHK_ORIGIN" ] ||
    bench_die "$1, round $2: the origin answered $((o - CHK_ORIGIN)) object requests during the run (cache misses): $(grep '^/obj/' "$work/origin-access.log" | tail -3 | xargs)"
  case $kind in
    ours)
      hit=$(ours_count hit)
      other=$(($(ours_count miss) + $(ours_count stale) + $(ours_count pass)))
      ;;
    varnish)
      for i in $(seq 20); do # a worker thread adds its counts when it goes idle
        read -r hit other < <(varnish_counters)
        [ $((hit - CHK_HIT)) -lt "$WRK_REQUESTS" ] || break
        sleep 0.1
      done
      ;;
  esac
  if [ "$kind" != nginx ]; then
    [ "$other" = "$CHK_OTHER" ] ||
      bench_die "$1, round $2: $((other - CHK_OTHER)) requests were not cache hits (misses, passes)"
    [ $((hit - CHK_HIT)) -ge "$WRK_REQUESTS" ] ||
      bench_die "$1, round $2: $((hit - CHK_HIT)) cache hits counted for $WRK_REQUESTS requests"
  fi
  xc=$(x_cache "http://127.0.0.1:$(port_of "$kind")${OBJ_PATH[$obj]}")
  [ "$xc" = HIT ] || bench_die "$1, round $2: a GET after the run answered X-Cache: '$xc'"
  [ "$(origin_count)" = "$CHK_ORIGIN" ] || bench_die "$1, round $2: the check's GET reached the origin"
  case $kind in ours) HITS_OURS=$((HITS_OURS + hit - CHK_HIT)) ;; varnish) HITS_VARNISH=$((HITS_VARNISH + hit - CHK_HIT)) ;; esac
  REQS_ALL=$((REQS_ALL + WRK_REQUESTS))
}

# edge_report: per contender median [min-max] spread of requests/s, MB/s, p99, CPU per request,
# and the cores busy (median over rounds): the contender's (CPU per request x requests/s) and
# wrk's (near 1 with wrk -t1: the load generator is the limit, not the contender).
mmm() { # FORMAT VALUE...: "median [min-max]", each number printed with FORMAT (e.g. %.2f)
  local fmt=$1
  shift
  # shellcheck disable=SC2059 # the format is the caller's
  printf "$fmt [$fmt-$fmt]" "$(median "$@")" "$(printf '%s\n' "$@" | sort -g | head -1)" \
    "$(printf '%s\n' "$@" | sort -g | tail -1)"
}
edge_report() {
  local i name
  local -a v
  printf '%-26s %27s %7s %20s %18s %6s %5s\n' contender "requests/s [min-max] spread" MB/s \
    "p99 ms [min-max]" "cpu_us/req (spr.)" cores wrk
  for ((i = 0; i < ${#C_NAMES[@]}; i++)); do
    name=${C_NAMES[$i]}
    printf '%-26s' "${C_LABELS[$i]}"
    mapfile -t v < <(_col "$name" 3)
    printf ' %27s' "$(mmm %.0f "${v[@]}") $(spread "${v[@]}")"
    mapfile -t v < <(_col "$name" 8)
    printf ' %7.0f' "$(median "${v[@]}")"
    mapfile -t v < <(_col "$name" 4)
    printf ' %20s' "$(mmm %.2f "${v[@]}")"
    mapfile -t v < <(_col "$name" 6)
    printf ' %18s' "$(printf '%.1f (%s)' "$(median "${v[@]}")" "$(spread "${v[@]}")")"
    mapfile -t v < <(awk -F'\t' -v n="$name" '$1 == n {print $3 * $6 / 1e6}' "$BENCH_WORK/results.tsv")
    printf ' %6.2f' "$(median "${v[@]}")"
    mapfile -t v < <(_col "$name" 9)
    printf ' %5.2f\n' "$(median "${v[@]}")"
  done
}

# edge_ratio A B LABEL: A/B for requests/s, CPU per request and p99: the median of the per-round
# ratios (A and B ran in the same round) and their min-max.
edge_ratio() {
  local col what line=''
  for col in 3 6 4; do
    case $col in 3) what="req/s" ;; 6) what="cpu/req" ;; 4) what="p99" ;; esac
    line+=$(paste <(_col "$1" "$col") <(_col "$2" "$col") | awk -v w="$what" '
      $2 > 0 { r[++n] = $1 / $2 }
      END { if (n == 0) { printf "  %s n/a", w; exit }
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
            m = (n % 2) ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2
            printf "  %-7s %.2fx [%.2f-%.2f]", w, m, r[1], r[n] }')
  done
  echo "$3$line"
}

# ratio_range A B COL: "median min max" of the per-round ratios A/B in column COL.
ratio_range() {
  paste <(_col "$1" "$3") <(_col "$2" "$3") | awk '$2 > 0 {print $1 / $2}' | sort -g |
    awk '{a[NR] = $1} END { if (NR == 0) { print "0 0 0"; exit }
      printf "%.2f %.2f %.2f\n", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2, a[1], a[NR] }'
}

# goal_line OBJ: issue 17's goal against Varnish for one object: requests/s at least 1.1x, CPU
# per request and p99 at most 1.0x. "met" when every round's ratio meets it, "MISSED" when the
# median misses, "median met, rounds x-y" when only the median meets it.
goal_line() {
  local col target dir out='' m lo hi
  for col in 3 6 4; do
    case $col in 3) target=1.1 dir=ge ;; *) target=1.0 dir=le ;; esac
    read -r m lo hi < <(ratio_range "ours_$1" "varnish_$1" "$col")
    out+=$(awk -v c="$col" -v t="$target" -v d="$dir" -v m="$m" -v lo="$lo" -v hi="$hi" 'BEGIN {
      w = (c == 3) ? "req/s >= 1.1x" : (c == 6) ? "CPU/req <= 1.0x" : "p99 <= 1.0x"
      ok = (d == "ge") ? (m >= t) : (m <= t); all = (d == "ge") ? (lo >= t) : (hi <= t)
      v = !ok ? "MISSED" : all ? "met" : "median met, not every round"
      printf "; %s: %.2fx [%.2f-%.2f] %s", w, m, lo, hi, v }')
  done
  echo "issue 17 goal vs Varnish, ${OBJ_LABEL[$1]}: ${out#; }"
}

summary=()
HITS_OURS=0
HITS_VARNISH=0
REQS_ALL=0
for nthr in $EDGE_THREADS; do # not n: bench_rounds has a local n, which the checks would see
  cpus=
  if [ "$PIN" = 1 ] && [ "$nthr" -lt "$cores" ]; then
    cpus=$((cores - nthr))
    [ "$nthr" = 1 ] || cpus+=-$((cores - 1))
  fi
  echo
  echo "== threads $nthr: ours [edge] threads = $nthr; varnishd -p thread_pools=$nthr (threads per connection); nginx worker_processes $nthr; $(
    [ -n "$cpus" ] && echo "each pinned to cpu(s) $cpus" || echo "no pinning ($cores cores)")"
  start_caches "$nthr" "$cpus"

  # Fill each cache (the first GET may be a miss), then one GET must be a HIT with the origin's
  # bytes; the origin saw at most a few requests per object (nginx's and ours' first fetch).
  for kind in ours varnish nginx; do
    for o in "${OBJS[@]}"; do
      url="http://127.0.0.1:$(port_of "$kind")${OBJ_PATH[$o]}"
      curl -fsS -o /dev/null "$url" || bench_die "$kind: GET $url failed"
      curl -fsS -D "$work/h-$kind-$o" -o "$work/b-$kind-$o" "$url" || bench_die "$kind: GET $url failed"
      xc=$(awk -F': ' 'tolower($1) == "x-cache" {sub(/\r$/, "", $2); print $2}' "$work/h-$kind-$o")
      [ "$xc" = HIT ] || bench_die "$kind: the second GET of $url answered X-Cache: '$xc'"
      [ "$(sha256sum <"$work/b-$kind-$o" | cut -d' ' -f1)" = "${OBJ_SHA[$o]}" ] ||
        bench_die "$kind: the body of $url differs from the origin's file"
    done
  done
  echo "each cache filled; the second GET of each object a HIT, its body the origin's bytes (sha256)"
  if [ "$nthr" = "$(awk '{print $1}' <<<"$EDGE_THREADS")" ]; then
    for kind in ours varnish nginx; do
      echo "response headers, $kind (${OBJ_LABEL[${OBJS[0]}]} object, a hit):"
      sed 's/^/    /; s/\r$//' "$work/h-$kind-${OBJS[0]}"
    done
  fi

  bench_reset
  echo "contenders (one GET each):"
  for o in "${OBJS[@]}"; do
    bench_contender "ours_$o" "http://127.0.0.1:$ours${OBJ_PATH[$o]}" ours_pids "ours, ${OBJ_LABEL[$o]}"
    bench_contender "varnish_$o" "http://127.0.0.1:$vport${OBJ_PATH[$o]}" varnish_pids "varnish $varnish_version, ${OBJ_LABEL[$o]}"
    bench_contender "nginx_$o" "http://127.0.0.1:$ngx${OBJ_PATH[$o]}" nginx_pids "nginx $ngx_version, ${OBJ_LABEL[$o]}"
  done
  bench_rounds

  {
    echo
    echo "threads $nthr: ours [edge] threads=$nthr, varnishd thread_pools=$nthr, nginx worker_processes $nthr;"
    if [ -n "$cpus" ]; then
      echo "each contender's processes pinned to cpu(s) $cpus (taskset; wrk and the origin unpinned)"
    else
      echo "no pinning: all $cores cores to everyone"
    fi
    echo "cpu_us/req: ours the process; varnish the manager and the cache child; nginx the workers and cache manager"
    bench_settings
    edge_report
    for o in "${OBJS[@]}"; do
      edge_ratio "ours_$o" "varnish_$o" "ours/varnish ${OBJ_LABEL[$o]}:"
      edge_ratio "ours_$o" "nginx_$o" "ours/nginx   ${OBJ_LABEL[$o]}:"
    done
    for o in "${OBJS[@]}"; do goal_line "$o"; done
  } >"$work/summary-$nthr.txt"
  cat "$work/summary-$nthr.txt"
  summary+=("$work/summary-$nthr.txt")
  stop_caches "$nthr"
done

read -r busy1 total1 < <(machine_busy)
echo
echo "==== summary ($cores cores, shared by wrk, the contender and anything else on the machine; bench/README.md)"
echo "load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg); the whole machine's busy cores over the bench: $(
  awk -v b=$((busy1 - busy0)) -v t=$((total1 - total0)) -v c="$cores" 'BEGIN {printf "%.2f of %d", t ? b / t * c : 0, c}'); $(($(date +%s) - t_start)) s"
echo "cache hits: every measured and warm-up run checked (origin flat, X-Cache: HIT after it; ours $HITS_OURS hits counted, varnish $HITS_VARNISH, no miss or pass; $REQS_ALL requests by wrk in all)"
cat "${summary[@]}"
