# shellcheck shell=bash
# Builds the "current" test bed profile's runtimes from the Go module proxy at
# pinned versions, each cached under $CACHE/<name>-<version>/ so a second run
# builds nothing. Sourced by scripts/testbed.sh (log, die and LOGS come from it).

CACHE=${NSDEBUG_TESTBED_CACHE:-/var/cache/nsdebug-testbed}
RUNC_VERSION=v1.5.3
CONTAINERD_VERSION=v2.4.2
MOBY_VERSION=v2.0.0-beta.24 # github.com/moby/moby/v2: Docker Engine 29, API 1.56

RUNC_DIR=$CACHE/runc-$RUNC_VERSION
CONTAINERD_DIR=$CACHE/containerd-$CONTAINERD_VERSION
DOCKERD_DIR=$CACHE/dockerd-$MOBY_VERSION

# Builds run niced: the machine's cores are shared.
gobuild_env() { nice -n 10 env PATH="/usr/local/go/bin:$PATH" GOFLAGS=-buildvcs=false "$@"; }

build_runc() {
	[ -x "$RUNC_DIR/runc" ] && return 0
	# runc's go.mod has replace directives, so `go install pkg@version` refuses
	# it: build from the downloaded module source. cgo and the seccomp tag are
	# required (Docker sends a seccomp profile; without the tag every container
	# fails with "seccomp: config provided but seccomp not supported").
	local p need=()
	for p in libseccomp-dev pkg-config gcc libc6-dev; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "ok installed" >/dev/null || need+=("$p")
	done
	if [ ${#need[@]} -gt 0 ]; then
		log "installing ${need[*]} (to build runc)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >>"$LOGS/apt.log" 2>&1 \
			|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >>"$LOGS/apt.log" 2>&1; } \
			|| die "apt-get install ${need[*]} failed; see $LOGS/apt.log"
	fi
	log "building runc $RUNC_VERSION (cgo, seccomp) into $RUNC_DIR"
	local tmp src
	tmp=$(mktemp -d)
	src=$(cd "$tmp" && gobuild_env go mod download -json "github.com/opencontainers/runc@$RUNC_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$src" ] || die "go mod download of runc $RUNC_VERSION failed"
	cp -r "$src" "$tmp/runc" && chmod -R u+w "$tmp/runc"
	mkdir -p "$RUNC_DIR.tmp"
	(cd "$tmp/runc" && gobuild_env CGO_ENABLED=1 go build -trimpath -tags seccomp \
		-ldflags "-s -w -X main.version=${RUNC_VERSION#v}" -o "$RUNC_DIR.tmp/runc" .) >"$LOGS/build-runc.log" 2>&1 \
		|| { tail -20 "$LOGS/build-runc.log" >&2; rm -rf "$tmp" "$RUNC_DIR.tmp"; die "runc build failed"; }
	rm -rf "$tmp" "$RUNC_DIR"
	mv "$RUNC_DIR.tmp" "$RUNC_DIR"
}

build_containerd() {
	[ -x "$CONTAINERD_DIR/containerd" ] && [ -x "$CONTAINERD_DIR/containerd-shim-runc-v2" ] && [ -x "$CONTAINERD_DIR/ctr" ] && return 0
	log "building containerd $CONTAINERD_VERSION (containerd, its shim, ctr) into $CONTAINERD_DIR"
	local m=github.com/containerd/containerd/v2
	mkdir -p "$CONTAINERD_DIR.tmp"
	(cd / && gobuild_env GOBIN="$CONTAINERD_DIR.tmp" CGO_ENABLED=0 go install -trimpath -tags no_btrfs \
		-ldflags "-s -w -X $m/version.Version=$CONTAINERD_VERSION" \
		"$m/cmd/containerd@$CONTAINERD_VERSION" "$m/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" "$m/cmd/ctr@$CONTAINERD_VERSION") \
		>"$LOGS/build-containerd.log" 2>&1 \
		|| { tail -20 "$LOGS/build-containerd.log" >&2; rm -rf "$CONTAINERD_DIR.tmp"; die "containerd build failed"; }
	rm -rf "$CONTAINERD_DIR"
	mv "$CONTAINERD_DIR.tmp" "$CONTAINERD_DIR"
}

build_dockerd() {
	[ -x "$DOCKERD_DIR/dockerd" ] && [ -x "$DOCKERD_DIR/docker-proxy" ] && return 0
	log "building dockerd $MOBY_VERSION (dockerd, docker-proxy) into $DOCKERD_DIR"
	local m=github.com/moby/moby/v2
	mkdir -p "$DOCKERD_DIR.tmp"
	(cd / && gobuild_env GOBIN="$DOCKERD_DIR.tmp" CGO_ENABLED=0 go install -trimpath -tags exclude_graphdriver_btrfs \
		-ldflags "-s -w -X $m/dockerversion.Version=$MOBY_VERSION" \
		"$m/cmd/dockerd@$MOBY_VERSION" "$m/cmd/docker-proxy@$MOBY_VERSION") \
		>"$LOGS/build-dockerd.log" 2>&1 \
		|| { tail -20 "$LOGS/build-dockerd.log" >&2; rm -rf "$DOCKERD_DIR.tmp"; die "dockerd build failed"; }
	rm -rf "$DOCKERD_DIR"
	mv "$DOCKERD_DIR.tmp" "$DOCKERD_DIR"
}

# One at a time: the machine's two cores are shared.
build_current() {
	local t0=$SECONDS
	build_runc
	build_containerd
	build_dockerd
	log "current runtimes ready in $CACHE ($((SECONDS - t0)) s)"
}
