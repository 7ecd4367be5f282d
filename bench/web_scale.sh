#!/usr/bin/env bash
# Stage 2: `millions load` at the same open-loop rate against 1 and then 2 web nodes (scaled at
# run time with `millions scale web 2`), on PostgreSQL under Patroni, all started by
# `millions up` on a bench topology with its own ports and run directory. Loopback only;
# every run is bounded in time. Prints throughput and latency for each.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-1500}
DURATION=${DURATION:-20}
USERS=${USERS:-20}
bin=$PWD/build/millions
work=$(mktemp -d)
chmod 755 "$work"
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
web1=$(port)
cat >"$work/topology.toml" <<TOML
[deployment]
name = "bench"
[[dc]]
name = "dc1"
[runner]
run_dir = "$work/run"
admin = "127.0.0.1:$(port)"
[etcd]
listen = "127.0.0.1:$(port)"
peer_listen = "127.0.0.1:$(port)"
[web]
threads = 1
blocking_threads = 2
[[web.node]]
name = "web1"
listen = "127.0.0.1:$web1"
[[postgres.node]]
name = "pg1"
listen = "127.0.0.1:$(port)"
rest = "127.0.0.1:$(port)"
[workers]
threads = 1
TOML
cleanup() { "$bin" down --topology "$work/topology.toml" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
(cd "$work" && "$bin" up "$work/topology.toml" --detach)
"$bin" load --target "http://127.0.0.1:$web1" --users "$USERS" --duration "$DURATION" \
  --rate "$RATE" --json "$work/one.json" >"$work/one.txt"
"$bin" load --target "http://127.0.0.1:$web1" --users "$USERS" --duration "$DURATION" \
  --json "$work/one_closed.json" >"$work/one_closed.txt"
"$bin" scale web 2 --topology "$work/topology.toml"
web2=$("$bin" status --json --topology "$work/topology.toml" |
  python3 -c 'import json,sys;print([n["address"] for n in json.load(sys.stdin)["nodes"] if n["name"]=="web2"][0])')
"$bin" load --target "http://127.0.0.1:$web1,http://$web2" --users "$USERS" \
  --duration "$DURATION" --rate "$RATE" --json "$work/two.json" >"$work/two.txt"
"$bin" load --target "http://127.0.0.1:$web1,http://$web2" --users "$USERS" \
  --duration "$DURATION" --json "$work/two_closed.json" >"$work/two_closed.txt"
python3 - "$work" "$RATE" "$USERS" <<'PY'
import json, sys
w = sys.argv[1]
print(f"\nweb nodes: 1 then 2 (one event-loop thread each), same machine, same run")
print(f"{'scenario':<28}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}  errors")
for name, label in (("one", f"1 node, open {sys.argv[2]}/s"), ("two", f"2 nodes, open {sys.argv[2]}/s"),
                    ("one_closed", f"1 node, closed {sys.argv[3]} users"),
                    ("two_closed", f"2 nodes, closed {sys.argv[3]} users")):
    r = json.load(open(f"{w}/{name}.json"))
    errs = {k: v for k, v in r["by_status"].items() if k == "conn_error" or k.startswith("5")}
    print(f"{label:<28}{r['rps']:>10.1f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['max_ms']:>9.2f}  {errs or 0}")
PY
