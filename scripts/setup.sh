#!/usr/bin/env bash
# Installs what building and testing ChronoDB needs, when it is missing. Safe to run again.
#   - Debian packages: libclang-dev (RocksDB's bindings are generated with bindgen), a C++
#     compiler, ccache (C/C++ objects are cached, so a RocksDB rebuild takes minutes),
#     chromium (headless, for the explorer page's test), etcd-server (the etcd engine's tests
#     start 3-member clusters on loopback), protobuf-compiler (etcd-client's build);
#   - libtorch for chrono-ml's `tch`: the PyTorch wheel from PyPI, at exactly the version tch
#     expects, in a venv under the cache directory, which also gets grpcio-tools for the
#     test of a Python client generated from proto/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

# The PyTorch version that the `tch` crate in Cargo.lock is built against.
TORCH_VERSION=2.13.0

missing=()
dpkg -s libclang-dev >/dev/null 2>&1 || missing+=(libclang-dev)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v ccache >/dev/null 2>&1 || missing+=(ccache)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)   # the TLS test makes its certificates
command -v chromium >/dev/null 2>&1 || missing+=(chromium)  # the explorer page's browser test
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)  # the distributed engine's test clusters
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)  # etcd-client's generated code
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

have_grpc_tools() {
  "$TORCH_VENV/bin/python" -c "import grpc, grpc_tools" 2>/dev/null
}
have_torch() {
  "$TORCH_VENV/bin/python" -c "import sys, torch; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null
}
if ! have_torch; then
  echo "setup: installing PyTorch $TORCH_VERSION (libtorch for chrono-ml) into $TORCH_VENV" >&2
  mkdir -p "$CHRONODB_CACHE"
  python3 -m venv "$TORCH_VENV"
  "$TORCH_VENV/bin/pip" install --quiet --disable-pip-version-check "torch==$TORCH_VERSION"
  have_torch
fi
if ! have_grpc_tools; then
  echo "setup: installing grpcio and grpcio-tools (the generated Python client's test)" >&2
  "$TORCH_VENV/bin/pip" install --quiet --disable-pip-version-check grpcio grpcio-tools
  have_grpc_tools
fi
have_websockets() {
  "$TORCH_VENV/bin/python" -c "import websockets" 2>/dev/null
}
if ! have_websockets; then
  echo "setup: installing websockets (the brief's WebSocket monitor snippet in the tests)" >&2
  "$TORCH_VENV/bin/pip" install --quiet --disable-pip-version-check websockets
  have_websockets
fi
