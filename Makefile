# Troupe monorepo tasks. Every Go tool runs through `go tool` (pinned in
# tools/go.mod), so a machine with Go, gcc (for the race detector), git and
# make needs nothing else.

MODULES := sdk proto tools bench
GO      ?= go
GOFMT   := $(shell $(GO) env GOROOT)/bin/gofmt

FUZZTIME ?= 5s

.PHONY: all test test-sdk test-modules test-fuzz bench bench-quick lint fmt proto help

all: lint test

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

test: test-sdk test-modules test-fuzz ## run every test (the SDK with -race) and each fuzz target briefly

test-sdk:
	cd sdk && $(GO) test -race -count=1 ./...

test-modules:
	@set -e; for m in $(filter-out sdk,$(MODULES)); do \
		echo "== $$m"; (cd $$m && $(GO) test -count=1 ./...); \
	done

# Minimizing each new interesting input is capped: left at its default
# (60s), it would spend the whole run on a few inputs.
FUZZFLAGS = -run '^$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 200x

test-fuzz: ## run each fuzz target for FUZZTIME (default 5s)
	cd sdk && $(GO) test $(FUZZFLAGS) -fuzz '^FuzzDecodeRequest$$' ./remote/internal/wire
	cd sdk && $(GO) test $(FUZZFLAGS) -fuzz '^FuzzHandshake$$' ./remote

bench: ## side-by-side benchmarks against protoactor-go (the table of record; minutes)
	cd bench && $(GO) run ./cmd/troupe-bench

bench-quick: ## the same benchmarks at small sizes (seconds)
	cd bench && $(GO) run ./cmd/troupe-bench -quick -runs 3

lint: ## gofmt, go vet, staticcheck, buf lint, and stale generated code
	@unformatted=$$($(GOFMT) -l $(MODULES)); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	@set -e; for m in $(MODULES); do \
		echo "== vet + staticcheck $$m"; \
		(cd $$m && $(GO) vet ./... && $(GO) tool staticcheck ./...); \
	done
	$(GO) tool buf lint proto
	GO=$(GO) ./scripts/check-generated.sh

fmt: ## format every Go file
	$(GOFMT) -w $(MODULES)

proto: ## regenerate Go code from proto/
	GO=$(GO) ./scripts/genproto.sh
