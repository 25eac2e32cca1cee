# Hourglass — `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

HOURGLASS_HOME ?= $(HOME)/.cache/hourglass
export HOURGLASS_HOME
STACK     := stack/stack.sh
PYTHON    := $(HOURGLASS_HOME)/venv/bin/python
BIN       := bin/hourglass
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
FUZZTIME  ?= 60s
# Packages with integration tests (files tagged `integration`).
INTEGRATION_PKGS = $(shell grep -rl --include='*_test.go' '^//go:build integration' . | xargs -r -n1 dirname | sort -u)

.PHONY: help
help: ## list every target
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: demo
demo: ## the whole pipeline on one machine, then what each user sees (DURATION=3m)
	DURATION=$(or $(DURATION),3m) demo/run.sh

.PHONY: demo-down
demo-down: ## stop everything make demo started, and the stack
	demo/down.sh

.PHONY: build
build: ## build bin/hourglass
	go build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/hourglass

.PHONY: vet
vet: ## gofmt check and go vet (with and without the integration tag)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	go vet ./...
	go vet -tags integration ./...
	cd charts && go vet ./...

.PHONY: test-unit
test-unit: ## unit tests only (no stack needed), incl. the deployment checks in charts/ (own module)
	go test -count=1 ./...
	cd charts && go test -count=1 ./...

.PHONY: test-integration
test-integration: ## integration tests against a running stack (make stack-up first)
	go test -tags integration -count=1 -timeout 20m $(INTEGRATION_PKGS)
	$(PYTHON) -m pytest -q stack/smoke
	$(PYTHON) -m pytest -q metrics-jobs

.PHONY: test
test: vet test-unit ## everything CI runs: vet, unit tests, a fresh stack (empty data, with Spark Connect), integration tests, stack self-test, stack down (KEEP_STACK=1 keeps it up)
	@status=0; \
	  $(STACK) fresh kafka hdfs opensearch spark_connect alertmanager prometheus || status=$$?; \
	  if [ $$status -eq 0 ]; then stack/selftest.sh empty || status=$$?; fi; \
	  if [ $$status -eq 0 ]; then HOURGLASS_REQUIRE_SPARK_CONNECT=1 $(MAKE) --no-print-directory test-integration || status=$$?; fi; \
	  if [ $$status -eq 0 ] && [ -z "$$KEEP_STACK" ]; then stack/selftest.sh || status=$$?; fi; \
	  if [ -z "$$KEEP_STACK" ]; then $(STACK) down; fi; \
	  if [ $$status -ne 0 ]; then echo "make test: FAILED (status $$status)"; fi; \
	  exit $$status

.PHONY: bench
bench: ## benchmarks beside their baselines (stack up); writes bench/results/<date>.json and .md
	bench/run.sh

.PHONY: fuzz
fuzz: ## fuzz the record decoder (no panic; same as the reference decoder; the canonical path; the encoder), FUZZTIME each (default 60s)
	go test ./internal/record -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	go test ./internal/record -run '^$$' -fuzz FuzzDecodeMatchesReference -fuzztime $(FUZZTIME)
	go test ./internal/record -run '^$$' -fuzz '^FuzzDecodeCanonical$$' -fuzztime $(FUZZTIME)
	go test ./internal/record -run '^$$' -fuzz '^FuzzAppendJSON$$' -fuzztime $(FUZZTIME)

.PHONY: stack-install
stack-install: ## install the local stack's engines into $(HOURGLASS_HOME) (cached)
	$(STACK) install

.PHONY: stack-up
stack-up: ## install and start Kafka, HDFS, OpenSearch, Alertmanager and Prometheus; write the env file
	$(STACK) up

.PHONY: stack-up-connect
stack-up-connect: ## start the optional Spark Connect server
	$(STACK) up spark_connect

.PHONY: stack-down
stack-down: ## stop every stack process (data kept)
	$(STACK) down

.PHONY: stack-status
stack-status: ## each component with its endpoint and state (exit 1 if one is down)
	$(STACK) status

.PHONY: stack-clean
stack-clean: ## stop the stack and delete its data and logs (keeps the download cache)
	$(STACK) clean

.PHONY: clean
clean: ## remove build output
	rm -rf bin
