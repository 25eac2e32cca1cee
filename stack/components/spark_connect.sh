# Spark Connect server (optional service: `stack/stack.sh up spark_connect`; the
# default `up` does not start it). One local[*] driver JVM serving gRPC on
# 127.0.0.1:$SPARK_CONNECT_PORT, with the Kafka connector jars on its classpath.
#
# pyspark 4.0.x ships the server jar (pyspark/jars/spark-connect_2.13-*.jar), so it
# runs from the venv's spark-submit; SparkSubmit knows the main class needs no
# application jar. spark-submit adds the --add-opens Java 17 needs by itself.
# Clients: SparkSession.builder.remote("sc://127.0.0.1:15002") (needs the pyspark
# connect extras: pandas, pyarrow, grpcio, grpcio-status, googleapis-common-protos,
# pinned in stack/python/requirements.txt).
#
# The component has no install of its own: it uses what python_install (venv) and
# spark_install (Kafka connector jars) installed.

SPARK_CONNECT_DIR=$RUN_DIR/spark

spark_connect_install() { :; }

spark_connect_start() {
  pid_alive spark-connect && return 0
  local home jars
  [ -x "$VENV_DIR/bin/python" ] || die "spark_connect needs the Python venv: run \`stack/stack.sh install python spark\`"
  home=$(spark_home) || die "pyspark is not installed in $VENV_DIR"
  [ -f "$SPARK_KAFKA_LIB/.complete" ] || spark_install
  jars=$(spark_kafka_jars)
  mkdir -p "$SPARK_CONNECT_DIR/local" "$SPARK_CONNECT_DIR/ivy" "$SPARK_CONNECT_DIR/tmp" "$LOG_DIR"
  # Keep one previous log: spark_connect_ready greps this start's log only.
  [ -f "$LOG_DIR/spark-connect.log" ] && mv -f "$LOG_DIR/spark-connect.log" "$LOG_DIR/spark-connect.log.1"
  # Scratch dirs via SPARK_LOCAL_DIRS (the spark.local.dir conf works too but logs a
  # warning at every start). Run from $SPARK_CONNECT_DIR so anything written to the
  # working directory (derby.log, spark-warehouse, metastore_db) lands in the run dir.
  ( cd "$SPARK_CONNECT_DIR" && SPARK_HOME=$home SPARK_LOCAL_IP=127.0.0.1 \
      SPARK_LOCAL_DIRS="$SPARK_CONNECT_DIR/local" \
    spawn spark-connect "$home/bin/spark-submit" \
      --class org.apache.spark.sql.connect.service.SparkConnectServer \
      --name spark-connect \
      --master 'local[*]' \
      --driver-memory "$SPARK_CONNECT_HEAP" \
      --driver-java-options "-Djava.io.tmpdir=$SPARK_CONNECT_DIR/tmp -Dderby.system.home=$SPARK_CONNECT_DIR" \
      --jars "$jars" \
      --conf spark.connect.grpc.binding.address=127.0.0.1 \
      --conf spark.connect.grpc.binding.port="$SPARK_CONNECT_PORT" \
      --conf spark.connect.grpc.port.maxRetries=0 \
      --conf spark.driver.host=127.0.0.1 \
      --conf spark.driver.bindAddress=127.0.0.1 \
      --conf spark.ui.enabled=false \
      --conf spark.sql.shuffle.partitions=2 \
      --conf spark.sql.warehouse.dir="$SPARK_CONNECT_DIR/warehouse" \
      --conf spark.jars.ivy="$SPARK_CONNECT_DIR/ivy" )
}

# Ready when the gRPC port answers and this start logged its banner (a port check
# alone could hit some other process holding the port).
spark_connect_ready() {
  port_open "$SPARK_CONNECT_PORT" && grep -q 'Spark Connect server started' "$LOG_DIR/spark-connect.log" 2>/dev/null
}

spark_connect_endpoint() { echo "sc://127.0.0.1:$SPARK_CONNECT_PORT"; }
spark_connect_pids() { echo spark-connect; }

# HOURGLASS_SPARK_CONNECT is written by spark_env (spark is in STACK_INSTALL).
spark_connect_env() { :; }
