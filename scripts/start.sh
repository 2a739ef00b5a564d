#!/usr/bin/env bash
# Starts the whole stack on this machine: Kamailio on 127.0.0.1:5060 (UDP+TCP) and 5061 (TLS) and the AS
# (one process, or AS_INSTANCES of them on one store) on the embedded store, or MongoDB when
# MONGODB_URI is set. Runs in the background; stop it with scripts/stop.sh. State, logs and
# CDRs go to ./run/.
#
# Knobs (environment), applied at every start: SIP_DOMAIN (example.com), SIP_PORT (5060),
# KAMAILIO_RPC_PORT (5071), KAMAILIO_EVAPI_PORT (5072), ISC_PORT (7080), XDM_PORT (8080),
# MSRP_PORT (2855), AS_INSTANCES (1; instance i listens on ISC_PORT+i-1, XDM_PORT+i-1 and
# MSRP_PORT+i-1), RUN_DIR (./run),
# KAMAILIO_SHM_MB (1024), KAMAILIO_DEFINES (extra -A defines, e.g. WITH_DEBUG).
# TLS (README.md, "TLS"): TLS (1: SIP over TLS on SIP_TLS_PORT (5061) and XCAP over HTTPS on
# XDM_PORT; 0: plain SIP and HTTP only), TLS_CERT, TLS_KEY, TLS_CA (PEM files of your own
# certificate with its chain, its key and the CA bundle; unset: a local CA and a certificate
# for SIP_DOMAIN are made once in RUN_DIR/tls/ by scripts/tls-setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

# (SKIP_INSTALL=1: already installed and built, e.g. from the test suite, which runs from build/)
[ "${SKIP_INSTALL:-0}" = 1 ] || bash scripts/install.sh

RUN=${RUN_DIR:-$ROOT/run}
# Everything the stack writes (the store with its HA1s, CDRs, logs, the secrets) is for
# the user running it only; billing systems read CDRs as that user or by a group you grant.
umask 077
mkdir -p "$RUN/logs" "$RUN/kamailio" "$RUN/data" "$RUN/cdr"
chmod 700 "$RUN" "$RUN/logs" "$RUN/kamailio" "$RUN/data" "$RUN/cdr"
. scripts/lib/stack-defaults.sh
AS_INSTANCES=${AS_INSTANCES:-1}
TLS=${TLS:-1}
SIP_TLS_PORT=${SIP_TLS_PORT:-5061}
[[ "$TLS" =~ ^[01]$ ]] || { echo "TLS must be 1 (SIP over TLS and XCAP over HTTPS) or 0 (plain only)" >&2; exit 2; }
[[ "$AS_INSTANCES" =~ ^[1-8]$ ]] || { echo "AS_INSTANCES must be 1 to 8 (Kamailio's evapi takes 32 connections, 4 per instance)" >&2; exit 2; }

for pidf in "$RUN"/as*.pid "$RUN/kamailio.pid"; do
  [ -f "$pidf" ] || continue
  if kill -0 "$(cat "$pidf")" 2>/dev/null; then
    echo "already running (pid $(cat "$pidf") in $pidf); stop it first with scripts/stop.sh" >&2
    exit 1
  fi
  rm -f "$pidf"
done

# TLS: the operator's certificate, or the local CA's (made on the first start, kept after)
tls_cert=""; tls_key=""; tls_ca=""
if [ "$TLS" = 1 ]; then
  if [ -n "${TLS_CERT:-}${TLS_KEY:-}" ]; then
    [ -n "${TLS_CERT:-}" ] && [ -n "${TLS_KEY:-}" ] || { echo "TLS_CERT and TLS_KEY go together (or neither: a local CA is used)" >&2; exit 2; }
    for f in "$TLS_CERT" "$TLS_KEY" ${TLS_CA:+"$TLS_CA"}; do
      [ -r "$f" ] || { echo "cannot read $f (TLS_CERT, TLS_KEY, TLS_CA)" >&2; exit 2; }
    done
    tls_cert=$(realpath "$TLS_CERT"); tls_key=$(realpath "$TLS_KEY")
    # without a CA bundle of its own the chain in the certificate file is all there is
    tls_ca=$(realpath "${TLS_CA:-$TLS_CERT}")
  else
    bash "$ROOT/scripts/tls-setup.sh" "$RUN/tls" "$SIP_DOMAIN"
    tls_cert=$RUN/tls/server.pem; tls_key=$RUN/tls/server.key; tls_ca=$RUN/tls/ca.pem
  fi
fi

# run/as.json: the installation's secret and admin token (generated once, mode 600) and the
# settings of this start, rewritten every time so that they always take effect (the
# provisioning CLI reads the admin port from it). Anything else you add to it is kept.
secret=$(umask 077 && RUN="$RUN" SIP_DOMAIN="$SIP_DOMAIN" ISC_PORT="$ISC_PORT" XDM_PORT="$XDM_PORT" \
  RPC_PORT="$RPC_PORT" EVAPI_PORT="$EVAPI_PORT" SIP_PORT="$SIP_PORT" TLS_CERT_FILE="$tls_cert" TLS_KEY_FILE="$tls_key" node -e '
  const fs = require("fs"), crypto = require("crypto"), e = process.env, file = e.RUN + "/as.json";
  const cfg = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : {};
  const fresh = () => crypto.randomBytes(24).toString("base64").replace(/[/+=]/g, "").slice(0, 32);
  const merge = (k, v) => { cfg[k] = { ...(cfg[k] || {}), ...v }; };
  if (!cfg.isc || !cfg.isc.secret) { merge("isc", { secret: fresh() }); console.error("[start] new ISC secret and admin token in " + file); }
  if (!cfg.admin || !cfg.admin.token) merge("admin", { token: fresh() });
  merge("sip", { domain: e.SIP_DOMAIN });
  merge("isc", { port: Number(e.ISC_PORT) });
  merge("xdm", { port: Number(e.XDM_PORT), tlsCert: e.TLS_CERT_FILE, tlsKey: e.TLS_KEY_FILE });
  merge("kamailio", { httpUrl: "http://127.0.0.1:" + e.RPC_PORT, evapiAddress: "127.0.0.1:" + e.EVAPI_PORT, sipUri: "sip:127.0.0.1:" + e.SIP_PORT });
  if (!cfg.store || !cfg.store.dataDir) merge("store", { dataDir: e.RUN + "/data" });
  if (!cfg.charging || !cfg.charging.cdrDir) merge("charging", { cdrDir: e.RUN + "/cdr" });
  fs.writeFileSync(file + ".new", JSON.stringify(cfg, null, 2) + "\n", { mode: 0o600 });
  fs.renameSync(file + ".new", file);
  process.stdout.write(cfg.isc.secret);
')
export AS_CONFIG=$RUN/as.json

# several instances share the store's change feed and leases (docs/isc.md section 6)
if [ "$AS_INSTANCES" -gt 1 ]; then export AS_SHARED_STORE=true; fi

stop_started() { bash "$ROOT/scripts/stop.sh" >/dev/null 2>&1 || true; }

for i in $(seq 1 "$AS_INSTANCES"); do
  port=$((ISC_PORT + i - 1)); xport=$((XDM_PORT + i - 1)); mport=$((MSRP_PORT + i - 1))
  log="$RUN/logs/as.log"; [ "$i" -gt 1 ] && log="$RUN/logs/as-$i.log"
  echo "[start] application server $i of $AS_INSTANCES (port $port, XCAP $xport, MSRP $mport)"
  node_id=${AS_NODE_ID:-}; [ "$AS_INSTANCES" -gt 1 ] && node_id=${AS_NODE_ID:-$(hostname -s)}-$i
  ISC_PORT=$port XDM_PORT=$xport MSRP_PORT=$mport AS_NODE_ID=$node_id nohup node build/as/src/main.js >> "$log" 2>&1 &
  echo $! > "$RUN/as-$i.pid"
  for _ in $(seq 1 75); do
    curl -s -o /dev/null "http://127.0.0.1:$port/metrics" 2>/dev/null && break
    if ! kill -0 "$(cat "$RUN/as-$i.pid")" 2>/dev/null; then
      echo "AS instance $i did not start; last log lines of $log:" >&2; tail -n 20 "$log" >&2; stop_started; exit 1
    fi
    sleep 0.2
  done
  curl -s -o /dev/null "http://127.0.0.1:$port/metrics" || { echo "AS instance $i does not answer on port $port (see $log)" >&2; stop_started; exit 1; }
done

echo "[start] kamailio"
# The secret is defined in a file only this user reads, which includes the product config,
# so it never shows on Kamailio's command line (ps) (kamailio-cfg/README.md: "Secrets")
KAMAILIO_LOCAL=$RUN/kamailio/kamailio-local.cfg
bash "$ROOT/scripts/kamailio-local-cfg.sh" "$secret" "127.0.0.1:$ISC_PORT" "$ROOT/kamailio-cfg/kamailio.cfg" \
  "written by scripts/start.sh at every start: the installation's secret, then the product config" > "$KAMAILIO_LOCAL.new"
chmod 600 "$KAMAILIO_LOCAL.new" && mv "$KAMAILIO_LOCAL.new" "$KAMAILIO_LOCAL"
defines=(-A "SIP_DOMAIN=\"$SIP_DOMAIN\"" -A "SIP_PORT=$SIP_PORT" -A "RPC_PORT=$RPC_PORT" -A "EVAPI_ADDR=\"127.0.0.1:$EVAPI_PORT\"")
if [ "$TLS" = 1 ]; then
  defines+=(-A WITH_TLS -A "TLS_PORT=$SIP_TLS_PORT" -A "TLS_CERT=\"$tls_cert\"" -A "TLS_KEY=\"$tls_key\"" -A "TLS_CA=\"$tls_ca\"")
fi
for d in ${KAMAILIO_DEFINES:-}; do defines+=(-A "$d"); done
kamailio -f "$KAMAILIO_LOCAL" -m "$SHM" -M 16 -Y "$RUN/kamailio" -P "$RUN/kamailio.pid" \
  "${defines[@]}" >> "$RUN/logs/kamailio.log" 2>&1 || { echo "kamailio did not start:" >&2; tail -n 20 "$RUN/logs/kamailio.log" >&2; stop_started; exit 1; }
for _ in $(seq 1 50); do
  [ -s "$RUN/kamailio.pid" ] && kill -0 "$(cat "$RUN/kamailio.pid")" 2>/dev/null && break
  sleep 0.1
done
kill -0 "$(cat "$RUN/kamailio.pid" 2>/dev/null)" 2>/dev/null || { echo "kamailio did not start:" >&2; tail -n 20 "$RUN/logs/kamailio.log" >&2; stop_started; exit 1; }

# Healthy means every instance answers /health with 200 (store and Kamailio reachable)
# and has its event stream up; a stack that is not is reported and stopped, not praised.
healthy=0; health=""
for _ in $(seq 1 50); do
  healthy=1; health=""
  for i in $(seq 1 "$AS_INSTANCES"); do
    port=$((ISC_PORT + i - 1))
    h=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$port/health" || echo ' 000')
    up=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^ims_as_isc_event_stream_up /{print $2}')
    health+="
    instance $i: ${h% *} (http ${h##* }, event stream ${up:-?})"
    [ "${h##* }" = 200 ] && [ "${up:-0}" = 1 ] || healthy=0
  done
  [ "$healthy" = 1 ] && break
  sleep 0.2
done
if [ "$healthy" != 1 ]; then
  echo "the stack is not healthy:$health" >&2
  echo "logs: $RUN/logs/ ; stopping it" >&2
  stop_started
  exit 1
fi

xcap_scheme=http; sip_tls=""
if [ "$TLS" = 1 ]; then
  xcap_scheme=https
  sip_tls="
  SIP over TLS         tls 127.0.0.1:$SIP_TLS_PORT  (sip:...;transport=tls or sips:)
  TLS certificate      $tls_cert
  CA for clients       $tls_ca  (clients trust this to accept the certificate)"
fi

cat <<MSG

IMS stack running (domain $SIP_DOMAIN, $AS_INSTANCES AS instance(s)):
  SIP (Kamailio)       udp+tcp 127.0.0.1:$SIP_PORT$sip_tls
  Kamailio RPC/uac     http://127.0.0.1:$RPC_PORT/RPC   (AS only)
  Kamailio events      tcp 127.0.0.1:$EVAPI_PORT (evapi, AS only)
  AS ISC + ops         http://127.0.0.1:$ISC_PORT  (/health, /metrics; instance i on $ISC_PORT+i-1)
  XCAP root (XDMS)     $xcap_scheme://127.0.0.1:$XDM_PORT/xcap-root  (HTTP digest, SIP credentials; instance i on $XDM_PORT+i-1)
  health$health
  logs                 $RUN/logs/{as,kamailio}.log   CDRs: $RUN/cdr/
  add a user           node build/as/src/cli/provision.js add alice --password secret
  stop                 scripts/stop.sh
MSG
