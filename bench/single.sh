#!/usr/bin/env bash
# Stage-1 baseline: wrk against `millions single` for GET /api/users/{id} (a cache hit) and a
# static asset, beside nginx serving the same asset file, in the same run, same wrk settings.
# Prints requests/s, p99 and the ratio to nginx. Loopback only; every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
THREADS=${THREADS:-1}
CONNS=${CONNS:-64}
work=$(mktemp -d)
chmod 755 "$work"  # nginx workers run as www-data
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

port=$(free_port)
build/millions single --port "$port" --data "$work/data" 2>"$work/millions.log" &
pids+=($!)
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

base="http://127.0.0.1:$port"
curl -fsS -H 'Content-Type: application/json' -d '{"handle":"bench_user","password":"password123"}' \
  "$base/api/users" >"$work/user.json"
uid=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["id"])' "$work/user.json")
curl -fsS "$base/api/users/$uid" >/dev/null  # fill the cache
asset=$(curl -fsS "$base/" | grep -o '/assets/app\.[0-9a-f]*\.js' | head -1)
mkdir -p "$work/www/assets"
curl -fsS "$base$asset" >"$work/www$asset"

nport=$(free_port)
cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
daemon on;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  types { text/javascript js; }
  server {
    listen 127.0.0.1:$nport;
    root $work/www;
    location /assets/ { add_header Cache-Control "public, max-age=31536000, immutable"; }
  }
}
NGINX
nginx -c "$work/nginx.conf"
sleep 0.3

run() {  # name url -> "rps p99_ms"
  wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$2" >"$work/$1.txt"
  local rps p99
  rps=$(awk '/^Requests\/sec/ {print $2}' "$work/$1.txt")
  p99=$(awk '$1=="99%" {print $2}' "$work/$1.txt")
  echo "$rps $p99"
}
to_ms() { python3 -c 'import sys,re
v=sys.argv[1]; m=re.match(r"([\d.]+)(us|ms|s)",v); n=float(m.group(1))
print(round(n/1000 if m.group(2)=="us" else n*1000 if m.group(2)=="s" else n,3))' "$1"; }

read -r u_rps u_p99 <<<"$(run user "$base/api/users/$uid")"
read -r a_rps a_p99 <<<"$(run asset "$base$asset")"
read -r n_rps n_p99 <<<"$(run nginx "http://127.0.0.1:$nport$asset")"

printf '\nwrk -t%s -c%s -d%ss, loopback, same run\n' "$THREADS" "$CONNS" "$DURATION"
printf '%-34s %12s %10s %14s\n' scenario requests/s p99_ms ratio_to_nginx
printf '%-34s %12s %10s %14s\n' "millions GET /api/users/{id} (hit)" "$u_rps" "$(to_ms "$u_p99")" \
  "$(python3 -c "print(round($u_rps/$n_rps,2))")"
printf '%-34s %12s %10s %14s\n' "millions static asset" "$a_rps" "$(to_ms "$a_p99")" \
  "$(python3 -c "print(round($a_rps/$n_rps,2))")"
printf '%-34s %12s %10s %14s\n' "nginx static asset" "$n_rps" "$(to_ms "$n_p99")" "1.00"
