#!/usr/bin/env bash
# Runs every test suite: unit, store contract (MongoDB too when MONGODB_URI is set),
# integration (the AS in-process over real HTTP, no Kamailio) and end-to-end (real
# Kamailio + AS + sipp on 127.0.0.1). Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
command -v curl >/dev/null || { apt-get install -y -qq curl >/dev/null; }

# the linter (type-aware: no floating promise, no unused code) before any test
echo "[test] prettier and eslint"
npx prettier --check "as/**/*.ts" "test/**/*.ts" eslint.config.js
npx eslint --max-warnings 0 .

suites=(build/test/unit build/test/contract build/test/integration build/test/e2e)
files=()
for s in "${suites[@]}"; do
  [ -d "$s" ] && while IFS= read -r f; do files+=("$f"); done < <(find "$s" -name '*.test.js' | sort)
done
echo "[test] ${#files[@]} test files"
# e2e files start their own Kamailio and AS on distinct ports; run files one at a time so
# their timing is not skewed by each other on a 2-core machine
node --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
