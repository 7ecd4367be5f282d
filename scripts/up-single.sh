#!/usr/bin/env bash
# `make up` for stage 1: runs `millions single` and prints where it is. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-8080}
mkdir -p data/single
build/millions single --port "$port" --data data/single 2>data/single/millions.log &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' INT TERM EXIT
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 $pid 2>/dev/null; then cat data/single/millions.log >&2; exit 1; fi
  sleep 0.1
done
cat <<TABLE

  millions is up (stage 1: one process)

  service    http://127.0.0.1:$port/
  metrics    http://127.0.0.1:$port/metrics
  logs       data/single/millions.log
  data       data/single/

  Ctrl-C stops it.
TABLE
wait $pid
