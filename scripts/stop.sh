#!/usr/bin/env bash
# Stops what scripts/start.sh started (Kamailio, then every AS instance), by PID file.
cd "$(dirname "$0")/.."
RUN=${RUN_DIR:-run}
for pidf in "$RUN"/kamailio.pid "$RUN"/as*.pid; do
  [ -f "$pidf" ] || continue
  name=$(basename "$pidf" .pid)
  pid=$(cat "$pidf")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "stopped $name (pid $pid)"
  fi
  rm -f "$pidf"
done
# Kamailio processes whose main process is gone (a start that failed half way, e.g. on a
# port already taken, can leave children behind): found by the config file of this run
if [ -d "$RUN" ]; then
  local_cfg="$(cd "$RUN" && pwd)/kamailio/kamailio-local.cfg"
  if pkill -TERM -f -- "kamailio -f $local_cfg" 2>/dev/null; then
    sleep 0.5
    pkill -KILL -f -- "kamailio -f $local_cfg" 2>/dev/null || true
    echo "stopped kamailio processes left by an earlier start"
  fi
fi
