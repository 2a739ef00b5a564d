#!/usr/bin/env bash
# Installs what the stack and its tests need on Debian bookworm, then builds the AS.
# Idempotent: packages already present are not reinstalled; npm uses the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages (a Kamailio the operator already runs is left alone)
bash scripts/install-debian-packages.sh

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
