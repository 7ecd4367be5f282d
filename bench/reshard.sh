#!/usr/bin/env bash
# Online resharding on seeded volume: 1 -> 2 -> 3 clusters under reads and writes (time, rows/s,
# write pause per logical shard p50/p99/max, request p99 during the move against before, no
# failed request), queries per shard for a read-heavy load on 1, 2 and 3 clusters, and profile,
# photo-list and feed p99 at USERS seeded users against LARGE. See bench/reshard.py. Loopback
# only; bounded (about 6 minutes with USERS=10000 LARGE=100000 here). Exits non-zero on any
# failed check (a non-2xx answer, a reshard's or seed's non-zero exit).
# On a shared machine: flock -o /tmp/millions-bench.lock bench/reshard.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export MILLIONS_BIN=${MILLIONS_BIN:-$PWD/build/millions}
exec /usr/bin/python3 bench/reshard.py
