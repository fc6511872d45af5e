# VMemTrans build, test and benchmark entry points.
GO        ?= go
BIN       ?= bin
FUZZTIME  ?= 10s
RACE_PKGS ?= ./fabric/... ./tcpfallback/... ./rdma/... ./introspect/... ./internal/... ./kvmhost/... ./cmd/...

.PHONY: all build preload build-nocgo test lint fuzz bench demo rig live fixtures clean deps-test deps-demo

all: build

# The in-guest agent is built static, to drop into any guest.
build: preload
	$(GO) build -trimpath -o $(BIN)/ ./cmd/...
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/vmemtrans-agent ./cmd/vmemtrans-agent

# The library QEMU runs with under `vmemtrans mainhost --qemu`: it hands the
# userfaultfd of QEMU's guest RAM mapping to the runtime.
preload: $(BIN)/vmemtrans-preload.so

$(BIN)/vmemtrans-preload.so: kvmhost/handoff/preload/vmemtrans-preload.c
	@mkdir -p $(BIN)
	$(CC) -O2 -Wall -Wextra -shared -fPIC -o $@ $<

# Every build must work without cgo and without libibverbs.
build-nocgo:
	CGO_ENABLED=0 $(GO) build ./...

# The Debian packages each target needs, installed when missing (fast no-op
# otherwise), so `make test` and `make demo` are all a fresh machine needs.
deps-test:
	bash scripts/install-deps.sh test

deps-demo:
	bash scripts/install-deps.sh demo

test: deps-test build-nocgo lint
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race $(RACE_PKGS)

lint:
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	$(GO) test -count=1 -run '^TestImportDirection' ./test/

# Each fuzz target for a bounded time.
fuzz:
	bash scripts/fuzz-all.sh $(FUZZTIME)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

demo: deps-demo build
	bash scripts/demo.sh

# The QEMU rig: SoftRoCE, vsock and a real Linux guest under TCG.
rig:
	bash test/rig/rig.sh

# Regenerate the committed guest-memory fixtures (slow: boots QEMU guests).
fixtures:
	bash test/rig/fixture/make-fixtures.sh

clean:
	rm -rf $(BIN)

# Live introspection of a running QEMU guest (KASLR on) through QMP and its memory file.
live: build
	bash test/rig/live/live-introspect.sh $(BIN)/vmemtrans
