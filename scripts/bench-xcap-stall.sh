#!/usr/bin/env bash
# Does heavy XCAP work stall SIP decisions? (issue #12 item 7). PUBLISH response times through
# Kamailio and the AS at a steady rate, once on a quiet stack and once while one XCAP user PUTs
# large resource-lists documents back to back; plus the AS's longest event-loop stall in each
# phase (ims_as_nodejs_eventloop_delay_max_seconds). The figure: PUBLISH p95 with the XCAP load, which
# must stay under 100 ms. Not a timed test: run it by hand, quote it in BENCHMARKS.md.
#
#   scripts/bench-xcap-stall.sh [OUT]                       (default /tmp/bench-xcap-stall)
#   RATE=100 DURATION=20 SIZE_KB=1000 scripts/bench-xcap-stall.sh
#   MODE=node ...   (the XCAP user replaces one element of the large document instead: node PUTs)
#   XDM_MAX_DOCUMENT_BYTES=... (the AS's limit; default 1 MiB), NATIVE_BENCH=... (publish.xml from there)
#
# Everything runs on 127.0.0.1 and stops by itself (sipp -m RATE*DURATION, the PUT loop after
# DURATION+2 s). Ports: the bench stack's 5290-5294 (scripts/bench/stack.sh), sipp 5161.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${1:-/tmp/bench-xcap-stall}
RATE=${RATE:-100}
DURATION=${DURATION:-20}
SIZE_KB=${SIZE_KB:-1000}
NATIVE_BENCH=${NATIVE_BENCH:-$ROOT/../shared/bench-native}
SCENARIO=$NATIVE_BENCH/scenarios/publish.xml
[ -f "$SCENARIO" ] || { echo "no $SCENARIO" >&2; exit 1; }
rm -rf "$OUT"; mkdir -p "$OUT/runs"
OUT=$(cd "$OUT" && pwd)
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/bench.log" >&2; }

trap stop_bench_stack EXIT
trap 'exit 130' INT TERM
# shellcheck source=bench/stack.sh
source "$ROOT/scripts/bench/stack.sh"
if ss -H -lntu "( sport = :5161 )" | grep -q .; then echo "port 5161 is busy" >&2; exit 1; fi
bash scripts/install.sh >/dev/null
log "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg), $(kamailio -v | head -1), node $(node -v), $(sipp -v 2>&1 | grep -o 'SIPp v[0-9.]*' | head -1)"
# the PUT loop asserts its identity as an authenticating proxy would (no digest round trips)
export XDM_TRUSTED_PROXIES=127.0.0.1
start_bench_stack "$OUT"
COMMON=(-i 127.0.0.1 -t u1 -nostdin -trace_err -trace_stat -stf stat.csv -fd 1 -trace_rtt -rtt_freq 1 -recv_timeout 5000)
max_stall() { curl -s http://127.0.0.1:5292/metrics | awk '/^ims_as_nodejs_eventloop_delay_max_seconds/ {printf "%.0f", $2 * 1000}'; }

phase() { # name
  local dir=$OUT/runs/$1
  mkdir -p "$dir"
  max_stall > /dev/null # the gauge covers the time since the previous scrape
  ( cd "$dir" && sipp 127.0.0.1:5290 -sf "$SCENARIO" -set prefix "$1" -set pexp 600 -p 5161 \
      -r "$RATE" -m $(( RATE * DURATION )) "${COMMON[@]}" > sipp.out 2>&1 ) || true
  echo "$1 publish=$(node scripts/bench/sipp-stats.mjs "$dir") as_max_stall_ms=$(max_stall)"
}

log "phase 1: PUBLISH at $RATE/s for $DURATION s, nothing else"
phase quiet | tee -a "$OUT/summary.txt"
log "phase 2: the same while one user PUTs ${SIZE_KB} KB resource-lists documents back to back (MODE=${MODE:-doc})"
node scripts/bench/xcap-put-loop.mjs http://127.0.0.1:5294 "$SIZE_KB" $(( DURATION + 2 )) > "$OUT/xcap-puts.json" &
loop=$!
sleep 1
phase xcap-load | tee -a "$OUT/summary.txt"
wait "$loop"
echo "xcap-puts $(cat "$OUT/xcap-puts.json")" | tee -a "$OUT/summary.txt"
