#!/usr/bin/env bash
# RTO and RPO of moving the database between DCs: ROUNDS planned failovers and failbacks
# (`millions dc failover dc2`, `dc failback`) and ROUNDS unplanned ones (`chaos dc-down dc1`, the
# runner promoting dc2's standby cluster by itself), under a writer ledger; medians with
# [min-max] and spread. See bench/dc_failover.py. Loopback only; bounded (about 4 minutes with
# the defaults). Exits non-zero when an operation fails, a planned one loses an acknowledged
# write, or no write is acknowledged after one.
# On a shared machine take the bench lock with -o, so that the detached runner does not inherit
# it: flock -o /tmp/millions-bench.lock bench/dc_failover.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export MILLIONS_BIN=${MILLIONS_BIN:-$PWD/build/millions}
exec python3 bench/dc_failover.py
