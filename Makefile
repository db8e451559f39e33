# Deep Images Hub — the two commands a user needs: `make run` and `make test`.
SHELL := /bin/bash
export PATH := /opt/swift/usr/bin:$(PATH)

DATA ?= ./var/hub
PORT ?= 8080
HOST ?= 127.0.0.1
BENCH_DIR ?= ../shared/data/photos
# One test at a time: several tests start real servers in-process, and on a 2-core machine parallel
# CPU-bound tests starve them of the few cooperative threads.
SWIFT_TEST_FLAGS ?= --no-parallel

.PHONY: setup build build-release run test bench clean

## Install missing system packages (idempotent, quiet when nothing is missing).
setup:
	@scripts/setup.sh

build: setup
	swift build

## The Swift runtime and Foundation linked into the binary: a process starts about 10 ms sooner (fewer
## shared libraries to search for every symbol), which a CLI run or a short import pays each time.
build-release: setup
	swift build -c release --static-swift-stdlib --product imagehub
	swift build -c release --static-swift-stdlib --product TorchKernels
	swift build -c release --static-swift-stdlib --product FeatureKernels

## Build and start the hub in embedded mode (SQLite + local files) on $(DATA).
run: build-release
	@mkdir -p $(DATA)
	@echo "Deep Images Hub on http://$(HOST):$(PORT) (dashboard: sign in with an API key), data in $(DATA)"
	@echo "First admin key:  .build/release/imagehub keys create --role admin --data $(DATA)"
	.build/release/imagehub serve --data $(DATA) --host $(HOST) --port $(PORT)

## Build everything (the CLI too: some tests run it as a real process) and run every test, with a
## private PostgreSQL cluster for the catalog tests (started and stopped around them), under a time limit
## that prints where a hung test is stuck (scripts/run-tests.sh); then the API contract: schemathesis
## against a hub the script starts with real data (scripts/api-contract.sh).
test: setup
	@scripts/test-setup.sh
	swift build --build-tests
	scripts/run-tests.sh scripts/with-postgres.sh swift test --skip-build $(SWIFT_TEST_FLAGS)
	scripts/api-contract.sh

## Ingest benchmark in release mode on $(BENCH_DIR).
bench: build-release
	.build/release/imagehub bench ingest $(BENCH_DIR)

clean:
	rm -rf .build
