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
# Build tags for every build, test and lint of nsdebug. grpcnotrace leaves out
# golang.org/x/net/trace, which links html/template and turns off the linker's
# dead-method elimination: 6 MB and ~0.4 ms of every start-up (issue 13).
TAGS      ?= grpcnotrace

# Install locations (make install PREFIX=/usr DESTDIR=/tmp/root). Each shell's
# completion goes where that shell looks for it; PowerShell has no such place
# (see the README).
PREFIX      ?= /usr/local
DESTDIR     ?=
BUILD       ?= build
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
# Debian's zsh looks in vendor-completions for packaged files, and in
# site-functions under /usr/local.
ZSHCOMPDIR  ?= $(if $(filter /usr,$(PREFIX)),$(PREFIX)/share/zsh/vendor-completions,$(PREFIX)/share/zsh/site-functions)
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
# DOCKER_PLUGIN=1 also installs nsdebug as a Docker CLI plugin (docker nsdebug).
DOCKER_PLUGIN     ?= 0
DOCKER_PLUGIN_DIR ?= $(PREFIX)/libexec/docker/cli-plugins

.PHONY: all build test test-unit test-fuzz test-profiles testbed testbed-kube image lint demo bench examples clean tidy-check man completions install uninstall package package-test

all: build

# bin/kubectl-nsdebug is the kubectl plugin (client-go lives only there).
build:
	CGO_ENABLED=0 $(GO) build -tags '$(TAGS)' -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/nsdebug
	CGO_ENABLED=0 $(GO) build -tags '$(TAGS)' -trimpath -ldflags '$(LDFLAGS)' -o $(dir $(BIN))kubectl-nsdebug ./cmd/kubectl-nsdebug

# Everything: unit tests, integration tests on the real test bed (root), and
# every fuzz target for a bounded time. With CI=true a missing test bed fails.
# The reliability suite runs last and alone: it snapshots the host before and
# after itself, so other packages' fixtures must not come and go meanwhile.
test: build
	NSDEBUG_BIN=$(CURDIR)/$(BIN) $(GO) test -tags '$(TAGS)' $(TESTFLAGS) $$($(GO) list ./... | grep -v /test/reliability)
	NSDEBUG_BIN=$(CURDIR)/$(BIN) $(GO) test -tags '$(TAGS)' $(TESTFLAGS) -v ./test/reliability
	$(MAKE) test-fuzz

# Unit tests only: no root, no test bed (integration tests skip outside CI).
test-unit:
	$(GO) test -tags '$(TAGS)' -count=1 -short ./...

# Each fuzz target for $(FUZZTIME); crashers land in testdata/fuzz as seeds
# (scripts/test-fuzz.sh also tells Go 1.26's end-of-fuzztime race from a finding).
test-fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) TAGS='$(TAGS)' scripts/test-fuzz.sh

# The Debian profile by default; TESTBED=current for Docker 29, containerd 2
# and runc 1.5 (built once from the Go module proxy, cached by version).
testbed:
	scripts/testbed.sh

# The integration and reliability suites on each profile in turn (default
# debian, then current; PROFILES="current" for one), ending on debian.
PROFILES ?= debian current
test-profiles: build
	NSDEBUG_BIN=$(CURDIR)/$(BIN) GO=$(GO) TESTFLAGS='-tags $(TAGS) $(TESTFLAGS)' scripts/test-profiles.sh $(PROFILES)

# The image of nsdebug for Kubernetes (the node helper pod): FROM scratch with
# the static bin/nsdebug at /usr/local/bin/nsdebug and busybox-static's
# applets in /bin, idle `sleep` as command. Tagged $(IMAGE_REPO):$(VERSION) and
# $(IMAGE_REPO):dev in dockerd; saved to $(IMAGE_TAR) for containerd.
IMAGE_REPO ?= nsdebug/nsdebug
IMAGE_TAR  ?= bin/nsdebug-image.tar
# A clean VERSION's image is built once (builds differ only in their date).
image: build
	@set -e; case "$(VERSION)" in *-dirty) ;; *) \
		if docker image inspect $(IMAGE_REPO):$(VERSION) >/dev/null 2>&1 && [ -s $(IMAGE_TAR) ] && \
			tar -xOf $(IMAGE_TAR) manifest.json | grep '"$(IMAGE_REPO):$(VERSION)"' >/dev/null; then \
			echo "image: $(IMAGE_REPO):$(VERSION) up to date ($(IMAGE_TAR))"; exit 0; fi;; esac; \
	ctx=$$(mktemp -d); trap 'rm -rf "$$ctx"' EXIT; \
	old=$$(docker image inspect -f '{{.Id}}' $(IMAGE_REPO):$(VERSION) 2>/dev/null || true); \
	cp $(BIN) "$$ctx/nsdebug"; cp /bin/busybox "$$ctx/busybox"; \
	printf '%s\n' 'FROM scratch' 'COPY busybox /bin/busybox' \
		'RUN ["/bin/busybox", "--install", "-s", "/bin"]' \
		'COPY nsdebug /usr/local/bin/nsdebug' \
		'CMD ["/bin/sleep", "2147483647"]' >"$$ctx/Dockerfile"; \
	docker build -q -t $(IMAGE_REPO):$(VERSION) -t $(IMAGE_REPO):dev "$$ctx" >/dev/null; \
	new=$$(docker image inspect -f '{{.Id}}' $(IMAGE_REPO):$(VERSION)); \
	if [ -n "$$old" ] && [ "$$old" != "$$new" ]; then docker rmi "$$old" >/dev/null 2>&1 || true; fi; \
	docker save -o $(IMAGE_TAR) $(IMAGE_REPO):$(VERSION) $(IMAGE_REPO):dev; \
	echo "image: $(IMAGE_REPO):$(VERSION) (and :dev), saved to $(IMAGE_TAR)"

# A real one-node Kubernetes (etcd, kube-apiserver, kubelet on a containerd of
# its own) with bb:local and the nsdebug image imported; see scripts/testbed-kube.sh.
testbed-kube: image
	NSDEBUG_IMAGE=$(IMAGE_REPO):$(VERSION) NSDEBUG_IMAGE_TAR=$(IMAGE_TAR) scripts/testbed-kube.sh

lint: tidy-check
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags '$(TAGS)' ./...
	$(GOLANGCI) run --build-tags '$(TAGS)' ./...
	@# The packager is a module of its own: ./... above does not reach it.
	cd internal/tools/package && $(GO) vet ./... && $(GOLANGCI) run ./...

tidy-check:
	@cp go.mod /tmp/nsdebug-go.mod.bak; cp go.sum /tmp/nsdebug-go.sum.bak; \
	$(GO) mod tidy; \
	if ! git diff --quiet -- go.mod go.sum; then echo "go mod tidy changes go.mod/go.sum"; git diff --stat -- go.mod go.sum; \
		cp /tmp/nsdebug-go.mod.bak go.mod; cp /tmp/nsdebug-go.sum.bak go.sum; exit 1; fi

demo: build
	scripts/demo.sh $(BIN)

# testbed-kube: the kube section's helper pods run this version's image, which
# testbed-kube imports into the cluster (idempotent, seconds when it is up).
bench: build testbed-kube
	NSDEBUG=$(CURDIR)/$(BIN) BENCH_README=README.md scripts/bench.sh

# Regenerates the README's command examples from real runs on the test bed.
examples: build
	NSDEBUG=$(CURDIR)/$(BIN) scripts/examples.sh README.md

# Man pages for every command of the cobra tree, into $(BUILD)/man.
man:
	rm -rf $(BUILD)/man
	$(GO) run ./internal/tools/man -dir $(BUILD)/man -version $(VERSION)

# Completion scripts (cobra's, calling `nsdebug __complete` on every TAB).
completions: build
	mkdir -p $(BUILD)/completions
	$(BIN) completion bash >$(BUILD)/completions/nsdebug
	$(BIN) completion zsh >$(BUILD)/completions/_nsdebug
	$(BIN) completion fish >$(BUILD)/completions/nsdebug.fish
	$(BIN) completion powershell >$(BUILD)/completions/nsdebug.ps1

install: build man completions
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/nsdebug
	install -d $(DESTDIR)$(MANDIR)/man1
	install -m 0644 $(BUILD)/man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -D -m 0644 $(BUILD)/completions/nsdebug $(DESTDIR)$(BASHCOMPDIR)/nsdebug
	install -D -m 0644 $(BUILD)/completions/_nsdebug $(DESTDIR)$(ZSHCOMPDIR)/_nsdebug
	install -D -m 0644 $(BUILD)/completions/nsdebug.fish $(DESTDIR)$(FISHCOMPDIR)/nsdebug.fish
	if [ "$(DOCKER_PLUGIN)" = 1 ]; then \
		install -d $(DESTDIR)$(DOCKER_PLUGIN_DIR) && \
		ln -sf $(BINDIR)/nsdebug $(DESTDIR)$(DOCKER_PLUGIN_DIR)/docker-nsdebug; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/nsdebug $(DESTDIR)$(MANDIR)/man1/nsdebug.1 $(DESTDIR)$(MANDIR)/man1/nsdebug-*.1 \
		$(DESTDIR)$(BASHCOMPDIR)/nsdebug $(DESTDIR)$(ZSHCOMPDIR)/_nsdebug $(DESTDIR)$(FISHCOMPDIR)/nsdebug.fish \
		$(DESTDIR)$(DOCKER_PLUGIN_DIR)/docker-nsdebug

# .deb and .rpm (nFPM as a Go library, internal/tools/package: a module of its
# own) of an install tree with PREFIX=/usr and the Docker CLI plugin link.
PKGROOT = $(BUILD)/pkgroot
package: build man completions
	rm -rf $(PKGROOT) $(BUILD)/packages
	$(MAKE) --no-print-directory install PREFIX=/usr DESTDIR=$(CURDIR)/$(PKGROOT) DOCKER_PLUGIN=1
	gzip -9n $(PKGROOT)/usr/share/man/man1/*.1
	cd internal/tools/package && $(GO) run . -root $(CURDIR)/$(PKGROOT) -out $(CURDIR)/$(BUILD)/packages \
		-readme $(CURDIR)/README.md -license $(CURDIR)/LICENSE

# Installs the .deb on this machine, checks it (nsdebug version, man -w,
# bash-completion finds the script, docker finds the plugin), removes it and
# checks nothing is left. Root; CI runs it.
package-test: package
	scripts/package-test.sh $(BUILD)/packages/nsdebug_*_amd64.deb

clean:
	rm -rf bin $(BUILD) bench-results.md
