# `make test` is the one command that checks everything: it installs what the
# tests need when the machine lacks it, then vets and runs every test with the
# race detector. CI runs exactly this (.ci/run).

GO ?= go

.PHONY: test deps vet bench crashtest

test: deps vet
	$(GO) test -race -timeout 15m ./...

deps:
	@scripts/install-deps.sh

vet:
	$(GO) vet ./...

# Benchmarks print tables of records/s and ratios to the raw franz-go client
# measured in the same run; see docs/benchmarks.md.
bench:
	$(GO) run ./bench/consumerbench
