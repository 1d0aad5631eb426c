#!/usr/bin/env bash
# sudo make demo: nsdebug's main job on throwaway namespaces. Makes two network
# namespaces joined by a veth pair, starts an HTTP server in one, runs nsdebug
# on them, and removes everything it made, whatever happens.
set -euo pipefail
NSDEBUG=${1:-bin/nsdebug}
[ "$(id -u)" = 0 ] || { echo "demo: must run as root (sudo make demo)" >&2; exit 1; }
command -v busybox >/dev/null || { echo "demo: installing busybox-static" >&2; apt-get update -q >/dev/null; apt-get install -y -q busybox-static >/dev/null; }

A=nsdebug-demo-client B=nsdebug-demo-server
LISTENER=
cleanup() {
	set +e
	if [ -n "$LISTENER" ]; then kill "$LISTENER" 2>/dev/null; wait "$LISTENER" 2>/dev/null; fi
	ip netns del "$A" 2>/dev/null || true
	ip netns del "$B" 2>/dev/null || true
	"$NSDEBUG" unlink nsdebug-demo-web >/dev/null 2>&1 || true
	rm -rf "${WWW:-/nonexistent}"
}
trap cleanup EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

ip netns add "$A"
ip netns add "$B"
ip link add nsdemo-a type veth peer name nsdemo-b
ip link set nsdemo-a netns "$A"
ip link set nsdemo-b netns "$B"
ip -n "$A" addr add 10.231.0.1/24 dev nsdemo-a
ip -n "$B" addr add 10.231.0.2/24 dev nsdemo-b
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" link set nsdemo-a up
ip -n "$B" link set nsdemo-b up
WWW=$(mktemp -d)
echo "hello from $B" >"$WWW/index.html"
ip netns exec "$B" busybox httpd -f -p 8080 -h "$WWW" &
LISTENER=$!
sleep 0.3

echo "Made netns $A (10.231.0.1) and $B (10.231.0.2, HTTP server PID $LISTENER on :8080)."
step "$NSDEBUG" resolve "pid:$LISTENER"
step "$NSDEBUG" resolve "netns:$B" -o json
step "$NSDEBUG" ls
for sub in exec link inspect sysctl whois graph; do
	# Commands land one issue at a time; show those this build has.
	"$NSDEBUG" --help | grep "^  $sub " >/dev/null || continue
	case $sub in
	exec)
		step "$NSDEBUG" exec "netns:$A" -- busybox wget -qO- http://10.231.0.2:8080/
		step "$NSDEBUG" exec "pid:$LISTENER" -- ip -br addr ;;
	link)
		step "$NSDEBUG" link "pid:$LISTENER" nsdebug-demo-web
		step ip netns exec nsdebug-demo-web ip -br addr
		step "$NSDEBUG" unlink nsdebug-demo-web ;;
	inspect) step "$NSDEBUG" inspect "pid:$LISTENER" --section links,addrs,sockets ;;
	sysctl) step "$NSDEBUG" sysctl "netns:$B" net.core.somaxconn net.ipv4.ip_forward ;;
	whois) step "$NSDEBUG" whois 10.231.0.2 ;;
	graph) step "$NSDEBUG" graph -o text ;;
	esac
done
echo
echo "demo: done; removing $A and $B"
