#!/usr/bin/env bash
# The web portal beside the protocol, side by side in one run: a student's
# home page (/me, over HTTPS, 50 connections, wrk) against the protocol's
# student.show (over TLS TCP, 50 connections, gradebook bench), and the
# weight of that page, cold (its HTML, CSS and script). Prints a Markdown
# table.
#
#   scripts/perf-web.sh               # about a minute
#   SECONDS_EACH=5 scripts/perf-web.sh
#   GRADEBOOK=/path/to/gradebook scripts/perf-web.sh
#
# Needs wrk and curl (Debian: apt-get install wrk curl); builds gradebook
# in release mode unless GRADEBOOK names a binary.
set -euo pipefail

cd "$(dirname "$0")/.."
SECONDS_EACH=${SECONDS_EACH:-15}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
command -v curl >/dev/null || { echo "needs curl (apt-get install curl)" >&2; exit 1; }
if [ -n "${GRADEBOOK:-}" ]; then
  G=$(realpath "$GRADEBOOK")
else
  cargo build --release -q -p gradebook-cli
  G=$PWD/target/release/gradebook
fi
WORK=$(mktemp -d -t gradebook-perf-web.XXXXXX)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port); HTTP=$(free_port)
export GRADEBOOK_PASSWORD=perf-web-password-1
GRADEBOOK_ADMIN_PASSWORD=$GRADEBOOK_PASSWORD "$G" serve --listen 127.0.0.1:$PORT \
  --http-listen 127.0.0.1:$HTTP --no-quic --data "$WORK/data" --log warn >"$WORK/out" 2>&1 &
PID=$!
for _ in $(seq 50); do grep -q listening "$WORK/out" 2>/dev/null && break; sleep 0.2; done
FP=$("$G" fingerprint "$WORK/data/server-cert.pem")
# The client keeps its session and known servers under $HOME.
export HOME=$WORK/home
cli() { "$G" --server 127.0.0.1:$PORT --accept-fingerprint "$FP" "$@"; }
cli login admin >/dev/null

# A promotion of 30 students with 10 grades each (3 subjects); one
# student account for the first.
{
  echo "first_name,last_name,number"
  for i in $(seq 1 30); do echo "First$i,Last$i,S$i"; done
} >"$WORK/students.csv"
{
  echo "number,subject,value,coefficient,label"
  for i in $(seq 1 30); do
    for g in $(seq 1 10); do
      echo "S$i,Subject$((g % 3)),$(((i * 7 + g * 3) % 21)),$((g % 3 + 1)),Test$g"
    done
  done
} >"$WORK/grades.csv"
cli promotion create Web >/dev/null
cli import students "$WORK/students.csv" --promotion Web >/dev/null
cli import grades "$WORK/grades.csv" --promotion Web >/dev/null
FIRST=$(cli --json student list Web | python3 -c 'import json,sys; d=json.load(sys.stdin); d=d.get("students", d); print(d[0]["id"])')
GRADEBOOK_NEW_PASSWORD=perf-web-student-1 cli user create alice --role student --student "$FIRST" >/dev/null

# Sign in as the student through the login form, as a browser does.
BASE=https://127.0.0.1:$HTTP
JAR=$WORK/jar
CSRF=$(curl -sk -c "$JAR" "$BASE/login" | sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' | head -1)
curl -sk -b "$JAR" -c "$JAR" -o /dev/null --data-urlencode username=alice \
  --data-urlencode password=perf-web-student-1 --data-urlencode "csrf=$CSRF" "$BASE/login"
COOKIE=$(awk '$6 == "gradebook_session" { print $7 }' "$JAR")
[ -n "$COOKIE" ] || { echo "could not sign in as the student" >&2; exit 1; }

# The page's weight, cold: the HTML and what it loads.
page=$(curl -sk -H "Cookie: gradebook_session=$COOKIE" -o "$WORK/me.html" -w '%{size_download}' "$BASE/me")
grep -q 'id="my-average"' "$WORK/me.html" || { echo "/me is not the student's page" >&2; exit 1; }
assets=0
for a in $(grep -o '/static/[a-z.]*' "$WORK/me.html" | sort -u); do
  assets=$((assets + $(curl -sk -o /dev/null -w '%{size_download}' "$BASE$a")))
done

echo "measuring… (/me with wrk, student.show with gradebook bench, ${SECONDS_EACH}s each)" >&2
wrk -t2 -c50 -d"${SECONDS_EACH}s" --latency -H "Cookie: gradebook_session=$COOKIE" "$BASE/me" >"$WORK/wrk.txt"
WEB_RPS=$(awk '/Requests\/sec/ { printf "%d", $2 }' "$WORK/wrk.txt")
to_ms() { python3 -c 'import sys; v=sys.argv[1]; u=v.lstrip("0123456789."); n=float(v[:len(v)-len(u)]); print(round(n*{"us":0.001,"ms":1,"s":1000}[u], 2))' "$1"; }
WEB_P50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$WORK/wrk.txt")")
WEB_P99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$WORK/wrk.txt")")
ERRORS=$(grep -c "Non-2xx\|Socket errors" "$WORK/wrk.txt" || true)
(cd "$WORK" && cli --json bench -c 50 --duration "$SECONDS_EACH" --promotions 1 --students 30 \
  --grades 10 --workload show) >"$WORK/show.json"
read -r SHOW_RPS SHOW_P99 < <(python3 -c 'import json; d=json.load(open("'"$WORK/show.json"'")); print(round(d["rps"]), round(d["p99_ms"], 2))')

echo
echo "| measure | value |"
echo "|---|---|"
echo "| student home page (/me, HTTPS, 50 connections): requests/s | $WEB_RPS |"
echo "| its latency p50 / p99 | $WEB_P50 ms / $WEB_P99 ms |"
echo "| student.show (TLS TCP, 50 connections): requests/s | $SHOW_RPS |"
echo "| its latency p99 | $SHOW_P99 ms |"
echo "| page / protocol | $(python3 -c "print(round($WEB_RPS / $SHOW_RPS, 2))")× |"
echo "| /me weight, cold: HTML + assets | $page + $assets = $((page + assets)) bytes |"
[ "$ERRORS" = 0 ] || { echo; echo "wrk reported errors:"; cat "$WORK/wrk.txt"; }
