package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/enter"
	"github.com/nsdebug/nsdebug/inspect"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

// Ground truth comes from iproute2 run inside the same namespace
// (nsenter --net=PATH), never from nsdebug's own code.

type ipLink struct {
	Ifindex   int    `json:"ifindex"`
	Ifname    string `json:"ifname"`
	LinkIndex int    `json:"link_index"`
	Master    string `json:"master"`
	LinkType  string `json:"link_type"`
	Operstate string `json:"operstate"`
	MTU       int    `json:"mtu"`
	Address   string `json:"address"`
	LinkInfo  struct {
		InfoKind string `json:"info_kind"`
	} `json:"linkinfo"`
}

type ipAddr struct {
	Ifname   string `json:"ifname"`
	AddrInfo []struct {
		Local     string `json:"local"`
		Prefixlen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

type ipRoute struct {
	Type     string `json:"type"`
	Dst      string `json:"dst"`
	Gateway  string `json:"gateway"`
	Dev      string `json:"dev"`
	Table    string `json:"table"`
	Protocol string `json:"protocol"`
	Scope    string `json:"scope"`
	Prefsrc  string `json:"prefsrc"`
	Metric   int    `json:"metric"`
	Nexthops []struct {
		Gateway string `json:"gateway"`
		Dev     string `json:"dev"`
		Weight  int    `json:"weight"`
	} `json:"nexthops"`
}

type ipRule struct {
	Priority int     `json:"priority"`
	Src      string  `json:"src"`
	Srclen   *int    `json:"srclen"`
	Dst      string  `json:"dst"`
	Dstlen   *int    `json:"dstlen"`
	Iif      string  `json:"iif"`
	Oif      string  `json:"oif"`
	Fwmark   string  `json:"fwmark"`
	Fwmask   string  `json:"fwmask"`
	Table    string  `json:"table"`
	Action   string  `json:"action"`
	Goto     int     `json:"goto"`
	Not      *string `json:"not"`
	Nop      *string `json:"nop"`
}

// UnmarshalJSON keeps "not": null and "nop": null (ip's flags) as present.
func (r *ipRule) UnmarshalJSON(b []byte) error {
	type plain ipRule
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if err := json.Unmarshal(b, (*plain)(r)); err != nil {
		return err
	}
	empty := ""
	if _, ok := raw["not"]; ok {
		r.Not = &empty
	}
	if _, ok := raw["nop"]; ok {
		r.Nop = &empty
	}
	return nil
}

type ipNeigh struct {
	Dst string `json:"dst"`
	Dev string `json:"dev"`
}

func nsRun(t *testing.T, nsPath string, args ...string) string {
	t.Helper()
	return testbed.MustRun(t, "nsenter", append([]string{"--net=" + nsPath}, args...)...)
}

func nsJSON(t *testing.T, nsPath string, v any, args ...string) {
	t.Helper()
	out := nsRun(t, nsPath, args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
}

func inspectJSON(t *testing.T, target string) *inspect.Report {
	t.Helper()
	stdout, stderr, code := run(t, "inspect", target, "-o", "json")
	if code != 0 {
		t.Fatalf("inspect %s: exit %d: %s", target, code, stderr)
	}
	var rep inspect.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("inspect %s: bad JSON: %v\n%s", target, err, stdout)
	}
	return &rep
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sameSet(t *testing.T, what string, got, want map[string]bool) {
	t.Helper()
	var extra, missing []string
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	if len(extra)+len(missing) > 0 {
		sort.Strings(extra)
		sort.Strings(missing)
		t.Errorf("%s differ from the ground truth (iproute2, iptables-save):\n only nsdebug: %q\n only the tools: %q", what, extra, missing)
	}
}

// compareWithIproute2 checks links, addresses, routes of every table (both
// families, next hops included), policy rules, neighbours and every TCP/UDP
// socket with its owning processes against ip/ss run in the namespace.
func compareWithIproute2(t *testing.T, rep *inspect.Report, nsPath string) {
	t.Helper()
	compareLinks(t, rep, nsPath)
	compareAddrs(t, rep, nsPath)
	compareRoutes(t, rep, nsPath)
	compareRules(t, rep, nsPath)
	compareNeighbors(t, rep, nsPath)
	compareSockets(t, rep, nsPath)
}

func compareLinks(t *testing.T, rep *inspect.Report, nsPath string) {
	t.Helper()
	var links []ipLink
	nsJSON(t, nsPath, &links, "ip", "-d", "-j", "link")
	got, want := map[string]bool{}, map[string]bool{}
	key := func(index int, name, master, typ, state string, mtu int, mac string) string {
		return fmt.Sprintf("%d %s master=%s type=%s state=%s mtu=%d mac=%s", index, name, master, typ, state, mtu, mac)
	}
	for _, l := range rep.Links {
		state := strings.ToUpper(strings.ReplaceAll(l.State, "-", ""))
		got[key(l.Index, l.Name, l.Master, l.Type, state, l.MTU, l.MAC)] = true
	}
	for _, l := range links {
		typ := l.LinkInfo.InfoKind
		switch {
		case typ != "":
		case l.LinkType == "loopback":
			typ = "loopback"
		default:
			typ = "device"
		}
		mac := l.Address
		if strings.Trim(mac, "0:.") == "" {
			mac = "" // an all-zero address (lo, tunnels) is shown as none
		}
		want[key(l.Ifindex, l.Ifname, l.Master, typ, l.Operstate, l.MTU, mac)] = true
	}
	sameSet(t, "links", got, want)
}

func compareAddrs(t *testing.T, rep *inspect.Report, nsPath string) {
	t.Helper()
	var addrs []ipAddr
	nsJSON(t, nsPath, &addrs, "ip", "-j", "addr")
	got, want := map[string]bool{}, map[string]bool{}
	for _, a := range rep.Addresses {
		got[a.Ifname+" "+a.Address] = true
	}
	for _, a := range addrs {
		for _, ai := range a.AddrInfo {
			want[fmt.Sprintf("%s %s/%d", a.Ifname, ai.Local, ai.Prefixlen)] = true
		}
	}
	sameSet(t, "addresses", got, want)
}

func compareRoutes(t *testing.T, rep *inspect.Report, nsPath string) {
	t.Helper()
	got, want := map[string]bool{}, map[string]bool{}
	key := func(fam, dst, table, typ, dev, gw, proto, scope, src string, metric int, nhs []string) string {
		return fmt.Sprintf("%s %s table=%s type=%s dev=%s via=%s proto=%s scope=%s src=%s metric=%d nexthops=%s",
			fam, dst, table, typ, dev, gw, proto, scope, src, metric, strings.Join(nhs, ","))
	}
	for _, r := range rep.Routes {
		dst := r.Dst
		if ip, n, err := net.ParseCIDR(dst); err == nil {
			if ones, bits := n.Mask.Size(); ones == bits {
				dst = ip.String() // ip prints host routes without /32, /128
			}
		}
		typ := r.Type
		if typ == "unicast" {
			typ = ""
		}
		// ip leaves out what is the default: proto boot, scope global.
		proto := r.Protocol
		switch proto {
		case "boot":
			proto = ""
		case "":
			proto = "unspec"
		}
		scope := r.Scope
		if scope == "global" {
			scope = ""
		}
		var nhs []string
		for _, nh := range r.Nexthops {
			nhs = append(nhs, fmt.Sprintf("%s@%s*%d", nh.Gateway, nh.Dev, nh.Weight))
		}
		got[key(r.Family, dst, r.Table, typ, r.Dev, r.Gateway, proto, scope, r.Src, r.Metric, nhs)] = true
	}
	for _, fam := range []string{"-4", "-6"} {
		var routes []ipRoute
		nsJSON(t, nsPath, &routes, "ip", "-j", fam, "route", "show", "table", "all")
		name := map[string]string{"-4": "inet", "-6": "inet6"}[fam]
		for _, r := range routes {
			table := r.Table
			if table == "" {
				table = "main"
			}
			var nhs []string
			for _, nh := range r.Nexthops {
				nhs = append(nhs, fmt.Sprintf("%s@%s*%d", nh.Gateway, nh.Dev, nh.Weight))
			}
			want[key(name, r.Dst, table, r.Type, r.Dev, r.Gateway, r.Protocol, r.Scope, r.Prefsrc, r.Metric, nhs)] = true
		}
	}
	sameSet(t, "routes", got, want)
}

func compareRules(t *testing.T, rep *inspect.Report, nsPath string) {
	t.Helper()
	got, want := map[string]bool{}, map[string]bool{}
	key := func(fam string, prio int, not bool, src, dst, iif, oif, mark, action, table string) string {
		return fmt.Sprintf("%s %d not=%v from=%s to=%s iif=%s oif=%s fwmark=%s %s %s", fam, prio, not, src, dst, iif, oif, mark, action, table)
	}
	for _, r := range rep.Rules {
		mark := r.Fwmark
		if r.Fwmask != "" {
			mark += "/" + r.Fwmask
		}
		action := r.Action
		if r.Action == "goto" {
			action = "goto " + strconv.Itoa(r.Goto)
		}
		got[key(r.Family, r.Priority, r.Not, dashOr(r.Src, "all"), dashOr(r.Dst, "all"), r.IIf, r.OIf, mark, action, r.Table)] = true
	}
	for _, fam := range []string{"-4", "-6"} {
		var rules []ipRule
		nsJSON(t, nsPath, &rules, "ip", "-j", fam, "rule")
		name := map[string]string{"-4": "inet", "-6": "inet6"}[fam]
		for _, r := range rules {
			prefix := func(a string, l *int) string {
				if l == nil {
					return a
				}
				return fmt.Sprintf("%s/%d", a, *l)
			}
			mark := r.Fwmark
			if r.Fwmask != "" {
				mark += "/" + r.Fwmask
			}
			action := r.Action
			switch {
			case r.Goto > 0:
				action = "goto " + strconv.Itoa(r.Goto)
			case r.Nop != nil:
				action = "nop"
			case action == "":
				action = "lookup"
			}
			want[key(name, r.Priority, r.Not != nil, prefix(r.Src, r.Srclen), dashOr(prefix(r.Dst, r.Dstlen), "all"), r.Iif, r.Oif, mark, action, r.Table)] = true
		}
	}
	sameSet(t, "rules", got, want)
}

func dashOr(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// compareNeighbors: the entries ip neigh lists (by address and device;
// states change as entries age).
func compareNeighbors(t *testing.T, rep *inspect.Report, nsPath string) {
	t.Helper()
	got, want := map[string]bool{}, map[string]bool{}
	for _, n := range rep.Neighbors {
		got[n.IP+" dev "+n.Dev] = true
	}
	var neighs []ipNeigh
	nsJSON(t, nsPath, &neighs, "ip", "-j", "neigh")
	for _, n := range neighs {
		want[n.Dst+" dev "+n.Dev] = true
	}
	sameSet(t, "neighbours", got, want)
}

var ssUser = regexp.MustCompile(`\("([^"]*)",pid=(\d+),`)

// ssSockets is ss -tunapH as keys: proto, state, local, remote and the
// owning processes (command/PID, sorted).
func ssSockets(t *testing.T, nsPath string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	norm := func(addr string) string {
		i := strings.LastIndex(addr, ":")
		if i < 0 {
			return addr
		}
		host, port := addr[:i], addr[i:]
		if j := strings.Index(host, "%"); j >= 0 {
			host = host[:j] // bound to a device: 0.0.0.0%eth0
		}
		if host == "*" {
			host = "[::]" // ss prints a dual-stack wildcard as *
		}
		return host + port
	}
	for _, line := range strings.Split(nsRun(t, nsPath, "ss", "-tunapH"), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		var users []string
		for _, m := range ssUser.FindAllStringSubmatch(strings.Join(f[6:], " "), -1) {
			users = append(users, m[1]+"/"+m[2])
		}
		sort.Strings(users)
		out[socketKey(f[0], f[1], norm(f[4]), norm(f[5]), users)] = true
	}
	return out
}

func socketKey(proto, state, local, remote string, users []string) string {
	return fmt.Sprintf("%s %s %s %s users=%s", proto, state, local, remote, strings.Join(users, ","))
}

// compareSockets: every TCP and UDP socket in every state, with its owners
// (host PIDs, as ss -p shows them from the host's /proc).
func compareSockets(t *testing.T, rep *inspect.Report, nsPath string) {
	t.Helper()
	sameSet(t, "sockets (ss -tunap)", reportSockets(rep), ssSockets(t, nsPath))
}

// reportSockets keys rep's sockets as ssSockets keys ss's.
func reportSockets(rep *inspect.Report) map[string]bool {
	got := map[string]bool{}
	for _, s := range rep.Sockets {
		var users []string
		for _, p := range s.Processes {
			users = append(users, p.Command+"/"+strconv.Itoa(p.PID))
		}
		sort.Strings(users)
		got[socketKey(s.Proto, s.State, s.Local, s.Remote, users)] = true
	}
	return got
}

// TestInspectSelfMadeNetns: a hub netns with a bridge, two netns wired to it
// by veth pairs, a third wired to the host by a veth the test names, and a
// TCP listener. Peers must be found in the hub (another netns, not the host).
func TestInspectSelfMadeNetns(t *testing.T) {
	testbed.Require(t)
	hub := testbed.NewNetNS(t, "nsdbg-hub")
	a := testbed.NewNetNS(t, "nsdbg-a")
	c := testbed.NewNetNS(t, "nsdbg-c")
	hub.Exec(t, "ip", "link", "add", "br0", "type", "bridge")
	hub.Exec(t, "ip", "link", "set", "br0", "up")
	hub.Exec(t, "ip", "link", "add", "to-a", "type", "veth", "peer", "name", "eth0", "netns", a.Name)
	hub.Exec(t, "ip", "link", "set", "to-a", "master", "br0", "up")
	a.Exec(t, "ip", "addr", "add", "10.231.0.2/24", "dev", "eth0")
	a.Exec(t, "ip", "link", "set", "eth0", "up")
	a.Exec(t, "ip", "link", "set", "lo", "up")
	// A macvlan made in the hub on a veth there and moved into a: its lower device
	// is in another namespace.
	hub.Exec(t, "ip", "link", "add", "lowr", "type", "veth", "peer", "name", "lowr2")
	hub.Exec(t, "ip", "link", "add", "mv0", "link", "lowr", "type", "macvlan", "mode", "bridge")
	hub.Exec(t, "ip", "link", "set", "mv0", "netns", a.Name)
	a.Exec(t, "ip", "route", "add", "10.232.0.0/16", "via", "10.231.0.1", "table", "100")
	a.Exec(t, "ip", "rule", "add", "from", "10.231.0.0/24", "table", "100", "priority", "1000")
	// A veth pair inside a itself, two subnets behind it and multipath
	// (ECMP) routes over both, for both families.
	a.Exec(t, "ip", "link", "add", "va", "type", "veth", "peer", "name", "vb")
	for _, l := range []string{"va", "vb"} {
		a.Exec(t, "ip", "link", "set", l, "up")
	}
	a.Exec(t, "ip", "addr", "add", "10.250.5.1/24", "dev", "va")
	a.Exec(t, "ip", "addr", "add", "10.250.6.1/24", "dev", "vb")
	a.Exec(t, "ip", "addr", "add", "fd99::1/64", "dev", "va", "nodad")
	a.Exec(t, "ip", "addr", "add", "fd98::1/64", "dev", "vb", "nodad")
	a.Exec(t, "ip", "route", "add", "10.77.0.0/16", "nexthop", "via", "10.250.5.2", "dev", "va", "weight", "3", "nexthop", "via", "10.250.6.2", "dev", "vb")
	a.Exec(t, "ip", "-6", "route", "add", "fd77::/64", "nexthop", "via", "fd99::2", "dev", "va", "nexthop", "via", "fd98::2", "dev", "vb")
	// Rules of every action, a fwmark with a mask, an inverted selector.
	for _, rule := range [][]string{
		{"from", "10.1.1.0/24", "prohibit", "pref", "100"},
		{"to", "10.2.2.0/24", "blackhole", "pref", "101"},
		{"fwmark", "0x10/0xff", "lookup", "200", "pref", "102"},
		{"fwmark", "0x20", "lookup", "201", "pref", "103"},
		{"from", "10.3.0.0/16", "unreachable", "pref", "104"},
		{"from", "10.4.0.0/16", "goto", "200", "pref", "105"},
		{"not", "from", "10.9.0.0/16", "lookup", "300", "pref", "106"},
		{"nop", "pref", "200"},
		{"-6", "from", "fd00::/8", "prohibit", "pref", "50"},
	} {
		args := append([]string{"rule", "add"}, rule...)
		if rule[0] == "-6" {
			args = append([]string{"-6", "rule", "add"}, rule[1:]...)
		}
		a.Exec(t, "ip", args...)
	}
	a.Exec(t, "ip", "tuntap", "add", "tun0", "mode", "tun")

	hostEnd := fmt.Sprintf("nsdbgv%d", time.Now().UnixNano()%1e6)
	testbed.MustRun(t, "ip", "link", "add", hostEnd, "type", "veth", "peer", "name", "eth0", "netns", c.Name)
	t.Cleanup(func() { testbed.Run("ip", "link", "del", hostEnd) })
	c.Exec(t, "ip", "addr", "add", "10.233.0.2/24", "dev", "eth0")
	c.Exec(t, "ip", "link", "set", "eth0", "up")
	testbed.MustRun(t, "ip", "link", "set", hostEnd, "up")

	a.Exec(t, "ip", "neigh", "add", "10.231.0.9", "lladdr", "02:00:00:00:00:09", "dev", "eth0", "nud", "permanent")
	a.Exec(t, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "ACCEPT")
	a.Exec(t, "iptables", "-A", "INPUT", "-p", "udp", "--dport", "53", "-j", "DROP")
	pid := a.StartProcess(t, "busybox", "nc", "-l", "-p", "8080")
	waitListen(t, a.Path, ":8080")
	// An established TCP connection to a dual-stack listener (its accepted
	// end is an inet6 socket with IPv4-mapped addresses) and a UDP socket,
	// made by this test inside a.
	openSockets(t, a.Path)

	rep := inspectJSON(t, "netns:"+a.Name)
	compareWithIproute2(t, rep, a.Path)
	// The real output has the documented keys only (see jsonSchema).
	raw, _, _ := run(t, "inspect", "netns:"+a.Name, "-o", "json")
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatal(err)
	}
	checkJSONKeys(t, "report", "report", v, someKeys)
	eth0 := linkNamed(t, rep, "eth0")
	if eth0.Peer == nil || eth0.Peer.Name != "to-a" || eth0.Peer.Bridge != "br0" || eth0.Peer.Netns.Host || eth0.Peer.Netns.Same {
		t.Errorf("eth0 peer = %+v, want to-a on br0 in the hub netns", eth0.Peer)
	}
	if hubIno := inode(t, hub.Path); eth0.Peer != nil && eth0.Peer.Netns.Inode != hubIno {
		t.Errorf("eth0 peer netns inode %d, want the hub's %d", eth0.Peer.Netns.Inode, hubIno)
	}
	if eth0.Peer != nil && (len(eth0.Peer.Netns.Owners) != 1 || !strings.HasSuffix(eth0.Peer.Netns.Owners[0], "/"+hub.Name)) {
		t.Errorf("eth0 peer netns named %q, want the hub's mount", eth0.Peer.Netns.Owners)
	}
	if mv := linkNamed(t, rep, "mv0"); mv.Type != "macvlan" || mv.Lower == nil || mv.Lower.Name != "lowr" || mv.Lower.Netns.Inode != inode(t, hub.Path) {
		t.Errorf("mv0 = %+v lower %+v, want a macvlan on lowr in the hub", mv, mv.Lower)
	}
	neighOK := false
	for _, n := range rep.Neighbors {
		neighOK = neighOK || (n.IP == "10.231.0.9" && n.MAC == "02:00:00:00:00:09" && n.Dev == "eth0" && n.State == "PERMANENT")
	}
	if !neighOK {
		t.Errorf("permanent neighbour 10.231.0.9 missing: %+v", rep.Neighbors)
	}
	// iptables here is iptables-nft: its rules are nftables rules of table
	// ip filter; the count must match what iptables itself lists.
	wantRules := strings.Count(a.Exec(t, "iptables", "-S", "INPUT"), "-A INPUT")
	gotRules := -1
	if rep.Firewall != nil {
		for _, tb := range rep.Firewall.NFTables {
			for _, ch := range tb.Chains {
				if tb.Family == "ip" && tb.Name == "filter" && ch.Name == "INPUT" {
					gotRules = ch.Rules
				}
			}
		}
	}
	if wantRules != 2 || gotRules != wantRules {
		t.Errorf("ip filter INPUT: nsdebug counts %d rules, iptables -S lists %d (want 2)", gotRules, wantRules)
	}
	foundRule := false
	for _, r := range rep.Rules {
		if r.Priority == 1000 && r.Src == "10.231.0.0/24" && r.Table == "100" {
			foundRule = true
		}
	}
	if !foundRule {
		t.Errorf("rule 1000 from 10.231.0.0/24 lookup 100 missing: %+v", rep.Rules)
	}
	owned := false
	for _, s := range rep.Sockets {
		if s.State == "LISTEN" && strings.HasSuffix(s.Local, ":8080") {
			for _, p := range s.Processes {
				// ip netns exec execs the command: same PID.
				owned = owned || p.PID == pid
			}
		}
	}
	if !owned {
		t.Errorf("listener :8080 not attributed to PID %d: %+v", pid, rep.Sockets)
	}
	if rep.Sysctls["net.ipv4.ip_forward"] != strings.TrimSpace(a.Exec(t, "cat", "/proc/sys/net/ipv4/ip_forward")) {
		t.Errorf("ip_forward %q differs from the netns's", rep.Sysctls["net.ipv4.ip_forward"])
	}

	// The netns wired to the host: its peer is the host veth the test made.
	repC := inspectJSON(t, "netns:"+c.Name)
	compareWithIproute2(t, repC, c.Path)
	if p := linkNamed(t, repC, "eth0").Peer; p == nil || p.Name != hostEnd || !p.Netns.Host {
		t.Errorf("netns c eth0 peer = %+v, want %s in the host", p, hostEnd)
	}
	// whois by the host veth name, its ifindex and the address.
	var hostLink []ipLink
	nsJSON(t, "/proc/2/ns/net", &hostLink, "ip", "-j", "link", "show", "dev", hostEnd)
	if len(hostLink) != 1 {
		t.Fatalf("ip link show dev %s: %+v", hostEnd, hostLink)
	}
	for _, thing := range []string{hostEnd, "ifindex:" + strconv.Itoa(hostLink[0].Ifindex), "10.233.0.2"} {
		stdout, stderr, code := run(t, "whois", thing, "-o", "json")
		if code != 0 {
			t.Fatalf("whois %s: exit %d %s", thing, code, stderr)
		}
		var res inspect.WhoisResult
		if err := json.Unmarshal([]byte(stdout), &res); err != nil || len(res.Matches) != 1 || res.Matches[0].Netns.Inode != inode(t, c.Path) {
			t.Errorf("whois %s: want exactly netns c (%d): %v %s", thing, inode(t, c.Path), err, stdout)
		}
		var v any
		if err := json.Unmarshal([]byte(stdout), &v); err == nil {
			checkJSONKeys(t, "whois", "whois", v, someKeys)
		}
	}
}

// TestInspectIptablesLegacy: rules of the legacy x_tables (iptables-legacy)
// are counted per table and chain, as iptables-legacy-save lists them.
func TestInspectIptablesLegacy(t *testing.T) {
	testbed.Require(t)
	n := testbed.NewNetNS(t, "nsdbg-legacy")
	for _, args := range [][]string{
		{"iptables-legacy", "-A", "FORWARD", "-s", "10.0.0.0/8", "-j", "ACCEPT"},
		{"iptables-legacy", "-A", "FORWARD", "-j", "DROP"},
		{"iptables-legacy", "-N", "NSDBG"},
		{"iptables-legacy", "-A", "NSDBG", "-p", "tcp", "-j", "RETURN"},
		{"iptables-legacy", "-A", "INPUT", "-j", "NSDBG"},
		{"iptables-legacy", "-N", "NSDBG-EMPTY"},
		{"iptables-legacy", "-t", "nat", "-A", "POSTROUTING", "-j", "MASQUERADE"},
		{"ip6tables-legacy", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"},
	} {
		n.Exec(t, args[0], args[1:]...)
	}
	want := map[string]bool{}
	for fam, save := range map[string]string{"ip": "iptables-legacy-save", "ip6": "ip6tables-legacy-save"} {
		counts := map[string]int{}
		var order []string
		table := ""
		for _, line := range strings.Split(n.Exec(t, save), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) == 0:
			case strings.HasPrefix(f[0], "*"):
				table = f[0][1:]
			case strings.HasPrefix(f[0], ":"):
				k := table + " " + f[0][1:]
				counts[k] = 0
				order = append(order, k)
			case f[0] == "-A" && len(f) > 1:
				counts[table+" "+f[1]]++
			}
		}
		for _, k := range order {
			want[fmt.Sprintf("%s %s=%d", fam, k, counts[k])] = true
		}
	}
	rep := inspectJSON(t, "netns:"+n.Name)
	got := map[string]bool{}
	if rep.Firewall != nil {
		for _, tb := range rep.Firewall.IPTablesLegacy {
			for _, ch := range tb.Chains {
				got[fmt.Sprintf("%s %s %s=%d", tb.Family, tb.Name, ch.Name, ch.Rules)] = true
			}
		}
	}
	if !want["ip filter FORWARD=2"] || !want["ip filter NSDBG=1"] || !want["ip6 filter INPUT=1"] {
		t.Fatalf("fixture: iptables-legacy-save does not list the rules made: %q", sortedKeys(want))
	}
	sameSet(t, "legacy iptables chains", got, want)
	text, _, _ := run(t, "inspect", "netns:"+n.Name, "--section", "firewall")
	if !hasLine(text, "iptables-legacy ip filter", "4 rules", "FORWARD(forward):2", "NSDBG:1", "NSDBG-EMPTY:0") {
		t.Errorf("text lacks the legacy filter table's counts:\n%s", text)
	}
}

func TestInspectHostNetns(t *testing.T) {
	testbed.Require(t)
	// Other tests (and packages) make and remove containers meanwhile, so
	// the host's veths come and go: compare a report taken while iproute2
	// saw the same host before and after it.
	// The host's sockets churn too (the kube test bed's apiserver and etcd
	// leave TIME-WAIT sockets that expire at any moment), so they are
	// compared with the ss list seen both before and after the report,
	// not with a third one read later.
	const host = "/proc/2/ns/net"
	state := func() (string, map[string]bool) {
		s := nsRun(t, host, "ip", "-d", "-j", "link") + nsRun(t, host, "ip", "-j", "addr") + nsRun(t, host, "ip", "-j", "route", "show", "table", "all") +
			nsRun(t, host, "ip", "-j", "rule") + nsRun(t, host, "ip", "-j", "-6", "rule") + nsRun(t, host, "ip", "-j", "neigh")
		socks := ssSockets(t, host)
		return s + strings.Join(sortedKeys(socks), "\n"), socks
	}
	for try := 1; ; try++ {
		before, socks := state()
		rep := inspectJSON(t, host)
		if after, _ := state(); before != after && try < 50 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if !rep.Host {
			t.Errorf("kthreadd's netns not reported as the host")
		}
		compareLinks(t, rep, host)
		compareAddrs(t, rep, host)
		compareRoutes(t, rep, host)
		compareRules(t, rep, host)
		compareNeighbors(t, rep, host)
		sameSet(t, "sockets (ss -tunap)", reportSockets(rep), socks)
		return
	}
}

func TestInspectUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"inspect"}, {"inspect", "x", "-o", "yaml"}, {"inspect", "x", "--section", "bogus"},
		{"whois"}, {"whois", ""}, {"whois", "pid:abc"}, {"whois", "a b"},
		{"graph", "x"}, {"graph", "-o", "png"},
	} {
		stdout, stderr, code := run(t, args...)
		if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%q: exit %d stdout %q stderr %q; want exit 2 and one line", args, code, stdout, stderr)
		}
	}
}

// openSockets makes, inside the netns at nsPath, a dual-stack TCP listener
// with one connection accepted from 127.0.0.1 and a UDP socket, all held by
// this test process and closed at cleanup. Sockets keep the namespace they
// were made in, so only their creation runs inside it.
func openSockets(t *testing.T, nsPath string) {
	t.Helper()
	ns, err := nsfs.Open(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	var closers []io.Closer
	t.Cleanup(func() {
		for _, c := range closers {
			c.Close()
		}
	})
	err = enter.Do(ns, func() error {
		ln, err := net.Listen("tcp", ":9000")
		if err != nil {
			return err
		}
		closers = append(closers, ln)
		client, err := net.Dial("tcp4", "127.0.0.1:9000")
		if err != nil {
			return err
		}
		closers = append(closers, client)
		server, err := ln.Accept()
		if err != nil {
			return err
		}
		closers = append(closers, server)
		udp, err := net.ListenPacket("udp4", "127.0.0.1:5514")
		if err != nil {
			return err
		}
		closers = append(closers, udp)
		return nil
	})
	if err != nil {
		t.Fatalf("sockets in %s: %v", nsPath, err)
	}
}

func linkNamed(t *testing.T, rep *inspect.Report, name string) inspect.Link {
	t.Helper()
	for _, l := range rep.Links {
		if l.Name == name {
			return l
		}
	}
	t.Fatalf("no link %s in %+v", name, rep.Links)
	return inspect.Link{}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	out := testbed.MustRun(t, "stat", "-L", "-c", "%i", path)
	n, err := strconv.ParseUint(out, 10, 64)
	if err != nil {
		t.Fatalf("stat %s: %q", path, out)
	}
	return n
}

func waitListen(t *testing.T, nsPath, port string) {
	t.Helper()
	for i := 0; i < 50; i++ {
		out, _ := exec.Command("nsenter", "--net="+nsPath, "ss", "-tlnH").CombinedOutput()
		if strings.Contains(string(out), port) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s in %s", port, nsPath)
}

func runStdin(stdin, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestWhoisNotFound(t *testing.T) {
	testbed.Require(t)
	for _, thing := range []string{"198.51.100.254", "nsdbgnoif0", "net:[1]"} {
		stdout, stderr, code := run(t, "whois", thing)
		if code != 3 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, thing) {
			t.Errorf("whois %s: exit %d stdout %q stderr %q; want exit 3 and one line naming it", thing, code, stdout, stderr)
		}
	}
}
