# inspect and whois on the shared busy host (bench.sh made $BENCH_NETNS_COUNT
# netns and $BENCH_CONTAINERS containers; nothing extra to set up or remove).
# inspect reads links, addresses, routes of every table, rules, neighbours,
# sockets with their processes, sysctls and the firewall; the baseline is the
# iproute2 subset a user would run for the same picture.
BENCH_IP=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$BENCH_CONTAINER")
compare "inspect X -o json vs nsenter ip addr + route + ss" 0.8 \
	"$NSDEBUG inspect docker:$BENCH_CONTAINER -o json" \
	"nsenter -t $BENCH_PID -n sh -c 'ip -j addr; ip -j route show table all; ss -tunap'"
compare "whois IP (50 containers, 500 netns)" 100 "$NSDEBUG whois $BENCH_IP" - abs-ms
