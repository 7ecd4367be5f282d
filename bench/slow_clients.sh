#!/usr/bin/env bash
# Slow clients against the balancer: our `millions serve lb`, HAProxy and nginx as a proxy, each
# with one thread, in front of the same two nginx backends, attacked by slowhttptest in each mode
# of MODES (default "none slowloris slowbody slowread"):
#   none       no attack: the legitimate load alone, the reference
#   slowloris  slowhttptest -H: ATTACK_CONNS connections sending one header line every 5 s
#   slowbody   slowhttptest -B: POSTs announcing 8 KB of body, a few bytes every 5 s
#   slowread   slowhttptest -X: pipelined GETs of a 256 KB object read through a tiny TCP window
# While an attack holds its connections, a legitimate client (wrk -t1, LEGIT_CONNS connections,
# LEGIT_SECS seconds, 2 s timeout) GETs the small object through the proxy. Printed per mode and
# contender: legitimate successes/s (2xx answers; median over ROUNDS rotated rounds, with spread),
# legitimate failures (non-2xx, timeouts, socket errors: here they are the measure, not a reason
# to fail the run), the attacker's connections the proxy still held at the end of the window (ss),
# and the proxy's CPU µs per legitimate success. Ratio: ours against the better of the two peers.
# Timeouts are set alike on every side: header 10 s, body 30 s, idle 60 s (ours [http]
# header_timeout/request_timeout/idle_timeout; HAProxy timeout http-request/client; nginx
# client_header_timeout/client_body_timeout/send_timeout/keepalive_timeout).
# The run fails when a tool fails, when the unattacked reference sees any failure (the bench rule),
# or when an attack held no connection at its start (the attack did not happen).
# Loopback only; bounded: about ROUNDS x |MODES| x 3 x (RAMP + LEGIT_SECS + 3) seconds.
# Settings: MODES, ROUNDS (3), ATTACK_CONNS (1000), ATTACK_RATE (500/s), RAMP (4 s),
# LEGIT_CONNS (16), LEGIT_SECS (15).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
MODES=${MODES:-none slowloris slowbody slowread}
ROUNDS=${ROUNDS:-3}
ATTACK_CONNS=${ATTACK_CONNS:-1000}
ATTACK_RATE=${ATTACK_RATE:-500}
RAMP=${RAMP:-4}
LEGIT_CONNS=${LEGIT_CONNS:-16}
LEGIT_SECS=${LEGIT_SECS:-15}
for m in $MODES; do
  case $m in none | slowloris | slowbody | slowread) ;; *) bench_die "MODES: '$m' is unknown" ;; esac
done
bench_init wrk nginx haproxy curl python3 slowhttptest ss
bench_binary
bin=$BENCH_BIN
work=$BENCH_WORK

# --- The backends: two nginx listeners, a 224-byte JSON object and a 256 KB one for slow reads.
b1=$(free_port)
b2=$(free_port)
mkdir -p "$work/www"
printf '{"ok":true,"payload":"%s"}' "$(head -c 200 /dev/zero | tr '\0' x)" >"$work/www/index.json"
head -c 262144 /dev/zero | tr '\0' y >"$work/www/big.txt"
cat >"$work/backends.conf" <<NGINX
worker_processes 1;
daemon on;
pid $work/backends.pid;
error_log $work/backends-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  default_type application/json;
  server {
    listen 127.0.0.1:$b1;
    listen 127.0.0.1:$b2;
    root $work/www;
    location = /big { default_type text/plain; try_files /big.txt =404; }
    location / { try_files /index.json =404; }
  }
}
NGINX
bench_track_pidfile "$work/backends.pid"
nginx -c "$work/backends.conf"
wait_http "http://127.0.0.1:$b1/"

# --- The three proxies, one thread each, the same timeouts.
ours=$(free_port)
ours_admin=$(free_port)
hap=$(free_port)
ngx=$(free_port)
python3 - "$work/lb.toml" <<PY
import sys; sys.path.insert(0, "tests/integration")
from harness import node, topology
topology(sys.argv[1], lb={"threads": 1, "policy": "round_robin",
                          "node": [node("lb1", $ours, admin=$ours_admin)]},
         web=[node("b1", $b1), node("b2", $b2)],
         http={"header_timeout_ms": 10000, "request_timeout_ms": 30000,
               "idle_timeout_ms": 60000})
PY
"$bin" serve lb --config "$work/lb.toml" --node lb1 2>"$work/lb.log" &
ours_pid=$!
bench_track "$ours_pid"

cat >"$work/haproxy.cfg" <<HAP
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  maxconn 4000
  timeout connect 1s
  timeout http-request 10s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 60s
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
bench_track_pidfile "$work/haproxy.pid"
haproxy -f "$work/haproxy.cfg" -D -p "$work/haproxy.pid"

cat >"$work/proxy.conf" <<NGINX
worker_processes 1;
daemon on;
pid $work/proxy.pid;
error_log $work/proxy-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_header_timeout 10s;
  client_body_timeout 30s;
  send_timeout 30s;
  keepalive_timeout 60s;
  upstream be {
    server 127.0.0.1:$b1;
    server 127.0.0.1:$b2;
    keepalive 128;
  }
  server {
    listen 127.0.0.1:$ngx;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGINX
bench_track_pidfile "$work/proxy.pid"
nginx -c "$work/proxy.conf"
if ! (wait_http "http://127.0.0.1:$ours/"); then
  cat "$work/lb.log" >&2
  bench_die "our balancer does not answer"
fi
wait_http "http://127.0.0.1:$hap/"
wait_http "http://127.0.0.1:$ngx/"

names=(ours haproxy nginx)
ports=("$ours" "$hap" "$ngx")
pids_of() { # contender -> pids whose CPU counts
  case $1 in
    ours) echo "$ours_pid" ;;
    haproxy) cat "$work/haproxy.pid" ;;
    nginx) workers_of "$work/proxy.pid" ;;
  esac
}
# Established connections on the proxy's listening port (its side of each client connection).
held() { ss -Htn state established "( sport = :$1 )" | wc -l; }

attack_args() { # mode port
  case $1 in
    slowloris) echo "-H -i 5 -u http://127.0.0.1:$2/" ;;
    slowbody) echo "-B -i 5 -s 8192 -u http://127.0.0.1:$2/" ;;
    slowread) echo "-X -k 10 -n 2 -w 1 -y 16 -z 8 -u http://127.0.0.1:$2/big" ;;
  esac
}

# One measurement: attack (unless none), ramp, legitimate load, held connections; appends
# "mode name round ok_rps failures held_start held_end cpu_us" to $work/results.
measure() { # mode index round
  local mode=$1 i=$2 round=$3 name=${names[$2]} port=${ports[$2]} atk='' h0=0 h1 t0 t1 out
  local reqs non2xx sockerr ok rps cpu
  if [ "$mode" != none ]; then
    # shellcheck disable=SC2046 # the attack's arguments are words
    slowhttptest $(attack_args "$mode" "$port") -c "$ATTACK_CONNS" -r "$ATTACK_RATE" \
      -l $((RAMP + LEGIT_SECS + 5)) -p 3 >"$work/atk-$mode-$name-$round.log" 2>&1 &
    atk=$!
    bench_track "$atk"
    sleep "$RAMP"
    h0=$(held "$port")
    kill -0 "$atk" 2>/dev/null ||
      bench_die "$mode against $name: slowhttptest ended early: $(tail -5 "$work/atk-$mode-$name-$round.log" | tr -d "\\0")"
  fi
  read -r -a pp <<<"$(pids_of "$name")"
  t0=$(cpu_ticks "${pp[@]}")
  out=$(timeout $((LEGIT_SECS + 20)) wrk -t1 -c"$LEGIT_CONNS" -d"${LEGIT_SECS}s" --timeout 2s \
    "http://127.0.0.1:$port/" 2>&1) || bench_die "wrk failed against $name: $out"
  t1=$(cpu_ticks "${pp[@]}")
  if [ -n "$atk" ]; then
    h1=$(($(held "$port")))
    kill "$atk" 2>/dev/null || true
    wait "$atk" 2>/dev/null || true
  else
    h1=0
  fi
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  [ -n "$reqs" ] || bench_die "no request count from wrk against $name: $out"
  non2xx=$(awk '/Non-2xx or 3xx responses/ {print $NF}' <<<"$out")
  sockerr=$(awk -F'[ ,]+' '/Socket errors/ {s=0; for (i=1;i<=NF;i++) if ($i ~ /^[0-9]+$/) s+=$i; print s}' <<<"$out")
  ok=$((reqs - ${non2xx:-0}))
  rps=$(python3 -c "print(f'{$ok / $LEGIT_SECS:.1f}')")
  cpu=$(python3 -c "import os; t=os.sysconf('SC_CLK_TCK'); print(f'{($t1-$t0)/t*1e6/max($ok,1):.1f}')")
  if [ "$mode" = none ] && [ $((${non2xx:-0} + ${sockerr:-0})) -gt 0 ]; then
    bench_die "no attack, yet $name failed legitimate requests: $out"
  fi
  if [ "$mode" != none ] && [ "$h0" -lt $((ATTACK_CONNS / 4)) ]; then
    bench_die "$mode against $name held only $h0 connections after ${RAMP}s: the attack did not take ($(tail -3 "$work/atk-$mode-$name-$round.log" | tr -d "\\0"))"
  fi
  echo "$mode $name $round $rps $((${non2xx:-0} + ${sockerr:-0})) $h0 $h1 $cpu" >>"$work/results"
  printf '  %-9s %-8s round %d: %9s ok/s  %6d failed  held %5d -> %5d  %7s cpu_us/ok\n' \
    "$mode" "$name" "$round" "$rps" "$((${non2xx:-0} + ${sockerr:-0}))" "$h0" "$h1" "$cpu"
  # Let the proxy close what the attack left before the next contender's run.
  sleep 2
}

echo "slow clients: proxies with 1 thread each (ours [lb] threads=1, haproxy nbthread 1, nginx worker_processes 1)"
echo "attack: slowhttptest $ATTACK_CONNS connections at $ATTACK_RATE/s; legit: wrk -t1 -c$LEGIT_CONNS ${LEGIT_SECS}s --timeout 2s"
: >"$work/results"
for round in $(seq 1 "$ROUNDS"); do
  for mode in $MODES; do
    # Rotate the contenders' order from round to round (bench rule 2).
    for k in 0 1 2; do
      measure "$mode" $(((k + round) % 3)) "$round"
    done
  done
done

python3 - "$work/results" "$ROUNDS" <<'PY'
import sys, statistics
sys.path.insert(0, "bench")
from benchlib import fmt, ratio
rows = [l.split() for l in open(sys.argv[1])]
modes = list(dict.fromkeys(r[0] for r in rows))
print()
print(f"{'mode':10} {'proxy':8} {'legit ok/s (median [min-max] spread)':40} {'failed':>8} "
      f"{'held@start':>10} {'held@end':>9} {'cpu_us/ok':>10}")
verdict = []
for m in modes:
    per = {}
    for name in ("ours", "haproxy", "nginx"):
        rs = [r for r in rows if r[0] == m and r[1] == name]
        rs.sort(key=lambda r: int(r[2]))
        per[name] = [float(r[3]) for r in rs]
        print(f"{m:10} {name:8} {fmt(per[name], 0):40} "
              f"{statistics.median(int(r[4]) for r in rs):>8.0f} "
              f"{statistics.median(int(r[5]) for r in rs):>10.0f} "
              f"{statistics.median(int(r[6]) for r in rs):>9.0f} "
              f"{statistics.median(float(r[7]) for r in rs):>10.1f}")
    best = max(("haproxy", "nginx"), key=lambda n: statistics.median(per[n]))
    print(f"{m:10} ours/{best} (the better peer) legit ok/s: {ratio(per['ours'], per[best])}")
    verdict.append((m, statistics.median(per["ours"]) >= statistics.median(per[best])))
print()
for m, ok in verdict:
    print(f"{m}: ours {'serves legitimate traffic at least as well as' if ok else 'serves less legitimate traffic than'} the better peer")
PY
