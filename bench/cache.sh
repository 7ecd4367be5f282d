#!/usr/bin/env bash
# The cache tier off, L1, L2 and both under a read-heavy Zipf load, and our L2 GETs against
# redis-benchmark. See bench/cache.py. Loopback only; bounded (about 2 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
export MILLIONS_BIN=${MILLIONS_BIN:-$PWD/build/millions}
exec python3 bench/cache.py
