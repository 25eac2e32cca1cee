#!/usr/bin/env bash
# make demo-down: stop what `make demo` started (traffic, edge, Spark jobs,
# hourglass all) and the local stack. Data stays until `make stack-clean`.
set -uo pipefail
cd "$(dirname "$0")/.."
HOURGLASS_HOME=${HOURGLASS_HOME:-$HOME/.cache/hourglass}
DEMO=$HOURGLASS_HOME/run/demo
stop_pidfile() {
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    echo "stopping $2 (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}
stop_pidfile "$DEMO/edge/haproxy.pid" haproxy
if [ -f "$DEMO/edge/nginx.pid" ]; then
  echo "stopping nginx"; nginx -p "$DEMO/edge" -c "$DEMO/edge/nginx.conf" -s quit 2>/dev/null || true
fi
if [ -x bin/hourglass ] && [ -d "$DEMO/jobs" ]; then
  bin/hourglass jobs --driver demo --state-dir "$DEMO/jobs" stop 2>&1 | sed 's/^/    /'
fi
stop_pidfile "$DEMO/all.pid" "hourglass all"
rm -f "$HOURGLASS_HOME/run/prometheus/targets/demo.json"  # Prometheus's file_sd targets of the demo
stack/stack.sh down
