#!/usr/bin/env bash
# Presence list benchmark (#6): list fetches/s of a 100-member list and NOTIFY bytes for 100
# changes with and without partial notification, on a stack in benchmark mode (see
# scripts/bench/stack.sh). Kamailio's native peer has no resource list server configured in
# ../shared/bench-native, so there is no side-by-side figure. Not a timed test: run by hand.
#
#   scripts/bench-lists.sh [OUT]
#   RATES="50 100 200" DURATION=5 MEMBERS=100 CHANGES=100 scripts/bench-lists.sh /tmp/bench-lists
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${1:-/tmp/bench-lists}
rm -rf "$OUT"; mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# shellcheck source=bench/stack.sh
source "$ROOT/scripts/bench/stack.sh"
trap stop_bench_stack EXIT
trap 'exit 130' INT TERM
bash scripts/install.sh >/dev/null
echo "[bench-lists] $(nproc) cores, $(kamailio -v | head -1), node $(node -v), load: $(cut -d' ' -f1-3 /proc/loadavg)"
start_bench_stack "$OUT"
node scripts/bench-lists.mjs --admin-token "$BENCH_SECRET" --core 127.0.0.1:5290 --isc 127.0.0.1:5292 --xcap 127.0.0.1:5294 | tee "$OUT/result.txt"
echo "AS RSS after the run: $(ps -o rss= -p "$BENCH_AS_PID" | awk '{printf "%.0f MiB", $1/1024}')"
