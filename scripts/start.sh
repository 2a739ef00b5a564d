#!/usr/bin/env bash
# Starts the whole stack on this machine: Kamailio on 127.0.0.1:5060 (UDP+TCP) and the AS
# on the embedded store (or MongoDB when MONGODB_URI is set). Runs in the background;
# stop it with scripts/stop.sh. State, logs and CDRs go to ./run/.
#
# Knobs (environment): SIP_DOMAIN (example.com), SIP_PORT (5060), KAMAILIO_RPC_PORT (5071),
# KAMAILIO_EVAPI_PORT (5072), XDM_PORT (8080),
# ISC_PORT (7080), KAMAILIO_SHM_MB (1024), KAMAILIO_DEFINES (extra -A defines, e.g. WITH_DEBUG).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

bash scripts/install.sh

RUN=$ROOT/run
mkdir -p "$RUN/logs" "$RUN/kamailio" "$RUN/data" "$RUN/cdr"
SIP_DOMAIN=${SIP_DOMAIN:-example.com}
SIP_PORT=${SIP_PORT:-5060}
RPC_PORT=${KAMAILIO_RPC_PORT:-5071}
EVAPI_PORT=${KAMAILIO_EVAPI_PORT:-5072}
ISC_PORT=${ISC_PORT:-7080}
XDM_PORT=${XDM_PORT:-8080}
SHM=${KAMAILIO_SHM_MB:-1024}

for pidf in "$RUN/as.pid" "$RUN/kamailio.pid"; do
  if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
    echo "already running (pid $(cat "$pidf") in $pidf); stop it first with scripts/stop.sh" >&2
    exit 1
  fi
done

# One secret and admin token per installation, kept in run/as.json (mode 600).
if [ ! -f "$RUN/as.json" ]; then
  secret=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)
  token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)
  umask 077
  cat > "$RUN/as.json" <<JSON
{
  "sip": { "domain": "$SIP_DOMAIN" },
  "isc": { "port": $ISC_PORT, "secret": "$secret" },
  "xdm": { "port": $XDM_PORT },
  "kamailio": { "httpUrl": "http://127.0.0.1:$RPC_PORT", "evapiAddress": "127.0.0.1:$EVAPI_PORT", "sipUri": "sip:127.0.0.1:$SIP_PORT" },
  "store": { "dataDir": "$RUN/data" },
  "charging": { "cdrDir": "$RUN/cdr" },
  "admin": { "token": "$token" }
}
JSON
  umask 022
  echo "[start] wrote $RUN/as.json (secret and admin token for this installation)"
fi
secret=$(node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).isc.secret)' "$RUN/as.json")

echo "[start] application server"
AS_CONFIG=$RUN/as.json nohup node build/as/src/main.js >> "$RUN/logs/as.log" 2>&1 &
echo $! > "$RUN/as.pid"
for _ in $(seq 1 50); do
  curl -s -o /dev/null "http://127.0.0.1:$ISC_PORT/metrics" 2>/dev/null && break
  if ! kill -0 "$(cat "$RUN/as.pid")" 2>/dev/null; then
    echo "the AS did not start; last log lines:" >&2; tail -n 20 "$RUN/logs/as.log" >&2; exit 1
  fi
  sleep 0.2
done

echo "[start] kamailio"
defines=(-A "SIP_DOMAIN=\"$SIP_DOMAIN\"" -A "SIP_PORT=$SIP_PORT" -A "RPC_PORT=$RPC_PORT" -A "EVAPI_ADDR=\"127.0.0.1:$EVAPI_PORT\""
         -A "ISC_SECRET=\"$secret\"" -A "AS_HTTPCON=\"as=>http://kamailio:$secret@127.0.0.1:$ISC_PORT;timeout=2\"")
for d in ${KAMAILIO_DEFINES:-}; do defines+=(-A "$d"); done
kamailio -f "$ROOT/kamailio-cfg/kamailio.cfg" -m "$SHM" -M 16 -Y "$RUN/kamailio" -P "$RUN/kamailio.pid" \
  "${defines[@]}" >> "$RUN/logs/kamailio.log" 2>&1
for _ in $(seq 1 50); do
  [ -s "$RUN/kamailio.pid" ] && kill -0 "$(cat "$RUN/kamailio.pid")" 2>/dev/null && break
  sleep 0.1
done
kill -0 "$(cat "$RUN/kamailio.pid" 2>/dev/null)" 2>/dev/null || { echo "kamailio did not start:" >&2; tail -n 20 "$RUN/logs/kamailio.log" >&2; exit 1; }

sleep 0.5
health=$(curl -s "http://127.0.0.1:$ISC_PORT/health" || true)
cat <<MSG

IMS stack running (domain $SIP_DOMAIN):
  SIP (Kamailio)       udp+tcp 127.0.0.1:$SIP_PORT
  Kamailio RPC/uac     http://127.0.0.1:$RPC_PORT/RPC   (AS only)
  Kamailio events      tcp 127.0.0.1:$EVAPI_PORT (evapi, AS only)
  AS ISC + ops         http://127.0.0.1:$ISC_PORT  (/health, /metrics)
  XCAP root (XDMS)     http://127.0.0.1:$XDM_PORT/xcap-root  (HTTP digest, SIP credentials)
  health               $health
  logs                 $RUN/logs/{as,kamailio}.log   CDRs: $RUN/cdr/
  add a user           node build/as/src/cli/provision.js add alice --password secret
  stop                 scripts/stop.sh
MSG
