#!/usr/bin/env bash
# Group chat benchmark (issue 15): one chat room of PARTICIPANTS joined through Kamailio (latency of
# one message to all the others, messages per second with everyone sending in turn), the AS's
# memory per participant, and 3-party conference set-ups per second (rooms through the admin
# API, and ad-hoc ones through the conference factory with a recipient list). Starts the stack in benchmark mode (scripts/bench/stack.sh, the AS's MSRP on
# 127.0.0.1:5288), provisions users p1..pN, then runs scripts/bench-conference.mjs (its --help
# lists the knobs). Not a timed test: run it by hand on a quiet machine; results go to OUT
# (default /tmp/bench-conference) and are quoted in BENCHMARKS.md.
#
#   scripts/bench-conference.sh [OUT]
#   PARTICIPANTS=100 LATENCY_MESSAGES=200 DURATION=10 WINDOW=8 CONCURRENCY=4 scripts/bench-conference.sh
#   PARTICIPANTS=5 LATENCY_MESSAGES=20 DURATION=2 CONCURRENCY=1 scripts/bench-conference.sh /tmp/x   (smoke size)
#   SKIP_INSTALL=1 skips scripts/install.sh (everything already installed and built)
#
# Ports (127.0.0.1): core 5290 (udp), RPC 5291, AS 5292 (ISC, /metrics, /admin), event stream
# 5293, XCAP 5294, AS MSRP 5288, the AS's inspector 5289 (garbage collection before memory
# readings), the participants' SIP UAs 5164 (a port the benchmark-mode core trusts).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${1:-/tmp/bench-conference}
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
  exec node scripts/bench-conference.mjs --help
fi
PARTICIPANTS=${PARTICIPANTS:-100}
CONCURRENCY=${CONCURRENCY:-4}
# the room's participants and three per concurrent 3-party conference
USERS=$(( PARTICIPANTS > 3 * CONCURRENCY ? PARTICIPANTS : 3 * CONCURRENCY ))
rm -rf "$OUT"; mkdir -p "$OUT/data"
OUT=$(cd "$OUT" && pwd)
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/bench.log" >&2; }

# every participant is one MSRP connection here and one in the AS
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
trap stop_bench_stack EXIT
trap 'exit 130' INT TERM
# shellcheck source=bench/stack.sh
source "$ROOT/scripts/bench/stack.sh"
for p in 5288 5289 5164; do
  if ss -H -lntu "( sport = :$p )" | grep -q .; then echo "port $p is busy" >&2; exit 1; fi
done
[ -n "${SKIP_INSTALL:-}" ] || bash scripts/install.sh >/dev/null
log "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(kamailio -v | head -1), node $(node -v), open files $(ulimit -n)"
log "starting AS and Kamailio in benchmark mode (scripts/bench/stack.sh), the AS's MSRP on 5288"
export MSRP_HOST=127.0.0.1 MSRP_PORT=5288
# the inspector on loopback lets the benchmark collect garbage in the AS before reading its heap
export AS_NODE_ARGS="${AS_NODE_ARGS:-} --inspect=127.0.0.1:5289"
start_bench_stack "$OUT"

log "provisioning $USERS users p1..p$USERS"
for i in $(seq 1 "$USERS"); do echo "p$i,bench-pw-$i"; done > "$OUT/data/users.csv"
node build/as/src/cli/provision.js import "$OUT/data/users.csv" >> "$OUT/bench.log"

# AS_ADMIN_TOKEN (exported by start_bench_stack) lets the script create the rooms
PARTICIPANTS=$PARTICIPANTS CONCURRENCY=$CONCURRENCY node --experimental-websocket --no-warnings scripts/bench-conference.mjs --out "$OUT" \
  --core 127.0.0.1:5290 --metrics http://127.0.0.1:5292/metrics --admin http://127.0.0.1:5292/admin --sip-port 5164 \
  --inspect 127.0.0.1:5289 | tee "$OUT/summary.txt"
log "AS resident memory after the runs: $(ps -o rss= -p "$BENCH_AS_PID" | awk '{printf "%.0f MiB", $1/1024}')"
