# sluice — see README.md. Every target works on a fresh machine with Go.
SHELL := /bin/bash
GO ?= go
BIN := bin/sluice
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: all build docs test testdeps test-hostile mutation vet race demo bench bench-fleet bench-canary bench-analysis testbin testbin-flux testbin-argo fuzz fmt clean docker e2e

all: build

build:
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sluice

## docs: the CLI reference in docs/cli/, from the commands themselves (a
## test fails when it is out of date).
docs: build
	rm -rf docs/cli && env -u SOPS_AGE_KEY_FILE $(BIN) docs docs/cli

## test: vet, then every test with the race detector; the e2e stories run
## last, on their own, so their timing does not compete with the other
## packages' control planes.
test: testdeps testbin vet
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v '/e2e')
	$(MAKE) e2e

## e2e: the user's stories, then the traffic stories (real requests through
## Traefik, in a private network namespace), which print the "traffic:"
## summary line (also part of make test).
e2e: testdeps testbin
	$(GO) test -race -count=1 -timeout 30m ./e2e/
	$(GO) test -race -count=1 -timeout 20m -v ./e2e/traffic/ 2>&1 | grep -v -e '^=== ' -e 'Failed to watch' ; test $${PIPESTATUS[0]} -eq 0

vet:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi

## demo: the agent's main job on an embedded local setup: a real control
## plane, Traefik as the Gateway, pods that answer, a Git server on loopback,
## sluice agent and users at 50 requests/s; a canary walked through its
## steps, a gate approved, a promotion, and a bad version stopped.
demo: build testbin testdeps
	$(GO) run ./hack/demo

## bench-analysis: the compare judge against threshold checks on real
## traffic: a version with +2 pp errors, one with +50 ms, 20 good ones;
## prints the "analysis:" line (docs/benchmarks.md). About 15 minutes.
bench-analysis: testdeps testbin
	$(GO) test -count=1 -timeout 40m -run '^$$' -bench Analysis -benchtime 1x -v ./e2e/traffic/ 2>&1 | grep -v -e '^=== ' -e 'Failed to watch' ; test $${PIPESTATUS[0]} -eq 0

## bench: Go benchmarks, sluice render vs kubectl kustomize, reconcile vs
## kubectl apply --server-side on the real control plane.
bench: build testbin
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./render/ | tee bin/bench-render.txt
	./hack/bench-render.sh
	$(GO) test -run '^$$' -bench 'CompareGit|CloneMemory' -benchtime 1x ./gitsource/
	$(GO) run ./hack/benchapply

## bench-fleet: sluice vs Flux keeping N apps applied (N=100; N=1000 and
## TOOLS=sluice accepted), on one real control plane and Git server; writes
## docs/benchmarks.md. SHARDS=3: three sluice replicas with --shards 3.
N ?= 100
TOOLS ?= sluice,flux
SHARDS ?= 0
bench-fleet: build testbin testbin-flux
	N=$(N) TOOLS=$(TOOLS) SHARDS=$(SHARDS) $(GO) run ./hack/benchfleet

## bench-canary: the same canary with sluice and Argo Rollouts v1.10.2.
bench-canary: build testbin testbin-argo
	$(GO) run ./hack/benchcanary

testbin-flux:
	./hack/testbin-flux.sh

testbin-argo:
	./hack/testbin-argo.sh

## testdeps: the Debian packages the tests run (openssh-server, prometheus,
## time), installed with apt-get when missing (as root; otherwise exit 2
## with the command to run).
testdeps:
	./hack/testdeps.sh

## testbin: build the real control-plane binaries the cluster tests use,
## and the kubectl they run.
testbin:
	./hack/testbin.sh

## fuzz: each fuzz target for FUZZTIME (the release parser, the
## kustomization pre-scan, the render budgets, the state machine).
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./api/v1alpha1 -run '^$$' -fuzz FuzzParseRelease -fuzztime $(FUZZTIME)
	$(GO) test ./render -run '^$$' -fuzz FuzzKustomizationScan -fuzztime $(FUZZTIME)
	$(GO) test ./render -run '^$$' -fuzz FuzzYAMLCost -fuzztime $(FUZZTIME)
	$(GO) test ./strategy -run '^$$' -fuzz FuzzStateMachine -fuzztime $(FUZZTIME)

## mutation: the mutation score of the decision code's tests (gremlins);
## long, so not part of make test (docs/testing.md).
mutation:
	./hack/mutation.sh

## test-hostile: the hostile-input corpus (testdata/hostile) through
## sluice validate, the render and a real agent beside 50 healthy releases;
## prints the summary line (the same tests run in make test).
test-hostile: testdeps testbin
	./hack/test-hostile.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

docker:
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$$(git rev-parse HEAD) --build-arg DATE=$$(date -u +%Y-%m-%dT%H:%M:%SZ) -t sluice:$(VERSION) .

clean:
	rm -rf bin/sluice bin/bench-*
