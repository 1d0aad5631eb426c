package filter

// Names libpcap's scanner turns into numbers.
var numKeywords = map[string]uint32{
	"tcpflags": 13, "tcp-fin": 0x01, "tcp-syn": 0x02, "tcp-rst": 0x04, "tcp-push": 0x08,
	"tcp-ack": 0x10, "tcp-urg": 0x20, "tcp-ece": 0x40, "tcp-cwr": 0x80,
	"icmptype": 0, "icmpcode": 1,
	"icmp-echoreply": 0, "icmp-unreach": 3, "icmp-sourcequench": 4, "icmp-redirect": 5,
	"icmp-echo": 8, "icmp-routeradvert": 9, "icmp-routersolicit": 10, "icmp-timxceed": 11,
	"icmp-paramprob": 12, "icmp-tstamp": 13, "icmp-tstampreply": 14, "icmp-ireq": 15,
	"icmp-ireqreply": 16, "icmp-maskreq": 17, "icmp-maskreply": 18,
	"icmp6type": 0, "icmp6code": 1,
	"icmp6-destinationunreach": 1, "icmp6-packettoobig": 2, "icmp6-timeexceeded": 3,
	"icmp6-parameterproblem": 4, "icmp6-echo": 128, "icmp6-echoreply": 129,
	"icmp6-multicastlistenerquery": 130, "icmp6-multicastlistenerreportv1": 131,
	"icmp6-multicastlistenerdone": 132, "icmp6-routersolicit": 133, "icmp6-routeradvert": 134,
	"icmp6-neighborsolicit": 135, "icmp6-neighboradvert": 136, "icmp6-redirect": 137,
	"icmp6-routerrenum": 138, "icmp6-nodeinformationquery": 139,
	"icmp6-nodeinformationresponse": 140, "icmp6-ineighbordiscoverysolicit": 141,
	"icmp6-ineighbordiscoveryadvert": 142, "icmp6-multicastlistenerreportv2": 143,
	"icmp6-homeagentdiscoveryrequest": 144, "icmp6-homeagentdiscoveryreply": 145,
	"icmp6-mobileprefixsolicit": 146, "icmp6-mobileprefixadvert": 147,
	"icmp6-certpathsolicit": 148, "icmp6-certpathadvert": 149,
	"icmp6-multicastrouteradvert": 151, "icmp6-multicastroutersolicit": 152,
	"icmp6-multicastrouterterm": 153,
}

// Protocol names usable as a qualifier or on their own. "link" and "ether"
// are the same qualifier.
var protoKeywords = map[string]bool{
	"ether": true, "link": true, "ip": true, "ip6": true, "arp": true, "rarp": true,
	"tcp": true, "udp": true, "sctp": true, "icmp": true, "icmp6": true,
	"igmp": true, "igrp": true, "pim": true, "vrrp": true, "carp": true, "ah": true, "esp": true,
}

// IP protocol numbers of the transport abbreviations, and whether libpcap
// matches them over IPv4 only (v4) or over IPv4 and IPv6.
var transportProtos = map[string]struct {
	num uint32
	v4  bool
	v6  bool
}{
	"tcp": {6, true, true}, "udp": {17, true, true}, "sctp": {132, true, true},
	"icmp": {1, true, false}, "icmp6": {58, false, true}, "igmp": {2, true, false},
	"igrp": {9, true, false}, "pim": {103, true, true}, "vrrp": {112, true, false},
	"carp": {112, true, false}, "ah": {51, true, true}, "esp": {50, true, true},
}

// Keywords of libpcap this compiler does not implement: an expression using
// one is an error naming it, never a different filter.
var unsupportedKeywords = map[string]bool{
	"gateway": true, "protochain": true,
	"ifindex": true, "ifname": true, "on": true, "rnr": true, "rulenum": true,
	"reason": true, "rset": true, "ruleset": true, "srnr": true, "subrulenum": true,
	"subrule": true, "action": true, "type": true, "subtype": true, "dir": true,
	"addr1": true, "addr2": true, "addr3": true, "addr4": true, "ra": true, "ta": true,
	"mpls": true, "pppoed": true, "pppoes": true, "geneve": true, "llc": true,
	"atalk": true, "aarp": true, "decnet": true, "lat": true, "sca": true, "moprc": true,
	"mopdl": true, "iso": true, "esis": true, "es-is": true, "isis": true, "is-is": true,
	"l1": true, "l2": true, "iih": true, "lsp": true, "snp": true, "csnp": true,
	"psnp": true, "clnp": true, "stp": true, "ipx": true, "netbeui": true, "radio": true,
	"fddi": true, "tr": true, "wlan": true, "ppp": true, "slip": true, "lane": true,
	"metac": true, "bcc": true, "sc": true, "ilmic": true, "oamf4ec": true,
	"oamf4sc": true, "oam": true, "oamf4": true, "connectmsg": true, "metaconnect": true,
	"vpi": true, "vci": true, "fisu": true, "lssu": true, "msu": true, "hfisu": true,
	"hlssu": true, "hmsu": true, "sio": true, "opc": true, "dpc": true, "sls": true,
	"hsio": true, "hopc": true, "hdpc": true, "hsls": true, "ra-addr": true,
}

// Words that are keywords in the grammar (cannot be a bare name).
var grammarKeywords = map[string]bool{
	"and": true, "or": true, "not": true, "src": true, "dst": true, "host": true,
	"net": true, "mask": true, "port": true, "portrange": true, "proto": true,
	"less": true, "greater": true, "len": true, "broadcast": true, "multicast": true,
	"vlan": true, "inbound": true, "outbound": true,
}

func isKeyword(s string) bool {
	return grammarKeywords[s] || protoKeywords[s] || unsupportedKeywords[s]
}

// Ethernet type names (libpcap's eproto table).
var etherProtoNames = map[string]uint32{
	"ip": 0x0800, "ip6": 0x86dd, "arp": 0x0806, "rarp": 0x8035, "atalk": 0x809b,
	"aarp": 0x80f3, "decnet": 0x6003, "sca": 0x6007, "lat": 0x6004, "mopdl": 0x6001,
	"moprc": 0x6002, "loopback": 0x9000,
}

// IP protocol names, as in Debian's /etc/protocols (libpcap looks them up
// there; nsdebug carries its own copy so the filter does not depend on the
// host's files).
var ipProtoNames = map[string]uint32{
	"ip": 0, "hopopt": 0, "icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "st": 5, "tcp": 6,
	"egp": 8, "igp": 9, "pup": 12, "udp": 17, "hmp": 20, "xns-idp": 22, "rdp": 27,
	"iso-tp4": 29, "dccp": 33, "xtp": 36, "ddp": 37, "idpr-cmtp": 38, "ipv6": 41,
	"ipv6-route": 43, "ipv6-frag": 44, "idrp": 45, "rsvp": 46, "gre": 47, "esp": 50,
	"ah": 51, "skip": 57, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
	"rspf": 73, "vmtp": 81, "eigrp": 88, "ospf": 89, "ax.25": 93, "ipip": 94,
	"etherip": 97, "encap": 98, "pim": 103, "ipcomp": 108, "vrrp": 112, "l2tp": 115,
	"isis": 124, "sctp": 132, "fc": 133, "mobility-header": 135, "udplite": 136,
	"mpls-in-ip": 137, "manet": 138, "hip": 139, "shim6": 140, "wesp": 141, "rohc": 142,
	"ethernet": 143,
}

// Service names for `port NAME`: the port and which transports define it
// (as Debian's /etc/services; a name only TCP defines makes `port NAME`
// match TCP only, as libpcap does).
type service struct {
	port     uint32
	tcp, udp bool
}

var serviceNames = map[string]service{
	"ftp-data": {20, true, false}, "ftp": {21, true, false}, "ssh": {22, true, false},
	"telnet": {23, true, false}, "smtp": {25, true, false}, "domain": {53, true, true},
	"bootps": {67, false, true}, "bootpc": {68, false, true}, "tftp": {69, false, true},
	"http": {80, true, false}, "www": {80, true, false}, "kerberos": {88, true, true},
	"pop3": {110, true, false}, "sunrpc": {111, true, true}, "ntp": {123, false, true},
	"imap2": {143, true, false}, "imap": {143, true, false}, "snmp": {161, true, true},
	"bgp": {179, true, false}, "ldap": {389, true, true}, "https": {443, true, true},
	"syslog": {514, false, true}, "submission": {587, true, false},
	"ldaps": {636, true, true}, "imaps": {993, true, false}, "pop3s": {995, true, false},
	"mysql": {3306, true, false}, "postgresql": {5432, true, false},
}
