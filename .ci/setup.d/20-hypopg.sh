#!/usr/bin/env bash
# hypopg lets query_optimization prove index suggestions on PostgreSQL with hypothetical
# indexes. The package comes from .ci/apt-packages (postgresql-15-hypopg); the extension
# is created per database by the test fixture (sqlgate itself never runs CREATE EXTENSION).
set -euo pipefail
if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'" | grep -q 1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15-hypopg
fi
psql -h 127.0.0.1 -U postgres -tAc "SELECT 'hypopg available: ' || default_version FROM pg_available_extensions WHERE name = 'hypopg'"
