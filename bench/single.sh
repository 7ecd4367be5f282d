#!/usr/bin/env bash
# shellcheck disable=SC2317 # the pid functions are called indirectly, by bench_contender
# Our web node beside nginx, both sides alike: ours with THREADS event-loop threads against nginx
# with THREADS worker processes, for each THREADS in THREADS_SERVER (default "1 2"), in each
# set-up of SETUPS (default "single web"):
#   single  `millions single` (SQLite, in-process cache):
#     - a cached GET /api/users/{id} against nginx `return 200` with exactly the same JSON bytes
#       and the same Content-Type;
#     - a static asset (app.*.js) against nginx serving the same file, same Content-Type and
#       Cache-Control.
#   web     a web node of the default topology (UP_TOPOLOGY, default topologies/local.toml, under
#           `millions up` on free ports: PostgreSQL under Patroni, Redis, etcd): an extra
#           `millions serve web` node joined to those engines with `[web] threads = THREADS` (the
#           rest of [web] and [cache] as in the file), a GET /api/users/{id} that is an L1 hit
#           against nginx `return 200` with exactly the same JSON bytes and Content-Type.
# nginx: access_log off (ours writes no access log), keepalive_requests 1000000 (ours has no
# per-connection request limit). Interleaved rounds with a warm-up, medians and spread, CPU
# microseconds per request of each server, ratios ours/nginx. Fails on any non-2xx, socket error,
# cache miss on the user GET (web: beyond L1 refreshes from L2, see l1_check in lib.sh), or tool
# error. Loopback only; every run is bounded in time.
# Settings: SETUPS, THREADS_SERVER, UP_TOPOLOGY, DURATION, ROUNDS, WARMUP, CONNS, WRK_THREADS,
# BENCH_SELFTEST (lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
THREADS_SERVER=${THREADS_SERVER:-1 2}
SETUPS=${SETUPS:-single web}
for s in $SETUPS; do
  [ "$s" = single ] || [ "$s" = web ] || bench_die "SETUPS: '$s' is not single or web"
done
bench_init wrk nginx curl python3
bench_binary
bin=$BENCH_BIN
work=$BENCH_WORK

# l1_user BASE hit|miss: the L1 cache's user lookups with that result, from /metrics.
l1_user() { l1_count "$1" user "$2"; }

summary=()

# --- Set-up "single": `millions single`, a cached user GET and a static asset.
setup_single() {
  local threads
  for threads in $THREADS_SERVER; do
    echo
    echo "== set-up single, server threads: $threads (millions [node] threads = $threads; nginx worker_processes $threads)"
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
    echo "set-up single, server threads $threads: millions single threads=$threads, nginx worker_processes $threads"
    bench_settings
    echo "user GET, L1 cache during the runs: $((hits1 - hits0)) hits, $((misses1 - misses0)) misses"
    bench_report
    bench_ratio ours_user nginx_user "ours/nginx user GET    "
    bench_ratio ours_asset nginx_asset "ours/nginx static asset"
  } >"$work/summary-single-$threads.txt"
  cat "$work/summary-single-$threads.txt"
  summary+=("$work/summary-single-$threads.txt")

  _bench_stop "$(cat "$work/nginx-$threads.pid")"
  _bench_stop "$ours_pid"
done
}

# --- Set-up "web": an extra web node of the default topology, a user GET that is an L1 hit.
setup_web() {
  local threads port base nport nbase uid user_path ct_user l1_ttl m0 m1 h0 h1 d0 d1 t0 t1 web1
  echo
  echo "== set-up web: starting the default topology (${UP_TOPOLOGY:-topologies/local.toml}) under millions up"
  bench_up_default "$work/up"
  web1=$(up_node_field "$UP_TOPO" "$(up_nodes "$UP_TOPO" web | awk '{print $1}')" address)
  [ -n "$web1" ] || bench_die "no running web node in millions status"
  wait_http "http://$web1/readyz"
  uid=$(bench_user "http://$web1" "bench_single_$$")
  user_path=/api/users/$uid
  l1_ttl=$(python3 -c 'import sys, tomllib
print(tomllib.load(open(sys.argv[1], "rb")).get("cache", {}).get("l1_ttl_ms", 2000))' "$UP_TOPO")
  echo "millions up took ${UP_SECS}s; user $uid created through the API on $web1"
  for threads in $THREADS_SERVER; do
    echo
    echo "== set-up web, server threads: $threads (extra web node [web] threads = $threads; nginx worker_processes $threads)"
    port=$(free_port)
    base="http://127.0.0.1:$port"
    # The running topology (engines, [web], [cache] ...) with one web node, ours, and no balancer.
    python3 - "$UP_TOPO" "$work/web-$threads.toml" "$threads" "$port" <<'PY'
import sys, tomllib
sys.path.insert(0, "tests/integration")
from harness import node, topology
src, out, threads, port = sys.argv[1:5]
t = tomllib.load(open(src, "rb"))
t.pop("lb", None)
t.pop("dc", None)
t.pop("deployment", None)
t["web"] = {**{k: v for k, v in t["web"].items() if k != "node"}, "threads": int(threads),
            "node": [node("benchweb", int(port), dc="dc1")]}
topology(out, name="bench", **t)
PY
    # The credentials `millions up` hands its own web nodes (the run's secrets: etcd, Redis,
    # NATS; the application's PostgreSQL password file).
    MILLIONS_SECRETS="$work/up/run/secrets" PGPASSFILE="$work/up/run/secrets/pgpass.app" \
      "$bin" serve web --config "$work/web-$threads.toml" --node benchweb \
      2>"$work/web-$threads.log" &
    ours_pid=$!
    bench_track "$ours_pid"
    if ! (wait_http "$base/readyz"); then
      tail -20 "$work/web-$threads.log" >&2
      bench_die "the extra web node does not answer"
    fi
    l1_warm "$base" "$user_path" user
    curl -fsS -D "$work/user-web.head" -o "$work/user-web.json" "$base$user_path"
    ct_user=$(awk -F': ' 'tolower($1) == "content-type" {sub(/\r$/, "", $2); print $2}' "$work/user-web.head")
    if grep -q "[\$'\\\\]" "$work/user-web.json"; then
      bench_die "the user JSON holds \$, ' or \\, which nginx's return string would change"
    fi

    nport=$(free_port)
    nbase="http://127.0.0.1:$nport"
    cat >"$work/nginx-web-$threads.conf" <<NGINX
worker_processes $threads;
daemon on;
pid $work/nginx-web-$threads.pid;
error_log $work/nginx-web-error-$threads.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  types { }
  server {
    listen 127.0.0.1:$nport;
    location = $user_path { default_type "$ct_user"; return 200 '$(cat "$work/user-web.json")'; }
  }
}
NGINX
    bench_track_pidfile "$work/nginx-web-$threads.pid"
    nginx -c "$work/nginx-web-$threads.conf"
    wait_http "$nbase$user_path"
    nginx_workers() { workers_of "$work/nginx-web-$threads.pid"; }
    ours_pids() { echo "$ours_pid"; }
    [ "$(wc -w <<<"$(nginx_workers)")" = "$threads" ] || bench_die "nginx has not $threads workers"

    curl -fsS -o "$work/a.body" "$base$user_path"
    curl -fsS -o "$work/b.body" "$nbase$user_path"
    cmp -s "$work/a.body" "$work/b.body" || bench_die "$user_path: nginx's body differs from ours"
    a_ct=$(curl -fsS -o /dev/null -w '%{content_type}' "$base$user_path")
    b_ct=$(curl -fsS -o /dev/null -w '%{content_type}' "$nbase$user_path")
    [ "$a_ct" = "$b_ct" ] || bench_die "$user_path: Content-Type '$a_ct' (ours) vs '$b_ct' (nginx)"
    echo "response headers, ours (user GET):"
    sed 's/^/    /' "$work/user-web.head"
    echo "response headers, nginx (user GET):"
    curl -fsS -D - -o /dev/null "$nbase$user_path" | sed 's/^/    /'

    bench_reset
    echo "contenders (one GET each: same body bytes and Content-Type checked above):"
    bench_contender ours_user "$base$user_path" ours_pids "web node GET /api/users/{id} (L1)"
    bench_contender nginx_user "$nbase$user_path" nginx_workers "nginx return 200 (same JSON)"
    l1_warm "$base" "$user_path" user
    m0=$(l1_user "$base" miss)
    h0=$(l1_user "$base" hit)
    d0=$(metric_sum "$base" millions_cache_loads_total 'kind="user"')
    t0=$(date +%s)
    bench_rounds
    t1=$(date +%s)
    m1=$(l1_user "$base" miss)
    h1=$(l1_user "$base" hit)
    d1=$(metric_sum "$base" millions_cache_loads_total 'kind="user"')
    if [ -z "$d0" ] || [ -z "$d1" ]; then bench_die "$base/metrics has no millions_cache_loads_total"; fi
    l1_check "$((h1 - h0))" "$((m1 - m0))" "$((d1 - d0))" "$((t1 - t0))" 1 "$l1_ttl"

    {
      echo
      echo "set-up web, server threads $threads: a web node of the default topology ([web] threads=$threads, PostgreSQL, Redis),"
      echo "nginx worker_processes $threads"
      bench_settings
      echo "user GET, L1 cache during the runs: $L1_LINE"
      bench_report
      bench_ratio ours_user nginx_user "ours/nginx user GET    "
    } >"$work/summary-web-$threads.txt"
    cat "$work/summary-web-$threads.txt"
    summary+=("$work/summary-web-$threads.txt")

    _bench_stop "$(cat "$work/nginx-web-$threads.pid")"
    _bench_stop "$ours_pid"
  done
}

for s in $SETUPS; do "setup_$s"; done

echo
echo "==== summary, set-ups: $SETUPS ($(nproc) cores, shared by wrk and the server; see bench/README.md)"
cat "${summary[@]}"
