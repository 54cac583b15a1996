# Sourced by the project's scripts: the build environment shared by the demo, the tests and CI.
# It sets variables only; scripts/setup.sh installs what is missing.
CHRONODB_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/chronodb"
export CHRONODB_CACHE
# One persistent target directory outside the checkout, so every clone reuses the RocksDB
# and libtorch builds instead of compiling them again.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CHRONODB_CACHE/target}"
# libtorch comes from the PyTorch wheel (the version tch expects), in a venv of its own.
TORCH_VENV="$CHRONODB_CACHE/torch-venv"
export TORCH_VENV
LIBTORCH="$("$TORCH_VENV/bin/python" -c 'import torch, os; print(os.path.dirname(torch.__file__))' 2>/dev/null || true)"
# The same venv holds grpcio-tools for the generated Python client's test.
export CHRONODB_PYTHON="$TORCH_VENV/bin/python"
if [ -n "$LIBTORCH" ]; then
  export LIBTORCH
  export LD_LIBRARY_PATH="$LIBTORCH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
# C/C++ compiles (RocksDB, libtorch's wrapper, SQLite) go through ccache when it is there.
if command -v ccache >/dev/null 2>&1; then
  export CC="ccache cc" CXX="ccache c++"
  export CCACHE_DIR="${CCACHE_DIR:-$CHRONODB_CACHE/ccache}"
  export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-8G}"
fi
