#!/usr/bin/env bash
# MESSAGE/s from one operator to the other on this machine, the cores on mutual TLS and then
# on TCP in the same run (scripts/bench-interdomain.mjs does the work; docs/interdomain.md).
# Not a timed test: run it by hand, as root, on a quiet machine.
#
#   scripts/bench-interdomain.sh [OUT]
#   RATES="100 200 400" DURATION=10 E2E_PORT_OFFSET=0 scripts/bench-interdomain.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/test/e2e/interdomain-stack.js ] || npx tsc -p tsconfig.json
exec node scripts/bench-interdomain.mjs "$@"
