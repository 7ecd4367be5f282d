#!/usr/bin/env bash
# The home feed read from timelines (feed fan-out: Redis timelines written by fan-out jobs that
# worker processes take from NATS) beside the feed read from the database (a join, its first
# page cached per user): feed reads/s, p50/p99, database queries per feed and CPU per request,
# with no writes and with posts arriving; ROUNDS rotated rounds, ratios timeline/db. See
# bench/feed.py. Loopback only; bounded (about 5 minutes with the defaults). Exits non-zero on
# any failed check (a non-200 feed read, a socket error, a feed that differs from the model).
set -euo pipefail
cd "$(dirname "$0")/.."
export MILLIONS_BIN=${MILLIONS_BIN:-$PWD/build/millions}
exec python3 bench/feed.py
