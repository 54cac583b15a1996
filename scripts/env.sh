# Sourced by the project's scripts: the build environment shared by the demo, the tests and CI.
# It sets variables only; scripts/setup.sh installs what is missing.
CHRONODB_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/chronodb"
export CHRONODB_CACHE
# One persistent target directory outside the checkout, so every clone reuses the RocksDB
# and libtorch builds instead of compiling them again.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CHRONODB_CACHE/target}"
# The PyTorch version that the `tch` crate in Cargo.lock is built against.
TORCH_VERSION=2.13.0
export TORCH_VERSION
# libtorch for the learned estimator: the CPU half of the PyTorch wheel, unpacked by
# scripts/setup.sh into a folder of its own (no Python, no CUDA kernels; see setup.sh).
LIBTORCH="$CHRONODB_CACHE/libtorch-$TORCH_VERSION-cpu"
export LIBTORCH
export LD_LIBRARY_PATH="$LIBTORCH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The GraphQL console's files (GraphiQL and React from the npm registry; scripts/graphiql.sh),
# compiled into the binary by chrono-server/build.rs.
export GRAPHIQL_DIR="$CHRONODB_CACHE/graphiql"
# node-postgres, for the PostgreSQL protocol's tests (scripts/node-clients.sh).
export NODE_CLIENTS_DIR="$CHRONODB_CACHE/node-clients"
# A small Python venv for the tests of the interfaces' Python snippets (grpcio-tools for the
# client generated from proto/, websockets for the WebSocket monitor).
PY_VENV="$CHRONODB_CACHE/py-venv"
export PY_VENV
export CHRONODB_PYTHON="$PY_VENV/bin/python"
# C/C++ compiles (RocksDB, libtorch's wrapper, SQLite) go through ccache when it is there.
if command -v ccache >/dev/null 2>&1; then
  export CC="ccache cc" CXX="ccache c++"
  export CCACHE_DIR="${CCACHE_DIR:-$CHRONODB_CACHE/ccache}"
  export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-8G}"
fi
