#!/usr/bin/env bash
# make bench: runs nsdebug and the tool a user would otherwise use side by side
# in one hyperfine run per pair and prints a ratio table (nsdebug / baseline).
# Ratios, not absolute times, are the result: the machines are noisy.
#
# Sections live in scripts/bench.d/*.sh; each calls
#   compare "what" TARGET_RATIO "nsdebug command" "baseline command" [MODE]
# MODE "max" (default): pass when ratio <= TARGET; "abs-ms": TARGET is a bound
# in milliseconds on nsdebug's mean alone (baseline may be "-"); "report": no
# target, the ratio is recorded for the reader (TARGET is ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "bench: must run as root" >&2; exit 1; }
command -v hyperfine >/dev/null || { apt-get update -q >/dev/null; apt-get install -y -q hyperfine >/dev/null; }

NSDEBUG=${NSDEBUG:-$PWD/bin/nsdebug}
[ -x "$NSDEBUG" ] || make -s build
RUNS=${BENCH_RUNS:-30}
OUT=${BENCH_OUT:-bench-results.md}
WORK=$(mktemp -d)

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
	for i in $(seq 1 "$BENCH_NETNS_COUNT"); do echo "netns del $PREFIX-$i"; done | ip -force -batch - >/dev/null 2>&1
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

compare() { # what target nsdebug_cmd baseline_cmd [mode]
	local what=$1 target=$2 ours=$3 theirs=$4 mode=${5:-max} json=$WORK/h.json
	local cmds=("$ours")
	[ "$theirs" = - ] || cmds+=("$theirs")
	# -N runs without a shell; commands with shell syntax need one.
	if ! hyperfine -N -w 3 -r "$RUNS" --export-json "$json" "${cmds[@]}" >/dev/null 2>"$WORK/err" &&
		! hyperfine -w 3 -r "$RUNS" --export-json "$json" "${cmds[@]}" >/dev/null 2>"$WORK/err"; then
		echo "| $what | FAILED: $(grep -m1 -iE 'error|fail|non-zero' "$WORK/err" | tr '|' '/' | cut -c1-120) | | | | FAILED |" >>"$OUT"
		FAILS=$((FAILS+1))
		tail -1 "$OUT"
		return 0
	fi
	python3 - "$json" "$what" "$target" "$mode" >>"$OUT" <<'PY' || FAILS=$((FAILS+1))
import json, sys
res = json.load(open(sys.argv[1]))["results"]
what, mode = sys.argv[2], sys.argv[4]
target = 0.0 if mode == "report" else float(sys.argv[3])
ours = res[0]["mean"] * 1000
if mode == "report":
    theirs = res[1]["mean"] * 1000
    print(f"| {what} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f}x | - | info |")
    sys.exit(0)
if mode == "abs-ms":
    ok = ours <= target
    print(f"| {what} | {ours:.1f} | - | - | < {target:g} ms | {'ok' if ok else 'MISSED'} |")
else:
    theirs = res[1]["mean"] * 1000
    ratio = ours / theirs
    ok = ratio <= target
    print(f"| {what} | {ours:.1f} | {theirs:.1f} | {ratio:.2f}x | <= {target:g}x | {'ok' if ok else 'MISSED'} |")
sys.exit(0 if ok else 1)
PY
	tail -1 "$OUT"
}

for f in scripts/bench.d/*.sh; do
	[ -e "$f" ] || continue
	# shellcheck source=/dev/null
	. "$f"
done

echo
cat "$OUT"
# The README shows the table of the latest run on each test bed profile,
# between its bench markers: <!-- bench --> for debian, <!-- bench current -->.
if [ -n "${BENCH_README:-}" ]; then
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
