#!/usr/bin/env bash
# Runs one fuzz target for a bounded time over its seed corpus. New inputs go to a scratch
# directory, so the checked-in corpus only changes on purpose.
set -euo pipefail
target=$1
secs=${2:-20}
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/../build/fuzz/fuzz/$target
[ -x "$bin" ] || { echo "fuzz: $bin is missing: run 'make fuzz-build'" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A sanitizer report of any kind ends the run with a failure.
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}halt_on_error=1
"$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work" "$here/corpus/$target"
