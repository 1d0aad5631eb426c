package diagnose

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/inspect"
	"github.com/nsdebug/nsdebug/resolver"
)

func TestParseMIBByName(t *testing.T) {
	// Columns in another order and one extra: taken by name, not position.
	s := "TcpExt: ListenDrops Foo ListenOverflows\nTcpExt: 7 1 5\nTcp: RtoAlgorithm OutSegs RetransSegs\nTcp: 1 1000 30\n"
	m := map[string]int64{}
	if err := parseMIB(s, m); err != nil {
		t.Fatal(err)
	}
	if m["TcpExt.ListenOverflows"] != 5 || m["TcpExt.ListenDrops"] != 7 || m["Tcp.RetransSegs"] != 30 || m["Tcp.OutSegs"] != 1000 {
		t.Errorf("got %v", m)
	}
	if err := parseMIB("TcpExt: A B\nTcpExt: 1\n", map[string]int64{}); err == nil {
		t.Error("a row shorter than its header must be an error")
	}
}

func TestParseConntrackStatByName(t *testing.T) {
	// Two CPUs; an older kernel's column set (no clashres, "searched").
	s := "entries  searched found new invalid ignore delete delete_list insert insert_failed drop early_drop\n" +
		"0000000b 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001 00000010 00000002\n" +
		"0000000b 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000002 00000001 00000000\n"
	m, err := parseConntrackStat(s)
	if err != nil {
		t.Fatal(err)
	}
	if m["drop"] != 17 || m["early_drop"] != 2 || m["insert_failed"] != 3 || m["entries"] != 11 {
		t.Errorf("got %v", m)
	}
}

func TestParseResolvConf(t *testing.T) {
	rc := parseResolvConf("# x\nnameserver 10.0.0.1\nsearch a b\nsearch c d e # last wins\noptions ndots:5 timeout:1\nnameserver 10.0.0.2\n")
	if strings.Join(rc.Nameservers, ",") != "10.0.0.1,10.0.0.2" || strings.Join(rc.Search, ",") != "c,d,e" || rc.Ndots != 5 {
		t.Errorf("got %+v", rc)
	}
	if parseResolvConf("").Ndots != 1 {
		t.Error("ndots defaults to 1")
	}
}

func TestParseIPTablesSave(t *testing.T) {
	rs := parseIPTablesSave("nft", "*filter\n:FORWARD DROP [0:0]\n:DOCKER - [0:0]\n-A FORWARD -o docker0 -j DOCKER\n-A DOCKER-FORWARD -i docker0 -j ACCEPT\nCOMMIT\n*nat\n:DOCKER - [0:0]\n-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80\nCOMMIT\n")
	if c := rs.chain("filter", "FORWARD"); c == nil || c.Policy != "DROP" || len(c.Rules) != 1 {
		t.Fatalf("FORWARD: %+v", c)
	}
	if len(acceptRulesFor(rs, "docker0")) != 1 {
		t.Error("Docker 29's DOCKER-FORWARD accept rule not found")
	}
	r := rs.chain("nat", "DOCKER").Rules[0]
	if !dnatMatches(r, "tcp", 8080, []string{"172.17.0.2"}, 80) || dnatMatches(r, "tcp", 8081, []string{"172.17.0.2"}, 80) || dnatMatches(r, "tcp", 8080, []string{"172.17.0.3"}, 80) {
		t.Error("dnatMatches")
	}
}

// facts builds a healthy Docker container's evidence; tests break one field.
func facts() *Facts {
	return &Facts{
		Target: "docker:web", Runtime: "docker", NetworkMode: "bridge", Interval: time.Second,
		Net: &resolver.NetConfig{
			Ports:    []resolver.PortMapping{{Proto: "tcp", ContainerPort: 80, HostIP: "0.0.0.0", HostPort: 8080}},
			Networks: []resolver.NetworkAttachment{{Name: "bridge", IP: "172.17.0.2", PrefixLen: 16, Gateway: "172.17.0.1"}},
		},
		Networks: map[string]*resolver.NetworkInfo{"bridge": {Name: "bridge", Bridge: "docker0", Subnets: []string{"172.17.0.0/16"}}},
		Report: &inspect.Report{
			Links: []inspect.Link{
				{Name: "lo", Type: "loopback", State: "unknown", MTU: 65536},
				{Name: "eth0", Type: "veth", State: "up", MTU: 1500, Peer: &inspect.Peer{Name: "veth1", Bridge: "docker0", Netns: inspect.PeerNetns{Host: true}}},
			},
			Addresses: []inspect.Address{{Ifname: "eth0", Family: "inet", Address: "172.17.0.2/16", Scope: "global"}, {Ifname: "lo", Family: "inet6", Address: "::1/128"}},
			Routes: []inspect.Route{
				{Table: "main", Type: "unicast", Family: "inet", Dst: "default", Gateway: "172.17.0.1", Dev: "eth0"},
				{Table: "main", Type: "unicast", Family: "inet", Dst: "172.17.0.0/16", Dev: "eth0"},
			},
			Neighbors: []inspect.Neighbor{{IP: "172.17.0.1", Dev: "eth0", State: "REACHABLE", MAC: "02:42:00:00:00:01"}},
			Sockets:   []inspect.Socket{{Proto: "tcp", State: "LISTEN", Local: "0.0.0.0:80", SendQ: 128}},
			Sysctls:   map[string]string{"net.core.somaxconn": "4096", "net.ipv4.ip_local_port_range": "32768 60999", "net.ipv4.conf.all.rp_filter": "0"},
			Conntrack: &inspect.Conntrack{Count: 10, Max: 1000},
			Firewall:  &inspect.Firewall{NFTables: []inspect.NFTable{{Family: "ip", Name: "nat", Chains: []inspect.NFChain{{Name: "DOCKER_OUTPUT", Rules: 2}, {Name: "DOCKER_POSTROUTING", Rules: 2}}}}},
		},
		Sysctl:     map[string]string{"net.ipv4.conf.eth0.rp_filter": "0"},
		Before:     Counters{Net: map[string]int64{"Tcp.OutSegs": 1000, "Tcp.RetransSegs": 1, "TcpExt.ListenOverflows": 0}, Conntrack: map[string]int64{"drop": 0, "early_drop": 0, "insert_failed": 0}},
		After:      Counters{Net: map[string]int64{"Tcp.OutSegs": 2000, "Tcp.RetransSegs": 2, "TcpExt.ListenOverflows": 0}, Conntrack: map[string]int64{"drop": 0, "early_drop": 0, "insert_failed": 0}},
		ResolvConf: &ResolvConf{Nameservers: []string{"127.0.0.11"}, Search: []string{}, Ndots: 0},
		Hosts:      "127.0.0.1 localhost\n::1 localhost ip6-localhost\n",
		Missing:    map[string]string{},
		Host: &HostFacts{
			Report: &inspect.Report{
				Links:  []inspect.Link{{Name: "eth0", State: "up", MTU: 1500}, {Name: "docker0", State: "up", MTU: 1500}, {Name: "veth1", State: "up", MTU: 1500, Master: "docker0", LinkNetnsID: 1}},
				Routes: []inspect.Route{{Table: "main", Type: "unicast", Family: "inet", Dst: "default", Gateway: "192.0.2.1", Dev: "eth0"}, {Table: "main", Family: "inet", Dst: "172.17.0.0/16", Dev: "docker0"}},
			},
			Sysctl: map[string]string{"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"},
			IPTables: map[string]*Ruleset{"nft": parseIPTablesSave("nft", "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -i docker0 ! -o docker0 -j ACCEPT\nCOMMIT\n*nat\n:DOCKER - [0:0]\n-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80\nCOMMIT\n"),
				"legacy": parseIPTablesSave("legacy", "")},
			UserlandProxy: "true", ProxySource: "dockerd default",
			DockerProxies: []DockerProxy{{PID: 9, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 8080, ContainerIP: "172.17.0.2", ContainerPort: 80}},
			Hairpin:       map[string]string{"veth1": "0"},
			Peers:         []PeerAddrs{},
			Subnets:       []SubnetOwner{{Network: "bridge", Subnet: "172.17.0.0/16", Bridge: "docker0"}},
		},
	}
}

func statuses(rs []Result) map[string]Status {
	m := map[string]Status{}
	for _, r := range rs {
		m[r.ID] = r.Status
	}
	return m
}

// Each case breaks one thing in healthy facts: that check gets the verdict,
// every other keeps its healthy one.
func TestChecksTableDriven(t *testing.T) {
	healthyN := statuses(Evaluate(facts(), ScopeNetns, Selection{}))
	healthyH := statuses(Evaluate(facts(), ScopeHost, Selection{}))
	for id, st := range healthyN {
		if st != Pass && st != Skip {
			t.Errorf("healthy facts: %s is %s", id, st)
		}
	}
	cases := []struct {
		check  string
		want   Status
		also   map[string]Status // consequences, each with its reason
		breakF func(f *Facts)
	}{
		{"ports.listen", Fail, nil, func(f *Facts) { f.Report.Sockets[0].Local = "127.0.0.1:80" }},
		{"ports.listen", Fail, nil, func(f *Facts) { f.Report.Sockets = nil }},
		{"ports.dnat", Fail, nil, func(f *Facts) { f.Host.IPTables["nft"].Tables["nat"].Chains["DOCKER"].Rules = nil }},
		{"ports.dnat", Fail, nil, func(f *Facts) { f.Host.DockerProxies = nil }},
		{"link.up", Fail, nil, func(f *Facts) { f.Report.Links[1].State = "down" }},
		{"route.default", Fail, map[string]Status{"route.gateway": Skip}, func(f *Facts) { f.Report.Routes = f.Report.Routes[1:] }},
		{"route.gateway", Fail, nil, func(f *Facts) { f.Report.Neighbors[0].State = "FAILED" }},
		{"veth.host", Fail, nil, func(f *Facts) { f.Host.Report.Links[2].State = "down" }},
		// On a bridge nothing in FORWARD accepts: forward.policy says so too.
		{"veth.host", Fail, map[string]Status{"forward.policy": Fail}, func(f *Facts) { f.Report.Links[1].Peer.Bridge = "br-other" }},
		{"mtu", Fail, nil, func(f *Facts) { f.Report.Links[1].MTU = 1400 }},
		{"mtu", Warn, nil, func(f *Facts) { f.Host.Report.Links[0].MTU = 1400 }},
		{"dns.resolvconf", Fail, map[string]Status{"dns.loopback": Skip, "dns.docker-embedded": Skip, "dns.search": Skip}, func(f *Facts) { f.ResolvConf.Nameservers = nil }},
		{"dns.loopback", Fail, map[string]Status{"dns.docker-embedded": Skip}, func(f *Facts) { f.ResolvConf.Nameservers = []string{"127.0.0.53"} }},
		{"dns.docker-embedded", Fail, nil, func(f *Facts) { f.Report.Firewall.NFTables = nil }},
		{"dns.search", Warn, nil, func(f *Facts) { f.ResolvConf.Ndots, f.ResolvConf.Search = 5, []string{"a", "b", "c"} }},
		{"conntrack.fill", Warn, nil, func(f *Facts) { f.Report.Conntrack.Count = 800 }},
		{"conntrack.fill", Fail, nil, func(f *Facts) { f.Report.Conntrack.Count = 950 }},
		{"conntrack.drops", Fail, nil, func(f *Facts) { f.After.Conntrack["drop"] = 3 }},
		{"conntrack.drops", Warn, nil, func(f *Facts) { f.After.Conntrack["insert_failed"] = 3 }},
		{"listen.queue", Fail, nil, func(f *Facts) { f.Report.Sockets[0].RecvQ = 128 }},
		{"listen.queue", Fail, nil, func(f *Facts) { f.After.Net["TcpExt.ListenOverflows"] = 4 }},
		{"ports.ephemeral", Fail, nil, func(f *Facts) {
			f.Report.Sysctls["net.ipv4.ip_local_port_range"] = "40000 40099"
			for p := 40000; p < 40095; p++ {
				f.Report.Sockets = append(f.Report.Sockets, inspect.Socket{Proto: "tcp", State: "ESTAB", Local: "172.17.0.2:" + itoa(p), Remote: "10.0.0.9:443"})
			}
		}},
		{"tcp.retrans", Warn, nil, func(f *Facts) { f.After.Net["Tcp.RetransSegs"] = 31 }},
		{"tcp.retrans", Fail, nil, func(f *Facts) { f.After.Net["Tcp.RetransSegs"] = 81 }},
		{"forward.policy", Fail, nil, func(f *Facts) { f.Host.IPTables["nft"].Tables["filter"].Chains["FORWARD"].Rules = nil }},
		{"rp_filter", Warn, nil, func(f *Facts) {
			f.Report.Sysctls["net.ipv4.conf.all.rp_filter"] = "1"
			f.Report.Routes = append(f.Report.Routes, inspect.Route{Table: "main", Family: "inet", Dst: "10.0.0.0/8", Dev: "eth1"})
		}},
		{"rp_filter", Fail, nil, func(f *Facts) {
			f.After.Net["TcpExt.IPReversePathFilter"], f.Before.Net["TcpExt.IPReversePathFilter"] = 2, 0
		}},
		{"addr.conflict", Fail, nil, func(f *Facts) {
			f.Host.Peers = []PeerAddrs{{NetnsID: 1, Label: "netnsid 1", Addrs: []string{"172.17.0.2/16"}, Bridge: "docker0"}, {NetnsID: 5, Netns: 99, Label: "/run/netns/other", Addrs: []string{"172.17.0.2/16"}, Bridge: "docker0"}}
		}},
		{"ipv6.localhost", Warn, nil, func(f *Facts) {
			f.Hosts = "::1 localhost\n127.0.0.1 localhost\n"
			f.Report.Addresses = f.Report.Addresses[:1]
		}},
		{"hairpin", Fail, nil, func(f *Facts) { f.Host.UserlandProxy = "false" }},
	}
	for _, c := range cases {
		f := facts()
		c.breakF(f)
		got := statuses(Evaluate(f, ScopeNetns, Selection{}))
		if got[c.check] != c.want {
			t.Errorf("%s: got %s, want %s", c.check, got[c.check], c.want)
		}
		for id, st := range got {
			want := healthyN[id]
			if id == c.check {
				continue
			}
			if w, ok := c.also[id]; ok {
				want = w
			}
			// hairpin only runs once userland-proxy is off.
			if c.check == "hairpin" && id == "ports.dnat" {
				continue
			}
			if st != want {
				t.Errorf("breaking %s changed %s: %s -> %s", c.check, id, healthyN[id], st)
			}
		}
	}
	hostCases := []struct {
		check  string
		want   Status
		breakF func(f *Facts)
	}{
		{"host.ip_forward", Fail, func(f *Facts) { f.Host.Sysctl["net.ipv4.ip_forward"] = "0" }},
		{"host.bridge_nf", Warn, func(f *Facts) { delete(f.Host.Sysctl, "net.bridge.bridge-nf-call-iptables") }},
		{"host.iptables_backends", Fail, func(f *Facts) {
			f.Host.IPTables["legacy"] = parseIPTablesSave("legacy", "*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -j ACCEPT\nCOMMIT\n")
		}},
		{"host.subnet_overlap", Fail, func(f *Facts) {
			f.Host.Report.Routes = append(f.Host.Report.Routes, inspect.Route{Table: "main", Family: "inet", Dst: "172.17.5.0/24", Dev: "tun0"})
		}},
	}
	for _, c := range hostCases {
		f := facts()
		c.breakF(f)
		f.Report = f.Host.Report
		got := statuses(Evaluate(f, ScopeHost, Selection{}))
		if got[c.check] != c.want {
			t.Errorf("%s: got %s, want %s", c.check, got[c.check], c.want)
		}
		for id, st := range got {
			if id != c.check && st != healthyH[id] {
				t.Errorf("breaking %s changed %s: %s -> %s", c.check, id, healthyH[id], st)
			}
		}
	}
}

func TestEvaluateSelection(t *testing.T) {
	rs := Evaluate(facts(), ScopeNetns, Selection{Only: []string{"dns.probe", "mtu"}})
	if len(rs) != 2 || rs[0].ID != "mtu" || rs[1].ID != "dns.probe" || rs[1].Status != Skip || !strings.Contains(rs[1].Explanation, "--probe") {
		t.Errorf("got %+v", rs)
	}
	rs = Evaluate(facts(), ScopeNetns, Selection{Skip: []string{"mtu"}})
	for _, r := range rs {
		if r.ID == "mtu" {
			t.Error("--skip mtu ran mtu")
		}
	}
	f := facts()
	f.Report.Routes = nil
	f.DNSProbe = &ProbeResult{}
	for _, r := range Evaluate(f, ScopeNetns, Selection{Probe: true}) {
		if r.ID == "dns.probe" && (r.Status != Skip || !strings.Contains(r.Explanation, "route.default fail")) {
			t.Errorf("dns.probe without a route: %s %q", r.Status, r.Explanation)
		}
	}
}

// Every check's thresholds are in the table, and the README's table lists
// each with the same value.
func TestThresholdsDocumented(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, th := range Thresholds {
		if _, ok := Lookup(th.Check); !ok {
			t.Errorf("threshold for unknown check %s", th.Check)
		}
		row := regexp.MustCompile(`(?m)^\| *` + regexp.QuoteMeta(th.Check) + ` *\| *` + regexp.QuoteMeta(th.Name) + ` *\| *` + regexp.QuoteMeta(fmtValue(th.Value)) + ` *\|`)
		if !row.MatchString(readme) {
			t.Errorf("README has no threshold row | %s | %s | %s |", th.Check, th.Name, fmtValue(th.Value))
		}
	}
	for _, c := range registry {
		if !strings.Contains(readme, "| `"+c.ID+"` |") {
			t.Errorf("README's check table lacks `%s`", c.ID)
		}
	}
}

func TestCNISubnets(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		// A conflist: bridge + portmap; ranges, two sets.
		"10-a.conflist": `{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"bridge","bridge":"br-a","ipam":{"type":"host-local","ranges":[[{"subnet":"10.1.0.0/16"}],[{"subnet":"fd00:1::/64"}]]}},{"type":"portmap"}]}`,
		// A single-plugin .conf with the old ipam.subnet and the default bridge.
		"20-b.conf": `{"cniVersion":"0.3.1","name":"b","type":"bridge","ipam":{"type":"host-local","subnet":"10.2.0.0/24"}}`,
		// Not a bridge: left out.
		"30-c.conflist": `{"name":"c","plugins":[{"type":"ptp","ipam":{"type":"host-local","subnet":"10.3.0.0/24"}}]}`,
		"40-bad.json":   `{`,
		"README":        `not a configuration`,
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, warns := cniSubnets(dir)
	var s []string
	for _, o := range got {
		s = append(s, o.Network+" "+o.Subnet+" "+o.Bridge+" "+filepath.Base(o.Source))
	}
	want := "cni a 10.1.0.0/16 br-a 10-a.conflist|cni a fd00:1::/64 br-a 10-a.conflist|cni b 10.2.0.0/24 cni0 20-b.conf"
	if strings.Join(s, "|") != want {
		t.Errorf("got %q\nwant %q", strings.Join(s, "|"), want)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "40-bad.json") {
		t.Errorf("warnings %q, want one for 40-bad.json", warns)
	}
}
