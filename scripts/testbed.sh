#!/usr/bin/env bash
# Makes this machine a small container host for nsdebug's integration tests,
# idempotently: Debian packages, dockerd, a standalone containerd with its CRI
# plugin and a CNI bridge, and a busybox image built locally (no registry).
#
#   scripts/testbed.sh          set up (or check) the test bed
#   scripts/testbed.sh status   print what is running, exit 1 if incomplete
set -euo pipefail

STATE=/var/lib/nsdebug-testbed
LOGS=/var/log/nsdebug-testbed
CTRD_CONF=/etc/nsdebug-testbed/containerd.toml
CTRD_SOCK=/run/containerd/containerd.sock
IMAGE=bb:local                       # docker's name
CTRD_IMAGE=docker.io/library/bb:local  # containerd's (normalised) name
CNI_CONF=/etc/cni/net.d/10-nsdebug-testbed.conflist

log() { printf 'testbed: %s\n' "$*" >&2; }
die() { printf 'testbed: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (try: sudo make testbed)"

status() {
	local ok=0
	if docker info >/dev/null 2>&1; then echo "dockerd: running"; else echo "dockerd: NOT running"; ok=1; fi
	if ctr --address "$CTRD_SOCK" version >/dev/null 2>&1; then echo "containerd: running at $CTRD_SOCK"; else echo "containerd: NOT running"; ok=1; fi
	if ctr --address "$CTRD_SOCK" -n k8s.io images ls -q 2>/dev/null | grep -qx "$CTRD_IMAGE"; then echo "image: $CTRD_IMAGE in k8s.io"; else echo "image: missing in k8s.io"; ok=1; fi
	if docker image inspect "$IMAGE" >/dev/null 2>&1; then echo "image: $IMAGE in docker"; else echo "image: missing in docker"; ok=1; fi
	return $ok
}

if [ "${1:-}" = status ]; then status; exit $?; fi

mkdir -p "$STATE" "$LOGS" /etc/nsdebug-testbed

# 1. Packages.
need=()
for p in docker.io containerd runc containernetworking-plugins busybox-static iptables iproute2 util-linux procps graphviz; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends "${need[@]}" >"$LOGS/apt.log" 2>&1 || { tail -20 "$LOGS/apt.log" >&2; die "apt-get install failed"; }
fi

wait_for() { # seconds, description, command...
	local n=$(( $1 * 10 )) what=$2; shift 2
	for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	die "$what did not come up; see $LOGS"
}

# 2. dockerd (it starts its own containerd under /var/run/docker/containerd
# when it is started before the standalone one).
if ! docker info >/dev/null 2>&1; then
	# dockerd uses any containerd socket at /run/containerd instead of starting
	# its own, even a stale one; the test bed wants Docker's own containerd
	# (namespace moby at /var/run/docker/containerd) AND a standalone CRI one,
	# as on many real hosts. So the standalone one steps aside for a moment.
	if pkill -f "containerd --config $CTRD_CONF" 2>/dev/null; then
		log "stopping the standalone containerd while dockerd starts"
		for _ in $(seq 50); do pgrep -f "containerd --config $CTRD_CONF" >/dev/null || break; sleep 0.1; done
	fi
	rm -f "$CTRD_SOCK" "$CTRD_SOCK.ttrpc"
	pkill -x dockerd 2>/dev/null && sleep 1 || true
	log "starting dockerd"
	setsid nohup dockerd >"$LOGS/dockerd.log" 2>&1 < /dev/null &
	wait_for 30 dockerd docker info
fi

# 3. Standalone containerd with the CRI plugin.
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

containerd config default \
	| sed -e "s#sandbox_image = .*#sandbox_image = \"$CTRD_IMAGE\"#" \
	      -e 's#restrict_oom_score_adj = false#restrict_oom_score_adj = true#' \
	      -e 's#bin_dir = "/opt/cni/bin"#bin_dir = "/usr/lib/cni"#' \
	>"$CTRD_CONF.tmp"
mv "$CTRD_CONF.tmp" "$CTRD_CONF"

if ! ctr --address "$CTRD_SOCK" version >/dev/null 2>&1; then
	log "starting containerd (CRI) at $CTRD_SOCK"
	setsid nohup containerd --config "$CTRD_CONF" >"$LOGS/containerd.log" 2>&1 < /dev/null &
	wait_for 30 containerd ctr --address "$CTRD_SOCK" version
fi

# 4. A busybox image built locally: FROM scratch + busybox-static.
if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
	log "building $IMAGE"
	ctx=$(mktemp -d)
	cp /bin/busybox "$ctx/busybox"
	cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sleep", "2147483647"]
DOCKERFILE
	docker build -q -t "$IMAGE" "$ctx" >/dev/null
	rm -rf "$ctx"
fi
for ns in k8s.io nsdebug-test; do
	if ! ctr --address "$CTRD_SOCK" -n "$ns" images ls -q | grep -qx "$CTRD_IMAGE"; then
		log "importing $CTRD_IMAGE into containerd namespace $ns"
		docker save "$IMAGE" | ctr --address "$CTRD_SOCK" -n "$ns" images import - >/dev/null
	fi
done

status
