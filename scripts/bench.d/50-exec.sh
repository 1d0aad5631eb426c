# Issue 3: nsdebug exec against the tools a user would otherwise run. Each
# runs `true` in the target's netns; nsdebug also resolves the target, sets
# up a private mount namespace (/sys remount, the container's resolv.conf
# and hosts) and waits for the command, as in real use. nsdebug's floor is
# its own start-up (the "version" row), which nsenter does not pay.
compare "exec pid:N -- true vs nsenter -t N -n true" 3.5 \
	"$NSDEBUG exec pid:$BENCH_PID -- true" "nsenter -t $BENCH_PID -n true"
compare "exec docker:X -- true vs docker exec X true" 0.3 \
	"$NSDEBUG exec docker:$BENCH_CONTAINER -- true" "docker exec $BENCH_CONTAINER true"
# ip netns exec does the same /sys remount in a private mount namespace.
compare "exec netns:N -- true vs ip netns exec N true" 2 \
	"$NSDEBUG exec netns:$BENCH_NETNS -- true" "ip netns exec $BENCH_NETNS true"
# nsdebug's start-up alone (the version row) against the same baseline:
# what of exec's budget the start-up takes before exec does anything.
compare "(floor) version vs ip netns exec N true" - "$NSDEBUG version" "ip netns exec $BENCH_NETNS true" report
compare "(floor) version vs nsenter -t N -n true" - "$NSDEBUG version" "nsenter -t $BENCH_PID -n true" report
# Where the time goes: exec without the mount namespace work (what nsenter -n
# does), against the same nsenter.
compare "(like for like) exec --no-sysfs --host-dns pid:N vs nsenter" - \
	"$NSDEBUG exec --no-sysfs --host-dns pid:$BENCH_PID -- true" "nsenter -t $BENCH_PID -n true" report
# The kernel's share, which both sides of the exec rows pay: a private mount
# namespace costs its copy of every mount of the host (540 with the bench's
# netns) and, when its last task exits, their teardown. Same command either
# side, so the difference is the namespace alone (issue 13).
compare "(floor) unshare -m --propagation slave true vs true" - \
	"unshare -m --propagation slave true" "true" report
