#!/usr/bin/env bash
# Deferred messaging: time to drain N stored messages to a user who registers. N MESSAGEs
# are sent to an offline user (each answered 202 and stored), then a sipp UA registers the
# user and answers every MESSAGE; the clock runs from the REGISTER to the last delivery the
# AS counts. Not a timed test: run it by hand; results go to OUT (default /tmp/bench-deferred)
# and are quoted in BENCHMARKS.md.
#
#   scripts/bench-deferred.sh [OUT]
#   COUNT=10000 STORE_RATE=1000 scripts/bench-deferred.sh
#
# Everything runs on 127.0.0.1 and stops by itself. Ports: as scripts/bench/stack.sh, sipp
# client 5161, UAS 5162, registration 5163.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${1:-/tmp/bench-deferred}
COUNT=${COUNT:-10000}
STORE_RATE=${STORE_RATE:-1000}
rm -rf "$OUT"; mkdir -p "$OUT/runs" "$OUT/data"
OUT=$(cd "$OUT" && pwd)
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/bench.log" >&2; }

trap stop_bench_stack EXIT
trap 'exit 130' INT TERM
# shellcheck source=bench/stack.sh
source "$ROOT/scripts/bench/stack.sh"
for p in 5161 5162 5163; do
  if ss -H -lntu "( sport = :$p )" | grep -q .; then echo "port $p is busy" >&2; exit 1; fi
done
bash scripts/install.sh >/dev/null
log "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(kamailio -v | head -1), node $(node -v)"
# room for every message in the one mailbox, and no expiry or retry during the run
export IM_DEFERRED_QUOTA=$((COUNT + 10)) IM_SWEEP_SECONDS=3600
start_bench_stack "$OUT"
printf 'a1,bench-pw-a\nd1,bench-pw-d\n' > "$OUT/data/users.csv"
node build/as/src/cli/provision.js import "$OUT/data/users.csv" >> "$OUT/bench.log"

SC=$ROOT/scripts/bench/scenarios
COMMON=(-i 127.0.0.1 -t u1 -nostdin -buff_size 4194304 -max_recv_loops 10000 -max_sched_loops 10000 -trace_err -trace_stat -stf stat.csv -fd 1 -recv_timeout 5000)
metric() { curl -s http://127.0.0.1:5292/metrics | awk -v m="$1" '$1 == m { s += $2 } END { print s + 0 }'; }

log "storing $COUNT messages for the offline user d1 at $STORE_RATE/s"
{ echo SEQUENTIAL; for i in $(seq 1 "$COUNT"); do echo "a1;d1"; done; } > "$OUT/data/message.csv"
sed 's/<recv response="200"/<recv response="202"/' "$SC/message.xml" > "$OUT/data/message-202.xml"
mkdir -p "$OUT/runs/store"
( cd "$OUT/runs/store" && sipp 127.0.0.1:5290 -sf "$OUT/data/message-202.xml" -inf "$OUT/data/message.csv" -p 5161 -cp 5171 -mp 5180 \
    -r "$STORE_RATE" -m "$COUNT" -l $((STORE_RATE * 6)) "${COMMON[@]}" > sipp.out 2>&1 ) || true
log "stored: $(node scripts/bench/sipp-stats.mjs "$OUT/runs/store"); AS counts $(metric 'ims_as_im_deferred_total{result="stored"}') stored"

mkdir -p "$OUT/runs/uas"
( cd "$OUT/runs/uas" && exec sipp 127.0.0.1:5290 -sf "$SC/uas.xml" -p 5162 -cp 5172 -mp 5184 -m "$COUNT" "${COMMON[@]}" > sipp.out 2>&1 ) &
BENCH_PIDS+=($!)
sleep 1
printf 'SEQUENTIAL\nd1\n' > "$OUT/data/d.csv"
before=$(metric 'ims_as_im_deferred_delivered_total{kind="message"}')
start=$(date +%s%N)
mkdir -p "$OUT/runs/register"
( cd "$OUT/runs/register" && sipp 127.0.0.1:5290 -sf "$SC/register.xml" -inf "$OUT/data/d.csv" -set ct_port 5162 \
    -p 5163 -cp 5173 -mp 5188 -m 1 "${COMMON[@]}" > sipp.out 2>&1 ) || { log "registration failed"; exit 1; }
last=$before; idle=0
while :; do
  now=$(metric 'ims_as_im_deferred_delivered_total{kind="message"}')
  [ "$((now - before))" -ge "$COUNT" ] && break
  if [ "$now" = "$last" ]; then idle=$((idle + 1)); else idle=0; fi
  [ $idle -ge 100 ] && { log "no progress for 10 s: stopping at $((now - before)) delivered"; break; }
  last=$now; sleep 0.1
done
end=$(date +%s%N)
delivered=$(( $(metric 'ims_as_im_deferred_delivered_total{kind="message"}') - before ))
ms=$(( (end - start) / 1000000 ))
retries=$(metric 'ims_as_im_deferred_retries_total')
log "drained $delivered of $COUNT stored messages in $ms ms ($(( delivered * 1000 / (ms > 0 ? ms : 1) ))/s), retries: $retries"
echo "count=$COUNT delivered=$delivered ms=$ms retries=$retries" > "$OUT/summary.txt"
rss=$(ps -o rss= -p "$BENCH_AS_PID" | tr -d ' ')
log "AS resident memory after the run: $((rss / 1024)) MiB"
