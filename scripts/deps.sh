#!/usr/bin/env bash
# Installs every Debian package millions needs to build, test and benchmark, by name.
# Safe to run twice: it only calls apt-get when something is missing.
# Usage: scripts/deps.sh [build|test|all]   (default: all)
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake ninja-build ccache pkg-config clang clang-format openssl
  libclang-rt-14-dev
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libsqlite3-dev libpq-dev libhiredis-dev libnats-dev
  libvips-dev libsodium-dev libspdlog-dev libfmt-dev libtomlplusplus-dev libcli11-dev
  libgtest-dev libgmock-dev prometheus-cpp-dev
)
TEST_PKGS=(
  curl wrk nginx haproxy linux-perf chromium python3 postgresql postgresql-client patroni etcd-server redis-server redis-tools
  nats-server varnish prometheus dnsperf pdns-server pdns-backend-bind slowhttptest iproute2
)

want=("${BUILD_PKGS[@]}")
case "${1:-all}" in
  build) ;;
  test|all) want+=("${TEST_PKGS[@]}") ;;
  *) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's nginx and redis-server packages start servers (ports 80 and 6379) where systemd runs;
# benchmarks, tests and `up` start their own on other ports.
# Debian's varnish package starts varnishd (port 6081) and varnishncsa where systemd runs; only
# bench/edge.sh uses Varnish, with a varnishd of its own: the service is stopped and disabled.
if [[ " ${missing[*]} " == *" varnish "* ]] && command -v systemctl >/dev/null; then
  $SUDO systemctl disable --now varnish varnishncsa >/dev/null 2>&1 || true
fi
# Debian's prometheus package starts a server on :9090 scraping itself where systemd runs; `up`
# runs its own (the topology's [prometheus]) with its data under the run dir.
if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
# Debian's pdns-server starts PowerDNS on port 53 where systemd runs; only bench/dns.sh uses it,
# with a pdns_server of its own on a free port: the service is stopped and disabled.
if [[ " ${missing[*]} " == *" pdns-server "* ]] && command -v systemctl >/dev/null; then
  $SUDO systemctl disable --now pdns >/dev/null 2>&1 || true
fi
