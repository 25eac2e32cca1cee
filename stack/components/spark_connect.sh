# The Spark Connect pool (optional service: `stack/stack.sh up spark_connect`; the
# default `up` does not start it): $SPARK_CONNECT_SERVERS Spark Connect servers, each a
# local[*] driver JVM with its own heap, gRPC port, run dir, log and pid file
# (spark-connect-1, spark-connect-2, ...), and HAProxy in front of them
# (spark-connect-lb, config haproxy/spark-connect.cfg): sticky by the
# x-hourglass-session header, admin socket for `hourglass pool`, Prometheus metrics.
#
#   server i      127.0.0.1:$SPARK_CONNECT_PORT + (i-1)*$SPARK_CONNECT_PORT_STEP
#                 (15002, 15012, ...)
#   its driver    http://127.0.0.1:<server port + 1>/metrics/prometheus/ (15003, 15013, ...):
#                 the Spark UI, kept small, serving the driver's metrics (JVM, DAG
#                 scheduler, block manager) for Prometheus (job spark-connect-driver)
#   pool          127.0.0.1:$SPARK_CONNECT_POOL_PORT (15000), h2c
#   pool stats    http://127.0.0.1:$SPARK_CONNECT_POOL_STATS_PORT/metrics and /stats
#   admin socket  $RUN_DIR/spark-connect-lb/admin.sock
#
# pyspark 4.0.x ships the server jar (pyspark/jars/spark-connect_2.13-*.jar), so it
# runs from the venv's spark-submit; SparkSubmit knows the main class needs no
# application jar. spark-submit adds the --add-opens Java 17 needs by itself.
# Clients: through the pool with the session header (internal/sparkconnect, or
# SparkSession.builder.remote("sc://127.0.0.1:15000/;x-hourglass-session=<id>")),
# or one server directly (HOURGLASS_SPARK_CONNECT = server 1, for existing users).
#
# The component has no install of its own: it uses what python_install (venv),
# spark_install (Kafka connector jars) and debian_install (haproxy) installed.

SPARK_CONNECT_LB_DIR=$RUN_DIR/spark-connect-lb
SPARK_CONNECT_ADMIN_SOCKET=$SPARK_CONNECT_LB_DIR/admin.sock

spark_connect_install() { :; }

# spark_connect_port <i>: gRPC port of server i (1-based).
spark_connect_port() { echo $(( SPARK_CONNECT_PORT + ($1 - 1) * SPARK_CONNECT_PORT_STEP )); }

# spark_connect_ui_port <i>: Spark UI (and driver metrics) port of server i.
spark_connect_ui_port() { echo $(( $(spark_connect_port "$1") + 1 )); }

spark_connect_check_size() {
  case $SPARK_CONNECT_SERVERS in
    ''|*[!0-9]*) die "SPARK_CONNECT_SERVERS must be a number from 1 to 8 (got '$SPARK_CONNECT_SERVERS')" ;;
  esac
  [ "$SPARK_CONNECT_SERVERS" -ge 1 ] && [ "$SPARK_CONNECT_SERVERS" -le 8 ] \
    || die "SPARK_CONNECT_SERVERS must be from 1 to 8 (got $SPARK_CONNECT_SERVERS)"
}

spark_connect_start() {
  local i
  spark_connect_check_size
  for i in $(seq 1 "$SPARK_CONNECT_SERVERS"); do spark_connect_server_start "$i"; done
  spark_connect_lb_start
}

# spark_connect_server_start <i>: start server i unless it runs already. Also used by
# the pool's integration tests to bring a SIGKILLed server back.
spark_connect_server_start() {
  local i=$1 name="spark-connect-$1" dir="$RUN_DIR/spark-connect-$1" port home jars
  pid_alive "$name" && return 0
  port=$(spark_connect_port "$i")
  [ -x "$VENV_DIR/bin/python" ] || die "spark_connect needs the Python venv: run \`stack/stack.sh install python spark\`"
  home=$(spark_home) || die "pyspark is not installed in $VENV_DIR"
  [ -f "$SPARK_KAFKA_LIB/.complete" ] || spark_install
  jars=$(spark_kafka_jars)
  mkdir -p "$dir/local" "$dir/ivy" "$dir/tmp" "$LOG_DIR"
  # Keep one previous log: spark_connect_ready greps this start's log only.
  [ -f "$LOG_DIR/$name.log" ] && mv -f "$LOG_DIR/$name.log" "$LOG_DIR/$name.log.1"
  # Scratch dirs via SPARK_LOCAL_DIRS (the spark.local.dir conf works too but logs a
  # warning at every start). Each server runs from its own dir so what it writes to
  # the working directory (derby.log, metastore_db, spark-warehouse) is its own: two
  # drivers cannot share one embedded Derby metastore.
  # Session timeout: set explicitly (Spark's default is 60m) because HAProxy's
  # stick-table expiry (35m in haproxy/spark-connect.cfg) must outlive it.
  ( cd "$dir" && SPARK_HOME=$home SPARK_LOCAL_IP=127.0.0.1 SPARK_LOCAL_DIRS="$dir/local" \
    spawn "$name" "$home/bin/spark-submit" \
      --class org.apache.spark.sql.connect.service.SparkConnectServer \
      --name "$name" \
      --master "local[$SPARK_CONNECT_CORES]" \
      --driver-memory "$SPARK_CONNECT_HEAP" \
      --driver-java-options "-Djava.io.tmpdir=$dir/tmp -Dderby.system.home=$dir" \
      --jars "$jars" \
      --conf spark.connect.grpc.binding.address=127.0.0.1 \
      --conf spark.connect.grpc.binding.port="$port" \
      --conf spark.connect.grpc.port.maxRetries=0 \
      --conf spark.connect.session.manager.defaultSessionTimeout="$SPARK_CONNECT_SESSION_TIMEOUT" \
      --conf spark.driver.host=127.0.0.1 \
      --conf spark.driver.bindAddress=127.0.0.1 \
      --conf spark.ui.port="$(spark_connect_ui_port "$i")" \
      --conf spark.port.maxRetries=0 \
      --conf spark.ui.retainedJobs=50 \
      --conf spark.ui.retainedStages=50 \
      --conf spark.sql.ui.retainedExecutions=50 \
      --conf spark.ui.showConsoleProgress=false \
      --conf spark.metrics.namespace=spark_connect \
      --conf "spark.metrics.conf.*.sink.prometheusServlet.class=org.apache.spark.metrics.sink.PrometheusServlet" \
      --conf "spark.metrics.conf.*.sink.prometheusServlet.path=/metrics/prometheus" \
      --conf spark.metrics.conf.driver.source.jvm.class=org.apache.spark.metrics.source.JvmSource \
      --conf spark.sql.shuffle.partitions=2 \
      --conf spark.sql.warehouse.dir="$dir/warehouse" \
      --conf spark.jars.ivy="$dir/ivy" )
}

# spark_connect_lb_env: the environment haproxy/spark-connect.cfg expands.
spark_connect_lb_env() {
  local i
  echo "SC_POOL_BIND=127.0.0.1:$SPARK_CONNECT_POOL_PORT"
  echo "SC_POOL_STATS_BIND=127.0.0.1:$SPARK_CONNECT_POOL_STATS_PORT"
  echo "SC_POOL_ADMIN_SOCKET=$SPARK_CONNECT_ADMIN_SOCKET"
  for i in $(seq 1 "$SPARK_CONNECT_SERVERS"); do echo "SC_SERVER_$i=127.0.0.1:$(spark_connect_port "$i")"; done
}

spark_connect_lb_start() {
  local cfg=$SPARK_CONNECT_LB_DIR/haproxy.cfg i
  pid_alive spark-connect-lb && return 0
  command -v haproxy >/dev/null || die "spark_connect needs haproxy: run \`stack/stack.sh install debian\`"
  mkdir -p "$SPARK_CONNECT_LB_DIR"
  # The checked-in config lists two servers; write one server line per pool member.
  {
    awk '/# BEGIN servers/ {print; skip=1; next} /# END servers/ {skip=0} !skip' "$STACK_SRC/../haproxy/spark-connect.cfg" \
      | awk -v n="$SPARK_CONNECT_SERVERS" '{print} /# BEGIN servers/ {for (i = 1; i <= n; i++) printf "    server spark-connect-%d \"${SC_SERVER_%d}\"\n", i, i}'
  } > "$cfg.tmp"
  mv "$cfg.tmp" "$cfg"
  [ -f "$LOG_DIR/spark-connect-lb.log" ] && mv -f "$LOG_DIR/spark-connect-lb.log" "$LOG_DIR/spark-connect-lb.log.1"
  rm -f "$SPARK_CONNECT_ADMIN_SOCKET"
  # shellcheck disable=SC2046
  env $(spark_connect_lb_env) haproxy -c -q -f "$cfg" || die "haproxy rejects $cfg"
  # shellcheck disable=SC2046
  spawn spark-connect-lb env $(spark_connect_lb_env) haproxy -db -f "$cfg"
}

# Ready when every server's gRPC port answers and its start logged the banner (a port
# check alone could hit some other process holding the port), and HAProxy listens.
spark_connect_ready() {
  local i
  for i in $(seq 1 "$SPARK_CONNECT_SERVERS"); do
    port_open "$(spark_connect_port "$i")" || return 1
    grep -q 'Spark Connect server started' "$LOG_DIR/spark-connect-$i.log" 2>/dev/null || return 1
  done
  port_open "$SPARK_CONNECT_POOL_PORT" && [ -S "$SPARK_CONNECT_ADMIN_SOCKET" ]
}

spark_connect_endpoint() { echo "sc://127.0.0.1:$SPARK_CONNECT_POOL_PORT"; }

spark_connect_pids() {
  local i
  for i in $(seq 1 "$SPARK_CONNECT_SERVERS"); do echo "spark-connect-$i"; done
  echo spark-connect-lb
}

# spark_connect_status_detail: one status line per pool member (called by `status`).
spark_connect_status_detail() {
  local i state
  for i in $(seq 1 "$SPARK_CONNECT_SERVERS") lb; do
    if [ ! -f "$PID_DIR/spark-connect-$i.pid" ]; then state=stopped
    elif ! pid_alive "spark-connect-$i"; then state="DOWN (log: $LOG_DIR/spark-connect-$i.log)"
    elif [ "$i" = lb ]; then
      if port_open "$SPARK_CONNECT_POOL_PORT"; then state="ready (admin socket $SPARK_CONNECT_ADMIN_SOCKET, metrics http://127.0.0.1:$SPARK_CONNECT_POOL_STATS_PORT/metrics)"; else state="running, NOT READY"; fi
    elif port_open "$(spark_connect_port "$i")"; then state="ready (heap $SPARK_CONNECT_HEAP)"
    else state="running, NOT READY"; fi
    if [ "$i" = lb ]; then
      printf '  %-16s %-30s %s\n' "spark-connect-lb" "127.0.0.1:$SPARK_CONNECT_POOL_PORT" "$state"
    else
      printf '  %-16s %-30s %s\n' "spark-connect-$i" "sc://127.0.0.1:$(spark_connect_port "$i")" "$state"
    fi
  done
}

# HOURGLASS_SPARK_CONNECT (server 1) is written by spark_env; the pool's keys here.
spark_connect_env() {
  echo "HOURGLASS_SPARK_CONNECT_POOL=sc://127.0.0.1:$SPARK_CONNECT_POOL_PORT"
  echo "HOURGLASS_SPARK_CONNECT_POOL_ADMIN_SOCKET=$SPARK_CONNECT_ADMIN_SOCKET"
  echo "HOURGLASS_SPARK_CONNECT_POOL_METRICS=http://127.0.0.1:$SPARK_CONNECT_POOL_STATS_PORT/metrics"
  echo "HOURGLASS_SPARK_CONNECT_SERVERS=$SPARK_CONNECT_SERVERS"
  local i out=""
  for i in $(seq 1 "$SPARK_CONNECT_SERVERS"); do out="${out:+$out,}sc://127.0.0.1:$(spark_connect_port "$i")"; done
  echo "HOURGLASS_SPARK_CONNECT_SERVER_URLS=$out"
  echo "HOURGLASS_STACK_SCRIPT=$STACK_SRC/stack.sh"
}
