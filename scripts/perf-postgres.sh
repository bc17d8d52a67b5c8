#!/usr/bin/env bash
# PostgreSQL beside SQLite, side by side in one run on this machine: reads,
# durable writes against PostgreSQL's own single-row commit rate, and the
# 90/10 mix across two servers on one PostgreSQL against one server on
# SQLite. Prints a Markdown table of the figures and their ratios.
#
#   scripts/perf-postgres.sh           # about 2 minutes
#   QUICK=1 scripts/perf-postgres.sh   # fewer requests, for a smoke test
#   GRADEBOOK=/path/to/gradebook scripts/perf-postgres.sh
#                                      # measures that build instead (two
#                                      # builds side by side: before/after)
#
# Starts a throwaway PostgreSQL cluster (initdb in a temporary directory,
# fsync and synchronous_commit on, as PostgreSQL ships) and stops it at the
# end. Needs PostgreSQL's server binaries (Debian: apt-get install
# postgresql); builds gradebook in release mode.
set -euo pipefail

cd "$(dirname "$0")/.."
N_READ=${N_READ:-300000}
N_WRITE=${N_WRITE:-30000}
if [ -n "${QUICK:-}" ]; then N_READ=30000; N_WRITE=3000; fi

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$PG_BIN" ] || { echo "needs PostgreSQL (apt-get install postgresql)" >&2; exit 1; }
if [ -n "${GRADEBOOK:-}" ]; then
  G=$(realpath "$GRADEBOOK")
else
  cargo build --release -q -p gradebook-cli
  G=$PWD/target/release/gradebook
fi
WORK=$(mktemp -d -t gradebook-perf-pg.XXXXXX)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$WORK"
PIDS=()
cleanup() {
  kill "${PIDS[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" stop -m fast >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PG_PORT=$(free_port)
as_pg "$PG_BIN/initdb" -D "$WORK/pg" -A trust -U postgres -E UTF8 --locale=C >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w -o \
  "-p $PG_PORT -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
psql() { "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAt "$@"; }
psql -c "CREATE DATABASE gradebook" -c "CREATE DATABASE baseline"
URL="postgres://postgres@127.0.0.1:$PG_PORT/gradebook"

export GRADEBOOK_PASSWORD=perf-postgres-password
# Several servers at once: none opens the web portal (which would take
# port 7380 for each). Builds older than the portal ignore the variable.
export GRADEBOOK_NO_HTTP=true
serve() { # name port [args…]
  local name=$1 port=$2; shift 2
  GRADEBOOK_ADMIN_PASSWORD=$GRADEBOOK_PASSWORD "$G" serve --plaintext --listen 127.0.0.1:$port \
    --data "$WORK/$name" --log warn "$@" >"$WORK/$name.out" 2>&1 &
  PIDS+=($!)
}
SQLITE_PORT=$(free_port); A_PORT=$(free_port); B_PORT=$(free_port)
serve sqlite $SQLITE_PORT
serve a $A_PORT --database "$URL"
sleep 2
serve b $B_PORT --database "$URL"
sleep 2

bench() { "$G" bench --json --plaintext "$@" 2>/dev/null; }
rps() { python3 -c 'import json,sys; print(round(json.load(sys.stdin)["rps"]))'; }

echo "measuring… (reads, writes, baseline, mixes)" >&2
RS=$(bench --server 127.0.0.1:$SQLITE_PORT -c 50 -n "$N_READ" --workload average | rps)
RP=$(bench --server 127.0.0.1:$A_PORT -c 50 -n "$N_READ" --workload average | rps)
WP=$(bench --server 127.0.0.1:$A_PORT -c 50 -n "$N_WRITE" --workload write | rps)
BP=$("$G" bench --json --fsync-baseline 2000 --database "postgres://postgres@127.0.0.1:$PG_PORT/baseline" | rps)
WS=$(bench --server 127.0.0.1:$SQLITE_PORT -c 50 -n "$N_WRITE" --workload write | rps)
BS=$(cd "$WORK" && "$G" bench --json --fsync-baseline 2000 | rps)
MS=$(bench --server 127.0.0.1:$SQLITE_PORT -c 50 -n "$N_READ" --workload mixed | rps)
M1=$(bench --server 127.0.0.1:$A_PORT -c 50 -n "$N_READ" --workload mixed | rps)
# Two servers, 25 connections each, at the same time.
bench --server 127.0.0.1:$A_PORT -c 25 -n $((N_READ / 2)) --workload mixed >"$WORK/ma.json" &
MA=$!
bench --server 127.0.0.1:$B_PORT -c 25 -n $((N_READ / 2)) --workload mixed >"$WORK/mb.json"
wait $MA
M2=$(( $(rps <"$WORK/ma.json") + $(rps <"$WORK/mb.json") ))

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
cat <<EOF
| measure | PostgreSQL | reference | ratio | target |
|---|---|---|---|---|
| reads (student.average), 50 conns | $RP req/s | SQLite $RS req/s | $(ratio $RP $RS) | ≥ 0.5 |
| durable writes (grade.add), 50 conns | $WP req/s | PostgreSQL single-row commits $BP/s | $(ratio $WP $BP) | ≥ 5 |
| 90/10 mix, two servers on one PostgreSQL (25 + 25 conns) | $M2 req/s | one SQLite server, 50 conns, $MS req/s | $(ratio $M2 $MS) | ≥ 0.5 |
| 90/10 mix, one server on PostgreSQL, 50 conns | $M1 req/s | one SQLite server $MS req/s | $(ratio $M1 $MS) | |
| durable writes on SQLite, for comparison | $WS req/s | SQLite single-row commits $BS/s | $(ratio $WS $BS) | |
EOF
