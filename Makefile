# Wuyou — everyday targets. `make test` is what CI runs (.ci/run).
#
#   make test             go vet, then every test with the race detector against a real Redis
#   make build            build every package and binary
#   make fuzz             run each fuzz target for FUZZTIME (default 60s)
#   make bench            run bench/run.sh, when there is one
#   make dev              start the service in embedded mode (nothing to install, nothing durable)
#   make test-redis-stop  stop the throwaway Redis `make test` may have started

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

GO       ?= go
FUZZTIME ?= 60s

.PHONY: test build fuzz bench dev test-redis-stop

# scripts/test-redis.sh prints the Redis address(es) integration tests use,
# starting a Redis when none answers; when it fails, so does the target.
test:
	$(GO) vet ./...
	@addrs="$$(bash scripts/test-redis.sh)"; \
	echo "WUYOU_TEST_REDIS_ADDRS=$$addrs $(GO) test -race -count=1 -timeout 20m ./..."; \
	WUYOU_TEST_REDIS_ADDRS="$$addrs" $(GO) test -race -count=1 -timeout 20m ./...

build:
	$(GO) build ./...

# Every FuzzXxx of every package, one after the other.
fuzz:
	@addrs="$$(bash scripts/test-redis.sh)"; \
	export WUYOU_TEST_REDIS_ADDRS="$$addrs"; \
	for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list 'Fuzz.*' "$$pkg" | grep '^Fuzz' || true); do \
			echo "== $$pkg $$target ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime=$(FUZZTIME) "$$pkg"; \
		done; \
	done

bench:
	@if [[ -f bench/run.sh ]]; then \
		addrs="$$(bash scripts/test-redis.sh)"; \
		WUYOU_TEST_REDIS_ADDRS="$$addrs" bash bench/run.sh; \
	else \
		echo "no bench/run.sh yet"; \
	fi

dev:
	$(GO) run ./cmd/wuyoud dev

test-redis-stop:
	bash scripts/test-redis.sh --stop
