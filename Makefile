# Wuyou — everyday targets. `make test` is what CI runs (.ci/run).
#
#   make test             go vet, then every test with the race detector against a real Redis
#                         and PostgreSQL, then each fuzz target for FUZZ_SHORT (default 3s)
#   make build            build every package, and the three binaries into ./ stamped with
#                         `git describe --always --dirty` (see `wuyoud version`)
#   make fuzz             run each fuzz target for FUZZTIME (default 60s)
#   make bench            run bench/run.sh, when there is one
#   make dev              start the service in embedded mode (nothing to install, nothing durable)
#   make test-redis-stop  stop the throwaway Redis `make test` may have started
#   make test-postgres-stop  stop the throwaway PostgreSQL `make test` may have started
#   make chaos            the fault harness in long mode, both fsync modes (test-artifacts/chaos.json)
#   make test-cluster     the Redis-backed tests against a throwaway 3-master Redis Cluster

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

GO         ?= go
FUZZTIME   ?= 60s
FUZZ_SHORT ?= 3s
# How long the fuzzer may shrink an input it keeps. The API targets digest
# PostgreSQL and Redis on every run, so the default (60s per input) stalls a
# short run; CI's runs shrink nothing (1x).
FUZZMINIMIZE ?= 10s

.PHONY: test build fuzz bench dev test-redis-stop test-postgres-stop test-cluster chaos

# scripts/test-redis.sh prints the Redis address(es) integration tests use,
# starting a Redis when none answers; scripts/test-postgres.sh does the same
# for PostgreSQL (the machine's, started or installed when need be, else a
# throwaway cluster). When either fails, so does the target.
# After the tests, every fuzz target runs briefly on top of its checked-in
# corpus (testdata/fuzz/), so a regression a fuzzer finds fast fails CI.
test:
	$(GO) vet ./...
	@addrs="$$(bash scripts/test-redis.sh)"; \
	pgurl="$$(bash scripts/test-postgres.sh)"; \
	echo "WUYOU_TEST_REDIS_ADDRS=$$addrs WUYOU_TEST_POSTGRES_URL=$$(sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#' <<<"$$pgurl") $(GO) test -race -count=1 -timeout 20m ./..."; \
	WUYOU_TEST_REDIS_ADDRS="$$addrs" WUYOU_TEST_POSTGRES_URL="$$pgurl" $(GO) test -race -count=1 -timeout 20m ./...; \
	echo "$(GO) run ./test/chaos -mode short -report test-artifacts/chaos-short.json"; \
	WUYOU_TEST_POSTGRES_URL="$$pgurl" $(GO) run ./test/chaos -mode short -report test-artifacts/chaos-short.json
	@$(MAKE) --no-print-directory test-cluster
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZ_SHORT) FUZZMINIMIZE=1x

# What `wuyoud version`, `wuyouctl version` and wuyou_build_info report: the
# version from `git describe` when there is a repository, the commit (also
# when GOFLAGS=-buildvcs=false keeps Go from stamping it) and the build time.
VERSION    ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
REVISION   ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILD_TIME ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS    := -X github.com/wuyou/wuyou/internal/buildinfo.Version=$(VERSION) \
              -X github.com/wuyou/wuyou/internal/buildinfo.Revision=$(REVISION) \
              -X github.com/wuyou/wuyou/internal/buildinfo.BuildTime=$(BUILD_TIME)

build:
	$(GO) build ./...
	$(GO) build -ldflags "$(LDFLAGS)" -o . ./cmd/wuyoud ./cmd/wuyouctl ./cmd/carriersim

# Every FuzzXxx of every package, one after the other. `go test -list`
# prints a package's targets before its "ok <package>" line; it is asked
# only about the packages whose tests mention a fuzz target, as linking every
# test binary just to list nothing costs more than the short runs.
fuzz:
	@addrs="$$(bash scripts/test-redis.sh)"; \
	export WUYOU_TEST_REDIS_ADDRS="$$addrs"; \
	pgurl="$$(bash scripts/test-postgres.sh)"; \
	export WUYOU_TEST_POSTGRES_URL="$$pgurl"; \
	pkgs="$$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -r -n1 dirname | sort -u)"; \
	listing="$$([[ -z "$$pkgs" ]] || $(GO) test -list '^Fuzz' $$pkgs)"; \
	targets=(); pending=(); \
	while read -r first second _; do \
		case "$$first" in \
			Fuzz*) pending+=("$$first") ;; \
			ok) for t in "$${pending[@]}"; do targets+=("$$second $$t"); done; pending=() ;; \
		esac; \
	done <<< "$$listing"; \
	echo "fuzz: $${#targets[@]} targets, $(FUZZTIME) each"; \
	for entry in "$${targets[@]}"; do \
		pkg="$${entry% *}"; target="$${entry#* }"; \
		echo "== $$pkg $$target ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) "$$pkg" || exit 1; \
	done

bench:
	@if [[ -f bench/run.sh ]]; then \
		addrs="$$(bash scripts/test-redis.sh)"; \
		pgurl="$$(bash scripts/test-postgres.sh)"; \
		WUYOU_TEST_REDIS_ADDRS="$$addrs" WUYOU_TEST_POSTGRES_URL="$$pgurl" bash bench/run.sh; \
	else \
		echo "no bench/run.sh yet"; \
	fi

dev:
	$(GO) run ./cmd/wuyoud dev

test-redis-stop:
	bash scripts/test-redis.sh --stop

test-postgres-stop:
	bash scripts/test-postgres.sh --stop

# The Redis-backed packages again, against a throwaway 3-master Redis Cluster
# (scripts/test-redis-cluster.sh), so a script or command whose keys span
# hash slots fails with CROSSSLOT here. No -race: it is the same code as above.
# The cluster is stopped afterwards, whether the tests pass or not.
CLUSTER_PKGS ?= ./quota/ ./crew/ ./carrier/ ./cmd/wuyoud/ ./api/
test-cluster:
	@pgurl="$$(bash scripts/test-postgres.sh)"; \
	addrs="$$(bash scripts/test-redis-cluster.sh)"; \
	echo "WUYOU_TEST_REDIS_ADDRS=$$addrs $(GO) test -count=1 -timeout 20m $(CLUSTER_PKGS)"; \
	rc=0; WUYOU_TEST_REDIS_ADDRS="$$addrs" WUYOU_TEST_POSTGRES_URL="$$pgurl" $(GO) test -count=1 -timeout 20m $(CLUSTER_PKGS) || rc=$$?; \
	bash scripts/test-redis-cluster.sh --stop; \
	exit $$rc

# The fault harness (test/chaos, RELIABILITY.md) in long mode: SIGKILLs of
# wuyoud and redis-server, Redis made unreachable, broker restarts, under
# appendfsync always and everysec (with power losses), each mode with its own
# database on the PostgreSQL scripts/test-postgres.sh finds or starts. It
# fails when an event is lost or applied twice. It needs redis-server on PATH
# (scripts/test-redis.sh installs Debian's when it is missing and we are root).
chaos:
	@command -v redis-server >/dev/null || bash scripts/test-redis.sh >/dev/null
	@pgurl="$$(bash scripts/test-postgres.sh)"; \
	echo "$(GO) run ./test/chaos -mode long -fsync both -report test-artifacts/chaos.json"; \
	WUYOU_TEST_POSTGRES_URL="$$pgurl" $(GO) run ./test/chaos -mode long -fsync both -report test-artifacts/chaos.json
