#!/usr/bin/env bash
# make demo: the whole pipeline on one machine, then what each user sees.
#   build → stack (Kafka, HDFS, OpenSearch, Spark Connect, Alertmanager,
#   Prometheus) → es setup → hourglass all (registered with Prometheus) →
#   Spark metric jobs → edge (HAProxy → Nginx TLS) → traffic for DURATION →
#   drain → report (customers' metrics, SRE status, a log-peek query, a
#   synchronous query and a job per user kind on the query service, URLs).
# DURATION (default 3m) is how long traffic flows. `make demo-down` stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-3m}
TENANTS=${TENANTS:-3}
[ "$TENANTS" -ge 2 ] || { echo "make demo: TENANTS must be at least 2 (one of them is the slow tenant)" >&2; exit 2; }
RATE=${RATE:-200}

HOURGLASS_HOME=${HOURGLASS_HOME:-$HOME/.cache/hourglass}
DEMO=$HOURGLASS_HOME/run/demo
LOGS=$HOURGLASS_HOME/run/logs
mkdir -p "$DEMO" "$LOGS"
BIN=$PWD/bin/hourglass
EDGE=https://127.0.0.1:18443

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }
# fail <component> <log>: name what failed and show its log tail.
fail() {
  printf '\n\033[1;31mdemo failed: %s\033[0m\n' "$1" >&2
  if [ -n "${2:-}" ] && [ -f "$2" ]; then
    printf -- '--- last 30 lines of %s ---\n' "$2" >&2; tail -n 30 "$2" >&2
  fi
  printf 'Everything started so far is still running; stop it with: make demo-down\n' >&2
  exit 1
}
# wait_for <what> <seconds> <log> <command...>: poll the command until it succeeds.
wait_for() {
  local what=$1 secs=$2 logf=$3; shift 3
  local deadline=$(( $(date +%s) + secs ))
  note "waiting for $what"
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -ge "$deadline" ] && fail "$what (not within ${secs}s)" "$logf"
    sleep 2
  done
}
http_ok() { curl -fsS -o /dev/null --max-time 3 "$@"; }

step "building hourglass"
go build -o "$BIN" ./cmd/hourglass

step "starting the local stack: Kafka, HDFS, OpenSearch, the Spark Connect pool, Alertmanager, Prometheus (stack/stack.sh up)"
stack/stack.sh up kafka hdfs opensearch spark_connect alertmanager prometheus
set -a; . "$(stack/stack.sh env)"; set +a

step "setting up OpenSearch: index templates, aliases, retention (hourglass es setup)"
"$BIN" es --es-url "$HOURGLASS_ES_URL" setup 2>&1 | sed 's/^/    /' || fail "hourglass es setup"

# The baseline demo (docs/baselines.md): latency's p95 of each hour is compared
# with the same hour of the last 7 days. That history is written before the
# jobs start (they cache what they read for an hour); the last tenant's backend
# is made 3× slower in this run's traffic, so its hour is an anomaly.
SLOW_TENANT=$(printf 'tenant-%02d' "$TENANTS")
step "writing 7 days of latency history for this hour and the next (hourglass gen history)"
"$BIN" gen history --es-url "$HOURGLASS_ES_URL" --metrics latency --tenants "$TENANTS" --days 7 --hours 2 \
  --records-per-hour 2000 | sed 's/^/    /' || fail "hourglass gen history"

step "writing demo API keys and log-peek tokens into $DEMO"
python3 - "$DEMO" "$TENANTS" <<'PY'
import hashlib, sys
demo, n = sys.argv[1], int(sys.argv[2])
digest = lambda s: hashlib.sha256(s.encode()).hexdigest()
tenants = [f"tenant-{i:02d}" for i in range(1, n + 1)]
with open(f"{demo}/keys.yaml", "w") as f:
    f.write("keys:\n" + "".join(f"  - {{tenant: {t}, sha256: {digest('demo-key-' + t)}}}\n" for t in tenants))
with open(f"{demo}/tokens.yaml", "w") as f:
    f.write("tokens:\n"
            f"  - {{name: demo-developer, sha256: {digest('demo-dev-token')}, role: developer, tenants: [{', '.join(tenants)}]}}\n"
            f"  - {{name: demo-customer, sha256: {digest('demo-customer-token')}, role: customer, tenants: [{tenants[0]}]}}\n"
            f"  - {{name: demo-sre, sha256: {digest('demo-sre-token')}, role: admin}}\n")
with open(f"{demo}/tenants", "w") as f:
    f.write(",".join(tenants))
PY
TENANT_LIST=$(cat "$DEMO/tenants")
ARCHIVE=hdfs://${HOURGLASS_HDFS_NAMENODE}/hourglass/demo-archive
cat > "$DEMO/all.yaml" <<YAML
shared:
  brokers: $HOURGLASS_BROKERS
  catalog: $PWD/metrics-jobs/catalog.yaml
  log-level: info
services:
  lagmon:   {listen-addr: 127.0.0.1:19106, es-url: "$HOURGLASS_ES_URL", poll-interval: 5s, window: 2m}
  indexer:  {listen-addr: 127.0.0.1:19104, es-url: "$HOURGLASS_ES_URL", setup: "true"}
  archiver: {listen-addr: 127.0.0.1:19103, archive-root: "$ARCHIVE", max-file-age: 20s}
  router:   {listen-addr: 127.0.0.1:19102}
  logpeek:  {listen-addr: 127.0.0.1:19105, api-addr: 127.0.0.1:18090, archive-root: "$ARCHIVE", tokens: "$DEMO/tokens.yaml"}
  query:    {listen-addr: 127.0.0.1:19107, api-addr: 127.0.0.1:18095, archive-root: "$ARCHIVE", tokens: "$DEMO/tokens.yaml", spark-connect-pool: "$HOURGLASS_SPARK_CONNECT_POOL"}
  ingress:  {api-addr: 127.0.0.1:18080, listen-addr: 127.0.0.1:19101, keys-file: "$DEMO/keys.yaml"}
YAML

step "starting every Go service in one process (hourglass all; log: $LOGS/hourglass-all.log)"
if [ -f "$DEMO/all.pid" ] && kill -0 "$(cat "$DEMO/all.pid")" 2>/dev/null; then
  note "already running (pid $(cat "$DEMO/all.pid"))"
else
  setsid "$BIN" all --config "$DEMO/all.yaml" >>"$LOGS/hourglass-all.log" 2>&1 < /dev/null &
  echo $! > "$DEMO/all.pid"
fi
for svc in ingress:19101 router:19102 archiver:19103 indexer:19104 logpeek:19105 lagmon:19106 query:19107; do
  wait_for "${svc%%:*} to be ready (/readyz)" 120 "$LOGS/hourglass-all.log" http_ok "http://127.0.0.1:${svc##*:}/readyz"
done
# Prometheus scrapes every service's admin address (file_sd; job hourglass-<service>,
# the names rules.yml expects) and evaluates lag-monitor/rules.yml.
python3 - "$HOURGLASS_PROMETHEUS_TARGETS_DIR/demo.json" <<'PY'
import json, os, sys
svcs = {"ingress": 19101, "router": 19102, "archiver": 19103, "indexer": 19104, "logpeek": 19105, "lagmon": 19106, "query": 19107,
        "metrics-jobs": 19109}  # the jobs' supervisor, started below
with open(sys.argv[1] + ".tmp", "w") as f:
    json.dump([{"targets": [f"127.0.0.1:{p}"], "labels": {"job": f"hourglass-{s}"}} for s, p in svcs.items()], f)
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
PY
prom_scrapes_services() {
  curl -fsS -G "$HOURGLASS_PROMETHEUS_URL/api/v1/query" \
    --data-urlencode 'query=count(up{job=~"hourglass-(ingress|router|archiver|indexer|logpeek|lagmon|query)"} == 1)' | grep -q '"7"\]'
}
wait_for "Prometheus to scrape the services" 30 "$LOGS/prometheus.log" prom_scrapes_services

step "starting the Spark metric jobs: one driver running all six metrics (hourglass jobs --driver demo)"
JOBS=("$BIN" jobs --driver demo --state-dir "$DEMO/jobs" --checkpoint-root "hdfs://${HOURGLASS_HDFS_NAMENODE}/hourglass/demo-checkpoints"
      --brokers "$HOURGLASS_BROKERS" --es-url "$HOURGLASS_ES_URL" --trigger 5s --driver-memory 1g --shuffle-partitions 2
      --listen-addr 127.0.0.1:19109)
"${JOBS[@]}" start | sed 's/^/    /'
wait_for "the Spark driver to start its queries" 240 "$DEMO/jobs/demo/driver.log" \
  sh -c "\"\$0\" \"\$@\" status | grep -q 'running' && test -s '$DEMO/jobs/demo/progress.json'" "${JOBS[@]}"

step "starting the edge: HAProxy :18443 (TCP, PROXY v2) → Nginx :18444 (TLS) → ingress :18080"
EDGE_DIR=$DEMO/edge
mkdir -p "$EDGE_DIR/tmp"
if [ ! -f "$EDGE_DIR/edge.crt" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$EDGE_DIR/edge.key" -out "$EDGE_DIR/edge.crt" >/dev/null 2>&1 || fail "openssl (edge certificate)"
fi
cp nginx/hourglass-log.conf "$EDGE_DIR/"
printf 'server 127.0.0.1:18080 max_fails=2 fail_timeout=5s;\n' > "$EDGE_DIR/upstreams.conf"
{ printf 'default hourglass-edge;\n'; for t in ${TENANT_LIST//,/ }; do printf '%s.example.com %s;\n' "$t" "$t"; done; } > "$EDGE_DIR/tenants.map"
HG_USER=$(id -un) HG_PID=$EDGE_DIR/nginx.pid HG_ERROR_LOG=$LOGS/nginx-error.log HG_TEMP_DIR=$EDGE_DIR/tmp \
HG_LISTEN=127.0.0.1:18444 HG_HEALTH_LISTEN=127.0.0.1:18081 HG_HEALTH_LOG=off \
HG_TLS_CERT=$EDGE_DIR/edge.crt HG_TLS_KEY=$EDGE_DIR/edge.key HG_REAL_IP_FROM=127.0.0.1 \
HG_ACCESS_LOG=$LOGS/nginx-access.json \
  envsubst "$(sed -n 's/^\(HG_[A-Z_]*\)=.*/${\1}/p' nginx/edge.env)" < nginx/nginx.conf.template > "$EDGE_DIR/nginx.conf"
if ! { [ -f "$EDGE_DIR/nginx.pid" ] && kill -0 "$(cat "$EDGE_DIR/nginx.pid")" 2>/dev/null; }; then
  nginx -p "$EDGE_DIR" -c "$EDGE_DIR/nginx.conf" 2>>"$LOGS/nginx-error.log" || fail "nginx" "$LOGS/nginx-error.log"
fi
if ! { [ -f "$EDGE_DIR/haproxy.pid" ] && kill -0 "$(cat "$EDGE_DIR/haproxy.pid")" 2>/dev/null; }; then
  HG_HAPROXY_BIND=127.0.0.1:18443 HG_NGINX_ADDR=127.0.0.1:18444 HG_NGINX_HEALTH=18081 \
    setsid haproxy -db -f haproxy/haproxy.cfg >>"$LOGS/haproxy.log" 2>&1 < /dev/null &
  echo $! > "$EDGE_DIR/haproxy.pid"
fi
# An unauthenticated POST must come back from the ingress as 401: that proves
# HAProxy → Nginx (TLS) → ingress end to end.
edge_answers() {
  [ "$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$EDGE_DIR/edge.crt" -X POST \
        -H 'Content-Type: application/x-ndjson' --data '{}' "$EDGE/v1/logs")" = 401 ]
}
wait_for "the edge to answer through HAProxy → Nginx → ingress" 60 "$LOGS/haproxy.log" edge_answers

step "sending traffic for $DURATION: $TENANTS tenants, $RATE records/s, $SLOW_TENANT 3× slower than its history, through $EDGE (hourglass gen)"
note "progress every 5 s: records accepted by ingress (all runs of this process), consumer lag summed over groups"
# A seed of its own gives this run's request ids a suffix of their own, so the
# report counts exactly this run's records in every sink.
RUN_SEED=$(date +%s)
RUN_SINCE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
progress() {
  while sleep 5; do
    acc=$(curl -fsS --max-time 2 http://127.0.0.1:19101/metrics 2>/dev/null \
      | awk '/^hourglass_ingress_records_accepted_total/ {s += $2} END {printf "%d", s}')
    lag=$(curl -fsS --max-time 2 http://127.0.0.1:19106/v1/status 2>/dev/null | python3 -c '
import json, sys
g = json.load(sys.stdin)["groups"]
known = [x["lag"] for x in g if x.get("lag") is not None]
print(f"{sum(known)} over {len(g)} groups" + (f" ({len(g) - len(known)} unknown)" if len(known) < len(g) else ""))' 2>/dev/null)
    printf '    %s  accepted %s  lag %s\n' "$(date -u +%H:%M:%S)" "${acc:-?}" "${lag:-?}"
  done
}
progress & PROGRESS_PID=$!
"$BIN" gen --target "$EDGE/v1/logs" --ca-file "$EDGE_DIR/edge.crt" --tenants "$TENANTS" --rate "$RATE" \
  --duration "$DURATION" --count 0 --key-template 'demo-key-{tenant}' --disorder 20s --malformed 0.002 \
  --seed "$RUN_SEED" --slow "$SLOW_TENANT=3" > "$DEMO/gen-summary.json" || { kill "$PROGRESS_PID"; fail "traffic generator (hourglass gen)" "$LOGS/hourglass-all.log"; }
kill "$PROGRESS_PID" 2>/dev/null; wait "$PROGRESS_PID" 2>/dev/null || true  # it ends by our SIGTERM (143)
sed 's/^/    /' "$DEMO/gen-summary.json"
ACCEPTED=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["accepted"])' "$DEMO/gen-summary.json")

step "waiting for the pipeline to drain (every consumer group at lag 0, every status OK)"
wait_for "the lag monitor to report every group and metric OK" 300 "$LOGS/hourglass-all.log" \
  sh -c 'curl -fsS http://127.0.0.1:19106/v1/status | python3 -c "
import json, sys
s = json.load(sys.stdin)
g = s[\"groups\"]
ok = g and all(x[\"status\"] == \"OK\" and x[\"lag\"] == 0 for x in g) and all(f[\"status\"] == \"OK\" for f in s[\"freshness\"])
sys.exit(0 if ok else 1)"'

step "what each user sees"
go run ./demo/report --es-url "$HOURGLASS_ES_URL" --lagmon-url http://127.0.0.1:19106 \
  --logpeek-url http://127.0.0.1:18090 --logpeek-token demo-dev-token --tenants "$TENANT_LIST" \
  --archive-root "$ARCHIVE" --run-seed "$RUN_SEED" --accepted "$ACCEPTED" --since "$RUN_SINCE" \
  --query-url http://127.0.0.1:18095 --query-customer-token demo-customer-token --query-developer-token demo-dev-token \
  --baseline latency.duration_ms_p95 --band-tenant tenant-01 --anomaly-tenant "$SLOW_TENANT" --chart-dir "$DEMO" \
  || fail "the report found something missing (see above)"

cat <<TXT

== URLs (running until 'make demo-down')
  intake (through the edge)   $EDGE/v1/logs          (Bearer demo-key-tenant-01; CA: $EDGE_DIR/edge.crt)
  ingress direct              http://127.0.0.1:18080/v1/logs
  log-peek API                http://127.0.0.1:18090/v1/logs?tenant=tenant-01&from=…&to=…   (Bearer demo-dev-token)
  query API                   http://127.0.0.1:18095/v1/query     (Bearer demo-customer-token: tenant-01; demo-dev-token; /openapi.json)
  lag monitor status page     http://127.0.0.1:19106/status      (JSON: /v1/status, Prometheus: /metrics)
  Prometheus                  $HOURGLASS_PROMETHEUS_URL/alerts     (rules: lag-monitor/rules.yml; scrapes every service)
  Alertmanager                $HOURGLASS_ALERTMANAGER_URL          (receiver: ALERTMANAGER_WEBHOOK_URL, none by default)
  Spark UI                    http://127.0.0.1:4040
  OpenSearch                  $HOURGLASS_ES_URL                   (aliases hourglass-metrics-<metric>, data stream logs-hourglass.traffic-default)
  HDFS NameNode UI            http://127.0.0.1:19870
  service metrics             http://127.0.0.1:1910{1..7}/metrics (ingress, router, archiver, indexer, logpeek, lagmon, query); jobs' supervisor :19109
  logs                        $LOGS/
TXT
