# Sourced by the benchmark scripts: starts Kamailio + the AS in benchmark mode on
# 127.0.0.1 and stops them on exit. Benchmark mode = the core trusts the generator's
# source ports (WITH_TRUSTED_PEER: no digest round trips), any user of example.com is a
# presentity (PRESENCE_OPEN_DOMAIN) and watchers are allowed when no rule says otherwise
# (PRESENCE_DEFAULT_SUB_HANDLING=allow) — what the native peer does too, so the numbers
# compare. Ports: core 5290 (udp+tcp), RPC 5291, AS 5292, event stream 5293, XCAP 5294.
#
#   start_bench_stack OUTDIR      (needs ROOT set to the repository)
# Flood limits are off in benchmark mode: Kamailio's (-A WITHOUT_ANTIFLOOD; the generators run
# on AS_IP, which is exempt anyway, but a run with another AS_IP must measure the same) and
# the AS's per-user limits (a generator sends as few users at thousands per second).
# Environment: KAMAILIO_SHM_MB (2048), AS_NODE_ARGS (e.g. --cpu-prof), AS_INSTANCES (1: more
# AS processes on the same store, instance i on ISC port 5295+i-2 and XCAP 5299+i-2, all
# with their event streams up, Kamailio spreading requests over them).

BENCH_PIDS=()
stop_bench_stack() {
  for p in "${BENCH_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  # a graceful stop (the AS drains charging, writes a --cpu-prof profile) gets 5 s
  for _ in $(seq 1 50); do
    alive=0
    for p in "${BENCH_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${BENCH_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  BENCH_PIDS=()
}

start_bench_stack() {
  local out=$1
  for p in 5290 5291 5292 5293 5294; do
    if ss -H -lntu "( sport = :$p )" | grep -q .; then echo "port $p is busy" >&2; return 1; fi
  done
  mkdir -p "$out/data"
  BENCH_SECRET=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  export SIP_DOMAIN=example.com ISC_PORT=5292 ISC_SECRET=$BENCH_SECRET AS_ADMIN_TOKEN=$BENCH_SECRET \
    KAMAILIO_HTTP_URL=http://127.0.0.1:5291 KAMAILIO_SIP_URI=sip:127.0.0.1:5290 KAMAILIO_EVAPI_ADDR=127.0.0.1:5293 \
    XDM_PORT=5294 AS_DATA_DIR=$out/data/store CDR_DIR=$out/data/cdr LOG_LEVEL=warn AS_NODE_ID=bench AS_CONFIG= \
    PRESENCE_OPEN_DOMAIN=true PRESENCE_DEFAULT_SUB_HANDLING=allow \
    IM_MESSAGES_PER_MINUTE=0 IM_GROUP_MESSAGES_PER_MINUTE=0 PRESENCE_SUBSCRIBES_PER_MINUTE=0
  local instances=${AS_INSTANCES:-1}
  [ "$instances" -gt 1 ] && export AS_SHARED_STORE=true
  # shellcheck disable=SC2086
  node ${AS_NODE_ARGS:-} "$ROOT/build/as/src/main.js" > "$out/as.log" 2>&1 &
  BENCH_PIDS+=($!)
  BENCH_AS_PID=$!
  BENCH_AS_PIDS=($!)
  BENCH_AS_PORTS=(5292)
  for _ in $(seq 1 50); do curl -s -o /dev/null http://127.0.0.1:5292/metrics && break; sleep 0.2; done
  local i
  for i in $(seq 2 "$instances"); do
    # shellcheck disable=SC2086
    ISC_PORT=$((5295 + i - 2)) XDM_PORT=$((5299 + i - 2)) AS_NODE_ID=bench-$i node ${AS_NODE_ARGS:-} "$ROOT/build/as/src/main.js" > "$out/as-$i.log" 2>&1 &
    BENCH_PIDS+=($!)
    BENCH_AS_PIDS+=($!)
    BENCH_AS_PORTS+=($((5295 + i - 2)))
    for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$((5295 + i - 2))/metrics" && break; sleep 0.2; done
  done
  kamailio -f "$ROOT/kamailio-cfg/kamailio.cfg" -DD -E -m "${KAMAILIO_SHM_MB:-2048}" -M 32 -Y "$out/data" -P "$out/data/k.pid" \
    -A SIP_PORT=5290 -A RPC_PORT=5291 -A 'EVAPI_ADDR="127.0.0.1:5293"' -A "ISC_SECRET=\"$BENCH_SECRET\"" -A DBG=1 -A WITH_TRUSTED_PEER -A WITHOUT_ANTIFLOOD \
    -A "AS_HTTPCON=\"as=>http://kamailio:$BENCH_SECRET@127.0.0.1:5292;timeout=2\"" > "$out/kamailio.log" 2>&1 &
  BENCH_PIDS+=($!)
  for _ in $(seq 1 50); do
    curl -s -o /dev/null -H "x-isc-secret: $BENCH_SECRET" -d '{"jsonrpc":"2.0","method":"core.version","id":1}' http://127.0.0.1:5291/RPC && break
    sleep 0.2
  done
  # each AS's event stream connects within its first retry
  local port
  for port in "${BENCH_AS_PORTS[@]}"; do
    for _ in $(seq 1 50); do curl -s "http://127.0.0.1:$port/metrics" | grep -q '^ims_as_isc_event_stream_up 1' && break; sleep 0.2; done
  done
}
