#!/usr/bin/env bash
# MESSAGE throughput through Kamailio and the AS (originating + terminating, delivery to a
# registered sipp UA, charging records written), next to Kamailio answering MESSAGE
# statelessly on its own, at the same offered rates in the same run. Not a timed test:
# run it by hand; results go to OUT (default /tmp/bench-message) and are quoted in BENCHMARKS.md.
#
#   scripts/bench-message.sh [OUT]
#   RATES="500 1000 2000 3000" DURATION=10 USERS=1000 scripts/bench-message.sh
#   AS_INSTANCES=2 scripts/bench-message.sh      (two AS processes on one store)
#
# Everything runs on 127.0.0.1 and stops by itself: sipp -m rate*DURATION per run.
# Ports: our core 5290 (udp), Kamailio RPC 5291, AS 5292, event stream 5293; stateless peer 5280;
# sipp: client 5161, UAS 5162, registrations 5163 (the core trusts 127.0.0.1:51xx with
# WITH_TRUSTED_PEER, as the native peer has no authentication either).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${1:-/tmp/bench-message}
RATES=${RATES:-"500 1000 2000 3000"}
DURATION=${DURATION:-10}
USERS=${USERS:-1000}
rm -rf "$OUT"; mkdir -p "$OUT/runs" "$OUT/data"
OUT=$(cd "$OUT" && pwd)
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/bench.log" >&2; }

trap stop_bench_stack EXIT
trap 'exit 130' INT TERM
# shellcheck source=bench/stack.sh
source "$ROOT/scripts/bench/stack.sh"
for p in 5280 5161 5162 5163; do
  if ss -H -lntu "( sport = :$p )" | grep -q .; then echo "port $p is busy" >&2; exit 1; fi
done
bash scripts/install.sh >/dev/null
log "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(kamailio -v | head -1), node $(node -v), $(sipp -v 2>&1 | grep -o 'SIPp v[0-9.]*' | head -1)"
log "starting AS and Kamailio in benchmark mode (scripts/bench/stack.sh)"
start_bench_stack "$OUT"
kamailio -f scripts/bench/stateless.cfg -DD -E -m 512 -Y "$OUT/data" -P "$OUT/data/k2.pid" -A SIP_PORT=5280 > "$OUT/stateless.log" 2>&1 &
BENCH_PIDS+=($!)
sleep 1

log "provisioning $USERS users b1..b$USERS"
for i in $(seq 1 "$USERS"); do echo "b$i,bench-pw-$i"; done > "$OUT/data/users.csv"
node build/as/src/cli/provision.js import "$OUT/data/users.csv" >> "$OUT/bench.log"

SC=$ROOT/scripts/bench/scenarios
COMMON=(-i 127.0.0.1 -t u1 -nostdin -buff_size 4194304 -max_recv_loops 10000 -max_sched_loops 10000 -trace_err -trace_stat -stf stat.csv -fd 1 -trace_rtt -rtt_freq 1 -recv_timeout 5000 -default_behaviors "all,-bye")

log "UAS on 5162, registering b1..b$USERS"
mkdir -p "$OUT/runs/uas"
( cd "$OUT/runs/uas" && exec sipp 127.0.0.1:5290 -sf "$SC/uas.xml" -p 5162 -cp 5172 -mp 5184 "${COMMON[@]}" > sipp.out 2>&1 ) &
BENCH_PIDS+=($!)
{ echo SEQUENTIAL; for i in $(seq 1 "$USERS"); do echo "b$i"; done; } > "$OUT/data/bobs.csv"
mkdir -p "$OUT/runs/register"
( cd "$OUT/runs/register" && sipp 127.0.0.1:5290 -sf "$SC/register.xml" -inf "$OUT/data/bobs.csv" -set ct_port 5162 \
    -p 5163 -cp 5173 -mp 5188 -r 500 -m "$USERS" "${COMMON[@]}" > sipp.out 2>&1 ) || { log "registration failed"; exit 1; }
log "registered: $(node scripts/bench/sipp-stats.mjs "$OUT/runs/register")"

maxr=0; for r in $RATES; do [ "$r" -gt "$maxr" ] && maxr=$r; done
{ echo SEQUENTIAL; for i in $(seq 1 $((maxr * DURATION))); do echo "a$i;b$(( (i - 1) % USERS + 1 ))"; done; } > "$OUT/data/message.csv"

run() { # target-name port rate
  local dir=$OUT/runs/$1-$3
  mkdir -p "$dir"
  ( cd "$dir" && sipp "127.0.0.1:$2" -sf "$SC/message.xml" -inf "$OUT/data/message.csv" -p 5161 -cp 5171 -mp 5180 \
      -r "$3" -m $(( $3 * DURATION )) -l $(( $3 * 6 )) "${COMMON[@]}" > sipp.out 2>&1 ) || true
  echo "$1 $3 $(node scripts/bench/sipp-stats.mjs "$dir")"
}

printf '%-10s %8s %s\n' target offered result > "$OUT/summary.txt"
for r in $RATES; do
  log "rate $r/s: stateless Kamailio"
  line=$(run stateless 5280 "$r"); echo "$line" >> "$OUT/summary.txt"; log "$line"
  sleep 2
  log "rate $r/s: Kamailio + AS"
  line=$(run stack 5290 "$r"); echo "$line" >> "$OUT/summary.txt"; log "$line"
  sleep 6   # let tm's wait timer drain before the next rate
done
for i in "${!BENCH_AS_PORTS[@]}"; do
  curl -s "http://127.0.0.1:${BENCH_AS_PORTS[$i]}/metrics" > "$OUT/as-metrics-$((i + 1)).txt" || true
  rss=$(ps -o rss= -p "${BENCH_AS_PIDS[$i]}" | tr -d ' ')
  decided=$(awk '/^ims_as_isc_stream_requests_total /{print $2}' "$OUT/as-metrics-$((i + 1)).txt")
  log "AS instance $((i + 1)): ${decided:-0} requests decided, resident memory after the runs $((rss / 1024)) MiB"
done
# (the CDR files are TS 32.297 BER now, the JSON Lines export off: count what the AS reports)
cdrs=$(cat "$OUT"/as-metrics-*.txt 2>/dev/null | awk '/^ims_as_charging_records_written_total /{n += $2} END {print n + 0}')
log "CDRs written: $cdrs"
cat "$OUT/summary.txt"
