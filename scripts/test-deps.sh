#!/usr/bin/env bash
# What the test suite needs outside Python, installed or started only where missing:
# PostgreSQL running on 127.0.0.1:5432, Debian's Chromium (the dashboard's browser tests), and a
# Docker engine with the self-hosted tests' workload image. Installing needs root (apt-get);
# on a machine that already has everything, this only checks.
# Not for the suite: scripts/bench_proxy.py also needs `apt-get install -y wrk nginx` (it says so).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  fi
  pg_isready -h 127.0.0.1 -p 5432 || {
    echo "PostgreSQL does not answer on 127.0.0.1:5432 (see GPUBROKER_TEST_POSTGRES_URL)" >&2
    exit 1
  }
fi

if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium
fi

bash scripts/docker_test_engine.sh --install
