# Shared shell functions of the stack scripts. Sourced, never executed.
# Conventions: every component <c> has a file stack/components/<c>.sh defining
#   <c>_install   idempotent; downloads nothing when the cache is complete
#   <c>_start     starts the process(es) in the background (pid files under $RUN_DIR)
#   <c>_ready     returns 0 once the component answers on its endpoint
#   <c>_endpoint  prints the endpoint shown by `status`
#   <c>_env       prints KEY=VALUE lines for the env file read by tests and services
#   <c>_pids      prints the pid-file names (under $RUN_DIR/pids) of its processes
# Process logs go to $LOG_DIR/<process>.log.

# HOURGLASS_HOME holds everything the stack installs (lib/, venv/) and runs (run/).
HOURGLASS_HOME=${HOURGLASS_HOME:-$HOME/.cache/hourglass}
LIB_DIR=$HOURGLASS_HOME/lib        # jars, by component and version
VENV_DIR=$HOURGLASS_HOME/venv      # Python virtualenv with pyspark and pytest
RUN_DIR=$HOURGLASS_HOME/run        # data, logs and pid files of the running stack
LOG_DIR=$RUN_DIR/logs
PID_DIR=$RUN_DIR/pids
ENV_FILE=${HOURGLASS_STACK_ENV:-$HOURGLASS_HOME/stack.env}
STACK_READY_TIMEOUT=${STACK_READY_TIMEOUT:-180}   # seconds per component

log() { printf '%s stack: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# mvn_copy <pom-dir> <dest>: resolve a pom's runtime dependencies into <dest>.
# A marker file makes a second call a no-op, so a warm cache downloads nothing.
mvn_copy() {
  local pom=$1 dest=$2
  [ -f "$dest/.complete" ] && return 0
  log "resolving $(basename "$pom") jars from Maven Central into $dest"
  rm -rf "$dest" && mkdir -p "$dest"
  mvn -q -B -Dstyle.color=never -f "$pom/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$dest" "${@:3}" \
    || die "maven could not resolve $(basename "$pom") (see the output above)"
  touch "$dest/.complete"
}

# spawn <name> <cmd...>: start a background process, log to $LOG_DIR/<name>.log,
# record its pid in $PID_DIR/<name>.pid. setsid so a stop can kill the whole group.
spawn() {
  local name=$1; shift
  mkdir -p "$LOG_DIR" "$PID_DIR"
  if pid_alive "$name"; then log "$name already running (pid $(cat "$PID_DIR/$name.pid"))"; return 0; fi
  log "starting $name"
  setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 < /dev/null &
  echo $! > "$PID_DIR/$name.pid"
}

# pid_alive <name>: the recorded process exists and is not a zombie (a killed
# process can linger as a zombie until its parent reaps it).
pid_alive() {
  local f=$PID_DIR/$1.pid pid state
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  state=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "${state:0:1}" != Z ]
}

# stop_pid <name>: SIGTERM the process group, wait, then SIGKILL.
stop_pid() {
  local name=$1 f=$PID_DIR/$1.pid pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop in 30s, killing"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$f"
}

# wait_ready <component> <process...>: poll <component>_ready until it succeeds.
# Fails fast, naming the component and showing its log tail, when a process died
# or the timeout passed.
wait_ready() {
  local c=$1; shift
  local deadline=$(( $(date +%s) + STACK_READY_TIMEOUT )) p
  while ! "${c}_ready" >/dev/null 2>&1; do
    for p in "$@"; do
      pid_alive "$p" || fail_component "$c" "$p" "process exited before $c became ready"
    done
    [ "$(date +%s)" -ge "$deadline" ] && fail_component "$c" "$1" "not ready after ${STACK_READY_TIMEOUT}s"
    sleep 1
  done
  log "$c ready at $("${c}_endpoint")"
}

fail_component() {
  local c=$1 p=$2 why=$3
  log "error: component $c failed to start: $why"
  if [ -f "$LOG_DIR/$p.log" ]; then
    printf -- '--- last 40 lines of %s ---\n' "$LOG_DIR/$p.log" >&2
    tail -n 40 "$LOG_DIR/$p.log" >&2
    printf -- '--- end of %s ---\n' "$LOG_DIR/$p.log" >&2
  fi
  exit 1
}

# http_ok <url>: true when the URL answers 2xx.
http_ok() { curl -fsS -o /dev/null --max-time 3 "$1"; }

# port_open <port>: true when something listens on 127.0.0.1:<port>.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# render <template> <dest>: substitute ${VAR} references from the environment.
render() {
  local tmpl=$1 dest=$2
  mkdir -p "$(dirname "$dest")"
  python3 - "$tmpl" "$dest" <<'PY'
import os, string, sys
src, dst = sys.argv[1], sys.argv[2]
with open(src) as f:
    text = string.Template(f.read()).substitute(os.environ)
with open(dst, "w") as f:
    f.write(text)
PY
}

java_opens() {
  # The --add-opens list Hadoop and Spark need on Java 17.
  local m out=""
  for m in java.base/java.lang java.base/java.lang.invoke java.base/java.lang.reflect java.base/java.io \
           java.base/java.net java.base/java.nio java.base/java.util java.base/java.util.concurrent \
           java.base/java.util.concurrent.atomic java.base/java.util.zip java.base/java.math java.base/java.text \
           java.base/sun.nio.ch java.base/sun.nio.cs java.base/sun.security.action java.base/sun.util.calendar \
           java.base/sun.security.util java.base/sun.security.x509; do
    out="$out --add-opens=$m=ALL-UNNAMED"
  done
  printf '%s' "$out"
}
