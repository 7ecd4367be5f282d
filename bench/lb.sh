#!/usr/bin/env bash
# The load balancer against HAProxy and nginx as a proxy, each with THREADS threads for THREADS in
# PROXY_THREADS (default "1 2": ours `[lb] threads`, HAProxy `nbthread`, nginx
# `worker_processes`), in front of the same two nginx backends (a 224-byte JSON file,
# BACKEND_WORKERS worker processes, default 1). Round robin, keep-alive on both sides of every
# proxy (client side: no request limit on any; server side: pooled, 1000000 requests per
# connection). Interleaved rounds with a warm-up, medians and spread, CPU microseconds per
# request of the proxy process under test, ratios ours/HAProxy and ours/nginx. The backend
# direct is printed as a reference. Fails on any non-2xx, socket error or tool error.
# Loopback only; every run is bounded in time.
# Settings: PROXY_THREADS, BACKEND_WORKERS, DURATION, ROUNDS, WARMUP, CONNS, WRK_THREADS,
# BENCH_SELFTEST (lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
PROXY_THREADS=${PROXY_THREADS:-1 2}
BACKEND_WORKERS=${BACKEND_WORKERS:-1}
bench_init wrk nginx haproxy curl
bench_binary
bin=$BENCH_BIN
work=$BENCH_WORK
b1=$(free_port)
b2=$(free_port)

bench_nginx_backends "$BACKEND_WORKERS" "$b1" "$b2"
backend_workers() { workers_of "$work/backends.pid"; }

summary=()
for threads in $PROXY_THREADS; do
  echo
  echo "== proxy threads: $threads (ours [lb] threads = $threads; haproxy nbthread $threads; nginx worker_processes $threads)"
  ours=$(free_port)
  ours_admin=$(free_port)
  hap=$(free_port)
  ngx=$(free_port)

  python3 - "$work/lb-$threads.toml" <<PY
import sys; sys.path.insert(0, "tests/integration")
from harness import node, topology
topology(sys.argv[1], lb={"threads": $threads, "policy": "round_robin",
                          "node": [node("lb1", $ours, admin=$ours_admin)]},
         web=[node("b1", $b1), node("b2", $b2)])
PY
  "$bin" serve lb --config "$work/lb-$threads.toml" --node lb1 2>"$work/lb-$threads.log" &
  ours_pid=$!
  bench_track "$ours_pid"

  cat >"$work/haproxy-$threads.cfg" <<HAP
global
  nbthread $threads
  maxconn 4000
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 30s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:$hap
  default_backend be
backend be
  balance roundrobin
  server b1 127.0.0.1:$b1
  server b2 127.0.0.1:$b2
HAP
  bench_track_pidfile "$work/haproxy-$threads.pid"
  haproxy -f "$work/haproxy-$threads.cfg" -D -p "$work/haproxy-$threads.pid"

  cat >"$work/proxy-$threads.conf" <<NGINX
worker_processes $threads;
daemon on;
pid $work/proxy-$threads.pid;
error_log $work/proxy-error-$threads.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream be {
    server 127.0.0.1:$b1;
    server 127.0.0.1:$b2;
    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$ngx;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGINX
  bench_track_pidfile "$work/proxy-$threads.pid"
  nginx -c "$work/proxy-$threads.conf"

  if ! (wait_http "http://127.0.0.1:$ours/"); then
    cat "$work/lb-$threads.log" >&2
    curl -sS "http://127.0.0.1:$ours_admin/status" >&2 || true
    bench_die "our balancer does not answer"
  fi
  wait_http "http://127.0.0.1:$hap/"
  wait_http "http://127.0.0.1:$ngx/"
  ours_pids() { echo "$ours_pid"; }
  haproxy_pids() { cat "$work/haproxy-$threads.pid"; }
  nginx_workers() { workers_of "$work/proxy-$threads.pid"; }
  [ "$(wc -w <<<"$(nginx_workers)")" = "$threads" ] || bench_die "nginx has not $threads workers"

  bench_reset
  echo "contenders (one GET each):"
  bench_contender ours "http://127.0.0.1:$ours/" ours_pids "millions lb"
  bench_contender haproxy "http://127.0.0.1:$hap/" haproxy_pids "haproxy $(haproxy -v | awk 'NR==1 {print $3}')"
  bench_contender nginx "http://127.0.0.1:$ngx/" nginx_workers "nginx proxy"
  bench_contender direct "http://127.0.0.1:$b1/" backend_workers "(backend direct, no proxy)"
  bench_rounds

  {
    echo
    echo "proxy threads $threads: ours [lb] threads=$threads, haproxy nbthread $threads, nginx worker_processes $threads;"
    echo "two nginx backends ($BACKEND_WORKERS worker(s)), round robin; cpu_us/req is the proxy's (the backends' for direct)"
    bench_settings
    bench_report
    bench_ratio ours haproxy "ours/haproxy"
    bench_ratio ours nginx "ours/nginx  "
  } >"$work/summary-$threads.txt"
  cat "$work/summary-$threads.txt"
  summary+=("$work/summary-$threads.txt")

  _bench_stop "$ours_pid"
  _bench_stop "$(cat "$work/haproxy-$threads.pid")"
  _bench_stop "$(cat "$work/proxy-$threads.pid")"
done

echo
echo "==== summary ($(nproc) cores, shared by wrk, the proxy and the backends; see bench/README.md)"
cat "${summary[@]}"
