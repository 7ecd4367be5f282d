#!/usr/bin/env bash
# Our geo-DNS (`millions serve dns`, one io thread) beside PowerDNS Authoritative 4.7 (one
# receiver and one distributor thread) on the same zone, with dnsperf: a static A record and the
# geo answer (ours: geo-routed and health-checked; PowerDNS: a LUA view() record), each with the
# same Client Subnet; ROUNDS rotated rounds, queries/s, CPU per query, latency. See bench/dns.py.
# Loopback only; bounded (about a minute and a half with the defaults). Exits non-zero on a
# lost query, an rcode other than NOERROR, or a wrong answer.
set -euo pipefail
cd "$(dirname "$0")/.."
export MILLIONS_BIN=${MILLIONS_BIN:-$PWD/build/millions}
exec python3 bench/dns.py
