#!/usr/bin/env bash
# ChronoDB over PostgreSQL's protocol against PostgreSQL 15, both driven by pgbench on this
# machine: a TPC-B-like read-write transaction and a select-only one, at 1 / 4 / 8 clients,
# in prepared mode. ChronoDB runs as shipped (history and the audit trail on).
#
#   benches/pgbench/run.sh [seconds per run, default 20] [durable|relaxed, default relaxed]
#                          [runs per point, default 3]
#
# durable:  PostgreSQL synchronous_commit=on, ChronoDB database.sync_writes: true
# relaxed:  PostgreSQL synchronous_commit=off, ChronoDB database.sync_writes: false
# Both databases hold pgbench's scale-1 tables (100,000 accounts). Prints the median tps of
# each point's runs and the ratio ChronoDB / PostgreSQL of the medians. Needs a release
# build of chronodb and PostgreSQL 15's server binaries (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/env.sh
SECS=${1:-20}
MODE=${2:-relaxed}
RUNS=${3:-3}
PGBIN=/usr/lib/postgresql/15/bin
CHRONODB=$CARGO_TARGET_DIR/release/chronodb
[ -x "$CHRONODB" ] || cargo build --release -p chrono-server --bin chronodb
WORK=$(mktemp -d)
chmod 777 "$WORK"
PG_PORT=55491
CH_PORT=55492
as_pg() { if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
cleanup() {
  as_pg "$PGBIN/pg_ctl -D $WORK/pg -m immediate stop" >/dev/null 2>&1 || true
  [ -n "${CH_PID:-}" ] && kill "$CH_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

sync=off; sync_writes=false
if [ "$MODE" = durable ]; then sync=on; sync_writes=true; fi

# PostgreSQL 15.
as_pg "$PGBIN/initdb -D $WORK/pg -A trust -U bench" >/dev/null
as_pg "$PGBIN/pg_ctl -D $WORK/pg -l $WORK/pg.log -w -o '-p $PG_PORT -k $WORK -c synchronous_commit=$sync -c max_connections=50' start" >/dev/null
as_pg "$PGBIN/createdb -h $WORK -p $PG_PORT -U bench bench"
"$PGBIN/pgbench" -i -q -s 1 -h 127.0.0.1 -p $PG_PORT -U bench bench >/dev/null 2>&1

# ChronoDB, the same tables.
cat > "$WORK/chronodb.yaml" <<YAML
database:
  data_file: $WORK/chronodb
  sync_writes: $sync_writes
YAML
"$CHRONODB" serve --config "$WORK/chronodb.yaml" --listen 127.0.0.1:0 --pg 127.0.0.1:$CH_PORT 2>"$WORK/chronodb.log" &
CH_PID=$!
for _ in $(seq 100); do grep -q "PostgreSQL's protocol" "$WORK/chronodb.log" && break; sleep 0.1; done
psql -X -q -h 127.0.0.1 -p $CH_PORT -U bench chronodb >/dev/null <<'SQL'
CREATE TABLE pgbench_branches (bid BIGINT PRIMARY KEY, bbalance BIGINT, filler TEXT);
CREATE TABLE pgbench_tellers (tid BIGINT PRIMARY KEY, bid BIGINT, tbalance BIGINT, filler TEXT);
CREATE TABLE pgbench_accounts (aid BIGINT PRIMARY KEY, bid BIGINT, abalance BIGINT, filler TEXT);
CREATE TABLE pgbench_history (tid BIGINT, bid BIGINT, aid BIGINT, delta BIGINT, mtime TIMESTAMP, filler TEXT);
INSERT INTO pgbench_branches VALUES (1, 0, NULL);
INSERT INTO pgbench_tellers WITH RECURSIVE t(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM t WHERE x < 10) SELECT x, 1, 0, NULL FROM t;
INSERT INTO pgbench_accounts WITH RECURSIVE t(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM t WHERE x < 100000) SELECT x, 1, 0, NULL FROM t;
ANALYZE;
SQL

cat > "$WORK/tpcb.sql" <<'SQL'
\set aid random(1, 100000)
\set bid 1
\set tid random(1, 10)
\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
SQL
cat > "$WORK/select.sql" <<'SQL'
\set aid random(1, 100000)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
SQL

tps() { # port db script clients
  "$PGBIN/pgbench" -n -h 127.0.0.1 -p "$1" -U bench -M prepared --max-tries 100 \
    -c "$4" -j "$4" -T "$SECS" -f "$3" "$2" 2>/dev/null | awk '/^tps/ {print $3}'
}
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# PostgreSQL's whole sweep runs first, then ChronoDB's: ChronoDB trains its estimator in the
# background after busy periods, and that must not land on PostgreSQL's runs.
declare -A runs
for db in postgres chronodb; do
  port=$PG_PORT; name=bench
  if [ $db = chronodb ]; then port=$CH_PORT; name=chronodb; fi
  for script in select tpcb; do
    for clients in 1 4 8; do
      for _ in $(seq "$RUNS"); do
        runs[$db/$script/$clients]+="$(tps $port $name "$WORK/$script.sql" "$clients") "
      done
    done
  done
done
printf "%-12s %7s %14s %14s %8s   %s\n" workload clients postgres_tps chronodb_tps ratio "runs (postgres | chronodb)"
for script in select tpcb; do
  for clients in 1 4 8; do
    pg=$(printf "%s\n" ${runs[postgres/$script/$clients]} | median)
    ch=$(printf "%s\n" ${runs[chronodb/$script/$clients]} | median)
    printf "%-12s %7s %14.0f %14.0f %8.2f   %s| %s\n" "$script" "$clients" "$pg" "$ch" \
      "$(echo "$ch / $pg" | bc -l)" "${runs[postgres/$script/$clients]}" "${runs[chronodb/$script/$clients]}"
  done
done
