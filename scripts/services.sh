#!/usr/bin/env bash
# Postgres and Redis on loopback for `make test`, from Debian's packages.
# Idempotent: what is installed is not installed again, what runs is left running.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
APT_UPDATED=""

apt_install() {
  if [ -z "$APT_UPDATED" ]; then
    $SUDO apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

start_postgres() {
  if ! command -v pg_lsclusters >/dev/null || [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
    apt_install postgresql
  fi
  read -r ver cluster _ < <(pg_lsclusters -h | head -1)
  hba="/etc/postgresql/$ver/$cluster/pg_hba.conf"
  # The suite connects as postgres without a password, on loopback only.
  if ! grep -q '^host all postgres 127.0.0.1/32 trust' "$hba"; then
    $SUDO sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
  fi
  $SUDO pg_ctlcluster "$ver" "$cluster" start 2>/dev/null || $SUDO pg_ctlcluster "$ver" "$cluster" reload
  for _ in $(seq 1 60); do pg_up && break; sleep 0.5; done
  pg_up || { echo "postgres did not start" >&2; exit 1; }
}

redis_up() { command -v redis-cli >/dev/null && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }

start_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
  # Started by hand, not by the init system: the machine may have none.
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save '' --appendonly no \
    --logfile /tmp/islands-redis.log
  for _ in $(seq 1 40); do redis_up && break; sleep 0.25; done
  redis_up || { echo "redis did not start" >&2; exit 1; }
}

command -v pg_isready >/dev/null || apt_install postgresql
pg_up || start_postgres
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE test"
redis_up || start_redis
# The fault tests run the hub's processes under a shifted clock (libfaketime).
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || command -v faketime >/dev/null \
  || apt_install faketime || echo "faketime not installed: the clock fault test will fail" >&2
echo "postgres and redis are up on 127.0.0.1"
