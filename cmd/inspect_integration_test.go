package cmd

import (
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/inspect"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

// Ground truth comes from iproute2 run inside the same namespace
// (nsenter --net=PATH), never from nsdebug's own code.

type ipLink struct {
	Ifindex   int    `json:"ifindex"`
	Ifname    string `json:"ifname"`
	LinkIndex int    `json:"link_index"`
	Master    string `json:"master"`
}

type ipAddr struct {
	Ifname   string `json:"ifname"`
	AddrInfo []struct {
		Local     string `json:"local"`
		Prefixlen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

type ipRoute struct {
	Type    string `json:"type"`
	Dst     string `json:"dst"`
	Gateway string `json:"gateway"`
	Dev     string `json:"dev"`
	Table   string `json:"table"`
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
	g, w := sortedKeys(got), sortedKeys(want)
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("%s differ from iproute2's:\n nsdebug: %q\n iproute2: %q", what, g, w)
	}
}

// compareWithIproute2 checks links, addresses, routes of every table (both
// families) and listening sockets against ip/ss run in the namespace.
func compareWithIproute2(t *testing.T, rep *inspect.Report, nsPath string) {
	t.Helper()
	var links []ipLink
	nsJSON(t, nsPath, &links, "ip", "-j", "link")
	got, want := map[string]bool{}, map[string]bool{}
	for _, l := range rep.Links {
		got[fmt.Sprintf("%d %s master=%s", l.Index, l.Name, l.Master)] = true
	}
	for _, l := range links {
		want[fmt.Sprintf("%d %s master=%s", l.Ifindex, l.Ifname, l.Master)] = true
	}
	sameSet(t, "links", got, want)

	var addrs []ipAddr
	nsJSON(t, nsPath, &addrs, "ip", "-j", "addr")
	got, want = map[string]bool{}, map[string]bool{}
	for _, a := range rep.Addresses {
		got[a.Ifname+" "+a.Address] = true
	}
	for _, a := range addrs {
		for _, ai := range a.AddrInfo {
			want[fmt.Sprintf("%s %s/%d", a.Ifname, ai.Local, ai.Prefixlen)] = true
		}
	}
	sameSet(t, "addresses", got, want)

	got, want = map[string]bool{}, map[string]bool{}
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
		got[fmt.Sprintf("%s %s table=%s type=%s dev=%s via=%s", r.Family, dst, r.Table, typ, r.Dev, r.Gateway)] = true
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
			want[fmt.Sprintf("%s %s table=%s type=%s dev=%s via=%s", name, r.Dst, table, r.Type, r.Dev, r.Gateway)] = true
		}
	}
	sameSet(t, "routes", got, want)

	got, want = map[string]bool{}, map[string]bool{}
	for _, s := range rep.Sockets {
		if s.State == "LISTEN" || (s.Proto == "udp" && s.State == "UNCONN") {
			got[s.Proto+" "+s.Local] = true
		}
	}
	for _, line := range strings.Split(nsRun(t, nsPath, "ss", "-tulnH"), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		local := f[4]
		if i := strings.LastIndex(local, ":"); i >= 0 {
			host, port := local[:i], local[i:]
			if j := strings.Index(host, "%"); j >= 0 {
				host = host[:j] // bound to a device: 0.0.0.0%eth0
			}
			if host == "*" {
				host = "[::]" // ss prints a dual-stack wildcard as *
			}
			local = host + port
		}
		want[f[0]+" "+local] = true
	}
	sameSet(t, "listening sockets", got, want)
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

	rep := inspectJSON(t, "netns:"+a.Name)
	compareWithIproute2(t, rep, a.Path)
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
	// whois by the host veth name and by the address.
	for _, thing := range []string{hostEnd, "10.233.0.2"} {
		stdout, stderr, code := run(t, "whois", thing, "-o", "json")
		if code != 0 {
			t.Fatalf("whois %s: exit %d %s", thing, code, stderr)
		}
		var res inspect.WhoisResult
		if err := json.Unmarshal([]byte(stdout), &res); err != nil || len(res.Matches) != 1 || res.Matches[0].Netns.Inode != inode(t, c.Path) {
			t.Errorf("whois %s: want exactly netns c (%d): %v %s", thing, inode(t, c.Path), err, stdout)
		}
	}
}

func TestInspectHostNetns(t *testing.T) {
	testbed.Require(t)
	// Other tests (and packages) make and remove containers meanwhile, so
	// the host's veths come and go: compare a report taken while iproute2
	// saw the same host before and after it.
	const host = "/proc/2/ns/net"
	state := func() string {
		return nsRun(t, host, "ip", "-j", "link") + nsRun(t, host, "ip", "-j", "addr") + nsRun(t, host, "ip", "-j", "route", "show", "table", "all")
	}
	for try := 1; ; try++ {
		before := state()
		rep := inspectJSON(t, host)
		if before != state() && try < 50 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if !rep.Host {
			t.Errorf("kthreadd's netns not reported as the host")
		}
		compareWithIproute2(t, rep, host)
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
