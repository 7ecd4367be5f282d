#!/usr/bin/env bash
# The NATS job queue (web node publishing, `millions serve worker` processes) beside the
# PostgreSQL queue it replaces (worker threads in a web node), the same worker threads on both:
# accepted jobs/s at the API, end-to-end latency by op on a 1 MP PNG, and jobs/s drained with 1,
# 2 and 4 workers, with CPU per job; ROUNDS rotated rounds, ratios NATS/PostgreSQL. See
# bench/queue.py. Loopback only; bounded (about 5 minutes with the defaults). Exits non-zero on
# any failed check (a non-202 accept, a job not done in time, a process that exits).
set -euo pipefail
cd "$(dirname "$0")/.."
export MILLIONS_BIN=${MILLIONS_BIN:-$PWD/build/millions}
exec python3 bench/queue.py
