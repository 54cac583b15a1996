#!/usr/bin/env bash
# Installs node-postgres (the `pg` package, MIT) from the npm registry, once, into
# $NODE_CLIENTS_DIR (scripts/env.sh): the PostgreSQL protocol's tests run a Node.js client
# with it (chrono-server/tests/node/). Nothing of it goes into the build.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

PG_VERSION=8.13.1

if [ -f "$NODE_CLIENTS_DIR/version" ] && [ "$(cat "$NODE_CLIENTS_DIR/version")" = "pg $PG_VERSION" ]; then
  exit 0
fi
echo "setup: installing node-postgres $PG_VERSION (a client of the PostgreSQL protocol's tests)" >&2
rm -rf "$NODE_CLIENTS_DIR.partial"
mkdir -p "$NODE_CLIENTS_DIR.partial"
(cd "$NODE_CLIENTS_DIR.partial" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund "pg@$PG_VERSION" >/dev/null)
echo "pg $PG_VERSION" > "$NODE_CLIENTS_DIR.partial/version"
rm -rf "$NODE_CLIENTS_DIR"
mv "$NODE_CLIENTS_DIR.partial" "$NODE_CLIENTS_DIR"
