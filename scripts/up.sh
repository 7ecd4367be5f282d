#!/usr/bin/env bash
# `make up`: the default topology on this machine, supervised by `millions up` in the
# foreground. Ctrl-C (or `build/millions down` from another terminal) stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
exec build/millions up "${TOPOLOGY:-topologies/local.toml}"
