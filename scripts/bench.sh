#!/usr/bin/env bash
# make bench: runs nsdebug and the tool a user would otherwise use side by side
# and prints a ratio table (nsdebug / baseline). Ratios, not absolute times,
# are the result: the machines are shared and noisy. Each ratio is the median
# of at least 30 interleaved pairs (A B A B ..., scripts/pairbench), so both
# sides of a pair see the same load; hyperfine's blocks (every run of A, then
# every run of B) do not. Binaries are copied before timing: one freshly
# written by `go build` runs up to 1.4 ms slower than a copy (page cache).
#
# Sections live in scripts/bench.d/*.sh; each calls
#   compare "what" TARGET_RATIO "nsdebug command" "baseline command" [MODE]
# MODE "max" (default): pass when ratio <= TARGET; "abs-ms": TARGET is a bound
# in milliseconds on nsdebug's mean alone (baseline "-"; timed by hyperfine);
# "report": no target, the ratio is recorded for the reader (TARGET ignored).
# With SAVE=NAME the row's timings are kept as $WORK/NAME.json for a later
# section (the 5000-netns ls row compares with the 500-netns one).
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "bench: must run as root" >&2; exit 1; }
command -v hyperfine >/dev/null || { apt-get update -q >/dev/null; apt-get install -y -q hyperfine >/dev/null; }

NSDEBUG=${NSDEBUG:-$PWD/bin/nsdebug}
[ -x "$NSDEBUG" ] || make -s build
RUNS=${BENCH_RUNS:-30}
[ "$RUNS" -ge 30 ] || { echo "bench: BENCH_RUNS must be at least 30 (issue 13)" >&2; exit 1; }
OUT=${BENCH_OUT:-bench-results.md}
WORK=$(mktemp -d)
GO=${GO:-go}

# The pair driver, and the floor nsdebug's start-up is measured against: an
# empty static Go binary built here with the same toolchain. Both nsdebug and
# the floor run from copies (see above).
CGO_ENABLED=0 $GO build -o "$WORK/pairbench" ./scripts/pairbench
mkdir "$WORK/empty-src"
printf 'module empty\n\ngo 1.21\n' >"$WORK/empty-src/go.mod"
printf 'package main\n\nfunc main() {}\n' >"$WORK/empty-src/main.go"
(cd "$WORK/empty-src" && CGO_ENABLED=0 GOFLAGS= $GO build -trimpath -ldflags '-s -w' -o "$WORK/empty.built" .)
cp "$WORK/empty.built" "$WORK/empty-go"
# The libraries' own floor: an empty main() linking every package nsdebug
# imports from outside its module (the Docker, containerd and CRI clients,
# gRPC, cobra, netlink, gopacket), so that their package inits, and nothing
# of nsdebug's, run. What nsdebug's start-up cannot go below while it keeps
# those libraries (issue 13).
mkdir "$WORK/libs-src"
{
	printf 'package main\n\nimport (\n'
	$GO list -tags "${TAGS:-grpcnotrace}" -deps -f '{{if (and (not .Standard) (eq .Module.Path "github.com/nsdebug/nsdebug"))}}{{join .Imports "\n"}}{{end}}' ./cmd/nsdebug |
		sort -u | grep -v '^github.com/nsdebug/' | grep '\.' | sed 's/.*/\t_ "&"/'
	printf ')\n\nfunc main() {}\n'
} >"$WORK/libs-src/main.go"
CGO_ENABLED=0 $GO build -tags "${TAGS:-grpcnotrace}" -trimpath -ldflags '-s -w' -o "$WORK/libs.built" "$WORK/libs-src/main.go"
cp "$WORK/libs.built" "$WORK/libs-floor"
cp "$NSDEBUG" "$WORK/nsdebug"
# The kubectl plugin beside it: the kube section finds it through PATH.
[ ! -x "$(dirname "$NSDEBUG")/kubectl-nsdebug" ] || cp "$(dirname "$NSDEBUG")/kubectl-nsdebug" "$WORK/kubectl-nsdebug"
NSDEBUG=$WORK/nsdebug
EMPTY_GO=$WORK/empty-go
LIBS_FLOOR=$WORK/libs-floor
export NSDEBUG EMPTY_GO LIBS_FLOOR

# A busy host, shared by every section: BENCH_NETNS_COUNT named netns and
# BENCH_CONTAINERS Docker containers (bridge network). Sections use
#   $BENCH_CONTAINER (a container name), $BENCH_PID (its PID),
#   $BENCH_NETNS (one of the named netns).
BENCH_NETNS_COUNT=${BENCH_NETNS_COUNT:-500}
BENCH_CONTAINERS=${BENCH_CONTAINERS:-50}
PREFIX=nsdbench-$$
cleanup() {
	set +e
	docker ps -aq --filter "label=nsdebug-bench=$PREFIX" | xargs -r docker rm -f >/dev/null 2>&1
	podman ps -aq --filter "label=nsdebug-bench=$PREFIX" 2>/dev/null | xargs -r podman rm -f -t 0 >/dev/null 2>&1
	# Every netns this run made, whichever section made it.
	find /var/run/netns -maxdepth 1 -name "$PREFIX-*" -printf 'netns del %f\n' | ip -force -batch - >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "bench: creating $BENCH_NETNS_COUNT netns and $BENCH_CONTAINERS containers" >&2
for i in $(seq 1 "$BENCH_NETNS_COUNT"); do echo "netns add $PREFIX-$i"; done | ip -batch -
seq 1 "$BENCH_CONTAINERS" | xargs -P 4 -I{} docker run -d --label "nsdebug-bench=$PREFIX" --name "$PREFIX-c{}" bb:local >/dev/null
BENCH_CONTAINER=$PREFIX-c1
BENCH_PID=$(docker inspect -f '{{.State.Pid}}' "$BENCH_CONTAINER")
BENCH_NETNS=$PREFIX-1
export BENCH_CONTAINER BENCH_PID BENCH_NETNS

printf '| benchmark | nsdebug (ms) | baseline (ms) | ratio | target | result |\n|---|---|---|---|---|---|\n' >"$OUT"
FAILS=0

load() { cut -d' ' -f1-3 /proc/loadavg; }
LOAD_START=$(load)

compare() { # what target nsdebug_cmd baseline_cmd [mode]
	local what=$1 target=$2 ours=$3 theirs=$4 mode=${5:-max} json=$WORK/h.json
	rm -f "$json"
	if [ "$mode" = abs-ms ]; then
		# One command, bounded in time: hyperfine's mean is the right figure.
		hyperfine -N -w 3 -r "$RUNS" --export-json "$json" "$ours" >/dev/null 2>"$WORK/err" ||
			hyperfine -w 3 -r "$RUNS" --export-json "$json" "$ours" >/dev/null 2>"$WORK/err" || rm -f "$json"
	else
		"$WORK/pairbench" -n "$RUNS" -w "${WARM:-3}" -json "$json" "$ours" "$theirs" >/dev/null 2>"$WORK/err" || rm -f "$json"
	fi
	if [ ! -s "$json" ]; then
		echo "| $what | FAILED: $(grep -m1 -iE 'error|fail|non-zero|exit|pairbench' "$WORK/err" | tr '|' '/' | cut -c1-120) | | | | FAILED |" >>"$OUT"
		FAILS=$((FAILS+1))
		tail -1 "$OUT"
		return 0
	fi
	[ -z "${SAVE:-}" ] || cp "$json" "$WORK/$SAVE.json"
	python3 - "$json" "$what" "$target" "$mode" >>"$OUT" <<'PY' || FAILS=$((FAILS+1))
import json, sys
res = json.load(open(sys.argv[1]))
what, mode = sys.argv[2], sys.argv[4]
target = 0.0 if mode == "report" else float(sys.argv[3])
if mode == "abs-ms":
    ours = res["results"][0]["mean"] * 1000
    ok = ours <= target
    print(f"| {what} | {ours:.1f} | - | - | < {target:g} ms | {'ok' if ok else 'MISSED'} |")
    sys.exit(0 if ok else 1)
ours, theirs, ratio = res["a_ms"], res["b_ms"], res["ratio"]
if mode == "report":
    print(f"| {what} | {ours:.1f} | {theirs:.1f} | {ratio:.2f}x | - | info |")
    sys.exit(0)
ok = ratio <= target
print(f"| {what} | {ours:.1f} | {theirs:.1f} | {ratio:.2f}x | <= {target:g}x | {'ok' if ok else 'MISSED'} |")
sys.exit(0 if ok else 1)
PY
	tail -1 "$OUT"
}

# median_row "what" BOUND_MS A.json: a bound on A's median alone.
median_row() {
	python3 - "$@" >>"$OUT" <<'PY' || FAILS=$((FAILS+1))
import json, sys
what, bound = sys.argv[1], float(sys.argv[2])
a = json.load(open(sys.argv[3]))["a_ms"]
ok = a <= bound
print(f"| {what} | {a:.1f} | - | - | < {bound:g} ms | {'ok' if ok else 'MISSED'} |")
sys.exit(0 if ok else 1)
PY
	tail -1 "$OUT"
}

# scale_ratio "what" TARGET A.json B.json: A's median over B's, where the two
# cannot be interleaved (the host itself differs: 5000 netns against 500).
scale_ratio() {
	python3 - "$@" >>"$OUT" <<'PY' || FAILS=$((FAILS+1))
import json, sys
what, target = sys.argv[1], float(sys.argv[2])
a, b = (json.load(open(p))["a_ms"] for p in sys.argv[3:5])
ok = a / b <= target
print(f"| {what} | {a:.1f} | {b:.1f} | {a / b:.2f}x | <= {target:g}x | {'ok' if ok else 'MISSED'} |")
sys.exit(0 if ok else 1)
PY
	tail -1 "$OUT"
}

# BENCH_ONLY=70 runs only the sections whose file name starts with it.
for f in scripts/bench.d/${BENCH_ONLY:-}*.sh; do
	[ -e "$f" ] || continue
	# shellcheck source=/dev/null
	. "$f"
done

echo "" >>"$OUT"
echo "Ratios: median of $RUNS interleaved pairs. Load average (1, 5, 15 min) at start: $LOAD_START; at end: $(load)." >>"$OUT"
echo
cat "$OUT"
# The README shows the table of the latest run on each test bed profile,
# between its bench markers: <!-- bench --> for debian, <!-- bench current -->.
# A partial run (BENCH_ONLY) never replaces the table: it would drop the
# rows of every section it did not run.
if [ -n "${BENCH_README:-}" ] && [ -n "${BENCH_ONLY:-}" ]; then
	echo "bench: BENCH_ONLY=$BENCH_ONLY is a partial run; $BENCH_README left as it is" >&2
elif [ -n "${BENCH_README:-}" ]; then
	profile=$(cat /var/lib/nsdebug-testbed/profile 2>/dev/null || echo debian)
	python3 - "$BENCH_README" "$OUT" "$profile" <<'PY'
import re, sys
readme, table, profile = sys.argv[1], open(sys.argv[2]).read().strip(), sys.argv[3]
tag = "bench" if profile == "debian" else "bench " + profile
text = open(readme).read()
new, n = re.subn(r"(<!-- " + tag + r" -->\n).*?(\n<!-- /" + tag + r" -->)", lambda m: m.group(1) + table + m.group(2), text, flags=re.S)
if n != 1:
    sys.exit(f"bench: {readme} has no <!-- {tag} --> ... <!-- /{tag} --> block")
open(readme, "w").write(new)
PY
	echo "bench: table written into $BENCH_README" >&2
fi
echo "bench: $FAILS target(s) missed"
