#!/usr/bin/env bash
# A 3-member etcd cluster on loopback, for trying ChronoDB's etcd engine by hand:
#   scripts/etcd-cluster.sh start DIR [FIRST_PORT]   # members' data and logs in DIR; ports
#                                                   # FIRST_PORT..FIRST_PORT+5 (default 23790)
#   scripts/etcd-cluster.sh stop DIR
# `start` prints the client URLs for database.etcd.endpoints. The tests start their own
# clusters the same way (chrono_etcd::cluster::LocalCluster), on free ports. The members
# allow 10,000 operations and 16 MiB per transaction (ChronoDB's default limits fit).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v etcd >/dev/null 2>&1 || bash scripts/setup.sh
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  sed -n '2,8p' "$0" >&2
  exit 2
fi
case "$cmd" in
  start)
    port=${3:-23790}
    mkdir -p "$dir"
    initial=""
    for i in 0 1 2; do
      initial+="${initial:+,}m$i=http://127.0.0.1:$((port + 2 * i + 1))"
    done
    endpoints=""
    for i in 0 1 2; do
      client="http://127.0.0.1:$((port + 2 * i))"
      peer="http://127.0.0.1:$((port + 2 * i + 1))"
      state=new
      [ -d "$dir/m$i" ] && state=existing
      etcd --name "m$i" --data-dir "$dir/m$i" \
        --listen-client-urls "$client" --advertise-client-urls "$client" \
        --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
        --initial-cluster "$initial" --initial-cluster-token chronodb-local \
        --initial-cluster-state "$state" \
        --max-txn-ops 10000 --max-request-bytes 16777216 \
        --auto-compaction-mode periodic --auto-compaction-retention 1h \
        --logger zap --log-level warn >"$dir/m$i.log" 2>&1 &
      echo $! >"$dir/m$i.pid"
      endpoints+="${endpoints:+, }\"$client\""
    done
    for _ in $(seq 1 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /health HTTP/1.0\r\n\r\n' >&3 \
          && cat <&3) 2>/dev/null | grep -q '"health":"true"'; then
        echo "endpoints: [$endpoints]"
        exit 0
      fi
      sleep 0.1
    done
    echo "the cluster did not become healthy; see $dir/m*.log" >&2
    exit 1
    ;;
  stop)
    for f in "$dir"/m*.pid; do
      [ -f "$f" ] || continue
      kill "$(cat "$f")" 2>/dev/null || true
      rm -f "$f"
    done
    ;;
  *)
    sed -n '2,8p' "$0" >&2
    exit 2
    ;;
esac
