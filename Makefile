# Vidra: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -o errexit -o nounset -o pipefail -c
GO ?= go
BIN := $(CURDIR)/bin
# Each fuzz target runs this many inputs in `make test` (seeds always run in go
# test). A count, not a duration: with a duration, Go 1.26's fuzz coordinator
# can fail a target with "context deadline exceeded" as time runs out
# (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 20000x
# Whole-suite timeout for go test.
TEST_TIMEOUT ?= 45m

.PHONY: all build test verify vet fmt-check codegen verify-codegen controlplane fuzz bench demo clean

all: build

## build: static binaries into bin/ (bin/vidra-operator is the binary the Dockerfile builds)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X main.version=$(VERSION) -X main.buildVersion=$(VERSION)' -o $(BIN)/ ./cmd/...

## controlplane: build etcd, kube-apiserver, kube-controller-manager and kubectl (cached)
controlplane:
	./hack/controlplane/build.sh >/dev/null

## codegen: regenerate clients, deepcopy and CRDs from apis/
codegen:
	./hack/update-codegen.sh

verify-codegen:
	./hack/verify-codegen.sh

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' | grep -v -e '^generated/' -e 'zz_generated') 2>/dev/null)"; \
	  if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

## verify: formatting, vet and generated code
verify: fmt-check vet verify-codegen

## fuzz: run each fuzz target briefly
fuzz:
	./hack/fuzz.sh $(FUZZTIME)

## test: everything CI runs — verification, the full test suite on real control planes, brief fuzzing
test: verify controlplane helm chromium git
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) --no-print-directory fuzz

## bench: benchmarks (numbers go into issue notes, never asserted)
bench: controlplane
	$(GO) test -run '^$$' -bench . -benchmem ./infrahub/... ./controllers/...
	$(GO) test -run '^$$' -bench . -benchtime 40x -timeout 10m ./test/webhook/
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./test/bench/

clean:
	rm -rf $(BIN)

## helm: build helm from the Go module proxy into .cache/helm (the chart tests do it too)
.PHONY: helm
helm:
	./hack/helm.sh >/dev/null

## chromium: install Debian's chromium when missing, for the dashboard's browser test (test/ui does it too)
.PHONY: chromium
chromium:
	./hack/chromium.sh >/dev/null

## git: install Debian's git when missing, for the loopback Git server of the Git source's tests (test/gitserver does it too)
.PHONY: git
git:
	./hack/git.sh >/dev/null

## demo: local control plane + fake Infrahub + the operator; `make demo KUBECONFIG=path` uses your cluster (asks first)
demo: build
	DEMO_KUBECONFIG='$(if $(filter command line,$(origin KUBECONFIG)),$(KUBECONFIG))' DEMO_SKIP_BUILD=1 ./hack/demo.sh
