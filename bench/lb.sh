#!/usr/bin/env bash
# shellcheck disable=SC2317 # the pid functions are called indirectly, by bench_contender
# The load balancer against HAProxy and nginx as a proxy, each with THREADS threads for THREADS in
# PROXY_THREADS (default "1 2": ours `[lb] threads`, HAProxy `nbthread`, nginx
# `worker_processes`), in front of the same backends, in each set-up of SETUPS (default
# "nginx web"):
#   nginx  two nginx backends (a 224-byte JSON file, BACKEND_WORKERS worker processes, default 1),
#          round robin everywhere; the backend direct is printed as a reference.
#   web    the default topology (UP_TOPOLOGY, default topologies/local.toml: etcd, PostgreSQL
#          under Patroni, Redis, two web nodes, a balancer) under `millions up` on free ports,
#          its two web nodes the backends; the default topology's policy least_outstanding for
#          ours, HAProxy `balance leastconn`, nginx `least_conn`. Two URLs through each proxy:
#          GET /livez and the whole path GET /api/users/{id} of a user created once through the
#          API, an L1 hit on both web nodes (the L1 miss count may only move by L1 refreshes:
#          cache.l1_ttl_ms); web node 1 direct is printed as a reference.
# Keep-alive on both sides of every proxy (client side: no request limit on any; server side:
# pooled, 1000000 requests per connection). Interleaved rounds with a warm-up, medians and
# spread, CPU microseconds per request of the proxy process under test (in the web set-up also
# the web nodes', column +cpu_us/req), ratios ours/HAProxy and ours/nginx per URL. Fails on any
# non-2xx, socket error or tool error. Loopback only; every run is bounded in time.
# BASELINE_BIN (a second millions binary, e.g. main's before a change) adds our balancer run
# from it as one more contender per URL, same config on other ports, with the ratio
# ours/baseline: a before/after in the same interleaved rounds.
# PIPELINE_DEPTH and BASELINE_PIPELINE_DEPTH set `[lb] pipeline_depth` of ours and of the
# baseline (default 8; 1 turns pipelined GETs off): BASELINE_BIN=<the same binary>
# BASELINE_PIPELINE_DEPTH=1 shows what pipelining alone buys, in the same rounds.
# Settings: SETUPS, PROXY_THREADS, BACKEND_WORKERS, UP_TOPOLOGY, DURATION, ROUNDS, WARMUP, CONNS,
# WRK_THREADS, BENCH_SELFTEST (lib.sh), BASELINE_BIN, PIPELINE_DEPTH, BASELINE_PIPELINE_DEPTH.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
SETUPS=${SETUPS:-nginx web}
PROXY_THREADS=${PROXY_THREADS:-1 2}
BACKEND_WORKERS=${BACKEND_WORKERS:-1}
for s in $SETUPS; do
  [ "$s" = nginx ] || [ "$s" = web ] || bench_die "SETUPS: '$s' is not nginx or web"
done
bench_init wrk nginx haproxy curl python3
bench_binary
bin=$BENCH_BIN
work=$BENCH_WORK
base_bin=
if [ -n "${BASELINE_BIN:-}" ]; then
  mkdir -p "$work/baseline"
  cp "$(readlink -f "$BASELINE_BIN")" "$work/baseline/millions"
  m=$(dirname "$(readlink -f "$BASELINE_BIN")")/millions-media-vips.so
  if [ -f "$m" ]; then cp "$m" "$work/baseline/"; fi
  base_bin=$work/baseline/millions
  "$base_bin" --help >/dev/null 2>&1 || bench_die "BASELINE_BIN $BASELINE_BIN does not run"
fi
hap_version=$(haproxy -v | awk 'NR==1 {sub(/-.*/, "", $3); print $3}')

# set_pipeline_depth FILE N: `[lb] pipeline_depth = N` in a balancer's config (N empty: the
# default, core/upstream.h).
set_pipeline_depth() {
  [ -n "$2" ] || return 0
  sed -i "/^\[lb\]\$/a pipeline_depth = $2" "$1"
  grep -q "^pipeline_depth = $2\$" "$1" || bench_die "could not set pipeline_depth in $1"
}

# start_proxies SETUP THREADS POLICY_HAP POLICY_NGINX BACKEND...: our balancer from
# $work/lb-SETUP-THREADS.toml (written by the caller, listening on $ours, admin $ours_admin),
# HAProxy and nginx in front of BACKEND... (host:port); sets ours_pid, hap, ngx.
start_proxies() {
  local setup=$1 threads=$2 hpol=$3 npol=$4 b i=0 hservers='' nservers=''
  shift 4
  for b in "$@"; do
    i=$((i + 1))
    hservers+="  server b$i $b"$'\n'
    nservers+="    server $b;"$'\n'
  done
  hap=$(free_port)
  ngx=$(free_port)
  set_pipeline_depth "$work/lb-$setup-$threads.toml" "${PIPELINE_DEPTH:-}"
  "$bin" serve lb --config "$work/lb-$setup-$threads.toml" --node lb1 \
    2>"$work/lb-$setup-$threads.log" &
  ours_pid=$!
  bench_track "$ours_pid"
  base_pid=
  if [ -n "$base_bin" ]; then
    base=$(free_port)
    base_admin=$(free_port)
    sed -e "s/127.0.0.1:$ours\"/127.0.0.1:$base\"/" -e "s/127.0.0.1:$ours_admin\"/127.0.0.1:$base_admin\"/" \
      "$work/lb-$setup-$threads.toml" >"$work/lb-base-$setup-$threads.toml"
    grep -q "127.0.0.1:$base\"" "$work/lb-base-$setup-$threads.toml" ||
      bench_die "could not move the baseline balancer to port $base"
    set_pipeline_depth "$work/lb-base-$setup-$threads.toml" "${BASELINE_PIPELINE_DEPTH:-}"
    "$base_bin" serve lb --config "$work/lb-base-$setup-$threads.toml" --node lb1 \
      2>"$work/lb-base-$setup-$threads.log" &
    base_pid=$!
    bench_track "$base_pid"
  fi

  cat >"$work/haproxy-$setup-$threads.cfg" <<HAP
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
  # The headers our balancer adds to every request it forwards (bench rule 4: the backends
  # get the same bytes from every proxy): X-Forwarded-For, -Proto, Forwarded, a request id and
  # a traceparent.
  option forwardfor
  unique-id-format %[rand,hex]%[rand,hex]
  http-request set-header X-Forwarded-Proto http
  http-request set-header Forwarded "for=\\"%[src]\\";proto=http"
  http-request set-header X-Request-Id %[unique-id]
  http-request set-header traceparent "00-%[unique-id,lower]-%[rand,hex,lower]-01"
  default_backend be
backend be
  balance $hpol
$hservers
HAP
  bench_track_pidfile "$work/haproxy-$setup-$threads.pid"
  haproxy -f "$work/haproxy-$setup-$threads.cfg" -D -p "$work/haproxy-$setup-$threads.pid"

  cat >"$work/proxy-$setup-$threads.conf" <<NGINX
worker_processes $threads;
daemon on;
pid $work/proxy-$setup-$threads.pid;
error_log $work/proxy-error-$setup-$threads.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream be {
    $npol
$nservers
    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$ngx;
    location / {
      proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header Forwarded "for=\\"\$remote_addr\\";proto=\$scheme";
      proxy_set_header X-Request-Id \$request_id;
      proxy_set_header traceparent "00-\$request_id-b7ad6b7169203331-01";
    }
  }
}
NGINX
  bench_track_pidfile "$work/proxy-$setup-$threads.pid"
  nginx -c "$work/proxy-$setup-$threads.conf"

  if ! (wait_http "http://127.0.0.1:$ours/livez"); then
    cat "$work/lb-$setup-$threads.log" >&2
    curl -sS "http://127.0.0.1:$ours_admin/status" >&2 || true
    bench_die "our balancer does not answer"
  fi
  wait_http "http://127.0.0.1:$hap/livez"
  wait_http "http://127.0.0.1:$ngx/livez"
  [ -z "$base_pid" ] || wait_http "http://127.0.0.1:$base/livez"
  [ "$(wc -w <<<"$(workers_of "$work/proxy-$setup-$threads.pid")")" = "$threads" ] ||
    bench_die "nginx has not $threads workers"
}

stop_proxies() { # setup threads
  _bench_stop "$ours_pid"
  [ -z "$base_pid" ] || _bench_stop "$base_pid"
  _bench_stop "$(cat "$work/haproxy-$1-$2.pid")"
  _bench_stop "$(cat "$work/proxy-$1-$2.pid")"
}

summary=()

# --- Set-up "nginx": two nginx backends, round robin.
setup_nginx() {
  local threads
  b1=$(free_port)
  b2=$(free_port)
  bench_nginx_backends "$BACKEND_WORKERS" "$b1" "$b2"
  backend_workers() { workers_of "$work/backends.pid"; }
  for threads in $PROXY_THREADS; do
    echo
    echo "== set-up nginx, proxy threads: $threads (ours [lb] threads = $threads; haproxy nbthread $threads; nginx worker_processes $threads)"
    ours=$(free_port)
    ours_admin=$(free_port)
    python3 - "$work/lb-nginx-$threads.toml" <<PY
import sys; sys.path.insert(0, "tests/integration")
from harness import node, topology
topology(sys.argv[1], lb={"threads": $threads, "policy": "round_robin",
                          "node": [node("lb1", $ours, admin=$ours_admin)]},
         web=[node("b1", $b1), node("b2", $b2)])
PY
    start_proxies nginx "$threads" roundrobin "" "127.0.0.1:$b1" "127.0.0.1:$b2"
    ours_pids() { echo "$ours_pid"; }
    haproxy_pids() { cat "$work/haproxy-nginx-$threads.pid"; }
    nginx_workers() { workers_of "$work/proxy-nginx-$threads.pid"; }

    bench_reset
    echo "contenders (one GET each):"
    bench_contender ours "http://127.0.0.1:$ours/" ours_pids "millions lb"
    bench_contender haproxy "http://127.0.0.1:$hap/" haproxy_pids "haproxy $hap_version"
    bench_contender nginx "http://127.0.0.1:$ngx/" nginx_workers "nginx proxy"
    bench_contender direct "http://127.0.0.1:$b1/" backend_workers "(backend direct, no proxy)"
    base_pids() { echo "$base_pid"; }
    [ -z "$base_pid" ] ||
      bench_contender baseline "http://127.0.0.1:$base/" base_pids "millions lb, BASELINE_BIN"
    bench_rounds

    {
      echo
      echo "set-up nginx, proxy threads $threads: ours [lb] threads=$threads, haproxy nbthread $threads, nginx worker_processes $threads;"
      echo "two nginx backends ($BACKEND_WORKERS worker(s)), round robin; cpu_us/req is the proxy's (the backends' for direct)"
      bench_settings
      bench_report
      bench_ratio ours haproxy "ours/haproxy"
      bench_ratio ours nginx "ours/nginx  "
      [ -z "$base_pid" ] || bench_ratio ours baseline "ours/baseline"
    } >"$work/summary-nginx-$threads.txt"
    cat "$work/summary-nginx-$threads.txt"
    summary+=("$work/summary-nginx-$threads.txt")
    stop_proxies nginx "$threads"
  done
  _bench_stop "$(cat "$work/backends.pid")"
}

# --- Set-up "web": the default topology's own web nodes, its policy.
setup_web() {
  local threads n a r uid user_path m0 m1 h0 h1 d0 d1 t0 t1 lv0 lv1 policy l1_ttl
  local -a webs addrs
  echo
  echo "== set-up web: starting the default topology (${UP_TOPOLOGY:-topologies/local.toml}) under millions up"
  bench_up_default "$work/up"
  read -r -a webs <<<"$(up_nodes "$UP_TOPO" web)"
  [ "${#webs[@]}" -ge 1 ] || bench_die "no web node in millions status"
  addrs=()
  for n in "${webs[@]}"; do
    a=$(up_node_field "$UP_TOPO" "$n" address)
    [ -n "$a" ] || bench_die "web node $n is not running"
    wait_http "http://$a/readyz"
    addrs+=("$a")
  done
  read -r policy l1_ttl < <(python3 - "$UP_TOPO" <<'PY'
import sys, tomllib
t = tomllib.load(open(sys.argv[1], "rb"))
print(t.get("lb", {}).get("policy", "round_robin"), t.get("cache", {}).get("l1_ttl_ms", 2000))
PY
  )
  echo "millions up took ${UP_SECS}s; web nodes: ${webs[*]} at ${addrs[*]}; the topology's lb policy: $policy"
  web_pids() {
    local n p out=''
    for n in "${webs[@]}"; do
      p=$(up_node_field "$UP_TOPO" "$n" pid)
      [ -n "$p" ] && [ "$p" != 0 ] || return 1
      out+="$p "
    done
    echo "$out"
  }
  web_pids >/dev/null || bench_die "a web node has no pid in millions status"

  uid=$(bench_user "http://${addrs[0]}" "bench_lb_$$")
  user_path=/api/users/$uid
  for a in "${addrs[@]}"; do l1_warm "http://$a" "$user_path" user; done
  echo "user $uid created through the API; GET $user_path is an L1 hit on every web node"
  l1_sum() { # RESULT: the L1 user lookups of every web node
    local a s=0
    for a in "${addrs[@]}"; do s=$((s + $(l1_count "http://$a" user "$1"))); done
    echo "$s"
  }
  loads_sum() { # the user reads that went to the database, every web node
    local a s=0 v
    for a in "${addrs[@]}"; do
      v=$(metric_sum "http://$a" millions_cache_loads_total 'kind="user"')
      [ -n "$v" ] || bench_die "$a/metrics has no millions_cache_loads_total{kind=\"user\"}"
      s=$((s + v))
    done
    echo "$s"
  }
  livez_sum() {
    local a s=0 v
    for a in "${addrs[@]}"; do
      v=$(curl -fsS "http://$a/metrics" | awk '/^millions_http_requests_total\{/ && /route="\/livez"/ {s += $NF} END {printf "%d\n", s}')
      s=$((s + v))
    done
    echo "$s"
  }

  for threads in $PROXY_THREADS; do
    echo
    echo "== set-up web, proxy threads: $threads (ours [lb] threads = $threads; haproxy nbthread $threads; nginx worker_processes $threads)"
    echo "   policies matched: ours $policy (the default topology's), haproxy balance leastconn, nginx least_conn"
    ours=$(free_port)
    ours_admin=$(free_port)
    bench_lb_config "$UP_TOPO" "$work/lb-web-$threads.toml" "$threads" "$ours" "$ours_admin" \
      "${webs[*]}" "${addrs[*]}"
    start_proxies web "$threads" leastconn least_conn\; "${addrs[@]}"
    ours_pids() { echo "$ours_pid"; }
    haproxy_pids() { cat "$work/haproxy-web-$threads.pid"; }
    nginx_workers() { workers_of "$work/proxy-web-$threads.pid"; }

    # Each proxy passes /livez on to a web node (our balancer does not answer it itself).
    for a in "$ours" "$hap" "$ngx"; do
      lv0=$(livez_sum)
      for n in $(seq 10); do curl -fsS -o /dev/null "http://127.0.0.1:$a/livez"; done
      lv1=$(livez_sum)
      [ $((lv1 - lv0)) -ge 10 ] || bench_die "127.0.0.1:$a: GET /livez did not reach the web nodes"
    done

    bench_reset
    echo "contenders (one GET each; +cpu_us/req: the web nodes' CPU per request):"
    bench_contender ours_livez "http://127.0.0.1:$ours/livez" ours_pids "millions lb, /livez" web_pids
    bench_contender haproxy_livez "http://127.0.0.1:$hap/livez" haproxy_pids "haproxy $hap_version, /livez" web_pids
    bench_contender nginx_livez "http://127.0.0.1:$ngx/livez" nginx_workers "nginx proxy, /livez" web_pids
    bench_contender ours_user "http://127.0.0.1:$ours$user_path" ours_pids "millions lb, user GET (L1)" web_pids
    bench_contender haproxy_user "http://127.0.0.1:$hap$user_path" haproxy_pids "haproxy $hap_version, user GET (L1)" web_pids
    bench_contender nginx_user "http://127.0.0.1:$ngx$user_path" nginx_workers "nginx proxy, user GET (L1)" web_pids
    web1_pid() { up_node_field "$UP_TOPO" "${webs[0]}" pid; }
    bench_contender direct_user "http://${addrs[0]}$user_path" web1_pid "(${webs[0]} direct, user GET)"
    base_pids() { echo "$base_pid"; }
    if [ -n "$base_pid" ]; then
      bench_contender base_livez "http://127.0.0.1:$base/livez" base_pids "millions lb BASELINE_BIN, /livez" web_pids
      bench_contender base_user "http://127.0.0.1:$base$user_path" base_pids "millions lb BASELINE_BIN, user GET (L1)" web_pids
    fi
    for a in "${addrs[@]}"; do l1_warm "http://$a" "$user_path" user; done
    m0=$(l1_sum miss)
    h0=$(l1_sum hit)
    d0=$(loads_sum)
    t0=$(date +%s)
    bench_rounds
    t1=$(date +%s)
    m1=$(l1_sum miss)
    h1=$(l1_sum hit)
    d1=$(loads_sum)
    l1_check "$((h1 - h0))" "$((m1 - m0))" "$((d1 - d0))" "$((t1 - t0))" "${#addrs[@]}" "$l1_ttl"

    {
      echo
      echo "set-up web, proxy threads $threads: ours [lb] threads=$threads, haproxy nbthread $threads, nginx worker_processes $threads;"
      echo "backends: the default topology's ${#webs[@]} web nodes ([web] threads as in ${UP_TOPOLOGY:-topologies/local.toml});"
      echo "policies matched: ours $policy, haproxy leastconn, nginx least_conn; cpu_us/req is the proxy's"
      echo "(web1's for direct), +cpu_us/req the web nodes' (all of them) per request through the proxy"
      echo "user GET, L1 cache of the web nodes during the runs: $L1_LINE"
      bench_settings
      bench_report
      bench_ratio ours_livez haproxy_livez "ours/haproxy GET /livez       "
      bench_ratio ours_livez nginx_livez "ours/nginx   GET /livez       "
      bench_ratio ours_user haproxy_user "ours/haproxy whole path, user "
      bench_ratio ours_user nginx_user "ours/nginx   whole path, user "
      if [ -n "$base_pid" ]; then
        bench_ratio ours_livez base_livez "ours/baseline GET /livez      "
        bench_ratio ours_user base_user "ours/baseline whole path, user"
      fi
      r=$(ratio_median ours_user haproxy_user 3)
      echo "issue 14 target, whole path balancer -> web -> L1 hit >= 1.2x HAProxy's throughput: ${r}x: $(
        awk -v r="$r" 'BEGIN {print (r + 0 >= 1.2) ? "met" : "MISSED"}')"
    } >"$work/summary-web-$threads.txt"
    cat "$work/summary-web-$threads.txt"
    summary+=("$work/summary-web-$threads.txt")
    stop_proxies web "$threads"
  done
}

for s in $SETUPS; do "setup_$s"; done

echo
echo "==== summary, set-ups: $SETUPS ($(nproc) cores, shared by wrk, the proxy and the backends; see bench/README.md)"
cat "${summary[@]}"
