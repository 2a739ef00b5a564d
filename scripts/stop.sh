#!/usr/bin/env bash
# Stops what scripts/start.sh started (Kamailio, then the AS), by PID file.
cd "$(dirname "$0")/.."
for name in kamailio as; do
  pidf=run/$name.pid
  [ -f "$pidf" ] || continue
  pid=$(cat "$pidf")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "stopped $name (pid $pid)"
  fi
  rm -f "$pidf"
done
