#!/usr/bin/env bash
# The whole test suite: set-up, formatting, clippy with warnings as errors, then every test
# of the workspace (unit, property, MVCC anomaly, kill -9 durability, sqllogictest files,
# doctests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/env.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The server without the learned estimator (no libtorch) still builds, warning-free.
cargo clippy -p chrono-server --no-default-features --lib --bins -- -D warnings
cargo test --workspace
