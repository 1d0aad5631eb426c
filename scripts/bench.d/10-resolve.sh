# Issue 2: resolution and listing against the tools a user would otherwise run.
# Issue 13: start-up against its floor, an empty static Go binary (bench.sh
# builds it with the same toolchain and copies it, like nsdebug, before timing).
compare "version vs an empty static Go binary" 2.5 "$NSDEBUG version" "$EMPTY_GO"
# Where version's time goes (recorded, not judged): the libraries' package
# inits alone (bench.sh's libs-floor, an empty main() linking them), and
# nsdebug's own start-up on top of them.
compare "(floor) empty main() linking nsdebug's libraries vs an empty Go binary" - "$LIBS_FLOOR" "$EMPTY_GO" report
compare "(floor) version vs that empty main() with the libraries" - "$NSDEBUG version" "$LIBS_FLOOR" report
compare "resolve pid:N vs nsenter -t N -n true" 2.7 "$NSDEBUG resolve pid:$BENCH_PID" "nsenter -t $BENCH_PID -n true"
compare "resolve docker:X vs docker inspect X" 1 "$NSDEBUG resolve docker:$BENCH_CONTAINER" "docker inspect $BENCH_CONTAINER"
SAVE=ls500 compare "ls -o json vs lsns -t net + docker ps -a ($BENCH_NETNS_COUNT netns)" 1.2 "$NSDEBUG ls -o json" "sh -c 'lsns -t net >/dev/null; docker ps -a >/dev/null'"
# What ls replaces when the same picture is wanted (every netns with its
# interfaces and addresses): iproute2 in each named netns. Recorded, not judged;
# few runs, it is slow.
RUNS=3 WARM=0 compare "ls vs lsns + docker ps + ip -all netns exec ip -br addr" - "$NSDEBUG ls" \
	"sh -c 'lsns -t net >/dev/null; docker ps -a >/dev/null; ip -all netns exec ip -br addr >/dev/null 2>&1'" report
