#!/usr/bin/env bash
# Installs the stack as systemd services: the AS (template unit ims-as@N, one per instance)
# and Kamailio with this project's config (ims-kamailio), a system user ims-as, settings in
# /etc/ims-as, state in /var/lib/ims-as, logs in journald. Run scripts/install.sh first (it
# builds). Debian's own kamailio.service is left as it is (never stopped nor disabled).
#
#   scripts/install-services.sh [--prefix DIR] [--dry-run] [--instances N] [--no-enable]
#
#   --prefix DIR   install under DIR instead of / (a staging root, packaging, tests): no user
#                  is created and systemctl is not called
#   --dry-run      print what would be done, change nothing
#   --instances N  AS instances (1-8); instance i listens on ISC_PORT+i-1, XDM_PORT+i-1 and MSRP_PORT+i-1
#   --no-enable    put everything in place but do not enable or start the services
#
# Knobs (environment, only used when a file is created; existing files are kept):
# SIP_DOMAIN (example.com), SIP_PORT (5060), KAMAILIO_RPC_PORT (5071),
# KAMAILIO_EVAPI_PORT (5072), ISC_PORT (7080), XDM_PORT (8080), KAMAILIO_SHM_MB (1024).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)

PREFIX=""; DRY=0; INSTANCES=1; ENABLE=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --instances) INSTANCES=${2:?--instances needs a number}; shift 2 ;;
    --no-enable) ENABLE=0; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-services: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$INSTANCES" =~ ^[1-8]$ ]] || { echo "install-services: --instances must be 1 to 8" >&2; exit 2; }
if [ -n "$PREFIX" ]; then
  if [ "$DRY" = 0 ]; then mkdir -p "$PREFIX" || { echo "install-services: cannot create $PREFIX" >&2; exit 1; }; fi
  PREFIX=$(cd "$PREFIX" 2>/dev/null && pwd || echo "$PREFIX")
fi
[ -f build/as/src/main.js ] || { echo "install-services: build/ is missing: run scripts/install.sh first" >&2; exit 1; }
if [ -z "$PREFIX" ] && [ "$DRY" = 0 ] && [ "$(id -u)" -ne 0 ]; then
  echo "install-services: run as root (or give --prefix DIR / --dry-run)" >&2; exit 1
fi

APP=/opt/ims-as ETC=/etc/ims-as STATE=/var/lib/ims-as UNITS=/etc/systemd/system
. scripts/lib/stack-defaults.sh

say() { echo "[install-services] $*"; }
# run a command, or only print it with --dry-run
act() { if [ "$DRY" = 1 ]; then echo "would: $*"; else "$@"; fi; }
# write stdin to a file (under the prefix) with a mode, unless it exists (operator edits are kept)
put_new() {
  local path=$PREFIX$1 mode=$2 content; content=$(cat)
  if [ -e "$path" ]; then say "kept $1 (exists)"; return; fi
  if [ "$DRY" = 1 ]; then echo "would: write $1 (mode $mode)"; return; fi
  mkdir -p "$(dirname "$path")"
  (umask 077 && printf '%s\n' "$content" > "$path.new")
  chmod "$mode" "$path.new" && mv "$path.new" "$path"
  say "wrote $1"
}
# ownership only on the real machine: the user does not exist in a staging root
own() { if [ -z "$PREFIX" ]; then act chown "$@"; fi; }
fresh() { node -e 'process.stdout.write(require("crypto").randomBytes(16).toString("hex"))'; }

# 1. the system user (the AS runs as it; Kamailio runs as Debian's kamailio user)
if [ -z "$PREFIX" ]; then
  if id ims-as >/dev/null 2>&1; then say "user ims-as exists"
  else act useradd --system --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin --user-group ims-as; fi
else
  say "staging root $PREFIX: user ims-as not created (create it on the target: useradd --system --user-group ims-as)"
fi

# 2. the application: build output, runtime dependencies, Kamailio config, schemas, docs
say "application into $APP"
act mkdir -p "$PREFIX$APP"
for part in build node_modules kamailio-cfg schemas docs package.json; do
  act rm -rf "$PREFIX$APP/$part"
  act cp -a "$SRC/$part" "$PREFIX$APP/$part"
done

# 3. settings in /etc/ims-as: generated once with a fresh secret and admin token
secret=$(fresh); token=$(fresh)
if [ -e "$PREFIX$ETC/as.json" ]; then
  secret=$(node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).isc.secret)' "$PREFIX$ETC/as.json")
fi
put_new "$ETC/as.json" 640 <<JSON
{
  "sip": { "domain": "$SIP_DOMAIN" },
  "isc": { "secret": "$secret" },
  "admin": { "token": "$token" },
  "kamailio": { "httpUrl": "http://127.0.0.1:$RPC_PORT", "evapiAddress": "127.0.0.1:$EVAPI_PORT", "sipUri": "sip:127.0.0.1:$SIP_PORT" },
  "store": { "dataDir": "$STATE/data" },
  "charging": { "cdrDir": "$STATE/cdr" },
  "cluster": { "sharedStore": $([ "$INSTANCES" -gt 1 ] && echo true || echo false) }
}
JSON
for i in $(seq 1 "$INSTANCES"); do
  put_new "$ETC/instance-$i.env" 640 <<ENV
# ims-as@$i: what differs between instances (environment wins over as.json)
ISC_PORT=$((ISC_PORT + i - 1))
XDM_PORT=$((XDM_PORT + i - 1))
MSRP_PORT=$((MSRP_PORT + i - 1))
AS_NODE_ID=$(hostname -s)-$i
ENV
done
put_new "$ETC/kamailio.env" 640 <<ENV
# ims-kamailio: the -A defines of kamailio-cfg/kamailio.cfg and Kamailio's memory (MB);
# EXTRA_DEFINES: more of them, each with its -A (e.g. EXTRA_DEFINES=-A WITH_DEBUG)
SIP_DOMAIN=$SIP_DOMAIN
SIP_PORT=$SIP_PORT
RPC_PORT=$RPC_PORT
EVAPI_ADDR=127.0.0.1:$EVAPI_PORT
SHM_MEMORY=$SHM
PKG_MEMORY=16
EXTRA_DEFINES=
ENV
bash "$SRC/scripts/kamailio-local-cfg.sh" "$secret" "127.0.0.1:$ISC_PORT" "$APP/kamailio-cfg/kamailio.cfg" \
  "written by scripts/install-services.sh: the installation's secret (readable by root and the kamailio group only), then the product config" \
  | put_new "$ETC/kamailio-local.cfg" 640
own root:ims-as "$ETC/as.json" "$ETC"/instance-*.env
if [ -z "$PREFIX" ]; then act chown root:kamailio "$ETC/kamailio-local.cfg" "$ETC/kamailio.env"; fi

# 4. state: the store and the CDR files, for ims-as only
act mkdir -p "$PREFIX$STATE/data" "$PREFIX$STATE/cdr"
act chmod 750 "$PREFIX$STATE" "$PREFIX$STATE/data" "$PREFIX$STATE/cdr"
own -R ims-as:ims-as "$STATE"

# 5. the units
act mkdir -p "$PREFIX$UNITS"
for unit in ims-as@.service ims-kamailio.service; do
  act install -m 644 "$SRC/packaging/systemd/$unit" "$PREFIX$UNITS/$unit"
done

units=(ims-kamailio.service); for i in $(seq 1 "$INSTANCES"); do units+=("ims-as@$i.service"); done
if [ -n "$PREFIX" ] || [ "$ENABLE" = 0 ] || ! [ -d /run/systemd/system ]; then
  say "not enabled (staging root, --no-enable, or no running systemd); on the target:"
  echo "  systemctl daemon-reload && systemctl enable --now ${units[*]}"
else
  act systemctl daemon-reload
  act systemctl enable --now "${units[@]}"
fi
say "admin token: $ETC/as.json (admin.token); ims-ctl --config $ETC/as.json health"
