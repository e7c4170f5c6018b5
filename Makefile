# Convenience targets; every one of them is a plain script underneath, so
# nothing here is needed to build or test pushpull.
.PHONY: run test test-short bench soak build

GO ?= go

build:
	$(GO) build -o bin/pushpull ./cmd/pushpull
	$(GO) build -o bin/pushpull-bench ./cmd/pushpull-bench

# Runs the gateway on its embedded defaults (bbolt file in ./data).
run:
	$(GO) run ./cmd/pushpull

# Every suite: Go (race), JS unit, PHP, browser, Bitrix conformance.
test:
	scripts/test-all.sh

test-short:
	SHORT=1 scripts/test-all.sh

# Hot-path micro-benchmarks and the end-to-end scenarios with small parameters.
bench:
	scripts/bench.sh

# The crash/fault suites in long mode (many iterations).
soak:
	scripts/soak.sh
