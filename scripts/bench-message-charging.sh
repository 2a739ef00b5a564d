#!/usr/bin/env bash
# MESSAGE through Kamailio and the AS with each charging mode, side by side in one run (issue
# 16: "with file and Rf charging on, within 10 % of the rate without"). The AS cannot write no
# records at all (every MESSAGE is charged), so the first mode is the cheapest one, TS 32.297
# files only; then the files plus the JSON Lines export; then the files plus Diameter Rf to the
# test CDF (Erlang's diameter application from Debian, test/fixtures/rf-cdf.escript, a real
# peer over TCP that answers every ACR). Each mode gets a fresh stack (the charging settings are
# read at start) and the same offered rates; the table gives each mode's achieved rate,
# retransmissions and p99 and its rate as a share of the first mode's. Not a timed test: run it
# by hand on a quiet machine; results go to OUT (default /tmp/bench-message-charging).
#
#   scripts/bench-message-charging.sh [OUT]
#   RATES="500 1000 2000" DURATION=10 USERS=1000 scripts/bench-message-charging.sh
#   RATES=50 DURATION=2 USERS=20 scripts/bench-message-charging.sh     (smoke size)
#   MODES="file rf" ...     (a subset; the first listed is the reference)
#
# Ports as scripts/bench-message.sh (core 5290-5294, sipp 5161-5163), and the CDF on CDF_PORT
# (3868 by default).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${1:-/tmp/bench-message-charging}
RATES=${RATES:-"500 1000 2000"}
DURATION=${DURATION:-10}
USERS=${USERS:-1000}
MODES=${MODES:-"file jsonl rf"}
CDF_PORT=${CDF_PORT:-3868}
rm -rf "$OUT"; mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/bench.log" >&2; }

# shellcheck source=bench/stack.sh
source "$ROOT/scripts/bench/stack.sh"
CDF_PID=""
stop_all() {
  stop_bench_stack
  if [ -n "$CDF_PID" ]; then kill -TERM "$CDF_PID" 2>/dev/null || true; wait "$CDF_PID" 2>/dev/null || true; CDF_PID=""; fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM
for p in 5161 5162 5163 "$CDF_PORT"; do
  if ss -H -lntu "( sport = :$p )" | grep -q .; then echo "port $p is busy" >&2; exit 1; fi
done
for m in $MODES; do
  case $m in file | jsonl | rf) ;; *) echo "unknown mode $m (file, jsonl, rf)" >&2; exit 2 ;; esac
done
[ -f build/as/src/main.js ] || { echo "build first: npx tsc -p tsconfig.json" >&2; exit 1; }
log "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(kamailio -v | head -1), node $(node -v), $(sipp -v 2>&1 | grep -o 'SIPp v[0-9.]*' | head -1)"

SC=$ROOT/scripts/bench/scenarios
COMMON=(-i 127.0.0.1 -t u1 -nostdin -buff_size 4194304 -max_recv_loops 10000 -max_sched_loops 10000 -trace_err -trace_stat -stf stat.csv -fd 1 -trace_rtt -rtt_freq 1 -recv_timeout 5000 -default_behaviors "all,-bye")
maxr=0; for r in $RATES; do [ "$r" -gt "$maxr" ] && maxr=$r; done

# one mode: a fresh stack with its charging settings, users, the UAS registered, each rate
run_mode() {
  local mode=$1 dir=$OUT/$1
  mkdir -p "$dir/runs" "$dir/data"
  export CDR_JSONL=false CDR_RF_PEERS= CDR_RF_ORIGIN_HOST= CDR_RF_DESTINATION_REALM=
  if [ "$mode" = jsonl ]; then export CDR_JSONL=true; fi
  if [ "$mode" = rf ]; then
    escript "$ROOT/test/fixtures/rf-cdf.escript" "$CDF_PORT" "$dir/acr.log" > "$dir/cdf.log" 2>&1 &
    CDF_PID=$!
    for _ in $(seq 1 100); do grep -q "listening $CDF_PORT" "$dir/cdf.log" && break; sleep 0.2; done
    grep -q "listening $CDF_PORT" "$dir/cdf.log" || { log "the test CDF did not start: $(cat "$dir/cdf.log")"; exit 1; }
    export CDR_RF_PEERS=127.0.0.1:$CDF_PORT CDR_RF_ORIGIN_HOST=as.example.com CDR_RF_DESTINATION_REALM=test.example
  fi
  log "mode $mode: starting the stack"
  start_bench_stack "$dir"
  if [ "$mode" = rf ]; then
    for _ in $(seq 1 50); do curl -s http://127.0.0.1:5292/metrics | grep -q '^ims_as_charging_rf_peer_up.* 1$' && break; sleep 0.2; done
  fi
  for i in $(seq 1 "$USERS"); do echo "b$i,bench-pw-$i"; done > "$dir/data/users.csv"
  node build/as/src/cli/provision.js import "$dir/data/users.csv" >> "$dir/bench.log"
  mkdir -p "$dir/runs/uas" "$dir/runs/register"
  ( cd "$dir/runs/uas" && exec sipp 127.0.0.1:5290 -sf "$SC/uas.xml" -p 5162 -cp 5172 -mp 5184 "${COMMON[@]}" > sipp.out 2>&1 ) &
  BENCH_PIDS+=($!)
  { echo SEQUENTIAL; for i in $(seq 1 "$USERS"); do echo "b$i"; done; } > "$dir/data/bobs.csv"
  ( cd "$dir/runs/register" && sipp 127.0.0.1:5290 -sf "$SC/register.xml" -inf "$dir/data/bobs.csv" -set ct_port 5162 \
      -p 5163 -cp 5173 -mp 5188 -r 500 -m "$USERS" "${COMMON[@]}" > sipp.out 2>&1 ) || { log "registration failed"; exit 1; }
  { echo SEQUENTIAL; for i in $(seq 1 $((maxr * DURATION))); do echo "a$i;b$(( (i - 1) % USERS + 1 ))"; done; } > "$dir/data/message.csv"
  local r
  for r in $RATES; do
    mkdir -p "$dir/runs/$r"
    ( cd "$dir/runs/$r" && sipp 127.0.0.1:5290 -sf "$SC/message.xml" -inf "$dir/data/message.csv" -p 5161 -cp 5171 -mp 5180 \
        -r "$r" -m $(( r * DURATION )) -l $(( r * 6 )) "${COMMON[@]}" > sipp.out 2>&1 ) || true
    echo "$mode $r $(node scripts/bench/sipp-stats.mjs "$dir/runs/$r")" >> "$OUT/results.txt"
    log "mode $mode, rate $r/s: $(tail -1 "$OUT/results.txt" | cut -d' ' -f3-)"
    sleep 6   # let tm's wait timer drain before the next rate
  done
  curl -s http://127.0.0.1:5292/metrics > "$dir/as-metrics.txt" || true
  local written answered
  written=$(awk '/^ims_as_charging_records_written_total /{n += $2} END {print n + 0}' "$dir/as-metrics.txt")
  answered=$(awk '/^ims_as_charging_rf_acr_answered_total/{n += $2} END {print n + 0}' "$dir/as-metrics.txt")
  log "mode $mode: records written $written, ACRs answered by the CDF $answered"
  echo "$mode $written $answered" >> "$OUT/records.txt"
  stop_all
  sleep 1
}

: > "$OUT/results.txt"; : > "$OUT/records.txt"
for m in $MODES; do run_mode "$m"; done

node --input-type=module - "$OUT" <<'EOF' | tee "$OUT/summary.txt"
import { readFileSync } from 'node:fs';
const out = process.argv[2];
const rows = readFileSync(`${out}/results.txt`, 'utf8').trim().split('\n').map((l) => {
  const [mode, rate, ...json] = l.split(' ');
  return { mode, rate: Number(rate), ...JSON.parse(json.join(' ')) };
});
const records = Object.fromEntries(readFileSync(`${out}/records.txt`, 'utf8').trim().split('\n').map((l) => {
  const [mode, written, answered] = l.split(' ');
  return [mode, { written, answered }];
}));
const first = rows[0].mode;
const names = { file: 'TS 32.297 file only', jsonl: 'file + JSON Lines', rf: 'file + Diameter Rf' };
console.log('mode                 offered/s achieved/s  ok/calls  retrans  p99 ms  rate vs ' + first);
for (const r of rows) {
  const ref = rows.find((x) => x.mode === first && x.rate === r.rate);
  const ratio = ref && ref.achievedCps > 0 ? `${((r.achievedCps / ref.achievedCps) * 100).toFixed(1)} %` : '-';
  console.log(
    `${(names[r.mode] ?? r.mode).padEnd(20)} ${String(r.rate).padStart(9)} ${String(r.achievedCps).padStart(10)} ${`${r.ok}/${r.calls}`.padStart(9)} ${String(r.retrans).padStart(8)} ${String(r.p99ms).padStart(7)}  ${ratio}`,
  );
}
for (const [mode, c] of Object.entries(records))
  console.log(`${names[mode] ?? mode}: ${c.written} records written${mode === 'rf' ? `, ${c.answered} ACRs answered by the CDF` : ''}`);
EOF
