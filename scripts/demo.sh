#!/usr/bin/env bash
# The main job: builds the `chronodb` binary (only what it needs) and runs `chronodb demo` on
# a database in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh
if [ ! -e "$CARGO_TARGET_DIR/debug/chronodb" ]; then
  echo "demo: building chronodb for the first time on this machine. RocksDB's C++ is compiled" >&2
  echo "demo: once (about 20 minutes on two cores; later builds take seconds). Progress below." >&2
fi
cargo build -p chrono-server --bin chronodb
exec "$CARGO_TARGET_DIR/debug/chronodb" demo "$@"
