#!/usr/bin/env bash
# Presence throughput and fan-out of our stack, driven by the target-agnostic sipp harness
# that also measures Kamailio's own presence modules (../shared/bench-native/run-bench.sh),
# so both sides run the same scenarios: PUBLISH/s, SUBSCRIBE + initial NOTIFY + un-SUBSCRIBE
# /s, and one PUBLISH to N watchers (time to the last NOTIFY). Also samples the memory of
# the AS and of Kamailio per phase. Not a timed test: run it by hand.
#
#   scripts/bench-presence.sh [OUT]
#   RATES="500 1000 2000" DURATION=5 FANOUT_N="1000 10000" scripts/bench-presence.sh /tmp/bench-presence
#   NATIVE_BENCH=/path/to/bench-native (default ../shared/bench-native)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${1:-/tmp/bench-presence}
NATIVE_BENCH=${NATIVE_BENCH:-$ROOT/../shared/bench-native}
export RATES=${RATES:-"500 1000 2000"} DURATION=${DURATION:-5} FANOUT_N=${FANOUT_N-"1000 10000"}
export SCENARIOS=${SCENARIOS:-"publish subscribe"}
[ -x "$NATIVE_BENCH/run-bench.sh" ] || [ -f "$NATIVE_BENCH/run-bench.sh" ] || { echo "no $NATIVE_BENCH/run-bench.sh" >&2; exit 1; }
rm -rf "$OUT"; mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# shellcheck source=bench/stack.sh
source "$ROOT/scripts/bench/stack.sh"
samplers=()
cleanup() {
  for p in "${samplers[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  stop_bench_stack
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bash scripts/install.sh >/dev/null
echo "[bench-presence] $(nproc) cores, $(kamailio -v | head -1), node $(node -v), load: $(cut -d' ' -f1-3 /proc/loadavg)"
start_bench_stack "$OUT"
PHASE=$OUT/phase
echo setup > "$PHASE"
python3 "$NATIVE_BENCH/tools/rss_sampler.py" --pid "$BENCH_AS_PID" --phase-file "$PHASE" --out "$OUT/as-rss.csv" --summary "$OUT/as-rss.json" > /dev/null 2>&1 &
samplers+=($!)
KPID=$(cat "$OUT/data/k.pid" 2>/dev/null || true)
if [ -n "$KPID" ]; then
  python3 "$NATIVE_BENCH/tools/rss_sampler.py" --pid "$KPID" --phase-file "$PHASE" --out "$OUT/kamailio-rss.csv" --summary "$OUT/kamailio-rss.json" > /dev/null 2>&1 &
  samplers+=($!)
fi
BENCH_PHASE_FILE=$PHASE bash "$NATIVE_BENCH/run-bench.sh" 127.0.0.1 5290 "$OUT/run" || true
for p in "${samplers[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
sleep 1
curl -s http://127.0.0.1:5292/metrics > "$OUT/as-metrics.txt" || true
cat "$OUT/run/summary.txt"
echo "AS memory peaks per phase: $(cat "$OUT/as-rss.json" 2>/dev/null)"
