#!/usr/bin/env bash
# clang-format (Google base, 100 columns) over every C++ file we own. --check fails on a diff.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.cc' '*.h' 2>/dev/null ||
  find src fuzz tests -name '*.cc' -o -name '*.h')
if [ "${1:-}" = "--check" ]; then
  if ! clang-format --dry-run --Werror "${files[@]}" 2>/tmp/millions-format.log; then
    head -30 /tmp/millions-format.log >&2
    echo "format: files above are not clang-formatted; run 'make format'" >&2
    exit 1
  fi
else
  clang-format -i "${files[@]}"
fi
