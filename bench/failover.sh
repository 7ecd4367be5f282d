#!/usr/bin/env bash
# The cost of losing the primary, ours against bare Patroni (ROUNDS rounds, alternating), and
# reads/s by replica count (ROUNDS rotated rounds). See bench/failover.py. Loopback only; bounded
# (about 15 minutes with the defaults, ROUNDS=1 about 5). Exits non-zero on any failed check: no
# write acknowledged after the kill, no new primary seen, a non-2xx answer or error in the read
# load, a tool's non-zero exit.
# On a shared machine take the bench lock with -o, so that the detached runner does not inherit
# it: flock -o /tmp/millions-bench.lock bench/failover.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export MILLIONS_BIN=${MILLIONS_BIN:-$PWD/build/millions}
exec /usr/bin/python3 bench/failover.py
