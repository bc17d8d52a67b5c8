#!/usr/bin/env bash
# Measures gradebook against its references side by side, in one run, on
# this machine: redis-benchmark PING (reads), single-row fsync commits
# (writes). Prints a Markdown table of the figures and their ratios.
#
#   scripts/perf-compare.sh            # about 3 minutes
#   QUICK=1 scripts/perf-compare.sh    # fewer requests, for a smoke test
#   OLD=/path/to/old/gradebook scripts/perf-compare.sh
#                                      # also an older build, side by side,
#                                      # for the rows that compare with it
#
# Needs redis-server and redis-benchmark (Debian: apt-get install
# redis-server); builds gradebook in release mode.
set -euo pipefail

cd "$(dirname "$0")/.."
N_READ=${N_READ:-300000}
N_PIPE=${N_PIPE:-1000000}
N_WRITE=${N_WRITE:-30000}
if [ -n "${QUICK:-}" ]; then N_READ=30000; N_PIPE=100000; N_WRITE=3000; fi

command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server)" >&2; exit 1; }
cargo build --release -q -p gradebook-cli
G=$PWD/target/release/gradebook
WORK=$(mktemp -d)
PLAIN_PORT=7480 TLS_PORT=7481 REDIS_PORT=7482 OLD_PORT=7483 SHOW_PORT=7484
export GRADEBOOK_PASSWORD=perf-compare-password
# Several servers at once: none opens the web portal (which would take
# port 7380 for each). Builds older than the portal ignore the variable.
export GRADEBOOK_NO_HTTP=true
cleanup() {
  kill "${PIDS[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
PIDS=()
trap cleanup EXIT

# Room for 10,000 idle connections beside the benchmark's own.
GRADEBOOK_ADMIN_PASSWORD=$GRADEBOOK_PASSWORD "$G" serve --plaintext --listen 127.0.0.1:$PLAIN_PORT \
  --data "$WORK/plain" --log warn --max-connections 10100 >"$WORK/plain.out" 2>&1 &
PIDS+=($!)
GRADEBOOK_ADMIN_PASSWORD=$GRADEBOOK_PASSWORD "$G" serve --listen 127.0.0.1:$TLS_PORT \
  --data "$WORK/tls" --log warn >"$WORK/tls.out" 2>&1 &
PIDS+=($!)
if [ -n "${OLD:-}" ]; then
  GRADEBOOK_ADMIN_PASSWORD=$GRADEBOOK_PASSWORD "$OLD" serve --plaintext --listen 127.0.0.1:$OLD_PORT \
    --data "$WORK/old" --log warn >"$WORK/old.out" 2>&1 &
  PIDS+=($!)
fi
redis-server --port $REDIS_PORT --save '' --appendonly no >/dev/null 2>&1 &
PIDS+=($!)
sleep 2

rps() { python3 -c 'import json,sys; print(round(json.load(sys.stdin)["rps"]))'; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
redis_rps() { redis-benchmark -p $REDIS_PORT -t ping -c 50 "$@" --csv 2>/dev/null \
  | awk -F'","' '/PING_MBULK/ {print int($2)}'; }
bench() { "$G" bench --json "$@" 2>/dev/null; }

echo "measuring… (redis, gradebook plaintext, TLS, QUIC, pipelined, writes, fsync, idle)" >&2
R1=$(redis_rps -n "$N_READ")
B1=$(bench --plaintext --server 127.0.0.1:$PLAIN_PORT -c 50 -n "$N_READ" --workload average)
T1=$(bench --server 127.0.0.1:$TLS_PORT -c 50 -n "$N_READ" --workload average)
# The same reads over QUIC (the TLS server's UDP port + 1), right after.
Q1=$(bench --server 127.0.0.1:$TLS_PORT --quic -c 50 -n "$N_READ" --workload average)
R16=$(redis_rps -n "$N_PIPE" -P 16)
B16=$(bench --plaintext --server 127.0.0.1:$PLAIN_PORT -c 50 -P 16 -n "$N_PIPE" --workload average)
W=$(bench --plaintext --server 127.0.0.1:$PLAIN_PORT -c 50 -n "$N_WRITE" --workload write)
F=$(cd "$WORK" && "$G" bench --json --fsync-baseline 2000)
M=$(bench --plaintext --server 127.0.0.1:$PLAIN_PORT -c 50 -n "$N_READ" --workload read)
R2=$(redis_rps -n "$N_READ")
X=$(bench --plaintext --server 127.0.0.1:$PLAIN_PORT -c 50 -n "$N_READ" --workload mixed)
# One connection pipelining 10,000 writes: do they share commits?
PW=$(bench --plaintext --server 127.0.0.1:$PLAIN_PORT -c 1 -P 10000 -n 10000 --workload write)
if [ -n "${OLD:-}" ]; then
  # The first version serves the mix at about 1,000 requests/s: 20 seconds tell.
  XO=$(bench --plaintext --server 127.0.0.1:$OLD_PORT -c 50 --duration 20 --workload mixed)
  PWO=$(bench --plaintext --server 127.0.0.1:$OLD_PORT -c 1 -P 10000 -n 10000 --workload write)
fi
# A read right after a write to its data, in a 5,000 × 20 promotion, on a
# server of its own (the data set is 100,000 grades).
GRADEBOOK_ADMIN_PASSWORD=$GRADEBOOK_PASSWORD "$G" serve --plaintext --listen 127.0.0.1:$SHOW_PORT \
  --data "$WORK/show" --log warn >"$WORK/show.out" 2>&1 &
PIDS+=($!)
sleep 1
A=$(bench --plaintext --server 127.0.0.1:$SHOW_PORT --promotions 1 --students 5000 --grades 20 \
  --after-write "${ROUNDS:-200}")
PID_PLAIN=${PIDS[0]}
RSS_BEFORE=$(awk '/VmRSS/ {print $2}' /proc/$PID_PLAIN/status)
bench --plaintext --server 127.0.0.1:$PLAIN_PORT -c 50 -n "$N_READ" --workload average --idle 10000 \
  >"$WORK/idle.json" &
BENCH=$!
for _ in $(seq 1 240); do
  [ "$(ls /proc/$PID_PLAIN/fd | wc -l)" -ge 10000 ] && break
  sleep 0.25
done
awk '/VmRSS/ {print $2}' /proc/$PID_PLAIN/status >"$WORK/rss"
wait $BENCH
I=$(cat "$WORK/idle.json")
RSS_IDLE=$(cat "$WORK/rss")

b1=$(echo "$B1" | rps); t1=$(echo "$T1" | rps); q1=$(echo "$Q1" | rps); b16=$(echo "$B16" | rps)
w=$(echo "$W" | rps); f=$(echo "$F" | rps); m=$(echo "$M" | rps); i=$(echo "$I" | rps)
x=$(echo "$X" | rps); pw=$(echo "$PW" | rps)
after() { python3 -c "import json,sys; d=json.load(sys.stdin)[\"$1\"]; print(f'{d[\"p50_ms\"]:.3f} ms, {d[\"p50_over_ping\"]:.1f}')"; }
show=$(echo "$A" | after student.show); avg=$(echo "$A" | after promotion.average)
ping_ms=$(echo "$A" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ping"]["p50_ms"])')
p99=$(echo "$B1" | field p99_ms); tp99=$(echo "$T1" | field p99_ms)
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }

cat <<EOF
| measure | gradebook | reference | ratio | target |
|---|---|---|---|---|
| reads, plaintext JSON, 50 conns (student.average) | $b1 req/s | redis PING $R1 req/s | $(ratio "$b1" "$R1") | ≥ 0.50 |
| reads over TLS, 50 conns | $t1 req/s | redis PING $R1 req/s | $(ratio "$t1" "$R1") | ≥ 0.40 |
| reads over QUIC, 50 conns | $q1 req/s | TLS TCP $t1 req/s | $(ratio "$q1" "$t1") | ≥ 0.40 |
| pipelined reads, -P 16 | $b16 req/s | redis PING -P 16 $R16 req/s | $(ratio "$b16" "$R16") | ≥ 0.25 |
| durable writes (grade.add), 50 conns | $w req/s | single-row fsync $f commits/s | $(ratio "$w" "$f") | ≥ 5 |
| p99 latency, reads, 50 conns | $p99 ms (TLS: $tp99 ms) | | | < 5 ms |
| reads with 10,000 idle connections | $i req/s | without: $b1 req/s | $(ratio "$i" "$b1") | ≥ 0.80 |
| server memory with 10,000 idle connections | $((RSS_IDLE / 1024)) MB (before: $((RSS_BEFORE / 1024)) MB) | | | < 300 MB |
| mixed reads (average, show, promotion.average) | $m req/s | | | |
| 90 % reads + 10 % grade.add, 50 conns | $x req/s | redis PING $R2 req/s | $(ratio "$x" "$R2") | ≥ 0.50 |
| one connection pipelining 10,000 grade.add | $pw writes/s | | | |
| after a write, student.show (5,000 × 20 promotion), p50 | ${show%,*} | ping $ping_ms ms | ${show#*, }× | ≤ 40× |
| after a write, promotion.average (5,000 × 20), p50 | ${avg%,*} | ping $ping_ms ms | ${avg#*, }× | ≤ 40× |
EOF
if [ -n "${OLD:-}" ]; then
  xo=$(echo "$XO" | rps); pwo=$(echo "$PWO" | rps)
  cat <<EOF
| 90/10 mixed, $OLD | $xo req/s | redis PING $R2 req/s | $(ratio "$xo" "$R2") | |
| one connection pipelining 10,000 grade.add: this build / $OLD | $pw / $pwo writes/s | | $(ratio "$pw" "$pwo") | ≥ 5 |
EOF
fi
