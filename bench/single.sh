#!/usr/bin/env bash
# Stage 1 beside nginx, both sides alike: `millions single` with THREADS event-loop threads
# against nginx with THREADS worker processes, for each THREADS in THREADS_SERVER (default "1 2").
#   - a cached GET /api/users/{id} against nginx `return 200` with exactly the same JSON bytes
#     and the same Content-Type;
#   - a static asset (app.*.js) against nginx serving the same file, same Content-Type and
#     Cache-Control.
# nginx: access_log off (ours writes no access log), keepalive_requests 1000000 (ours has no
# per-connection request limit). Interleaved rounds with a warm-up, medians and spread, CPU
# microseconds per request of each server, ratios ours/nginx. Fails on any non-2xx, socket error,
# cache miss on the user GET, or tool error. Loopback only; every run is bounded in time.
# Settings: THREADS_SERVER, DURATION, ROUNDS, WARMUP, CONNS, WRK_THREADS, BENCH_SELFTEST (lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
THREADS_SERVER=${THREADS_SERVER:-1 2}
bench_init wrk nginx curl python3
bench_binary
bin=$BENCH_BIN
work=$BENCH_WORK

# l1_user BASE hit|miss: the L1 cache's user lookups with that result, from /metrics.
l1_user() {
  local m
  m=$(curl -fsS "$1/metrics") || bench_die "no /metrics at $1"
  awk -v r="$2" '/^millions_cache_requests_total\{/ && /kind="user"/ && /level="l1"/ &&
    index($0, "result=\"" r "\"") {s += $NF; n++}
    END {if (!n) exit 1; printf "%d\n", s}' <<<"$m" ||
    bench_die "/metrics has no millions_cache_requests_total{kind=\"user\",level=\"l1\",result=\"$2\"}"
}

summary=()
for threads in $THREADS_SERVER; do
  echo
  echo "== server threads: $threads (millions [node] threads = $threads; nginx worker_processes $threads)"
  port=$(free_port)
  base="http://127.0.0.1:$port"
  cat >"$work/single-$threads.toml" <<TOML
# topologies/single.toml with the bench's port, data and thread count; the rest at defaults.
[node]
name = "single"
listen = "127.0.0.1:$port"
data_dir = "$work/data-$threads"
threads = $threads
blocking_threads = 4
log_level = "info"
TOML
  "$bin" single --topology "$work/single-$threads.toml" 2>"$work/millions-$threads.log" &
  ours_pid=$!
  bench_track "$ours_pid"
  wait_http "$base/readyz"

  curl -fsS -H 'Content-Type: application/json' \
    -d '{"handle":"bench_user","password":"password123"}' "$base/api/users" >"$work/created.json"
  uid=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["id"])' "$work/created.json")
  user_path=/api/users/$uid
  curl -fsS "$base$user_path" >/dev/null # fill the cache
  curl -fsS -D "$work/user.head" -o "$work/user.json" "$base$user_path"
  ct_user=$(awk -F': ' 'tolower($1) == "content-type" {sub(/\r$/, "", $2); print $2}' "$work/user.head")
  if grep -q "[\$'\\\\]" "$work/user.json"; then
    bench_die "the user JSON holds \$, ' or \\, which nginx's return string would change"
  fi
  asset=$(curl -fsS "$base/" | grep -o '/assets/app\.[0-9a-f]*\.js' | head -1)
  [ -n "$asset" ] || bench_die "no /assets/app.*.js in the page"
  mkdir -p "$work/www-$threads/assets"
  curl -fsS -D "$work/asset.head" -o "$work/www-$threads$asset" "$base$asset"
  ct_asset=$(awk -F': ' 'tolower($1) == "content-type" {sub(/\r$/, "", $2); print $2}' "$work/asset.head")
  cc_asset=$(awk -F': ' 'tolower($1) == "cache-control" {sub(/\r$/, "", $2); print $2}' "$work/asset.head")

  nport=$(free_port)
  nbase="http://127.0.0.1:$nport"
  cat >"$work/nginx-$threads.conf" <<NGINX
worker_processes $threads;
daemon on;
pid $work/nginx-$threads.pid;
error_log $work/nginx-error-$threads.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  types { }
  server {
    listen 127.0.0.1:$nport;
    location = $user_path { default_type "$ct_user"; return 200 '$(cat "$work/user.json")'; }
    location /assets/ {
      root $work/www-$threads;
      default_type "$ct_asset";
      add_header Cache-Control "$cc_asset";
    }
  }
}
NGINX
  bench_track_pidfile "$work/nginx-$threads.pid"
  nginx -c "$work/nginx-$threads.conf"
  wait_http "$nbase$asset"
  nginx_workers() { workers_of "$work/nginx-$threads.pid"; }
  ours_pids() { echo "$ours_pid"; }
  [ "$(wc -w <<<"$(nginx_workers)")" = "$threads" ] || bench_die "nginx has not $threads workers"

  # Same bytes on both sides, or no comparison.
  for path in "$user_path" "$asset"; do
    curl -fsS -o "$work/a.body" "$base$path"
    curl -fsS -o "$work/b.body" "$nbase$path"
    cmp -s "$work/a.body" "$work/b.body" || bench_die "$path: nginx's body differs from ours"
    a_ct=$(curl -fsS -o /dev/null -w '%{content_type}' "$base$path")
    b_ct=$(curl -fsS -o /dev/null -w '%{content_type}' "$nbase$path")
    [ "$a_ct" = "$b_ct" ] || bench_die "$path: Content-Type '$a_ct' (ours) vs '$b_ct' (nginx)"
  done
  echo "response headers, ours (user GET):"
  sed 's/^/    /' "$work/user.head"
  echo "response headers, nginx (user GET):"
  curl -fsS -D - -o /dev/null "$nbase$user_path" | sed 's/^/    /'

  bench_reset
  echo "contenders (one GET each: same body bytes and Content-Type checked above):"
  bench_contender ours_user "$base$user_path" ours_pids "millions GET /api/users/{id} (hit)"
  bench_contender nginx_user "$nbase$user_path" nginx_workers "nginx return 200 (same JSON)"
  bench_contender ours_asset "$base$asset" ours_pids "millions static asset"
  bench_contender nginx_asset "$nbase$asset" nginx_workers "nginx static (same file)"

  misses0=$(l1_user "$base" miss)
  hits0=$(l1_user "$base" hit)
  bench_rounds
  misses1=$(l1_user "$base" miss)
  hits1=$(l1_user "$base" hit)
  [ "$misses1" = "$misses0" ] ||
    bench_die "the user GET missed the L1 cache $((misses1 - misses0)) times during the runs"
  [ "$hits1" -gt "$hits0" ] || bench_die "the user GET counted no L1 hit during the runs"

  {
    echo
    echo "server threads $threads: millions single threads=$threads, nginx worker_processes $threads"
    bench_settings
    echo "user GET, L1 cache during the runs: $((hits1 - hits0)) hits, $((misses1 - misses0)) misses"
    bench_report
    bench_ratio ours_user nginx_user "ours/nginx user GET    "
    bench_ratio ours_asset nginx_asset "ours/nginx static asset"
  } >"$work/summary-$threads.txt"
  cat "$work/summary-$threads.txt"
  summary+=("$work/summary-$threads.txt")

  _bench_stop "$(cat "$work/nginx-$threads.pid")"
  _bench_stop "$ours_pid"
done

echo
echo "==== summary ($(nproc) cores, shared by wrk and the server; see bench/README.md)"
cat "${summary[@]}"
