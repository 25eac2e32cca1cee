#!/usr/bin/env bash
# make bench: start the stack, run every benchmark (Go tests tagged `bench`),
# each beside its baseline in the same run, and write bench/results/<date>.json
# and .md. HOURGLASS_BENCH_REPS sets the repetitions (default 3). Packages run
# one at a time (-p 1) so benchmarks do not compete for the 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
stack/stack.sh up kafka hdfs opensearch spark_connect
out=$(mktemp)
trap 'rm -f "$out"' EXIT
export HOURGLASS_BENCH_OUT=$out
status=0
go test -tags bench -run '^TestBench' -count=1 -p 1 -timeout 40m -v $(grep -rl --include='*_test.go' '^//go:build bench' . | xargs -n1 dirname | sort -u) || status=$?
if [ -s "$out" ]; then
  go run ./bench/report -in "$out" -out bench/results -cores "$(nproc)"
fi
[ -z "${KEEP_STACK:-}" ] && stack/stack.sh down
exit $status
