#!/usr/bin/env bash
# The cache tier off, L1, L2 and both under a read-heavy Zipf load (ROUNDS rotated rounds, Redis
# flushed between runs), and our L2 GETs against redis-benchmark in the matching pipelined mode,
# reading the same keys and bytes. See bench/cache.py. Loopback only; bounded (about 10 minutes
# with the defaults). Exits non-zero on any failed check (a miss, an error, a non-2xx answer, a
# tool's non-zero exit).
set -euo pipefail
cd "$(dirname "$0")/.."
export MILLIONS_BIN=${MILLIONS_BIN:-$PWD/build/millions}
exec python3 bench/cache.py
