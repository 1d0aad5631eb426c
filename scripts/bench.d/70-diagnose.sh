# diagnose TARGET and diagnose --all on the busy host ($BENCH_CONTAINERS
# containers, $BENCH_NETNS_COUNT netns), interval excluded (--interval 1ms;
# the baseline reads the counters twice with no pause). The baseline makes
# the same reads by hand: per container nsenter + ip (links, addresses,
# routes of every table, neighbours) + ss (sockets with processes) +
# iptables-save + cat of the sysctls and counter files (twice) + the
# container's resolv.conf and hosts + docker inspect; once per run the
# host's links and routes, both iptables-save and the Docker network.
diag_netns_reads() { # PID
	echo "nsenter -t $1 -n sh -c 'ip -j link; ip -j addr; ip -j route show table all; ip -j neigh; ss -tunapi; iptables-save; cat /proc/sys/net/ipv4/ip_local_port_range /proc/sys/net/core/somaxconn /proc/sys/net/ipv4/conf/*/rp_filter /proc/sys/net/netfilter/nf_conntrack_count /proc/sys/net/netfilter/nf_conntrack_max /proc/net/netstat /proc/net/snmp /proc/net/stat/nf_conntrack; cat /proc/net/netstat /proc/net/snmp /proc/net/stat/nf_conntrack' >/dev/null 2>&1"
	echo "cat /proc/$1/root/etc/resolv.conf /proc/$1/root/etc/hosts >/dev/null"
}
diag_host_reads() {
	echo "ip -j link >/dev/null; ip -j route >/dev/null"
	echo "iptables-legacy-save >/dev/null 2>&1; iptables-nft-save >/dev/null 2>&1"
	echo "docker network inspect bridge >/dev/null"
}
{ diag_host_reads; echo "docker inspect $BENCH_CONTAINER >/dev/null"; diag_netns_reads "$BENCH_PID"; } >"$WORK/diag-one.sh"
{
	diag_host_reads
	echo "docker inspect \$(docker ps -q --filter label=nsdebug-bench=$PREFIX) >/dev/null"
	for c in $(docker ps -q --filter "label=nsdebug-bench=$PREFIX"); do
		diag_netns_reads "$(docker inspect -f '{{.State.Pid}}' "$c")"
	done
} >"$WORK/diag-all.sh"
# nsdebug exits 1 when a check FAILs (a busy host's container may): the
# time is what is compared, so the status is ignored; both sides run
# through sh.
echo "$NSDEBUG diagnose docker:$BENCH_CONTAINER --interval 1ms >/dev/null || true" >"$WORK/diag-ns-one.sh"
echo "$NSDEBUG diagnose --all --interval 1ms >/dev/null || true" >"$WORK/diag-ns-all.sh"
compare "diagnose X (interval excluded) vs nsenter+ip+ss+iptables-save+cat" 0.5 \
	"sh $WORK/diag-ns-one.sh" "sh $WORK/diag-one.sh"
compare "diagnose --all, $BENCH_CONTAINERS containers (interval excluded) vs the same per container" 0.5 \
	"sh $WORK/diag-ns-all.sh" "sh $WORK/diag-all.sh"
