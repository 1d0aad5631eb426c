#!/usr/bin/env bash
# Regenerates the README's command examples from real runs, so the README
# shows what nsdebug really prints. Needs root and the test bed.
#
#   scripts/examples.sh              print the examples (markdown) on stdout
#   scripts/examples.sh README.md    replace its sections of the block between
#                                    <!-- commands --> and <!-- /commands -->
#                                    (sections it does not make stay as they are)
#
# It makes its own fixtures (Docker containers web, api, cache, web-sidecar and
# hostnet, a user-defined network shop-net, a CRI pod shop/cart, a Podman
# container podweb and a named netns blue) and removes them all on exit,
# whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "examples: must run as root" >&2; exit 1; }
scripts/testbed.sh status >/dev/null || { echo "examples: the test bed is not up (sudo make testbed)" >&2; exit 1; }

NSDEBUG=${NSDEBUG:-$PWD/bin/nsdebug}
[ -x "$NSDEBUG" ] || make -s build
WORK=$(mktemp -d)
OUT=$WORK/examples.md
POD_ID=

# shellcheck source=lib/crictl.sh
. scripts/lib/crictl.sh

cleanup() {
	set +e
	"$NSDEBUG" unlink web >/dev/null 2>&1
	"$NSDEBUG" unlink old-web >/dev/null 2>&1
	docker rm -f web-sidecar web api cache hostnet old-web >/dev/null 2>&1
	docker network rm shop-net >/dev/null 2>&1
	podman rm -f -t 0 podweb >/dev/null 2>&1
	if [ -n "$POD_ID" ]; then crictl_ stopp "$POD_ID" >/dev/null 2>&1; crictl_ rmp "$POD_ID" >/dev/null 2>&1; fi
	ip netns del blue >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT

docker network inspect shop-net >/dev/null 2>&1 && { echo "examples: a Docker network shop-net exists already; remove it first" >&2; exit 1; }
[ ! -e /var/run/netns/blue ] || { echo "examples: /var/run/netns/blue exists already; remove it first" >&2; exit 1; }
[ -z "$(crictl_ pods -q --name '^cart$' --namespace '^shop$' 2>/dev/null)" ] || { echo "examples: a pod shop/cart exists already; remove it first" >&2; exit 1; }
for c in web web-sidecar api cache hostnet old-web; do
	docker inspect "$c" >/dev/null 2>&1 && { echo "examples: a container named $c exists already; remove it first" >&2; exit 1; }
done
podman container exists podweb && { echo "examples: a podman container named podweb exists already; remove it first" >&2; exit 1; }

echo "examples: making fixtures" >&2
docker network create shop-net >/dev/null
docker run -d --name web bb:local sh -c 'mkdir -p /www && echo ok >/www/health && exec httpd -f -p 8080 -h /www' >/dev/null
docker run -d --name web-sidecar --network container:web bb:local >/dev/null
docker run -d --name cache --network shop-net bb:local httpd -f -p 6379 >/dev/null
docker run -d --name api --network shop-net bb:local >/dev/null
docker run -d --name hostnet --network host bb:local >/dev/null
podman run -d --pull=never --name podweb localhost/bb:local httpd -f -p 8080 >/dev/null
ip netns add blue
POD_ID=$(run_pod cart shop cart-uid-1)
sleep 0.5 # let the servers bind

SHOP_BRIDGE=br-$(docker network inspect -f '{{.Id}}' shop-net | cut -c1-12)
WEB_IP=$(docker inspect -f '{{.NetworkSettings.IPAddress}}' web)
WEB_PID=$(docker inspect -f '{{.State.Pid}}' web)
WEB_VETH=$("$NSDEBUG" inspect web --section links -o json | python3 -c '
import json, sys
for l in json.load(sys.stdin)["links"]:
    if l.get("peer") and l["peer"]["netns"].get("host"):
        print(l["peer"]["name"]); break' || true)

# show "description" command...: a heading line, then the command and its
# real output (stdout and stderr, and the exit status when it is not 0).
show() {
	local what=$1; shift
	[ -z "$what" ] || printf '\n%s\n' "$what" >>"$OUT"
	printf '\n```\n$ %s\n' "$*" >>"$OUT"
	local code=0
	bash -c "$*" >>"$OUT" 2>&1 || code=$?
	[ "$code" = 0 ] || printf '[exit status %d]\n' "$code" >>"$OUT"
	printf '```\n' >>"$OUT"
}

# show_trimmed ls|graph "description" command...: show, with the output
# trimmed to this script's fixtures (trim.py above).
show_trimmed() {
	local kind=$1 what=$2; shift 2
	[ -z "$what" ] || printf '\n%s\n' "$what" >>"$OUT"
	printf '\n```\n$ %s\n' "$*" >>"$OUT"
	local code=0
	bash -c "$*" >"$WORK/full" 2>&1 || code=$?
	python3 "$WORK/trim.py" "$kind" <"$WORK/full" >>"$OUT"
	[ "$code" = 0 ] || printf '[exit status %d]\n' "$code" >>"$OUT"
	printf '```\n' >>"$OUT"
}

# trim ls|graph: filters a whole-host listing on stdin down to the host and
# this script's fixtures (rows and lines as printed; ls's columns re-aligned
# and graph's tree redrawn for what is left), then says how much was left out.
cat >"$WORK/trim.py" <<'PY'
import os, re, sys
kind, lines = sys.argv[1], sys.stdin.read().rstrip("\n").split("\n")
ours = re.compile(r"(docker:(web|web-sidecar|api|cache|hostnet)|podman:podweb|pod:shop/cart|/run/netns/blue)(?=[ ,]|$)")
bridges = {"docker0", "nsdbg-cni0", "cni-podman0", os.environ["SHOP_BRIDGE"]}
left = 0
if kind == "ls":
    out = []
    for i, l in enumerate(lines):
        f = l.split()
        if i == 0 or (len(f) > 1 and f[1] == "host") or ours.search(l):
            out.append(l)
        else:
            left += 1
    # Re-align the columns for the rows kept (cells are 2+ spaces apart).
    rows = [re.split(r"  +", l.rstrip()) for l in out]
    widths = [max(len(r[c]) for r in rows if c < len(r)) for c in range(max(map(len, rows)))]
    out = ["  ".join(cell.ljust(widths[c]) for c, cell in enumerate(r)).rstrip() for r in rows]
    what = "rows"
else:
    # Parse the tree: depth from the 4-column prefixes, then keep the host's
    # bridges and devices, and whatever names a fixture.
    units = ("├── ", "└── ", "│   ", "    ")
    blocks, tail = [], []
    for l in lines:
        if not l or tail or re.match(r"^\d+ namespaces? ", l):
            tail.append(l)
            continue
        d = 0
        while l[4 * d:4 * d + 4] in units:
            d += 1
        node = {"text": l[4 * d:], "kids": []}
        if d == 0:
            blocks.append(node)
        else:
            parent = blocks[-1]
            for _ in range(d - 1):
                parent = parent["kids"][-1]
            parent["kids"].append(node)
    def count(n):
        return 1 + sum(count(k) for k in n["kids"])
    def keep_host_child(n):
        name, kind_ = n["text"].split(" ")[0], n["text"].split(" ")[1]
        return (kind_ == "(bridge)" and name in bridges) or kind_ in ("(device)", "(ifb)") or ours.search(n["text"])
    out = []
    def render(kids, indent):
        for i, k in enumerate(kids):
            last = i == len(kids) - 1
            out.append(indent + ("└── " if last else "├── ") + k["text"])
            render(k["kids"], indent + ("    " if last else "│   "))
    for b in blocks:
        if b["text"].startswith("host "):
            kept = []
            for k in b["kids"]:
                if keep_host_child(k):
                    sub = [g for g in k["kids"] if ours.search(g["text"])]
                    left += len(k["kids"]) - len(sub)
                    kept.append({"text": k["text"], "kids": sub})
                else:
                    left += count(k)
            out.append(b["text"])
            render(kept, "")
        elif ours.search(b["text"]):
            out.append(b["text"])
            render(b["kids"], "")
        else:
            left += count(b)
    for l in tail:
        m = re.match(r"^\d+ namespaces? with loopback only: (.*)$", l)
        if m:
            names = [n for n in m.group(1).split() if ours.search(n)]
            left += len(m.group(1).split()) - len(names)
            if names:
                out.append("%d namespace%s with loopback only: %s" % (len(names), "" if len(names) == 1 else "s", " ".join(names)))
            continue
        out.append(l)
    while out and out[-1] == "":
        out.pop()
    what = "lines"
print("\n".join(out))
if left:
    print("[%d %s about other test fixtures on this shared host left out]" % (left, what))
PY
export SHOP_BRIDGE

N=nsdebug
PATH=$(dirname "$NSDEBUG"):$PATH
export PATH

{
	echo
	echo "Made with \`scripts/examples.sh\` on the test bed: Docker containers \`web\` (HTTP on :8080),"
	echo "\`web-sidecar\` (\`--network container:web\`), \`api\` and \`cache\` (user-defined network \`shop-net\`),"
	echo "\`hostnet\` (\`--network host\`), a Kubernetes pod \`shop/cart\` made through CRI, a rootful Podman"
	echo "container \`podweb\` and \`ip netns add blue\`."
} >"$OUT"

# The test bed is shared: what lists the whole host is trimmed (trim.py).
printf '\n%s\n%s\n' "The test bed is shared with other tests: the listings of the whole host (\`ls\`, \`graph\`) are" \
	"trimmed to these fixtures and the host, and end with a line saying how much was left out." >>"$OUT"

echo $'\n### ls' >>"$OUT"
show_trimmed ls "Every network namespace on the host: from the runtimes and from the kernel side (\`/proc/*/ns/net\`, nsfs mounts)." "$N ls"
show_trimmed ls "\`-o wide\` adds each namespace's host-side veth and its bridge." "$N ls -o wide"

echo $'\n### resolve' >>"$OUT"
show "What a target is, in any runtime." "$N resolve web"
show "JSON for scripts; a pod through CRI." "$N resolve pod:shop/cart -o json"
show "Errors are one line on stderr with a documented exit status." "$N resolve nosuch"

echo $'\n### exec' >>"$OUT"
show "A host tool inside the container's netns (the image has no curl or ip)." "$N exec web -- ip -br addr"
show "" "$N exec web -- busybox wget -qO- http://localhost:8080/health"
show "DNS is the container's: Docker's embedded DNS (127.0.0.11) on a user-defined network." "$N exec api -- getent hosts cache"
show "The command's exit status is nsdebug's; 127 when the command does not exist." "$N exec web -- sh -c 'exit 3'"
show "" "$N exec web -- no-such-tool"

echo $'\n### Podman' >>"$OUT"
show "A rootful Podman container, through Podman's API service (\`/run/podman/podman.sock\`): its netns is Podman's \`/run/netns/netns-<uuid>\`." "$N resolve podman:podweb"
show "" "$N exec podman:podweb -- ip -4 -o addr"
show "In \`ls\`, owned by \`podman\` (filtered to it here: other namespaces on the test bed are listed too)." "$N ls | grep -E '^NETNS|podman:'"

echo $'\n### shell' >>"$OUT"
show "An interactive shell (here fed from a pipe); the prompt and \`NSDEBUG_TARGET\` name the target." "echo 'echo \$NSDEBUG_TARGET; ip -br link' | $N shell web"

echo $'\n### link / unlink' >>"$OUT"
show "Make a container's netns visible to \`ip netns\` (a bind mount of the pinned namespace)." "$N link web"
show "" "ip netns exec web ip -br addr"
show "" "$N unlink web"
# A link whose container is then removed: what --stale is for.
docker run -d --name old-web bb:local >/dev/null
"$NSDEBUG" link old-web >/dev/null
docker rm -f old-web >/dev/null
show "Stale entries: a link nsdebug made for a container since removed goes; \`blue\` (\`ip netns add\`, loopback only, no process) is an operator's and stays. (Filtered to this example's names: other entries on the test bed are listed too.)" "$N unlink --stale --dry-run | grep -E 'old-web|/blue'"

echo $'\n### sysctl' >>"$OUT"
show "Read, then write, sysctls of the container's netns only." "$N sysctl web net.core.somaxconn net.ipv4.tcp_keepalive_time"
show "" "$N sysctl web net.core.somaxconn=1024 net.ipv4.tcp_keepalive_time=600"
show "Which keys differ from the host's." "$N sysctl web --diff"
show "The host's own netns is refused without --force." "$N sysctl hostnet net.core.somaxconn=1024"
show "Only net.* keys, and never outside /proc/sys/net." "$N sysctl web kernel.core_pattern=x"
show "Values are checked before anything is written: an integer sysctl takes integers, no more than it holds." "$N sysctl web net.core.somaxconn='1024 2048'"

echo $'\n### inspect' >>"$OUT"
show "Links (with the veth peer on the host and its bridge), addresses, routes, rules, neighbours, sockets with their processes, sysctls, firewall." "$N inspect web"

echo $'\n### whois' >>"$OUT"
show "Whose is this IP address?" "$N whois $WEB_IP"
if [ -n "$WEB_VETH" ]; then
	show "Whose is this host veth?" "$N whois $WEB_VETH"
fi
show "And this PID?" "$N whois $WEB_PID"

echo $'\n### graph' >>"$OUT"
show_trimmed graph "The host's wiring as a tree (\`-o dot\` for Graphviz)." "$N graph -o text"

echo $'\n### version' >>"$OUT"
show "" "$N version"

if [ $# -ge 1 ]; then
	python3 - "$1" "$OUT" <<'PY'
import re, sys
readme, block = sys.argv[1], open(sys.argv[2]).read()
text = open(readme).read()
m = re.search(r"<!-- commands -->\n(.*?)\n<!-- /commands -->", text, flags=re.S)
if not m:
    sys.exit("examples: README has no <!-- commands --> ... <!-- /commands --> block")
# Sections ("### name" to the next one) this script makes are replaced where
# they stand; others in the block (written by hand from real runs, such as
# diagnose's) are kept as they are, in their place.
def sections(b):
    parts = re.split(r"(?m)^(?=### )", b)
    return parts[0], [(p.split("\n", 1)[0], p) for p in parts[1:]]
_, old = sections(m.group(1))
head, made = sections(block.rstrip("\n") + "\n")
made_d = dict(made)
out, used = [head], set()
for name, part in old:
    if name in made_d:
        out.append(made_d[name]); used.add(name)
    else:
        out.append(part if part.endswith("\n") else part + "\n")
out += [part for name, part in made if name not in used]
body = "".join(out).rstrip("\n")
open(readme, "w").write(text[:m.start()] + "<!-- commands -->\n" + body + "\n<!-- /commands -->" + text[m.end():])
PY
	echo "examples: updated $1" >&2
else
	cat "$OUT"
fi
