#!/usr/bin/env bash
# shellcheck disable=SC2317 # the pid functions are called indirectly, by bench_contender
# What [lb] upstream_tls costs: our balancer (one thread) dialling its backends over plain HTTP
# and over TLS (the backend's certificate verified against a CA), keep-alive on both sides, in
# each set-up of SETUPS (default "nginx web"):
#   nginx  two nginx backends (one worker each side) serving a 224-byte JSON file, each on a
#          plain port and a TLS port (ECDSA P-256 certificate from a CA made here); HAProxy 2.6
#          in front of the same ports as a reference (`ssl verify required ca-file`).
#          +cpu_us/req: the nginx backends' CPU per request (their side of the TLS).
#   web    `millions up` of a small topology (etcd, PostgreSQL, two one-thread web nodes each
#          with a tls_listen, certificates made by `up`), and two balancers started by hand in
#          front of the same web nodes: one dialling their plain listeners, one their TLS
#          listeners (upstream_tls, the run's CA); GET /livez. +cpu_us/req: the web nodes' CPU
#          per request (the server side of our own TLS).
# CPU microseconds per request of the proxy process under test (utime+stime / requests), with
# interleaved rounds, medians and spread (bench/lib.sh). Bounded load: CONNS (default 16) wrk
# connections on 127.0.0.1. Fails on any non-2xx or socket error.
# Settings: SETUPS, DURATION, ROUNDS, WARMUP, CONNS, WRK_THREADS (lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${CONNS:-16}
# shellcheck source=bench/lib.sh
. bench/lib.sh
SETUPS=${SETUPS:-nginx web}
bench_init wrk nginx haproxy curl python3 openssl
bench_binary
bin=$BENCH_BIN
work=$BENCH_WORK
hap_version=$(haproxy -v | awk 'NR==1 {sub(/-.*/, "", $3); print $3}')
summary=()

# start_lb NAME TLS(0|1) RUN_DIR BACKEND...: our balancer, one thread, round robin, in front of
# BACKEND... (host:port); with TLS=1 it dials them over TLS and trusts RUN_DIR/tls/upstream/ca.pem.
# Sets lb_port and lb_pid.
start_lb() {
  local name=$1 tls=$2 run=$3
  shift 3
  lb_port=$(free_port)
  local admin
  admin=$(free_port)
  python3 - "$work/$name.toml" "$lb_port" "$admin" "$tls" "$run" "$@" <<'PY'
import sys; sys.path.insert(0, "tests/integration")
from harness import node, topology
out, port, admin, tls, run, *backends = sys.argv[1:]
webs = [{"name": f"b{i}", "listen": a, **({"tls_listen": a} if tls == "1" else {})}
        for i, a in enumerate(backends, 1)]
topology(out, runner={"run_dir": run},
         lb={"threads": 1, "policy": "round_robin", "upstream_tls": tls == "1",
             "node": [node("lb1", int(port), admin=int(admin))]}, web=webs)
PY
  "$bin" serve lb --config "$work/$name.toml" --node lb1 2>"$work/$name.log" &
  lb_pid=$!
  bench_track "$lb_pid"
  if ! (wait_http "http://127.0.0.1:$lb_port/livez"); then
    cat "$work/$name.log" >&2
    bench_die "$name does not answer"
  fi
}

# --- Set-up "nginx".
setup_nginx() {
  local b1 b2 t1 t2 hap p_plain p_tls
  echo
  echo "== set-up nginx: two nginx backends, each on a plain and a TLS port"
  mkdir -p "$work/pki/tls/upstream" "$work/www"
  (
    cd "$work/pki/tls/upstream"
    ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
    # shellcheck disable=SC2086
    openssl req -x509 $ec -days 2 -subj /CN=benchca -keyout ca.key -out ca.pem
    # shellcheck disable=SC2086
    openssl req $ec -subj /CN=backend -keyout backend.key -out backend.csr
    echo "subjectAltName=IP:127.0.0.1" >backend.ext
    openssl x509 -req -in backend.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
      -extfile backend.ext -out backend.pem
  ) >/dev/null 2>&1 || bench_die "could not make the certificates"
  chmod 755 "$work/pki" "$work/pki/tls" "$work/pki/tls/upstream"
  printf '{"ok":true,"payload":"%s"}' "$(head -c 200 /dev/zero | tr '\0' x)" >"$work/www/index.json"
  b1=$(free_port) b2=$(free_port) t1=$(free_port) t2=$(free_port)
  cat >"$work/backends.conf" <<NGINX
worker_processes 2;
daemon on;
pid $work/backends.pid;
error_log $work/backends-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  default_type application/json;
  ssl_certificate $work/pki/tls/upstream/backend.pem;
  ssl_certificate_key $work/pki/tls/upstream/backend.key;
  ssl_protocols TLSv1.2 TLSv1.3;
  server {
    listen 127.0.0.1:$b1;
    listen 127.0.0.1:$b2;
    listen 127.0.0.1:$t1 ssl;
    listen 127.0.0.1:$t2 ssl;
    root $work/www;
    location / { try_files /index.json =404; }
  }
}
NGINX
  bench_track_pidfile "$work/backends.pid"
  nginx -c "$work/backends.conf"
  wait_http "http://127.0.0.1:$b1/"
  backend_workers() { workers_of "$work/backends.pid"; }

  start_lb lb_plain 0 "$work/pki" "127.0.0.1:$b1" "127.0.0.1:$b2"
  p_plain=$lb_port
  plain_pid=$lb_pid
  start_lb lb_tls 1 "$work/pki" "127.0.0.1:$t1" "127.0.0.1:$t2"
  p_tls=$lb_port
  tls_pid=$lb_pid
  hap=$(free_port)
  hap_tls=$(free_port)
  cat >"$work/haproxy.cfg" <<HAP
global
  nbthread 1
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
  option forwardfor
  default_backend be
frontend fe_tls
  bind 127.0.0.1:$hap_tls
  option forwardfor
  default_backend be_tls
backend be
  balance roundrobin
  server b1 127.0.0.1:$b1
  server b2 127.0.0.1:$b2
backend be_tls
  balance roundrobin
  server t1 127.0.0.1:$t1 ssl verify required ca-file $work/pki/tls/upstream/ca.pem
  server t2 127.0.0.1:$t2 ssl verify required ca-file $work/pki/tls/upstream/ca.pem
HAP
  bench_track_pidfile "$work/haproxy.pid"
  haproxy -f "$work/haproxy.cfg" -D -p "$work/haproxy.pid"
  wait_http "http://127.0.0.1:$hap/"
  wait_http "http://127.0.0.1:$hap_tls/"
  plain_pids() { echo "$plain_pid"; }
  tls_pids() { echo "$tls_pid"; }
  haproxy_pids() { cat "$work/haproxy.pid"; }

  bench_reset
  echo "contenders (one GET each; +cpu_us/req: the nginx backends'):"
  bench_contender plain "http://127.0.0.1:$p_plain/" plain_pids "millions lb, plain upstream" backend_workers
  bench_contender tls "http://127.0.0.1:$p_tls/" tls_pids "millions lb, TLS upstream" backend_workers
  bench_contender hap_plain "http://127.0.0.1:$hap/" haproxy_pids "haproxy $hap_version, plain" backend_workers
  bench_contender hap_tls "http://127.0.0.1:$hap_tls/" haproxy_pids "haproxy $hap_version, TLS" backend_workers
  bench_rounds
  {
    echo
    echo "set-up nginx: one proxy thread each; two nginx backends (2 workers), round robin;"
    echo "cpu_us/req is the proxy's, +cpu_us/req the backends'"
    bench_settings
    bench_report
    bench_ratio tls plain "ours TLS/plain  "
    bench_ratio hap_tls hap_plain "haproxy TLS/plain"
    bench_ratio tls hap_tls "ours/haproxy TLS"
  } >"$work/summary-nginx.txt"
  cat "$work/summary-nginx.txt"
  summary+=("$work/summary-nginx.txt")
  _bench_stop "$plain_pid"
  _bench_stop "$tls_pid"
  _bench_stop "$(cat "$work/haproxy.pid")"
  _bench_stop "$(cat "$work/backends.pid")"
}

# --- Set-up "web".
setup_web() {
  local src n a p_plain p_tls
  local -a webs addrs tlss
  echo
  echo "== set-up web: two web nodes with TLS listeners under millions up"
  src=$work/web-src.toml
  python3 - "$src" <<'PY'
import sys; sys.path.insert(0, "tests/integration")
from harness import node, topology, free_port
topology(sys.argv[1], name="benchtls",
         web={"threads": 1, "blocking_threads": 2,
              "node": [node("web1", tls_listen=free_port()), node("web2", tls_listen=free_port())]},
         lb={"upstream_tls": True}, postgres=[node("pg1", rest=free_port())],
         workers={"threads": 1})
PY
  UP_TOPOLOGY=$src bench_up_default "$work/up"
  read -r -a webs <<<"$(up_nodes "$UP_TOPO" web)"
  addrs=()
  tlss=()
  for n in "${webs[@]}"; do
    a=$(up_node_field "$UP_TOPO" "$n" address)
    [ -n "$a" ] || bench_die "web node $n is not running"
    addrs+=("$a")
    tlss+=("$(up_node_field "$UP_TOPO" "$n" tls_address)")
  done
  echo "millions up took ${UP_SECS}s; web nodes: ${webs[*]}, plain ${addrs[*]}, TLS ${tlss[*]}"
  web_pids() {
    local n p out=''
    for n in "${webs[@]}"; do
      p=$(up_node_field "$UP_TOPO" "$n" pid)
      [ -n "$p" ] && [ "$p" != 0 ] || return 1
      out+="$p "
    done
    echo "$out"
  }
  start_lb web_plain 0 "$work/up/run" "${addrs[@]}"
  p_plain=$lb_port
  wplain_pid=$lb_pid
  start_lb web_tls 1 "$work/up/run" "${tlss[@]}"
  p_tls=$lb_port
  wtls_pid=$lb_pid
  wplain_pids() { echo "$wplain_pid"; }
  wtls_pids() { echo "$wtls_pid"; }
  web1_pid() { up_node_field "$UP_TOPO" "${webs[0]}" pid; }

  bench_reset
  echo "contenders (one GET each; +cpu_us/req: the web nodes'):"
  bench_contender web_plain "http://127.0.0.1:$p_plain/livez" wplain_pids "millions lb, plain upstream" web_pids
  bench_contender web_tls "http://127.0.0.1:$p_tls/livez" wtls_pids "millions lb, TLS upstream" web_pids
  bench_contender direct "http://${addrs[0]}/livez" web1_pid "(${webs[0]} direct, plain)"
  bench_rounds
  {
    echo
    echo "set-up web: one balancer thread; two web nodes (one thread each), round robin, GET /livez;"
    echo "cpu_us/req is the balancer's (web1's for direct), +cpu_us/req the web nodes' per request"
    bench_settings
    bench_report
    bench_ratio web_tls web_plain "ours TLS/plain"
  } >"$work/summary-web.txt"
  cat "$work/summary-web.txt"
  summary+=("$work/summary-web.txt")
  _bench_stop "$wplain_pid"
  _bench_stop "$wtls_pid"
}

for s in $SETUPS; do "setup_$s"; done

echo
echo "==== summary, set-ups: $SETUPS ($(nproc) cores, shared by wrk, the proxies and the backends)"
cat "${summary[@]}"
