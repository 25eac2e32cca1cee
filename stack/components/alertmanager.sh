# Alertmanager (Debian package `prometheus-alertmanager`): receives the stack
# Prometheus's alerts. Loopback only, clustering off, lifecycle API on
# (POST /-/reload).
#
#   http://127.0.0.1:$ALERTMANAGER_PORT            API v2 and UI
#   $ALERTMANAGER_DIR/alertmanager.yml             rendered from stack/alertmanager/alertmanager.yml.tmpl
#   $ALERTMANAGER_DIR/data                         silences and notification log

ALERTMANAGER_DIR=$RUN_DIR/alertmanager

alertmanager_bin() { command -v prometheus-alertmanager || command -v alertmanager; }

alertmanager_install() {
  alertmanager_bin >/dev/null || debian_install
}

alertmanager_start() {
  local bin
  pid_alive alertmanager && return 0
  bin=$(alertmanager_bin) || die "alertmanager is not installed: run \`stack/stack.sh install debian\`"
  port_open "$ALERTMANAGER_PORT" && fail_component alertmanager alertmanager \
    "127.0.0.1:$ALERTMANAGER_PORT is already in use by another process"
  mkdir -p "$ALERTMANAGER_DIR/data"
  if [ -n "$ALERTMANAGER_WEBHOOK_URL" ]; then
    ALERTMANAGER_RECEIVER_CONFIG="    webhook_configs: [{url: \"$ALERTMANAGER_WEBHOOK_URL\", send_resolved: true}]"
  else
    ALERTMANAGER_RECEIVER_CONFIG="    # no integration: set ALERTMANAGER_WEBHOOK_URL"
  fi
  export ALERTMANAGER_RECEIVER_CONFIG
  render "$STACK_SRC/alertmanager/alertmanager.yml.tmpl" "$ALERTMANAGER_DIR/alertmanager.yml"
  amtool check-config "$ALERTMANAGER_DIR/alertmanager.yml" >>"$LOG_DIR/alertmanager.log" 2>&1 \
    || fail_component alertmanager alertmanager "amtool rejects $ALERTMANAGER_DIR/alertmanager.yml"
  spawn alertmanager "$bin" \
    --config.file="$ALERTMANAGER_DIR/alertmanager.yml" \
    --storage.path="$ALERTMANAGER_DIR/data" \
    --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
    --cluster.listen-address= \
    --log.level=warn
}

alertmanager_ready() { http_ok "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready"; }
alertmanager_endpoint() { echo "http://127.0.0.1:$ALERTMANAGER_PORT"; }
alertmanager_pids() { echo alertmanager; }

alertmanager_env() {
  echo "HOURGLASS_ALERTMANAGER_URL=http://127.0.0.1:$ALERTMANAGER_PORT"
  echo "HOURGLASS_ALERTMANAGER_CONFIG=$ALERTMANAGER_DIR/alertmanager.yml"
}
