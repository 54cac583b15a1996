#!/usr/bin/env bash
# The main job: builds ChronoDB and runs `chronodb demo` on a database in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh
cargo build --workspace --quiet
exec "$CARGO_TARGET_DIR/debug/chronodb" demo "$@"
