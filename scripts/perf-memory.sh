#!/usr/bin/env bash
# The in-memory model's cost: the server's resident memory and start-up
# time with N grades (default 1,000,000) against the same server empty.
#
#   scripts/perf-memory.sh            # 1,000,000 grades, about a minute
#   GRADES=100000 scripts/perf-memory.sh
#
# Builds gradebook in release mode; the data goes to a temporary directory.
set -euo pipefail

cd "$(dirname "$0")/.."
GRADES=${GRADES:-1000000}
STUDENTS=${STUDENTS:-$((GRADES / 20))}
cargo build --release -q -p gradebook-cli
G=$PWD/target/release/gradebook
WORK=$(mktemp -d)
export GRADEBOOK_PASSWORD=perf-memory-password HOME=$WORK/home
mkdir -p "$HOME"
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Starts the server on $WORK/data; sets PID and PORT once it listens.
start() {
  GRADEBOOK_ADMIN_PASSWORD=$GRADEBOOK_PASSWORD "$G" serve --plaintext --listen 127.0.0.1:0 \
    --data "$WORK/data" --log info --max-import-bytes 1073741824 >"$WORK/serve.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 600); do
    PORT=$(grep -o 'tcp=127.0.0.1:[0-9]*' "$WORK/serve.log" | head -1 | cut -d: -f2 || true)
    [ -n "$PORT" ] && return
    sleep 0.05
  done
  echo "the server did not start" >&2; cat "$WORK/serve.log" >&2; exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
loaded_ms() { grep -o 'elapsed_ms=[0-9]*' "$WORK/serve.log" | cut -d= -f2; }

start
sleep 1
EMPTY=$(rss_kib)
"$G" --plaintext --server "127.0.0.1:$PORT" login admin >/dev/null
(cd "$WORK" && "$G" --plaintext --server "127.0.0.1:$PORT" bench --import-grades "$GRADES" \
  --students "$STUDENTS" --keep >"$WORK/import.out")
stop
start
sleep 1
FULL=$(rss_kib)
MS=$(loaded_ms)
GRADES_LOADED=$(grep -o 'grades=[0-9]*' "$WORK/serve.log" | cut -d= -f2)
stop

python3 - "$EMPTY" "$FULL" "$MS" "$GRADES_LOADED" <<'PY'
import sys
empty, full, ms, grades = (int(x) for x in sys.argv[1:])
per = (full - empty) * 1024 / max(grades, 1)
print("| measure | value | target |")
print("|---|---|---|")
print(f"| server memory, empty | {empty / 1024:.0f} MiB | |")
print(f"| server memory with {grades:,} grades | {full / 1024:.0f} MiB | |")
print(f"| above the empty server | {(full - empty) / 1024:.0f} MiB, {per:.0f} bytes per grade | ≤ 200 bytes per grade |")
print(f"| start-up, loading {grades:,} grades into memory | {ms / 1000:.2f} s | ≤ 3 s |")
PY
