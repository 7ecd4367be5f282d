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

run() {  # url -> "rps p99ms"
  wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$1" >"$work/out.txt"
  awk '/^Requests\/sec/ {r=$2}
       $1=="99%" {p=$2; if (p ~ /us$/) p = p / 1000; else if (p ~ /ms$/) p = p + 0; else p = p * 1000}
       END {print r, p}' "$work/out.txt"
}
# Rounds interleave the proxies, so drift on this shared machine hits each alike; the median
# round of each is reported.
ROUNDS=${ROUNDS:-3}
: >"$work/results.txt"
for round in $(seq "$ROUNDS"); do
  for name in ours haproxy nginx direct; do
    case $name in
      ours) url="http://127.0.0.1:$ours/" ;;
      haproxy) url="http://127.0.0.1:$hap/" ;;
      nginx) url="http://127.0.0.1:$ngx/" ;;
      direct) url="http://127.0.0.1:$b1/" ;;
    esac
    echo "$name $(run "$url")" >>"$work/results.txt"
  done
  printf 'round %s/%s done\n' "$round" "$ROUNDS" >&2
done
python3 - "$work/results.txt" "$CONNS" "$DURATION" "$ROUNDS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, rps, p99 = line.split()
    rows.setdefault(name, []).append((float(rps), float(p99)))
med = {k: (statistics.median(r for r, _ in v), statistics.median(p for _, p in v))
       for k, v in rows.items()}
print(f"\nwrk -t1 -c{sys.argv[2]} -d{sys.argv[3]}s x {sys.argv[4]} interleaved rounds (medians), "
      "two nginx backends, one proxy thread each")
print(f"{'proxy':<22} {'requests/s':>12} {'p99 ms':>8}")
for k, label in [("ours", "millions lb"), ("haproxy", "haproxy 2.6"),
                 ("nginx", "nginx proxy"), ("direct", "(backend direct)")]:
    print(f"{label:<22} {med[k][0]:>12.0f} {med[k][1]:>8.2f}")
print(f"ratio ours/haproxy: {med['ours'][0] / med['haproxy'][0]:.2f} throughput, "
      f"p99 {med['ours'][1] / med['haproxy'][1]:.2f}x")
PY
