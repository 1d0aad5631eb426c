# Issue 2: resolution and listing against the tools a user would otherwise run.
compare "resolve pid:N vs nsenter -t N -n true" 2 "$NSDEBUG resolve pid:$BENCH_PID" "nsenter -t $BENCH_PID -n true"
compare "resolve docker:X vs docker inspect X" 1 "$NSDEBUG resolve docker:$BENCH_CONTAINER" "docker inspect $BENCH_CONTAINER"
compare "ls vs lsns -t net + docker ps -a" 1 "$NSDEBUG ls" "sh -c 'lsns -t net >/dev/null; docker ps -a >/dev/null'"
# What ls replaces when the same picture is wanted (every netns with its
# interfaces and addresses): iproute2 in each named netns. Recorded, not judged;
# few runs, it is slow.
RUNS=3 compare "ls vs lsns + docker ps + ip -all netns exec ip -br addr" - "$NSDEBUG ls" \
	"sh -c 'lsns -t net >/dev/null; docker ps -a >/dev/null; ip -all netns exec ip -br addr >/dev/null 2>&1'" report
