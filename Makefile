# `make test` is the one command that checks everything: it installs what the
# tests need when the machine lacks it, then vets and runs every test with the
# race detector. CI runs exactly this (.ci/run).

GO ?= go

.PHONY: test deps vet bench bench-store crashtest

test: deps vet
	$(GO) test -race -timeout 15m ./...

deps:
	@scripts/install-deps.sh

vet:
	$(GO) vet ./...

# Benchmarks print tables of records/s and ratios to the raw franz-go client
# measured in the same run; see docs/benchmarks.md.
bench: bench-store
	$(GO) run ./bench/consumerbench

# The agent with the idempotency middleware on each store, against no store.
bench-store: deps
	$(GO) run ./bench/storebench

# Kills the consumer 20 times while it works through 100k events with 1%
# duplicates, on SQLite then PostgreSQL, and checks every side effect
# happened exactly once; see docs/idempotency.md.
crashtest: deps
	$(GO) run ./bench/crashtest -events 100000 -kills 20 -stores sqlite,postgres
