# hcp: hosted control planes.
SHELL := /usr/bin/env bash
GO ?= go
BIN := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/hcp-dev/hcp/internal/version.Version=$(VERSION)
CONTROLLER_GEN := $(BIN)/tools/controller-gen
CONTROLLER_GEN_VERSION := v0.23.0
GO_TEST_FLAGS ?=

.PHONY: all build release testtools generate verify-generate quickstart install test unit e2e bench conformance fuzz lint clean

all: build

## build: the hcp, hcp-operator and hcp-agent binaries and the release payload
# (static programs: the operator image has no libc)
build: release
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/hcp ./cmd/hcp-operator ./cmd/hcp-agent
	$(BIN)/hcp release write-digests --release-dir $(BIN)/release

## release: the component binaries (built once, reused until the pins change)
release:
	bash release/build.sh

$(CONTROLLER_GEN):
	GOBIN=$(BIN)/tools $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)

## generate: deepcopy functions, CRDs, and Cluster API's CRDs from the pinned module
generate: $(CONTROLLER_GEN)
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd paths="./api/hypershift/...;./api/agent/...;./api/capiprovider/..." output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) crd paths=./api/config/... output:crd:artifacts:config=config/crd/guest
	bash hack/copy-capi-crds.sh

## verify-generate: fail when generated files are stale
verify-generate: generate
	@git diff --exit-code -- api config/crd || { echo "generated files are stale: run make generate and commit" >&2; exit 1; }
	@test -z "$$(git status --porcelain -- api config/crd)" || { git status --porcelain -- api config/crd; echo "generated files are not committed: run make generate and commit" >&2; exit 1; }

## quickstart: build, run the embedded management plane in the foreground with 3 lab hosts, and create the example hosted cluster with a NodePool of 2 (more hcp up flags: ARGS="--data-dir /tmp/hcp")
ARGS ?=
quickstart: build
	$(BIN)/hcp up --example --agents 3 $(ARGS)

## install: link hcp, hcp-operator, hcp-agent (and the release's kubectl, unless PATH has one) into $(PREFIX)/bin
PREFIX ?= /usr/local
install: build
	mkdir -p $(PREFIX)/bin
	ln -sf $(BIN)/hcp $(BIN)/hcp-operator $(BIN)/hcp-agent $(PREFIX)/bin/
	@command -v kubectl >/dev/null || { ln -sf $$(ls -d $(BIN)/release/*/ | tail -1)kubectl $(PREFIX)/bin/kubectl && echo "linked kubectl into $(PREFIX)/bin"; }

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); test -z "$$out" || { echo "gofmt needed: $$out" >&2; exit 1; }
	$(GO) vet ./...

## testtools: programs only the tests run (SeaweedFS's S3 gateway, which the backup tests write to), rebuilt when their pins change
TESTTOOLS := $(BIN)/testtools
testtools: $(TESTTOOLS)/weed
$(TESTTOOLS)/weed: release/seaweedfs/go.mod release/seaweedfs/go.sum
	cd release/seaweedfs && CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(TESTTOOLS)/weed github.com/seaweedfs/seaweedfs/weed

## test: lint, generated files, unit, integration and end-to-end tests
test: build testtools lint verify-generate
	HCP_BIN=$(BIN) $(GO) test -count=1 -timeout 60m $(GO_TEST_FLAGS) ./...

## bench: measured numbers, each next to its baseline from the same run (BENCH_FLAGS="-only density" for the density run)
bench: build
	HCP_BIN=$(BIN) $(GO) run ./test/bench $(BENCH_FLAGS)

## conformance: build Kubernetes' e2e.test, run its [Conformance] specs against the example cluster on two real lab nodes, write docs/conformance.md (FOCUS=, SKIP= narrow it; PROCS= specs at once, default 4)
conformance: build
	bash hack/conformance.sh

## fuzz: run each fuzz target for FUZZTIME (default 30s)
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run XXX -fuzz FuzzDecodeInventory -fuzztime $(FUZZTIME) ./internal/infra/
	$(GO) test -run XXX -fuzz FuzzStepReply -fuzztime $(FUZZTIME) ./internal/infra/

clean:
	rm -rf $(BIN)
