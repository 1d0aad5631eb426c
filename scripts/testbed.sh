#!/usr/bin/env bash
# Makes this machine a small container host for nsdebug's integration tests,
# idempotently: dockerd, a standalone containerd with its CRI plugin and a CNI
# bridge, rootful Podman's API service, and a busybox image built locally (no
# registry). Two profiles, one live at a time (the two dockerds would fight
# over docker0 and the DOCKER* chains):
#
#   debian   Debian 12's packages: Docker 20.10, containerd 1.6, runc 1.1
#   current  today's releases, built from the Go module proxy at pinned
#            versions and cached under /var/cache/nsdebug-testbed/<name>-<version>:
#            Docker 29 (github.com/moby/moby/v2), containerd 2.4, runc 1.5
#   Podman is Debian's 4.3 in both, run with the profile's runc; it stays up
#   across a profile switch (it shares nothing with dockerd or containerd).
#
#   scripts/testbed.sh [--profile P] [up]  bring profile P up (default: $TESTBED,
#                                  else debian), first stopping the other one
#   scripts/testbed.sh status      which profile is live; exit 1 if incomplete
#   scripts/testbed.sh stop        stop the live profile and podman, leave nothing of them
#   scripts/testbed.sh build       only build the current profile's runtimes
#   scripts/testbed.sh stop-podman stop only podman (up brings it back)
set -euo pipefail

STATE=/var/lib/nsdebug-testbed
LOGS=/var/log/nsdebug-testbed
CONF=/etc/nsdebug-testbed
CTRD_SOCK=/run/containerd/containerd.sock
CTRD_PIDFILE=$STATE/containerd.pid
PROFILE_FILE=$STATE/profile
DOCKER_PIDFILE=/var/run/docker.pid
IMAGE=bb:local                       # docker's name
CTRD_IMAGE=docker.io/library/bb:local  # containerd's (normalised) name
CNI_CONF=/etc/cni/net.d/10-nsdebug-testbed.conflist
PROFILES="debian current"
PODMAN_SOCK=/run/podman/podman.sock
PODMAN_PIDFILE=$STATE/podman.pid
PODMAN_IMAGE=localhost/bb:local
PODMAN_CONF=/etc/containers/containers.conf
PODMAN_BRIDGE=cni-podman0 # Debian's podman: CNI backend, /etc/cni/net.d/87-podman-bridge.conflist, 10.88.0.0/16
# Rootless Podman's test user. Its containers use --network none: rootless
# networking (slirp4netns) needs /dev/net/tun, which is 0600 root here.
ROOTLESS_USER=nsdbg-rootless

log() { printf 'testbed: %s\n' "$*" >&2; }
die() { printf 'testbed: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (try: sudo make testbed)"

# shellcheck source=lib/current-runtimes.sh
. "$(dirname "$0")/lib/current-runtimes.sh"
# shellcheck source=lib/netns-dir.sh
. "$(dirname "$0")/lib/netns-dir.sh"

cmd=up
profile=${TESTBED:-}
while [ $# -gt 0 ]; do
	case $1 in
	--profile) [ $# -ge 2 ] || die "--profile needs a value: $PROFILES"; profile=$2; shift 2 ;;
	--profile=*) profile=${1#--profile=}; shift ;;
	up|status|stop|build|stop-podman) cmd=$1; shift ;;
	-h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument $1 (usage: scripts/testbed.sh [--profile debian|current] [up|status|stop|build|stop-podman])" ;;
	esac
done
profile=${profile:-debian}
case " $PROFILES " in *" $profile "*) ;; *) die "unknown profile '$profile' (profiles: $PROFILES)" ;; esac

mkdir -p "$STATE" "$LOGS" "$CONF"

# Per-profile binaries, state and config. The profiles share the sockets and
# the exec root (/var/run/docker), as a host that upgraded would, but not
# their data: each dockerd and containerd keeps its own root directory.
set_profile_vars() {
	case $1 in
	debian)
		DOCKERD=/usr/sbin/dockerd
		DOCKERD_ARGS=()
		DOCKERD_PATH=$PATH
		CONTAINERD=/usr/bin/containerd
		CONTAINERD_PATH=$PATH
		CTRD_CONF=$CONF/containerd.toml
		;;
	current)
		DOCKERD=$DOCKERD_DIR/dockerd
		# Docker 29 needs a newer runc than Debian's 1.1 (which fails every
		# start with `namespace {"time" ""} does not exist`); dockerd's own
		# containerd and its shim come from containerd 2 (first on PATH).
		DOCKERD_ARGS=(--data-root "$STATE/current/docker"
			--add-runtime "nsdebug-runc=$RUNC_DIR/runc" --default-runtime nsdebug-runc
			--userland-proxy-path "$DOCKERD_DIR/docker-proxy")
		DOCKERD_PATH=$CONTAINERD_DIR:$RUNC_DIR:$DOCKERD_DIR:$PATH
		CONTAINERD=$CONTAINERD_DIR/containerd
		CONTAINERD_PATH=$CONTAINERD_DIR:$RUNC_DIR:$PATH
		CTRD_CONF=$CONF/containerd-current.toml
		;;
	esac
}

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pidfile_pid() { [ -s "$1" ] && cat "$1" || true; }
exe_of() { readlink "/proc/$1/exe" 2>/dev/null || true; }

# The standalone containerd is the one started with one of this script's
# configs; the kube test bed's containerd (its own config) is never touched.
standalone_containerd_pid() {
	local pid
	pid=$(pidfile_pid "$CTRD_PIDFILE")
	if pid_alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -E -- "--config $CONF/containerd(-current)?\.toml" >/dev/null; then
		echo "$pid"; return
	fi
	# Started before the pidfile existed: find it by its exact command line.
	for pid in $(pgrep -x containerd || true); do
		if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -E -- "^[^ ]*containerd --config $CONF/containerd(-current)?\.toml $" >/dev/null; then
			echo "$pid"; return
		fi
	done
}

dockerd_pid() {
	local pid
	pid=$(pidfile_pid "$DOCKER_PIDFILE")
	pid_alive "$pid" && case $(exe_of "$pid") in */dockerd) echo "$pid" ;; esac
	true
}

# live_profile names the profile whose dockerd runs (by its binary), else
# the one last brought up, else "none".
live_profile() {
	local pid
	pid=$(dockerd_pid)
	if [ -n "$pid" ]; then
		case $(exe_of "$pid") in
		"$CACHE"/dockerd-*) echo current ;;
		*) echo debian ;;
		esac
		return
	fi
	if [ -s "$PROFILE_FILE" ]; then cat "$PROFILE_FILE"; else echo none; fi
}

status() {
	local ok=0 live
	live=$(live_profile)
	echo "profile: $live"
	if docker info >/dev/null 2>&1; then
		echo "dockerd: running, $(docker version -f 'Docker {{.Server.Version}} (API {{.Server.APIVersion}}), runtime {{range .Server.Components}}{{if eq .Name "runc" "nsdebug-runc"}}runc {{.Version}}{{end}}{{end}}' 2>/dev/null)"
	else echo "dockerd: NOT running"; ok=1; fi
	if ctr --address "$CTRD_SOCK" version >/dev/null 2>&1; then
		echo "containerd: running at $CTRD_SOCK, $(ctr --address "$CTRD_SOCK" version 2>/dev/null | awk '/^Server:/{s=1} s && /Version:/{print $2; exit}')"
	else echo "containerd: NOT running"; ok=1; fi
	if ctr --address "$CTRD_SOCK" -n k8s.io images ls -q 2>/dev/null | grep -x "$CTRD_IMAGE" >/dev/null; then echo "image: $CTRD_IMAGE in k8s.io"; else echo "image: missing in k8s.io"; ok=1; fi
	if docker image inspect "$IMAGE" >/dev/null 2>&1; then echo "image: $IMAGE in docker"; else echo "image: missing in docker"; ok=1; fi
	if podman_answers; then
		echo "podman: running at $PODMAN_SOCK, $(podman_remote version --format 'Podman {{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null), $(podman info --format 'runtime {{.Host.OCIRuntime.Path}}, network backend {{.Host.NetworkBackend}}' 2>/dev/null)"
	else echo "podman: NOT running"; ok=1; fi
	if command -v podman >/dev/null && podman image exists "$PODMAN_IMAGE" 2>/dev/null; then echo "image: $PODMAN_IMAGE in podman"; else echo "image: missing in podman"; ok=1; fi
	if id "$ROOTLESS_USER" >/dev/null 2>&1 && as_rootless podman image exists "$PODMAN_IMAGE" 2>/dev/null; then
		echo "podman rootless: user $ROOTLESS_USER (UID $(id -u "$ROOTLESS_USER")), $PODMAN_IMAGE in its storage"
	else echo "podman rootless: user $ROOTLESS_USER or its image missing"; ok=1; fi
	return $ok
}

wait_for() { # seconds, description, command...
	local n=$(( $1 * 10 )) what=$2; shift 2
	for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	die "$what did not come up; see $LOGS"
}

wait_gone() { # seconds, pid
	local n=$(( $1 * 10 ))
	for _ in $(seq "$n"); do pid_alive "$2" || return 0; sleep 0.1; done
	return 1
}

stop_pid() { # what, pid
	pid_alive "$2" || return 0
	log "stopping $1 (pid $2)"
	kill -TERM "$2" 2>/dev/null || true
	wait_gone 60 "$2" || { log "$1 did not stop in 60 s; killing it"; kill -KILL "$2" 2>/dev/null || true; wait_gone 10 "$2" || true; }
}

crictl_bin() {
	local c
	c=$(command -v crictl || true)
	[ -n "$c" ] || c=$(PATH="/usr/local/go/bin:$PATH" go env GOPATH)/bin/crictl
	if [ ! -x "$c" ]; then
		log "installing crictl (go install) to remove the CRI pods"
		PATH="/usr/local/go/bin:$PATH" go install sigs.k8s.io/cri-tools/cmd/crictl@v1.37.0 >&2
	fi
	echo "$c"
}

# Undoes what the live profile made: its containers and pods (their netns and
# CNI addresses with them), its daemons, docker0 and the bridges of Docker
# networks, the DOCKER* iptables chains and nftables tables, stray mounts.
stop_all() {
	local live pid bridges=() n c
	live=$(live_profile)
	[ "$live" = none ] && return 0
	log "stopping the $live profile"
	if docker info >/dev/null 2>&1; then
		# Test fixtures first, so that dockerd does not restart them later;
		# the rest stop with dockerd.
		docker ps -aq --filter label=nsdebug-test=1 | xargs -r docker rm -f >/dev/null 2>&1 || true
		for n in $(docker network ls -q --filter driver=bridge 2>/dev/null); do
			c=$(docker network inspect -f '{{index .Options "com.docker.network.bridge.name"}}' "$n" 2>/dev/null || true)
			bridges+=("${c:-br-${n:0:12}}")
		done
	fi
	if ctr --address "$CTRD_SOCK" version >/dev/null 2>&1; then
		# containerd's shims outlive it: remove pods and containers through
		# it, so CNI tears the pods' netns and addresses down.
		c=$(crictl_bin)
		"$c" --runtime-endpoint "unix://$CTRD_SOCK" --image-endpoint "unix://$CTRD_SOCK" rmp -fa >/dev/null 2>&1 || true
		for n in $(ctr --address "$CTRD_SOCK" namespaces ls -q); do
			for c in $(ctr --address "$CTRD_SOCK" -n "$n" tasks ls -q 2>/dev/null); do
				ctr --address "$CTRD_SOCK" -n "$n" tasks kill -s KILL "$c" >/dev/null 2>&1 || true
				ctr --address "$CTRD_SOCK" -n "$n" tasks delete -f "$c" >/dev/null 2>&1 || true
			done
			ctr --address "$CTRD_SOCK" -n "$n" containers ls -q 2>/dev/null | xargs -r ctr --address "$CTRD_SOCK" -n "$n" containers delete >/dev/null 2>&1 || true
		done
	fi
	# Every container of this dockerd goes, not only the test fixtures: both
	# profiles' dockerds keep their containerd's state under /var/run/docker,
	# so a task left running (and its address on docker0) would outlive the
	# profile. Kill them through dockerd's containerd, which also reaches
	# tasks dockerd has already forgotten.
	local dctrd=/var/run/docker/containerd/containerd.sock
	if ctr --address "$dctrd" version >/dev/null 2>&1; then
		for c in $(ctr --address "$dctrd" -n moby tasks ls -q 2>/dev/null); do
			ctr --address "$dctrd" -n moby tasks kill -s KILL "$c" >/dev/null 2>&1 || true
		done
		for _ in $(seq 50); do
			[ -z "$(ctr --address "$dctrd" -n moby tasks ls -q 2>/dev/null | head -1)" ] && break
			for c in $(ctr --address "$dctrd" -n moby tasks ls -q 2>/dev/null); do
				ctr --address "$dctrd" -n moby tasks delete -f "$c" >/dev/null 2>&1 || true
			done
			sleep 0.2
		done
	fi
	stop_pid dockerd "$(dockerd_pid)"
	pid=$(pidfile_pid /var/run/docker/containerd/containerd.pid)
	stop_pid "dockerd's containerd" "$pid"
	stop_pid "standalone containerd" "$(standalone_containerd_pid)"
	rm -f "$CTRD_PIDFILE" "$CTRD_SOCK" "$CTRD_SOCK.ttrpc"
	for pid in $(pgrep -f "^[^ ]*containerd-shim-runc-v2 .*-address ($dctrd|$CTRD_SOCK)$" || true); do
		log "warning: shim $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-120)) outlived its containerd"
	done

	# Docker's bridges: the next dockerd makes docker0 afresh.
	for n in docker0 "${bridges[@]}"; do
		ip link show "$n" >/dev/null 2>&1 && ip link del "$n" 2>/dev/null || true
	done
	flush_docker_firewall docker0 "${bridges[@]}"
	# Mounts either daemon left under its directories (none, normally).
	local roots="/var/run/docker/ /run/docker/ /var/lib/docker/ $STATE/current/ /run/nsdebug-testbed/ /var/lib/containerd/ /run/containerd/"
	awk '{print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
		for r in $roots; do
			case $m/ in "$r"*) umount -l "$m" 2>/dev/null && log "unmounted $m"; break ;; esac
		done
	done || true
	echo none >"$PROFILE_FILE"
}

# Removes Docker's firewall: jumps from the built-in chains into DOCKER*
# chains and rules naming docker0, then the DOCKER* chains themselves (20.10
# has DOCKER, DOCKER-USER, DOCKER-ISOLATION-STAGE-*; 28+ adds DOCKER-FORWARD,
# DOCKER-BRIDGE, DOCKER-CT, DOCKER-INTERNAL and raw-table drops), and the
# nftables tables of Docker's nftables backend. CNI's and kube's chains stay.
flush_docker_firewall() { # bridge names
	local ipt t rule chain links
	links=$(IFS='|'; echo "$*")
	for ipt in iptables ip6tables; do
		command -v "$ipt" >/dev/null || continue
		for t in filter nat raw mangle; do
			"$ipt" -t "$t" -S 2>/dev/null | grep -E "^-A (INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) .*(-j DOCKER|-[io] ($links)( |\$))" | while read -r rule; do
				# shellcheck disable=SC2086 # a rule is words
				"$ipt" -t "$t" ${rule/#-A/-D} 2>/dev/null || true
			done || true
			for chain in $("$ipt" -t "$t" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^DOCKER/ {print $2}'); do
				"$ipt" -t "$t" -F "$chain" 2>/dev/null || true
			done
			for chain in $("$ipt" -t "$t" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^DOCKER/ {print $2}'); do
				"$ipt" -t "$t" -X "$chain" 2>/dev/null || true
			done
		done
	done
	if command -v nft >/dev/null; then
		for t in "ip docker-bridges" "ip6 docker-bridges"; do
			# shellcheck disable=SC2086
			nft list table $t >/dev/null 2>&1 && nft delete table $t || true
		done
	fi
}

install_packages() {
	local need=() p
	# libseccomp-dev, pkg-config, gcc and libc6-dev build the current profile's runc
	# (cgo, seccomp); installed with the rest so that build, which CI runs in the
	# background, never runs apt beside another apt.
	for p in docker.io containerd runc containernetworking-plugins busybox-static iptables iproute2 util-linux procps graphviz tcpdump tshark podman uidmap catatonit libseccomp-dev pkg-config gcc libc6-dev; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "ok installed" >/dev/null || need+=("$p")
	done
	# The shells the completion tests type into (cmd/complete_shells_integration_test.go).
	for p in zsh fish bash-completion; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "ok installed" >/dev/null || need+=("$p")
	done
	if [ ${#need[@]} -gt 0 ]; then
		log "installing ${need[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q >/dev/null
		apt-get install -y -q --no-install-recommends "${need[@]}" >"$LOGS/apt.log" 2>&1 || { tail -20 "$LOGS/apt.log" >&2; die "apt-get install failed"; }
	fi
}

write_cni_conf() {
	mkdir -p /etc/cni/net.d
	cat >"$CNI_CONF.tmp" <<'JSON'
{
  "cniVersion": "1.0.0",
  "name": "nsdebug-testbed",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "nsdbg-cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.99.0.0/16"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
	mv "$CNI_CONF.tmp" "$CNI_CONF"
}

# The standalone containerd's config, from the binary's own defaults. Both
# need the local sandbox image (no registry), restrict_oom_score_adj (no
# CAP_SYS_RESOURCE here: else every pod fails to write oom_score_adj) and
# Debian's CNI plugins in /usr/lib/cni.
write_containerd_conf() {
	case $profile in
	debian)
		containerd config default \
			| sed -e "s#sandbox_image = .*#sandbox_image = \"$CTRD_IMAGE\"#" \
			      -e 's#restrict_oom_score_adj = false#restrict_oom_score_adj = true#' \
			      -e 's#bin_dir = "/opt/cni/bin"#bin_dir = "/usr/lib/cni"#' \
			>"$CTRD_CONF.tmp"
		;;
	current)
		# containerd 2's config (version 3; 2.4 writes 4): CRI is split into
		# plugins."io.containerd.cri.v1.images" (pinned_images.sandbox) and
		# plugins."io.containerd.cri.v1.runtime" (restrict_oom_score_adj,
		# cni.bin_dirs, the runc runtime). Its own root and state keep its
		# metadata apart from containerd 1.6's.
		"$CONTAINERD" config default \
			| sed -e "s#^root = .*#root = '$STATE/current/containerd'#" \
			      -e "s#^state = .*#state = '/run/nsdebug-testbed/current/containerd'#" \
			      -e "s#^\( *sandbox = \).*#\1'$CTRD_IMAGE'#" \
			      -e 's#restrict_oom_score_adj = false#restrict_oom_score_adj = true#' \
			      -e "s#bin_dirs = \['/opt/cni/bin'\]#bin_dirs = ['/usr/lib/cni']#" \
			      -e "s#bin_dir = '/opt/cni/bin'#bin_dir = '/usr/lib/cni'#" \
			>"$CTRD_CONF.tmp"
		# runc 1.5 for CRI pods and for plain containerd tasks.
		grep -q "BinaryName = ''" "$CTRD_CONF.tmp" && sed -i "s#BinaryName = ''#BinaryName = '$RUNC_DIR/runc'#" "$CTRD_CONF.tmp"
		for want in "sandbox = '$CTRD_IMAGE'" "restrict_oom_score_adj = true" "/usr/lib/cni" "BinaryName = '$RUNC_DIR/runc'"; do
			grep -qF "$want" "$CTRD_CONF.tmp" || die "containerd $CONTAINERD_VERSION's default config changed: could not set $want"
		done
		;;
	esac
	mv "$CTRD_CONF.tmp" "$CTRD_CONF"
}

start_dockerd() {
	docker info >/dev/null 2>&1 && return 0
	# dockerd uses any containerd socket at /run/containerd instead of starting
	# its own, even a stale one; the test bed wants Docker's own containerd
	# (namespace moby at /var/run/docker/containerd) AND a standalone CRI one,
	# as on many real hosts. So the standalone one steps aside for a moment.
	stop_pid "the standalone containerd while dockerd starts" "$(standalone_containerd_pid)"
	rm -f "$CTRD_SOCK" "$CTRD_SOCK.ttrpc"
	stop_pid "a stale dockerd" "$(dockerd_pid)"
	log "starting dockerd ($DOCKERD)"
	PATH=$DOCKERD_PATH setsid nohup "$DOCKERD" "${DOCKERD_ARGS[@]}" >"$LOGS/dockerd-$profile.log" 2>&1 </dev/null &
	wait_for 60 dockerd docker info
}

start_containerd() {
	ctr --address "$CTRD_SOCK" version >/dev/null 2>&1 && return 0
	log "starting containerd (CRI) at $CTRD_SOCK ($CONTAINERD)"
	PATH=$CONTAINERD_PATH setsid nohup "$CONTAINERD" --config "$CTRD_CONF" >"$LOGS/containerd-$profile.log" 2>&1 </dev/null &
	echo $! >"$CTRD_PIDFILE"
	wait_for 30 containerd ctr --address "$CTRD_SOCK" version
}

# A busybox image built locally: FROM scratch + busybox-static. Docker 29
# keeps images in containerd's image store (namespace moby of its own
# containerd); docker build and docker save work the same on both.
build_image() {
	if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
		log "building $IMAGE"
		local ctx
		ctx=$(mktemp -d)
		cp /bin/busybox "$ctx/busybox"
		cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sleep", "2147483647"]
DOCKERFILE
		docker build -q -t "$IMAGE" "$ctx" >"$LOGS/build-image.log" 2>&1 || { cat "$LOGS/build-image.log" >&2; rm -rf "$ctx"; die "docker build $IMAGE failed"; }
		rm -rf "$ctx"
	fi
	local ns
	for ns in k8s.io nsdebug-test; do
		if ! ctr --address "$CTRD_SOCK" -n "$ns" images ls -q | grep -x "$CTRD_IMAGE" >/dev/null; then
			log "importing $CTRD_IMAGE into containerd namespace $ns"
			docker save "$IMAGE" | ctr --address "$CTRD_SOCK" -n "$ns" images import - >/dev/null
		fi
	done
}

podman_remote() { podman --remote --url "unix://$PODMAN_SOCK" "$@"; }
podman_answers() { command -v podman >/dev/null && [ -S "$PODMAN_SOCK" ] && podman_remote version >/dev/null 2>&1; }

podman_pid() {
	local pid
	pid=$(pidfile_pid "$PODMAN_PIDFILE")
	pid_alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -F "system service" >/dev/null && echo "$pid"
	true
}

# containers.conf for Debian's podman 4.3 on this machine kind. podman lowers
# its own NPROC hard limit to 32768 and asks the runtime for more, which
# fails without CAP_SYS_RESOURCE ("error setting rlimit type 6: operation
# not permitted"): default_ulimits keeps both within what we have. crun 1.8
# refuses this cgroup v1 host ("cgroups in hybrid mode not supported"), so
# runc, the profile's. No systemd: cgroupfs and a file events log.
write_podman_conf() {
	local runc=/usr/sbin/runc
	[ "$profile" = current ] && runc=$RUNC_DIR/runc
	mkdir -p "$(dirname "$PODMAN_CONF")"
	cat >"$PODMAN_CONF.tmp" <<TOML
# Written by nsdebug's scripts/testbed.sh (profile $profile).
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"

[engine.runtimes]
runc = ["$runc"]
TOML
	if cmp -s "$PODMAN_CONF.tmp" "$PODMAN_CONF"; then
		rm -f "$PODMAN_CONF.tmp"
	else
		mv "$PODMAN_CONF.tmp" "$PODMAN_CONF"
		# The service reads it at start.
		stop_pid "podman's API service (its config changed)" "$(podman_pid)"
	fi
}

# The rootful API service, as systemd's podman.socket would give it. Podman
# has no daemon: containers run under conmon, the service only answers.
start_podman() {
	podman_answers && return 0
	stop_pid "a stale podman service" "$(podman_pid)"
	rm -f "$PODMAN_SOCK"
	mkdir -p "$(dirname "$PODMAN_SOCK")"
	log "starting podman's API service at $PODMAN_SOCK"
	setsid nohup podman system service --time=0 "unix://$PODMAN_SOCK" >"$LOGS/podman.log" 2>&1 </dev/null &
	echo $! >"$PODMAN_PIDFILE"
	wait_for 30 "podman's API service" podman_remote version
}

# docker save writes a docker-archive (20.10) or an OCI layout that names
# the image docker.io/library/bb:local (29): tag whatever podman loaded.
load_podman_image() {
	podman image exists "$PODMAN_IMAGE" 2>/dev/null && return 0
	log "loading $IMAGE into podman as $PODMAN_IMAGE"
	local out name
	out=$(docker save "$IMAGE" | podman load 2>&1) || { printf '%s\n' "$out" >&2; die "podman load failed"; }
	name=$(printf '%s\n' "$out" | sed -n 's/^Loaded image[^:]*: *//p' | head -1)
	[ -n "$name" ] || die "podman load named no image: $out"
	podman image exists "$PODMAN_IMAGE" || podman tag "$name" "$PODMAN_IMAGE"
}

# as_rootless runs a command as the rootless test user, in its own home and
# runtime directory (no logind here to make /run/user/UID).
as_rootless() {
	local uid
	uid=$(id -u "$ROOTLESS_USER")
	(cd / && setpriv --reuid "$uid" --regid "$(id -g "$ROOTLESS_USER")" --init-groups \
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="/home/$ROOTLESS_USER" USER="$ROOTLESS_USER" XDG_RUNTIME_DIR="/run/user/$uid" "$@")
}

setup_rootless() {
	if ! id "$ROOTLESS_USER" >/dev/null 2>&1; then
		log "adding user $ROOTLESS_USER for rootless podman"
		useradd -m -s /usr/sbin/nologin "$ROOTLESS_USER"
	fi
	grep "^$ROOTLESS_USER:" /etc/subuid >/dev/null || usermod --add-subuids 300000-365535 "$ROOTLESS_USER"
	grep "^$ROOTLESS_USER:" /etc/subgid >/dev/null || usermod --add-subgids 300000-365535 "$ROOTLESS_USER"
	local run
	run=/run/user/$(id -u "$ROOTLESS_USER")
	mkdir -p "$run"
	chown "$ROOTLESS_USER:" "$run"
	chmod 700 "$run"
	if ! as_rootless podman image exists "$PODMAN_IMAGE" 2>/dev/null; then
		log "loading $IMAGE into $ROOTLESS_USER's podman storage"
		local tar out name
		tar=$(mktemp /tmp/nsdebug-testbed-image.XXXXXX)
		chmod 644 "$tar"
		docker save "$IMAGE" >"$tar"
		out=$(as_rootless podman load -i "$tar" 2>&1) || { rm -f "$tar"; printf '%s\n' "$out" >&2; die "rootless podman load failed"; }
		rm -f "$tar"
		name=$(printf '%s\n' "$out" | sed -n 's/^Loaded image[^:]*: *//p' | head -1)
		as_rootless podman image exists "$PODMAN_IMAGE" || as_rootless podman tag "$name" "$PODMAN_IMAGE"
	fi
}

# Removes the rootless user's containers and its podman processes (API
# services the tests started, the pause process holding its user namespace).
stop_rootless() {
	id "$ROOTLESS_USER" >/dev/null 2>&1 || return 0
	as_rootless podman rm -af -t 0 >/dev/null 2>&1 || true
	local pid
	for pid in $(pgrep -u "$ROOTLESS_USER" || true); do
		stop_pid "$ROOTLESS_USER's $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-60)" "$pid"
	done
}

# Removes every podman container and pod (their netns under /run/netns and
# CNI addresses go with them), stops the service, deletes the bridge.
stop_podman() {
	command -v podman >/dev/null || return 0
	log "stopping podman"
	stop_rootless
	podman pod rm -af -t 0 >/dev/null 2>&1 || true
	podman rm -af -t 0 >/dev/null 2>&1 || true
	stop_pid "podman's API service" "$(podman_pid)"
	rm -f "$PODMAN_SOCK" "$PODMAN_PIDFILE"
	ip link show "$PODMAN_BRIDGE" >/dev/null 2>&1 && ip link del "$PODMAN_BRIDGE" 2>/dev/null || true
}

up() {
	install_packages
	if [ "$profile" = current ]; then build_current; fi
	set_profile_vars "$profile"
	local live
	live=$(live_profile)
	if [ "$live" != "$profile" ] && [ "$live" != none ]; then
		set_profile_vars "$live"
		stop_all
		set_profile_vars "$profile"
	fi
	echo "$profile" >"$PROFILE_FILE"
	mkdir -p "$STATE/current"
	write_cni_conf
	share_netns_dir
	start_dockerd
	write_containerd_conf
	start_containerd
	build_image
	write_podman_conf
	start_podman
	load_podman_image
	setup_rootless
	status
}

case $cmd in
status) status; exit $? ;;
build) build_current ;;
stop) set_profile_vars "$(live_profile | sed 's/^none$/debian/')"; stop_all; stop_podman ;;
stop-podman) stop_podman ;;
up) up ;;
esac
