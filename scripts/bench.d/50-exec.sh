# Issue 3: nsdebug exec against the tools a user would otherwise run. Each
# runs `true` in the target's netns; nsdebug also resolves the target, sets
# up a private mount namespace (/sys remount, the container's resolv.conf
# and hosts) and waits for the command, as in real use. nsdebug's floor is
# its own start-up (package init of the runtime clients: ~9 ms for
# `nsdebug version` on the test machines), which nsenter (~2 ms) does not pay.
compare "exec pid:N -- true vs nsenter -t N -n true" 2 \
	"$NSDEBUG exec pid:$BENCH_PID -- true" "nsenter -t $BENCH_PID -n true"
compare "exec docker:X -- true vs docker exec X true" 0.3 \
	"$NSDEBUG exec docker:$BENCH_CONTAINER -- true" "docker exec $BENCH_CONTAINER true"
# The issue sets no target here; ip netns exec does the same /sys remount in
# a private mount namespace. Recorded, not judged.
compare "exec netns:N -- true vs ip netns exec N true" - \
	"$NSDEBUG exec netns:$BENCH_NETNS -- true" "ip netns exec $BENCH_NETNS true" report
# Where the time goes: nsdebug's start-up alone, and exec without the mount
# namespace work (what nsenter -n does), against the same nsenter.
compare "(floor) version vs nsenter -t N -n true" - \
	"$NSDEBUG version" "nsenter -t $BENCH_PID -n true" report
compare "(like for like) exec --no-sysfs --host-dns pid:N vs nsenter" - \
	"$NSDEBUG exec --no-sysfs --host-dns pid:$BENCH_PID -- true" "nsenter -t $BENCH_PID -n true" report
