#!/usr/bin/env bash
# The cost of losing the primary, ours against bare Patroni, and reads/s by replica count.
# See bench/failover.py. Loopback only; bounded (about 4 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
export MILLIONS_BIN=${MILLIONS_BIN:-$PWD/build/millions}
exec /usr/bin/python3 bench/failover.py
