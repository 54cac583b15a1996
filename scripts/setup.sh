#!/usr/bin/env bash
# Installs what building and testing ChronoDB needs, when it is missing. Safe to run again.
#   - Debian packages: libclang-dev (RocksDB's bindings are generated with bindgen), a C++
#     compiler, ccache (C/C++ objects are cached, so a RocksDB rebuild takes minutes),
#     chromium (headless, for the explorer page's test), etcd-server (the etcd engine's tests
#     start 3-member clusters on loopback), protobuf-compiler (etcd-client's build),
#     postgresql-client and postgresql-15 (psql and pgbench, clients of the PostgreSQL
#     protocol's tests);
#   - libtorch for chrono-ml's `tch` (scripts/libtorch.sh: the CPU part of the PyTorch wheel);
#   - the GraphQL console's GraphiQL and React (scripts/graphiql.sh, from the npm registry);
#   - a small Python venv with grpcio-tools (the test of a Python client generated from
#     proto/), websockets (the WebSocket monitor's Python snippet), psycopg 3 and
#     SQLAlchemy 2 (PostgreSQL clients of the PostgreSQL protocol's tests).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

missing=()
dpkg -s libclang-dev >/dev/null 2>&1 || missing+=(libclang-dev)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v ccache >/dev/null 2>&1 || missing+=(ccache)
command -v unzip >/dev/null 2>&1 || missing+=(unzip)       # unpacks the PyTorch wheel
command -v openssl >/dev/null 2>&1 || missing+=(openssl)   # the TLS test makes its certificates
command -v curl >/dev/null 2>&1 || missing+=(curl)         # … and fetches over HTTPS
command -v chromium >/dev/null 2>&1 || missing+=(chromium)  # the explorer page's browser test
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)  # the distributed engine's test clusters
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)  # etcd-client's generated code
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)  # the PostgreSQL protocol's tests
[ -x /usr/lib/postgresql/15/bin/pgbench ] || command -v pgbench >/dev/null 2>&1 || missing+=(postgresql-15)  # … and pgbench
command -v javac >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)  # … pgjdbc's test runs a Java file
[ -f /usr/share/java/postgresql.jar ] || missing+=(libpostgresql-jdbc-java)  # … with pgjdbc
command -v npm >/dev/null 2>&1 || missing+=(npm)  # … node-postgres (and the GraphQL console)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

bash scripts/libtorch.sh
bash scripts/graphiql.sh
bash scripts/node-clients.sh

have_python_tools() {
  "$CHRONODB_PYTHON" -c "import grpc, grpc_tools, websockets, psycopg, sqlalchemy" 2>/dev/null
}
if ! have_python_tools; then
  echo "setup: installing grpcio, grpcio-tools, websockets, psycopg and SQLAlchemy into $PY_VENV (the Python clients' tests)" >&2
  mkdir -p "$CHRONODB_CACHE"
  python3 -m venv "$PY_VENV"
  "$PY_VENV/bin/pip" install --quiet --disable-pip-version-check grpcio grpcio-tools websockets "psycopg[binary]" "sqlalchemy>=2"
  have_python_tools
fi
