# Issue 13: ls at scale. Runs last: it grows the host from $BENCH_NETNS_COUNT
# to $BENCH_SCALE_NETNS named netns, times ls -o json there (its median under
# 1.5 s, and at most 11x its median at $BENCH_NETNS_COUNT from the ls row
# above: the two hosts differ, so these are medians, not pairs), then removes
# what it added. bench.sh's cleanup removes them too if this is interrupted.
BENCH_SCALE_NETNS=${BENCH_SCALE_NETNS:-5000}
echo "bench: growing to $BENCH_SCALE_NETNS netns" >&2
for i in $(seq $((BENCH_NETNS_COUNT + 1)) "$BENCH_SCALE_NETNS"); do echo "netns add $PREFIX-$i"; done | ip -batch -
# A fast ls that missed namespaces would prove nothing: count its rows first.
rows=$("$NSDEBUG" ls -o json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "bench: ls -o json lists $rows namespaces" >&2
if [ "$rows" -lt "$BENCH_SCALE_NETNS" ]; then
	echo "| ls -o json ($BENCH_SCALE_NETNS netns) | FAILED: it lists $rows namespaces | | | | FAILED |" >>"$OUT"
	FAILS=$((FAILS+1))
elif "$WORK/pairbench" -n "$RUNS" -w 3 -json "$WORK/ls5000.json" "$NSDEBUG ls -o json" >/dev/null 2>"$WORK/err"; then
	median_row "ls -o json ($BENCH_SCALE_NETNS netns)" 1500 "$WORK/ls5000.json"
	if [ -s "$WORK/ls500.json" ]; then
		scale_ratio "ls -o json: $BENCH_SCALE_NETNS netns vs $BENCH_NETNS_COUNT (medians)" 11 "$WORK/ls5000.json" "$WORK/ls500.json"
	fi
else
	echo "| ls -o json ($BENCH_SCALE_NETNS netns) | FAILED: $(head -1 "$WORK/err" | tr '|' '/' | cut -c1-120) | | | | FAILED |" >>"$OUT"
	FAILS=$((FAILS+1))
fi
for i in $(seq $((BENCH_NETNS_COUNT + 1)) "$BENCH_SCALE_NETNS"); do echo "netns del $PREFIX-$i"; done | ip -force -batch - >/dev/null 2>&1
