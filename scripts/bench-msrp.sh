#!/usr/bin/env bash
# IM sessions benchmark (issue 14): session set-ups/s through Kamailio and the AS, MSRP SEND
# messages/s and MB/s through the AS's switch next to Kamailio's own msrp relay in the same
# run, and the AS's memory per idle open session. Starts the stack in benchmark mode
# (scripts/bench/stack.sh, with the AS's MSRP switch on 127.0.0.1:5288) and Kamailio's msrp
# relay (scripts/bench/msrp-relay.cfg on 5287), registers the callees, then runs
# scripts/bench-msrp.mjs (its --help lists the knobs). Not a timed test: run it by hand on a
# quiet machine; results go to OUT (default /tmp/bench-msrp) and are quoted in BENCHMARKS.md.
#
#   scripts/bench-msrp.sh [OUT]
#   SETUP_RATES="50 100 200" DURATION=10 SESSIONS=100 MSG_BYTES=1024 IDLE_SESSIONS=10000 scripts/bench-msrp.sh
#   SETUP_RATES=20 DURATION=2 SESSIONS=10 IDLE_SESSIONS=50 USERS=50 scripts/bench-msrp.sh /tmp/x   (smoke size)
#   SKIP_INSTALL=1 skips scripts/install.sh (everything already installed and built)
#
# Ports (127.0.0.1): core 5290 (udp), RPC 5291, AS 5292, event stream 5293, XCAP 5294, AS MSRP
# 5288, the AS's inspector 5289 (garbage collection before memory readings), msrp relay 5287, the
# benchmark's MSRP answerer 5286; sipp caller 5161, callee 5162,
# registrations 5163 (trusted by the core with WITH_TRUSTED_PEER), control ports 5171-5173.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${1:-/tmp/bench-msrp}
USERS=${USERS:-1000}
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
  exec node scripts/bench-msrp.mjs --help
fi
rm -rf "$OUT"; mkdir -p "$OUT/data" "$OUT/runs"
OUT=$(cd "$OUT" && pwd)
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/bench.log" >&2; }

# 10,000 idle sessions are 10,000 client sockets here and 20,000 in the AS
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
trap stop_bench_stack EXIT
trap 'exit 130' INT TERM
# shellcheck source=bench/stack.sh
source "$ROOT/scripts/bench/stack.sh"
for p in 5286 5287 5288 5289 5161 5162 5163; do
  if ss -H -lntu "( sport = :$p )" | grep -q .; then echo "port $p is busy" >&2; exit 1; fi
done
[ -n "${SKIP_INSTALL:-}" ] || bash scripts/install.sh >/dev/null
log "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(kamailio -v | head -1), node $(node -v), $(sipp -v 2>&1 | grep -o 'SIPp v[0-9.]*' | head -1), open files $(ulimit -n)"
log "starting AS and Kamailio in benchmark mode (scripts/bench/stack.sh), the AS's MSRP switch on 5288"
export MSRP_HOST=127.0.0.1 MSRP_PORT=5288
# the inspector on loopback lets the benchmark collect garbage in the AS before reading its heap
export AS_NODE_ARGS="${AS_NODE_ARGS:-} --inspect=127.0.0.1:5289"
start_bench_stack "$OUT"
log "starting Kamailio's msrp relay on 5287 (scripts/bench/msrp-relay.cfg)"
kamailio -f scripts/bench/msrp-relay.cfg -DD -E -m 512 -M 32 -Y "$OUT/data" -P "$OUT/data/relay.pid" \
  -A RELAY_PORT=5287 -A 'RELAY_ADDR="127.0.0.1:5287"' -A 'NEXT_HOP_ADDR="127.0.0.1:5286"' -A RELAY_CHILDREN=4 -A RELAY_DBG=1 > "$OUT/relay.log" 2>&1 &
BENCH_PIDS+=($!)
for _ in $(seq 1 50); do ss -H -lnt "( sport = :5287 )" | grep -q . && break; sleep 0.2; done

log "provisioning $USERS callees b1..b$USERS"
for i in $(seq 1 "$USERS"); do echo "b$i,bench-pw-$i"; done > "$OUT/data/users.csv"
node build/as/src/cli/provision.js import "$OUT/data/users.csv" >> "$OUT/bench.log"

SC=$ROOT/scripts/bench/scenarios
COMMON=(-i 127.0.0.1 -t u1 -nostdin -buff_size 4194304 -max_recv_loops 10000 -max_sched_loops 10000 -trace_err)
log "callee UA on 5162 (its MSRP path: the benchmark's answerer on 5286), registering b1..b$USERS"
mkdir -p "$OUT/runs/callee" "$OUT/runs/register"
( cd "$OUT/runs/callee" && exec sipp 127.0.0.1:5290 -sf "$SC/msrp-callee.xml" -set msrp_port 5286 -p 5162 -cp 5172 -mp 5184 "${COMMON[@]}" > sipp.out 2>&1 ) &
BENCH_PIDS+=($!)
{ echo SEQUENTIAL; for i in $(seq 1 "$USERS"); do echo "b$i"; done; } > "$OUT/data/callees.csv"
( cd "$OUT/runs/register" && sipp 127.0.0.1:5290 -sf "$SC/register.xml" -inf "$OUT/data/callees.csv" -set ct_port 5162 \
    -p 5163 -cp 5173 -mp 5188 -r 500 -m "$USERS" "${COMMON[@]}" -trace_stat -stf stat.csv > sipp.out 2>&1 ) || { log "registration failed"; exit 1; }
log "registered: $(node scripts/bench/sipp-stats.mjs "$OUT/runs/register")"

USERS=$USERS node --experimental-websocket --no-warnings scripts/bench-msrp.mjs --out "$OUT" --core 127.0.0.1:5290 --metrics http://127.0.0.1:5292/metrics \
  --as-msrp 127.0.0.1:5288 --relay 127.0.0.1:5287 --answerer-port 5286 --inspect 127.0.0.1:5289 | tee "$OUT/summary.txt"
log "AS resident memory after the runs: $(ps -o rss= -p "$BENCH_AS_PID" | awk '{printf "%.0f MiB", $1/1024}')"
