#!/usr/bin/env bash
# PostgreSQL server binaries (initdb, pg_ctl, postgres) from Debian's packages, for the
# tests that run the suite on PostgreSQL.  The tests start their own throwaway cluster
# on loopback (tests/servers.py:postgres_cluster) and stop it again, so the package's
# default cluster is not wanted: it is disabled before installing and never started.
# Idempotent: does nothing when a server is already installed.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null; then
  exit 0
fi
mkdir -p /etc/postgresql-common
echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold \
  postgresql >/dev/null
