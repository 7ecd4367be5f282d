#!/usr/bin/env bash
# How requests reach the web nodes behind each proxy (issue 14, docs/performance.md): the
# default topology (as bench/lb.sh's "web" set-up) with our balancer and HAProxy in front of its
# two web nodes, each with THREADS threads (PROXY_THREADS, default "1 2"), GET URL_KIND
# (/livez, or the L1-hit user GET with URL_KIND=user). For each proxy, under wrk -t1 -c64
# (DURATION s, loopback), load-independent counts per request (the noise of a shared machine
# moves times, not these):
#   - on the web nodes: syscalls by kind (perf stat, syscalls:sys_enter_* tracepoints),
#     epoll_wait calls and context switches per request, so requests served per wake;
#   - on the proxy: the same;
#   - backend connections per web node (ss, established from the proxy's process, mid-run).
# Needs root (perf stat on other processes' tracepoints). MILLIONS_BIN selects the binary.
# Settings: PROXY_THREADS, DURATION (5), CONNS (64), URL_KIND (livez | user), UP_TOPOLOGY.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_init wrk haproxy curl perf ss python3
bench_binary
bin=$BENCH_BIN
work=$BENCH_WORK
PROXY_THREADS=${PROXY_THREADS:-1 2}
DURATION=${DURATION:-5}
URL_KIND=${URL_KIND:-livez}
EVENTS=epoll_wait,epoll_ctl,recvfrom,sendto,sendmsg,recvmsg,writev,read,write,poll
ev_args=()
for e in ${EVENTS//,/ }; do ev_args+=(-e "syscalls:sys_enter_$e"); done
ev_args+=(-e context-switches -e task-clock)

bench_up_default "$work/up"
read -r -a webs <<<"$(up_nodes "$UP_TOPO" web)"
addrs=()
wpids=()
for n in "${webs[@]}"; do
  addrs+=("$(up_node_field "$UP_TOPO" "$n" address)")
  wpids+=("$(up_node_field "$UP_TOPO" "$n" pid)")
done
for a in "${addrs[@]}"; do wait_http "http://$a/readyz"; done
path=/livez
if [ "$URL_KIND" = user ]; then
  uid=$(bench_user "http://${addrs[0]}" "bench_wakes_$$")
  path=/api/users/$uid
  for a in "${addrs[@]}"; do l1_warm "http://$a" "$path" user; done
fi
echo "web nodes ${webs[*]} at ${addrs[*]} (pids ${wpids[*]}); GET $path"

# counts PID_LIST OUT: perf stat over the wrk run (started by the caller) into OUT.
counts() {
  timeout $((DURATION + 5)) perf stat -x, "${ev_args[@]}" -p "$1" -o "$2" -- sleep "$((DURATION - 1))" \
    2>/dev/null || true
}

# per_req FILE REQS: "event per-request" lines (task-clock: CPU microseconds per request).
per_req() {
  awk -F, -v r="$2" '$1 ~ /^[0-9.]+$/ {e = $3; sub(/^syscalls:sys_enter_/, "", e);
    if (e == "task-clock") printf "  %-18s %8.2f us\n", "cpu", $1 * 1000 / r;
    else printf "  %-18s %8.3f\n", e, $1 / r}' "$1"
}

measure() { # NAME URL PROXY_PID
  local name=$1 url=$2 ppid=$3 wl c1 c2 rps reqs rate
  timeout $((DURATION + 30)) wrk -t1 -c"$CONNS" -d"${DURATION}s" "$url" >"$work/$name.wrk" 2>&1 &
  wl=$!
  sleep 0.5
  counts "$(IFS=,; echo "${wpids[*]}")" "$work/$name-web.csv" &
  c1=$!
  counts "$ppid" "$work/$name-proxy.csv" &
  c2=$!
  sleep 2
  {
    # Epoll sets and how many descriptors each watches (/proc/PID/fdinfo: one "tfd:" line per
    # descriptor), mid-run: a socket read through our poller (core/readiness.h) that is also in
    # Asio's own set is counted in both.
    for p in "$ppid" "${wpids[@]}"; do
      printf '  epoll sets of pid %-8s' "$p"
      for fd in /proc/"$p"/fd/*; do
        [ "$(readlink "$fd" 2>/dev/null)" = "anon_inode:[eventpoll]" ] || continue
        printf ' %s' "$(grep -c '^tfd' /proc/"$p"/fdinfo/"${fd##*/}" 2>/dev/null)"
      done
      echo
    done
    for a in "${addrs[@]}"; do
      printf '  connections to %-18s %s\n' "$a" \
        "$(ss -tnpH state established dst "$a" | grep -c "pid=$ppid,")"
    done
  } >"$work/$name-conns.txt"
  wait "$wl" "$c1" "$c2" # not a bare wait: the balancer is this shell's job too
  if [ "${PROFILE:-0}" = 1 ]; then
    # A second run under perf record (the web nodes' kernel and user symbols), counted apart.
    timeout $((DURATION + 30)) wrk -t1 -c"$CONNS" -d"${DURATION}s" "$url" >"$work/$name-prof.wrk" 2>&1 &
    wl=$!
    sleep 0.5
    perf record -q -F 1999 -p "$(IFS=,; echo "${wpids[*]}")" -o "$work/$name-web.data" \
      -- sleep "$((DURATION - 1))" 2>/dev/null || true
    wait "$wl"
    perf report -i "$work/$name-web.data" --no-children --stdio --sort symbol -g none \
      --percent-limit 0.7 2>/dev/null | grep -v '^#' | grep -v '^$' >"${PROFILE_OUT:-/tmp}/$name-web-prof.txt" || true
    awk '/^Requests\/sec:/ {print "requests/s", $2}' "$work/$name-prof.wrk" >>"${PROFILE_OUT:-/tmp}/$name-web-prof.txt"
  fi
  grep -q 'Non-2xx\|Socket errors' "$work/$name.wrk" && bench_die "$name: $(cat "$work/$name.wrk")"
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$work/$name.wrk")
  reqs=$(awk '/ requests in / {print $1}' "$work/$name.wrk")
  # The requests in the counters' window: the web nodes' responses (one sendmsg each, as the
  # counts show: recvfrom and sendmsg per request are 1.0 on the web nodes behind any proxy).
  rate=$(awk -F, '$3 == "syscalls:sys_enter_sendmsg" {print $1}' "$work/$name-web.csv")
  echo "-- $name: $rps req/s ($reqs requests)"
  cat "$work/$name-conns.txt"
  echo " web nodes, per request (a request: one response sendmsg of a web node):"
  per_req "$work/$name-web.csv" "$rate"
  echo " proxy, per request:"
  per_req "$work/$name-proxy.csv" "$rate"
}

for threads in $PROXY_THREADS; do
  ours=$(free_port)
  ours_admin=$(free_port)
  bench_lb_config "$UP_TOPO" "$work/lb-$threads.toml" "$threads" "$ours" "$ours_admin" \
    "${webs[*]}" "${addrs[*]}" "${LB_POLICY:-}"
  "$bin" serve lb --config "$work/lb-$threads.toml" --node lb1 2>"$work/lb-$threads.log" &
  ours_pid=$!
  bench_track "$ours_pid"
  hap=$(free_port)
  {
    printf 'global\n  nbthread %s\n  maxconn 4000\ndefaults\n  mode http\n' "$threads"
    printf '  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n'
    printf '  timeout http-keep-alive 30s\n  option http-keep-alive\n  http-reuse always\n'
    printf 'frontend fe\n  bind 127.0.0.1:%s\n  option forwardfor\n' "$hap"
    printf '  unique-id-format %%[rand,hex]%%[rand,hex]\n'
    printf '  http-request set-header X-Forwarded-Proto http\n'
    printf '  http-request set-header Forwarded "for=\\"%%[src]\\";proto=http"\n'
    printf '  http-request set-header X-Request-Id %%[unique-id]\n'
    printf '  http-request set-header traceparent "00-%%[unique-id,lower]-%%[rand,hex,lower]-01"\n'
    printf '  default_backend be\nbackend be\n  balance %s\n' "${HAP_BALANCE:-leastconn}"
    i=0
    for a in "${addrs[@]}"; do i=$((i + 1)); printf '  server b%s %s\n' "$i" "$a"; done
  } >"$work/haproxy-$threads.cfg"
  bench_track_pidfile "$work/haproxy-$threads.pid"
  haproxy -f "$work/haproxy-$threads.cfg" -D -p "$work/haproxy-$threads.pid"
  wait_http "http://127.0.0.1:$ours/livez"
  wait_http "http://127.0.0.1:$hap/livez"
  echo
  echo "== proxy threads $threads"
  for round in $(seq "${ROUNDS:-2}"); do
    measure "ours-$threads-$round" "http://127.0.0.1:$ours$path" "$ours_pid"
    measure "haproxy-$threads-$round" "http://127.0.0.1:$hap$path" "$(cat "$work/haproxy-$threads.pid")"
  done
  _bench_stop "$ours_pid"
  _bench_stop "$(cat "$work/haproxy-$threads.pid")"
done
