#!/usr/bin/env bash
# Self-test of the stack scripts, run by `make test` against the running stack
# (it leaves Kafka stopped: run it last, before `stack.sh down`). Checks:
#   1. a second install on a warm cache does nothing (prints nothing, downloads nothing);
#   2. `status` lists every component with its endpoint and exits 0 when all are ready;
#   3. Prometheus and Alertmanager answer: Prometheus has loaded lag-monitor/rules.yml,
#      scrapes itself and Alertmanager, and sends to the stack's Alertmanager;
#   4. killing one component's process makes `status` name it DOWN and exit non-zero.
#
# `stack/selftest.sh empty` instead checks that a just-started stack holds no
# data: no topics but Kafka's internal ones, an empty HDFS root, no indices
# but OpenSearch's system ones. `make test` runs it right after `stack.sh
# fresh`, so a green run proves that no test saw an earlier run's state.
set -uo pipefail
STACK=$(dirname "$0")/stack.sh
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }

if [ "${1:-}" = empty ]; then
  # shellcheck disable=SC1090
  source "$("$STACK" env)"
  topics=$(java -cp "$HOURGLASS_KAFKA_CLASSPATH" -Dlog4j.configuration="$HOURGLASS_KAFKA_LOG4J" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOURGLASS_BROKERS" --list 2>&1 | grep -v '^__' ); rc=$?
  check "kafka holds no topics (found: ${topics:-none})" '[ -z "$topics" ]'
  files=$(curl -fsS "$HOURGLASS_WEBHDFS_URL/?op=LISTSTATUS" | grep -o '"pathSuffix":"[^"]*"')
  check "hdfs root is empty (found: ${files:-none})" '[ -z "$files" ]'
  indices=$(curl -fsS "$HOURGLASS_ES_URL/_cat/indices?h=index&expand_wildcards=all" | grep -v '^\.' )
  check "opensearch holds no indices (found: ${indices:-none})" '[ -z "$indices" ]'
  [ $fail -eq 0 ] && echo "stack selftest: the stack starts empty" || echo "stack selftest: the stack is NOT empty"
  exit $fail
fi

out=$("$STACK" install 2>&1); rc=$?
check "warm install is a no-op" '[ $rc -eq 0 ] && [ -z "$out" ]'
[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/     /'

out=$("$STACK" status 2>&1); rc=$?
printf '%s\n' "$out" | sed 's/^/     /'
check "status exits 0 with the stack up" '[ $rc -eq 0 ]'
for c in kafka hdfs opensearch alertmanager prometheus spark-connect haproxy nginx promtool amtool pyspark; do
  check "status lists $c" 'printf "%s\n" "$out" | grep -q "^$c "'
done
check "status shows kafka ready with its endpoint" 'printf "%s\n" "$out" | grep -Eq "^kafka +127\.0\.0\.1:[0-9]+ +ready"'

# shellcheck disable=SC1090
source "$("$STACK" env)"
check "alertmanager answers (/-/ready)" 'curl -fsS -o /dev/null --max-time 3 "$HOURGLASS_ALERTMANAGER_URL/-/ready"'
check "prometheus answers (/-/ready)" 'curl -fsS -o /dev/null --max-time 3 "$HOURGLASS_PROMETHEUS_URL/-/ready"'
rules=$(curl -fsS --max-time 3 "$HOURGLASS_PROMETHEUS_URL/api/v1/rules")
check "prometheus evaluates lag-monitor/rules.yml" 'printf "%s" "$rules" | grep -q "\"HourglassConsumerStopped\""'
check "prometheus sends to the stack's alertmanager" \
  'curl -fsS --max-time 3 "$HOURGLASS_PROMETHEUS_URL/api/v1/alertmanagers" | grep -q "127.0.0.1:${HOURGLASS_ALERTMANAGER_URL##*:}"'
up=$(curl -fsS --max-time 3 "$HOURGLASS_PROMETHEUS_URL/api/v1/query" --data-urlencode 'query=sum(up{job=~"prometheus|alertmanager"})' | grep -o '"value":\[[^]]*\]')
check "prometheus scrapes itself and alertmanager (found: ${up:-none})" 'printf "%s" "$up" | grep -q "\"2\"\]"'

home=${HOURGLASS_HOME:-$HOME/.cache/hourglass}
pid=$(cat "$home/run/pids/kafka.pid")
kill -KILL "$pid"
for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
out=$("$STACK" status 2>&1); rc=$?
printf '%s\n' "$out" | sed 's/^/     /'
check "status exits non-zero after kafka was killed" '[ $rc -ne 0 ]'
check "status names kafka DOWN" 'printf "%s\n" "$out" | grep -Eq "^kafka .*DOWN"'
check "status still shows hdfs ready" 'printf "%s\n" "$out" | grep -Eq "^hdfs .* ready"'

[ $fail -eq 0 ] && echo "stack selftest: all checks passed" || echo "stack selftest: FAILED"
exit $fail
