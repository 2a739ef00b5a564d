#!/usr/bin/env bash
# Installs what the stack and its tests need on Debian bookworm, then builds the AS.
# Idempotent: packages already present are not reinstalled; npm uses the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(kamailio kamailio-json-modules kamailio-extra-modules kamailio-utils-modules kamailio-tls-modules
              kamailio-presence-modules kamailio-xml-modules sip-tester
              baresip-core linphone-cli libxml2-utils
              openssl python3 make g++)   # node-gyp builds better-sqlite3 where no prebuilt binary downloads

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[install] Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # the package enables a system Kamailio on 5060; ours is started by scripts/start.sh
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet kamailio 2>/dev/null; then
    $SUDO systemctl stop kamailio || true
    $SUDO systemctl disable kamailio >/dev/null 2>&1 || true
  fi
else
  echo "[install] Debian packages present"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[install] npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
else
  echo "[install] npm dependencies present"
fi

echo "[install] building (tsc)"
# a clean build: a test or module removed from the sources must not linger in build/
rm -rf build
npx --no-install tsc -p tsconfig.json
