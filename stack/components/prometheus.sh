# Prometheus (Debian package `prometheus`): scrapes the stack, the services that
# tests and `make demo` register, and evaluates lag-monitor/rules.yml; alerts go
# to the stack's Alertmanager. Loopback only, lifecycle API on (POST /-/reload).
#
#   http://127.0.0.1:$PROMETHEUS_PORT              API and UI
#   $PROMETHEUS_DIR/prometheus.yml                 rendered from stack/prometheus/prometheus.yml.tmpl
#   $PROMETHEUS_DIR/rules/*.yml                    rule files (rules.yml copied at every start)
#   $PROMETHEUS_DIR/targets/*.json                 file_sd targets, one file per registered service
#   $PROMETHEUS_DIR/data                           TSDB (retention $PROMETHEUS_RETENTION)

PROMETHEUS_DIR=$RUN_DIR/prometheus
PROMETHEUS_RULES_DIR=$PROMETHEUS_DIR/rules
PROMETHEUS_TARGETS_DIR=$PROMETHEUS_DIR/targets

# Installed by debian_install; nothing to download here.
prometheus_install() {
  command -v prometheus >/dev/null || debian_install
}

prometheus_start() {
  pid_alive prometheus && return 0
  command -v prometheus >/dev/null || die "prometheus is not installed: run \`stack/stack.sh install debian\`"
  port_open "$PROMETHEUS_PORT" && fail_component prometheus prometheus \
    "127.0.0.1:$PROMETHEUS_PORT is already in use by another process"
  mkdir -p "$PROMETHEUS_DIR/data" "$PROMETHEUS_RULES_DIR" "$PROMETHEUS_TARGETS_DIR"
  # The Spark Connect servers' drivers, one target per pool member (down while the
  # optional pool is not started, like the pool's HAProxy).
  local i
  SPARK_CONNECT_DRIVER_TARGETS=""
  for i in $(seq 1 "$SPARK_CONNECT_SERVERS"); do
    SPARK_CONNECT_DRIVER_TARGETS="${SPARK_CONNECT_DRIVER_TARGETS:+$SPARK_CONNECT_DRIVER_TARGETS, }\"127.0.0.1:$(spark_connect_ui_port "$i")\""
  done
  export PROMETHEUS_PORT ALERTMANAGER_PORT PROMETHEUS_SCRAPE_INTERVAL SPARK_CONNECT_POOL_STATS_PORT \
    PROMETHEUS_RULES_DIR PROMETHEUS_TARGETS_DIR SPARK_CONNECT_DRIVER_TARGETS
  render "$STACK_SRC/prometheus/prometheus.yml.tmpl" "$PROMETHEUS_DIR/prometheus.yml"
  cp "$STACK_SRC/../lag-monitor/rules.yml" "$PROMETHEUS_RULES_DIR/hourglass.yml"
  promtool check config "$PROMETHEUS_DIR/prometheus.yml" >>"$LOG_DIR/prometheus.log" 2>&1 \
    || fail_component prometheus prometheus "promtool rejects $PROMETHEUS_DIR/prometheus.yml"
  spawn prometheus prometheus \
    --config.file="$PROMETHEUS_DIR/prometheus.yml" \
    --storage.tsdb.path="$PROMETHEUS_DIR/data" \
    --storage.tsdb.retention.time="$PROMETHEUS_RETENTION" \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
    --web.enable-lifecycle \
    --log.level=warn
}

prometheus_ready() { http_ok "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"; }
prometheus_endpoint() { echo "http://127.0.0.1:$PROMETHEUS_PORT"; }
prometheus_pids() { echo prometheus; }

prometheus_env() {
  echo "HOURGLASS_PROMETHEUS_URL=http://127.0.0.1:$PROMETHEUS_PORT"
  echo "HOURGLASS_PROMETHEUS_RULES_DIR=$PROMETHEUS_RULES_DIR"
  echo "HOURGLASS_PROMETHEUS_TARGETS_DIR=$PROMETHEUS_TARGETS_DIR"
  echo "HOURGLASS_PROMETHEUS_SCRAPE_INTERVAL=$PROMETHEUS_SCRAPE_INTERVAL"
}
