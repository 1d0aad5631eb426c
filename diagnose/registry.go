package diagnose

// registry is THE table of checks, in output order. A dependency must come
// before its dependents.
var registry = []Check{
	{ID: "ports.listen", Category: "ports", Title: "Published ports have a reachable listener", Inputs: []string{"runtime port bindings", "sock_diag LISTEN sockets with processes"}, Run: checkPortsListen},
	{ID: "ports.dnat", Category: "ports", Title: "Published ports have a DNAT rule (and docker-proxy)", Inputs: []string{"runtime port bindings", "host iptables-save (legacy and nft) nat table", "docker-proxy processes"}, Run: checkPortsDNAT},
	{ID: "link.up", Category: "routing", Title: "Interfaces are up", Inputs: []string{"netlink links"}, Run: checkLinkUp},
	{ID: "route.default", Category: "routing", Title: "Default route present", Inputs: []string{"netlink routes", "runtime network mode, internal networks"}, Run: checkRouteDefault},
	{ID: "route.gateway", Category: "routing", Title: "Gateway answers ARP", Inputs: []string{"netlink routes", "netlink neighbours"}, DependsOn: []string{"route.default"}, Run: checkRouteGateway},
	{ID: "veth.host", Category: "wiring", Title: "Host side of the veth is up and on its bridge", Inputs: []string{"veth peer", "host links", "runtime network bridge"}, Run: checkVethHost},
	{ID: "mtu", Category: "wiring", Title: "MTU consistent along the path", Inputs: []string{"links", "host links", "host default route", "host mangle TCPMSS rules"}, Run: checkMTU},
	{ID: "dns.resolvconf", Category: "dns", Title: "resolv.conf names a nameserver", Inputs: []string{"container resolv.conf"}, Run: checkDNSResolvConf},
	{ID: "dns.loopback", Category: "dns", Title: "Loopback nameserver has a listener", Inputs: []string{"resolv.conf", "sock_diag"}, DependsOn: []string{"dns.resolvconf"}, Run: checkDNSLoopback},
	{ID: "dns.docker-embedded", Category: "dns", Title: "Docker's 127.0.0.11 has its DNAT rules", Inputs: []string{"resolv.conf", "netns nat table"}, DependsOn: []string{"dns.resolvconf"}, Run: checkDNSDockerEmbedded},
	{ID: "dns.search", Category: "dns", Title: "Search list and ndots do not multiply queries", Inputs: []string{"resolv.conf"}, DependsOn: []string{"dns.resolvconf"}, Run: checkDNSSearch},
	{ID: "dns.probe", Category: "dns", Title: "Nameservers answer (sends DNS queries)", Inputs: []string{"resolv.conf", "a UDP query for localhost. from inside the netns"}, DependsOn: []string{"dns.resolvconf", "route.default"}, Probe: true, Run: checkDNSProbe},
	{ID: "conntrack.fill", Category: "conntrack", Title: "Conntrack table has room", Inputs: []string{"nf_conntrack_count", "nf_conntrack_max"}, Run: checkConntrackFill},
	{ID: "conntrack.drops", Category: "conntrack", Title: "Conntrack is not dropping", Inputs: []string{"/proc/net/stat/nf_conntrack twice"}, Run: checkConntrackDrops},
	{ID: "listen.queue", Category: "sockets", Title: "Listen queues are not overflowing", Inputs: []string{"sock_diag LISTEN recv-q/send-q", "TcpExt ListenOverflows/ListenDrops twice", "somaxconn"}, Run: checkListenQueue},
	{ID: "ports.ephemeral", Category: "sockets", Title: "Ephemeral ports are not exhausted", Inputs: []string{"sock_diag", "ip_local_port_range", "TcpExt.TCPTimeWaitOverflow twice"}, Run: checkEphemeral},
	{ID: "tcp.retrans", Category: "sockets", Title: "TCP retransmission rate", Inputs: []string{"Tcp RetransSegs/OutSegs twice"}, Run: checkRetrans},
	{ID: "forward.policy", Category: "firewall", Title: "Host FORWARD chain lets this bridge through", Inputs: []string{"host iptables-save filter table", "veth peer's bridge"}, Run: checkForwardPolicy},
	{ID: "rp_filter", Category: "routing", Title: "Reverse-path filter fits the routes", Inputs: []string{"rp_filter all and per interface", "routes", "TcpExt.IPReversePathFilter twice"}, Run: checkRPFilter},
	{ID: "addr.conflict", Category: "wiring", Title: "No other namespace on the bridge has this address", Inputs: []string{"every namespace's addresses and host veth bridge"}, Run: checkAddrConflict},
	{ID: "ipv6.localhost", Category: "dns", Title: "localhost resolves to an address that works", Inputs: []string{"container /etc/hosts", "addresses", "sock_diag"}, Run: checkIPv6Localhost},
	{ID: "hairpin", Category: "wiring", Title: "Hairpin mode where the userland proxy is off", Inputs: []string{"dockerd userland-proxy", "forwarding netns nat DNAT rules to the target", "bridge port hairpin mode (netlink)"}, Run: checkHairpin},

	{ID: "host.ip_forward", Category: "host", Title: "Host forwards IPv4", Scope: ScopeHost, Inputs: []string{"net.ipv4.ip_forward"}, Run: checkHostIPForward},
	{ID: "host.bridge_nf", Category: "host", Title: "Bridged traffic passes iptables", Scope: ScopeHost, Inputs: []string{"net.bridge.bridge-nf-call-iptables"}, Run: checkHostBridgeNF},
	{ID: "host.iptables_backends", Category: "host", Title: "One iptables backend holds the rules", Scope: ScopeHost, Inputs: []string{"iptables-legacy-save", "iptables-nft-save"}, Run: checkHostIPTablesBackends},
	{ID: "host.subnet_overlap", Category: "host", Title: "Runtime subnets do not overlap host routes", Scope: ScopeHost, Inputs: []string{"Docker network subnets", "CNI configuration host-local ranges (/etc/cni/net.d)", "host routes"}, Run: checkHostSubnetOverlap},
}
