# nsdebug — see README.md. Integration tests, testbed, demo and bench need root.
GO        ?= go
BIN       ?= bin/nsdebug
PKG       := github.com/nsdebug/nsdebug
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE      ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS   := -s -w -X $(PKG)/internal/version.Version=$(VERSION) -X $(PKG)/internal/version.Commit=$(COMMIT) -X $(PKG)/internal/version.Date=$(DATE)
# Pinned so a new linter release can't turn a green main red.
GOLANGCI  ?= $(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
# Each fuzz target runs this long; longer in CI, where time is there.
FUZZTIME  ?= $(if $(filter true,$(CI)),45s,15s)
# -p 1: packages one at a time. Several tests compare the host's own netns
# (links, sysctls) with ground truth, which other packages' container fixtures
# would change under them.
TESTFLAGS ?= -count=1 -timeout 30m -p 1

.PHONY: all build test test-unit test-fuzz testbed testbed-kube image lint demo bench examples clean tidy-check

all: build

# bin/kubectl-nsdebug is the kubectl plugin (client-go lives only there).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/nsdebug
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(dir $(BIN))kubectl-nsdebug ./cmd/kubectl-nsdebug

# Everything: unit tests, integration tests on the real test bed (root), and
# every fuzz target for a bounded time. With CI=true a missing test bed fails.
# The reliability suite runs last and alone: it snapshots the host before and
# after itself, so other packages' fixtures must not come and go meanwhile.
test: build
	NSDEBUG_BIN=$(CURDIR)/$(BIN) $(GO) test $(TESTFLAGS) $$($(GO) list ./... | grep -v /test/reliability)
	NSDEBUG_BIN=$(CURDIR)/$(BIN) $(GO) test $(TESTFLAGS) -v ./test/reliability
	$(MAKE) test-fuzz

# Unit tests only: no root, no test bed (integration tests skip outside CI).
test-unit:
	$(GO) test -count=1 -short ./...

# Each fuzz target for $(FUZZTIME); crashers land in testdata/fuzz as seeds.
test-fuzz:
	@set -e; for t in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for f in $$(grep -h '^func Fuzz' $$t/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
			echo "fuzz $$t $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$t; \
		done; \
	done

testbed:
	scripts/testbed.sh

# The image of nsdebug for Kubernetes (the node helper pod): FROM scratch with
# the static bin/nsdebug at /usr/local/bin/nsdebug and busybox-static's
# applets in /bin, idle `sleep` as command. Tagged $(IMAGE_REPO):$(VERSION) and
# $(IMAGE_REPO):dev in dockerd; saved to $(IMAGE_TAR) for containerd.
IMAGE_REPO ?= nsdebug/nsdebug
IMAGE_TAR  ?= bin/nsdebug-image.tar
image: build
	@set -e; ctx=$$(mktemp -d); trap 'rm -rf "$$ctx"' EXIT; \
	old=$$(docker image inspect -f '{{.Id}}' $(IMAGE_REPO):$(VERSION) 2>/dev/null || true); \
	cp $(BIN) "$$ctx/nsdebug"; cp /bin/busybox "$$ctx/busybox"; \
	printf '%s\n' 'FROM scratch' 'COPY busybox /bin/busybox' \
		'RUN ["/bin/busybox", "--install", "-s", "/bin"]' \
		'COPY nsdebug /usr/local/bin/nsdebug' \
		'CMD ["/bin/sleep", "2147483647"]' >"$$ctx/Dockerfile"; \
	docker build -q -t $(IMAGE_REPO):$(VERSION) -t $(IMAGE_REPO):dev "$$ctx" >/dev/null; \
	new=$$(docker image inspect -f '{{.Id}}' $(IMAGE_REPO):$(VERSION)); \
	if [ -n "$$old" ] && [ "$$old" != "$$new" ]; then docker rmi "$$old" >/dev/null 2>&1 || true; fi
	docker save -o $(IMAGE_TAR) $(IMAGE_REPO):$(VERSION) $(IMAGE_REPO):dev
	@echo "image: $(IMAGE_REPO):$(VERSION) (and :dev), saved to $(IMAGE_TAR)"

# A real one-node Kubernetes (etcd, kube-apiserver, kubelet on a containerd of
# its own) with bb:local and the nsdebug image imported; see scripts/testbed-kube.sh.
testbed-kube: image
	NSDEBUG_IMAGE=$(IMAGE_REPO):$(VERSION) NSDEBUG_IMAGE_TAR=$(IMAGE_TAR) scripts/testbed-kube.sh

lint: tidy-check
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOLANGCI) run ./...

tidy-check:
	@cp go.mod /tmp/nsdebug-go.mod.bak; cp go.sum /tmp/nsdebug-go.sum.bak; \
	$(GO) mod tidy; \
	if ! git diff --quiet -- go.mod go.sum; then echo "go mod tidy changes go.mod/go.sum"; git diff --stat -- go.mod go.sum; \
		cp /tmp/nsdebug-go.mod.bak go.mod; cp /tmp/nsdebug-go.sum.bak go.sum; exit 1; fi

demo: build
	scripts/demo.sh $(BIN)

bench: build
	NSDEBUG=$(CURDIR)/$(BIN) BENCH_README=README.md scripts/bench.sh

# Regenerates the README's command examples from real runs on the test bed.
examples: build
	NSDEBUG=$(CURDIR)/$(BIN) scripts/examples.sh README.md

clean:
	rm -rf bin bench-results.md
