#!/usr/bin/env bash
# The load balancer against HAProxy 2.6 and nginx as a proxy: the same two nginx backends
# (a small response), one thread each, keep-alive on both sides, wrk with the same settings, in
# one run. Prints requests/s, p99 and the ratio ours/HAProxy. Loopback only, bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
bin=$PWD/build/millions
work=$(mktemp -d)
chmod 755 "$work"  # nginx workers run as www-data
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$work"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
b1=$(port) b2=$(port) ours=$(port) ours_admin=$(port) hap=$(port) ngx=$(port)

mkdir -p "$work/www"
printf '{"ok":true,"payload":"%s"}' "$(head -c 200 /dev/zero | tr '\0' x)" >"$work/www/index.json"
cat >"$work/backends.conf" <<NGINX
worker_processes 1;
daemon on;
pid $work/backends.pid;
error_log $work/backends-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$b1; root $work/www; location / { try_files /index.json =404; } }
  server { listen 127.0.0.1:$b2; root $work/www; location / { try_files /index.json =404; } }
}
NGINX
nginx -c "$work/backends.conf"

cat >"$work/lb.toml" <<TOML
[lb]
threads = 1
policy = "round_robin"
[[lb.node]]
name = "lb1"
listen = "127.0.0.1:$ours"
admin = "127.0.0.1:$ours_admin"
[[web.node]]
name = "b1"
listen = "127.0.0.1:$b1"
[[web.node]]
name = "b2"
listen = "127.0.0.1:$b2"
[[postgres.node]]
name = "unused"
listen = "127.0.0.1:1"
TOML
"$bin" serve lb --config "$work/lb.toml" --node lb1 2>"$work/lb.log" &
pids+=($!)

cat >"$work/haproxy.cfg" <<HAP
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
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
haproxy -f "$work/haproxy.cfg" -D -p "$work/haproxy.pid"

cat >"$work/proxy.conf" <<NGINX
worker_processes 1;
daemon on;
pid $work/proxy.pid;
error_log $work/proxy-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  upstream be { server 127.0.0.1:$b1; server 127.0.0.1:$b2; keepalive 128; }
  server {
    listen 127.0.0.1:$ngx;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGINX
nginx -c "$work/proxy.conf"
sleep 1
curl -fsS "http://127.0.0.1:$ours/" >/dev/null || { cat "$work/lb.log" "$work/lb.toml"; curl -s "http://127.0.0.1:$ours_admin/status"; curl -sS -i "http://127.0.0.1:$b1/readyz"; exit 1; }
curl -fsS "http://127.0.0.1:$hap/" >/dev/null
curl -fsS "http://127.0.0.1:$ngx/" >/dev/null

run() {  # url -> "rps p99"
  wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$1" >"$work/out.txt"
  awk '/^Requests\/sec/ {r=$2} $1=="99%" {p=$2} END {print r, p}' "$work/out.txt"
}
read -r o_rps o_p99 <<<"$(run "http://127.0.0.1:$ours/")"
read -r h_rps h_p99 <<<"$(run "http://127.0.0.1:$hap/")"
read -r n_rps n_p99 <<<"$(run "http://127.0.0.1:$ngx/")"
read -r d_rps d_p99 <<<"$(run "http://127.0.0.1:$b1/")"
printf '\nwrk -t1 -c%s -d%ss, two nginx backends, one proxy thread each, same run\n' "$CONNS" "$DURATION"
printf '%-22s %12s %10s\n' proxy requests/s p99
printf '%-22s %12s %10s\n' "millions lb" "$o_rps" "$o_p99" "haproxy 2.6" "$h_rps" "$h_p99" \
  "nginx proxy" "$n_rps" "$n_p99" "(backend direct)" "$d_rps" "$d_p99"
python3 -c "print(f'ratio ours/haproxy: {$o_rps/$h_rps:.2f} throughput')"
