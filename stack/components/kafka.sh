# Apache Kafka: one KRaft broker+controller, jars from Maven Central.

KAFKA_LIB=$LIB_DIR/kafka-$KAFKA_VERSION
KAFKA_DATA_DIR=$RUN_DIR/kafka/data
KAFKA_CONF=$RUN_DIR/kafka/server.properties

kafka_install() { mvn_copy "$STACK_SRC/kafka" "$KAFKA_LIB" -Dkafka.version="$KAFKA_VERSION"; }

# kafka_java <main-class> <args...>: run a Kafka main class (broker or tool).
kafka_java() {
  java -Xms64m -Xmx256m -Dlog4j.configuration="file:$STACK_SRC/kafka/log4j.properties" \
    -cp "$KAFKA_LIB/*" "$@"
}

kafka_start() {
  pid_alive kafka && return 0
  export KAFKA_DATA_DIR KAFKA_PORT KAFKA_CONTROLLER_PORT
  render "$STACK_SRC/kafka/server.properties.tmpl" "$KAFKA_CONF"
  if [ ! -f "$KAFKA_DATA_DIR/meta.properties" ]; then
    log "formatting Kafka storage in $KAFKA_DATA_DIR"
    mkdir -p "$KAFKA_DATA_DIR" "$LOG_DIR"
    kafka_java kafka.tools.StorageTool format -t "$(kafka_java kafka.tools.StorageTool random-uuid)" \
      -c "$KAFKA_CONF" >>"$LOG_DIR/kafka.log" 2>&1 || fail_component kafka kafka "storage format failed"
  fi
  spawn kafka java -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j.configuration="file:$STACK_SRC/kafka/log4j.properties" \
    -Dkafka.logs.dir="$LOG_DIR" -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_CONF"
}

# Ready when the broker serves metadata: a TCP check alone passes before KRaft
# has elected its controller.
kafka_ready() {
  port_open "$KAFKA_PORT" && grep -q 'Kafka Server started' "$LOG_DIR/kafka.log" 2>/dev/null
}

# Once ready: let the broker create __consumer_offsets and elect the group
# coordinator now, so the first consumer group of a fresh stack is not answered
# "coordinator not available" for several seconds (clients retry, but a test
# that reads a group's offsets on the first poll would see UNKNOWN).
kafka_warm() {
  kafka_java org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
    --describe --group hourglass-stack-warmup --timeout 30000 >>"$LOG_DIR/kafka-warmup.log" 2>&1 || true
}

kafka_endpoint() { echo "127.0.0.1:$KAFKA_PORT"; }
kafka_pids() { echo kafka; }

kafka_env() {
  echo "HOURGLASS_BROKERS=127.0.0.1:$KAFKA_PORT"
  echo "HOURGLASS_KAFKA_VERSION=$KAFKA_VERSION"
  # Classpath of Kafka's own tools (kafka-consumer-groups, producer perf test) for
  # tests and benchmarks that compare against them.
  echo "HOURGLASS_KAFKA_CLASSPATH=$KAFKA_LIB/*"
  echo "HOURGLASS_KAFKA_LOG4J=file:$STACK_SRC/kafka/log4j.properties"
}
