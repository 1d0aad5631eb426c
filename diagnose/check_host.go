package diagnose

import (
	"fmt"
	"net"
	"strings"
)

// Check 11a: the host forwards IPv4 (every bridged container needs it).
func checkHostIPForward(f *Facts) Outcome {
	v, ok := f.Host.Sysctl["net.ipv4.ip_forward"]
	if !ok {
		return skip("net.ipv4.ip_forward unreadable")
	}
	e := ev(srcSysctl, "net.ipv4.ip_forward", v, "1")
	if v != "1" {
		return Outcome{Status: Fail, Evidence: []Evidence{e},
			Explanation: "The host does not route between interfaces: containers on bridges reach only the host and each other, nothing beyond, and published ports do not work from outside.",
			Fix:         fix("Turn forwarding on (and persist it in /etc/sysctl.d)", f.Host.in("sysctl -w net.ipv4.ip_forward=1"))}
	}
	return pass(e)
}

// Check 11b: bridged traffic goes through iptables (Kubernetes Services and
// Docker's isolation rules rely on it).
func checkHostBridgeNF(f *Facts) Outcome {
	v, ok := f.Host.Sysctl["net.bridge.bridge-nf-call-iptables"]
	if !ok {
		return Outcome{Status: Warn, Evidence: []Evidence{ev(srcSysctl, "net.bridge.bridge-nf-call-iptables", "absent (br_netfilter not loaded)", "1")},
			Explanation: "br_netfilter is not loaded: traffic between containers on one bridge skips iptables, so Kubernetes Service DNAT between pods on one node and Docker's inter-container rules do not apply.",
			Fix:         fix("Load br_netfilter", "modprobe br_netfilter", f.Host.in("sysctl -w net.bridge.bridge-nf-call-iptables=1"))}
	}
	e := ev(srcSysctl, "net.bridge.bridge-nf-call-iptables", v, "1")
	if v != "1" {
		return Outcome{Status: Warn, Evidence: []Evidence{e},
			Explanation: "Bridged traffic skips iptables: pod-to-Service traffic between pods on one node is not DNATed.",
			Fix:         fix("Turn it on", f.Host.in("sysctl -w net.bridge.bridge-nf-call-iptables=1"))}
	}
	return pass(e)
}

// Check 11c: both iptables backends holding rules whose FORWARD policies
// disagree: each tool shows half the truth.
func checkHostIPTablesBackends(f *Facts) Outcome {
	h := f.Host
	l, n := h.IPTables["legacy"], h.IPTables["nft"]
	if l == nil || n == nil {
		return skip("only one iptables backend present: " + joinMap(h.IPTablesErr))
	}
	lc, nc := l.ruleCount(), n.ruleCount()
	pol := func(r *Ruleset) string {
		if c := r.chain("filter", "FORWARD"); c != nil {
			return c.Policy
		}
		return "none"
	}
	evs := []Evidence{
		ev(srcIPTables, "legacy rules, FORWARD policy", fmt.Sprintf("%d, %s", lc, pol(l)), "rules in one backend only"),
		ev(srcIPTables, "nft rules, FORWARD policy", fmt.Sprintf("%d, %s", nc, pol(n)), "rules in one backend only"),
	}
	if lc == 0 || nc == 0 {
		return pass(evs...)
	}
	st := Warn
	why := "Both iptables-legacy and iptables-nft hold rules: a packet goes through both, and each tool shows only its own."
	if pol(l) != pol(n) && pol(l) != "none" && pol(n) != "none" {
		st = Fail
		why += " Their FORWARD policies disagree (" + pol(l) + " vs " + pol(n) + "): the stricter one silently wins."
	}
	return Outcome{Status: st, Evidence: evs, Explanation: why,
		Fix: fix("Use one backend: move the other's rules over and flush it", f.Host.in("iptables-legacy-save"), f.Host.in("iptables-nft-save"), "update-alternatives --config iptables")}
}

// Check 11d (per namespace): FORWARD policy DROP without an accept rule for
// the bridge this container hangs on.
func checkForwardPolicy(f *Facts) Outcome {
	h := f.Host
	if len(h.IPTables) == 0 {
		return skip("the host's iptables could not be read: " + joinMap(h.IPTablesErr))
	}
	var bridges []string
	for _, l := range f.hostVeths() {
		if l.Peer.Bridge != "" {
			bridges = append(bridges, l.Peer.Bridge)
		}
	}
	if len(bridges) == 0 {
		return skip("not on a host bridge")
	}
	var evs []Evidence
	var bad []string
	for _, name := range []string{"nft", "legacy"} {
		rs := h.IPTables[name]
		c := rs.chain("filter", "FORWARD")
		if c == nil {
			continue
		}
		for _, br := range bridges {
			acc := acceptRulesFor(rs, br)
			evs = append(evs, ev(srcIPTables, name+" FORWARD policy; ACCEPT rules for "+br, fmt.Sprintf("%s; %d", c.Policy, len(acc)), "ACCEPT, or ACCEPT rules for the bridge"))
			if c.Policy == "DROP" && len(acc) == 0 {
				// CNI's firewall plugin (Podman's CNI backend) accepts
				// each container's address instead of the bridge.
				if own := acceptRulesForAddrs(rs, f.ipv4s()); len(own) > 0 {
					evs = append(evs, ev(srcIPTables, name+" ACCEPT rules for this container's addresses", fmt.Sprint(len(own)), "ACCEPT rules for the bridge or the container's addresses"))
					continue
				}
				bad = append(bad, fmt.Sprintf("%s FORWARD drops and nothing accepts %s", name, br))
			}
		}
	}
	if len(bad) == 0 {
		return pass(evs...)
	}
	br := bridges[0]
	return Outcome{Status: Fail, Evidence: evs,
		Explanation: strings.Join(bad, "; ") + ": traffic the host forwards from or to this container (to other hosts, and between bridged containers when br_netfilter is on) is dropped.",
		Fix: fix("Accept the bridge's traffic in FORWARD (the runtime normally does; Docker sets the policy to DROP)",
			h.inAll("iptables -I FORWARD -i "+br+" -j ACCEPT", "iptables -I FORWARD -o "+br+" -j ACCEPT")...)}
}

// acceptRulesFor lists filter rules that accept traffic in or out of br
// (any chain: Docker 29 moved them from FORWARD to DOCKER-FORWARD).
func acceptRulesFor(rs *Ruleset, br string) []string {
	var out []string
	t := rs.Tables["filter"]
	if t == nil {
		return nil
	}
	for _, c := range t.Chains {
		for _, r := range c.Rules {
			if !strings.HasSuffix(r, "-j ACCEPT") && !strings.Contains(r, "-j ACCEPT ") {
				continue
			}
			if strings.Contains(r, "-i "+br+" ") || strings.Contains(r, "-o "+br+" ") {
				out = append(out, r)
			}
		}
	}
	return out
}

// acceptRulesForAddrs lists filter rules that accept traffic from one of
// ips (-s IP/32), as CNI's firewall plugin writes them (chain CNI-FORWARD).
func acceptRulesForAddrs(rs *Ruleset, ips []string) []string {
	var out []string
	t := rs.Tables["filter"]
	if t == nil || len(ips) == 0 {
		return nil
	}
	for _, c := range t.Chains {
		for _, r := range c.Rules {
			if !strings.HasSuffix(r, "-j ACCEPT") {
				continue
			}
			for _, ip := range ips {
				if strings.Contains(r, "-s "+ip+"/32 ") {
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// ipv4s are the namespace's own global IPv4 addresses, without prefix.
func (f *Facts) ipv4s() []string {
	var out []string
	if f.Report == nil {
		return nil
	}
	for _, a := range f.Report.Addresses {
		if a.Family == "inet" && a.Ifname != "lo" {
			ip, _, _ := strings.Cut(a.Address, "/")
			out = append(out, ip)
		}
	}
	return out
}

// Check 13a: the same address in another namespace on the same bridge.
func checkAddrConflict(f *Facts) Outcome {
	if f.Host.Peers == nil {
		return skip("the other namespaces could not be listed")
	}
	mine := map[string]string{} // ip -> bridge
	own := map[int]bool{}       // this namespace's netnsids, as the host names it
	for _, l := range f.hostVeths() {
		if hl := f.Host.link(l.Peer.Name); hl != nil {
			own[hl.LinkNetnsID] = true
		}
		if l.Peer.Bridge == "" {
			continue // on no bridge: veth.host says so
		}
		for _, a := range f.Report.Addresses {
			if a.Ifname == l.Name && a.Family == "inet" {
				ip, _, _ := strings.Cut(a.Address, "/")
				mine[ip] = l.Peer.Bridge
			}
		}
	}
	if len(mine) == 0 {
		return skip("no IPv4 address on a bridged veth")
	}
	var evs []Evidence
	var bad []string
	for ip, br := range mine {
		var others []string
		for _, p := range f.Host.Peers {
			if p.Bridge != br || (p.Netns != 0 && p.Netns == f.Report.Netns.Inode) || own[p.NetnsID] {
				continue
			}
			for _, a := range p.Addrs {
				if x, _, _ := strings.Cut(a, "/"); x == ip {
					others = append(others, p.Label)
				}
			}
		}
		evs = append(evs, ev("host namespaces", ip+" on "+br, orNone(strings.Join(others, ", ")), "no other namespace"))
		if len(others) > 0 {
			bad = append(bad, ip)
		}
	}
	if len(bad) == 0 {
		return pass(evs...)
	}
	return Outcome{Status: Fail, Evidence: evs,
		Explanation: strings.Join(bad, ", ") + " is used by another namespace on the same bridge: ARP answers flip between them and connections break at random.",
		Fix:         fix("Give one of them another address (IPAM state may be stale: a leaked lease)", "nsdebug whois "+bad[0])}
}

// Check 13b: a runtime subnet that overlaps a host route through another
// device.
func checkHostSubnetOverlap(f *Facts) Outcome {
	if len(f.Host.Subnets) == 0 {
		return skip("no runtime network subnets known")
	}
	var evs []Evidence
	var bad []string
	var cniFiles []string
	for _, s := range f.Host.Subnets {
		_, sn, err := net.ParseCIDR(s.Subnet)
		if err != nil || sn.IP.To4() == nil {
			continue
		}
		var clash []string
		for _, r := range f.Host.Report.Routes {
			if r.Table != "main" || r.Family != "inet" || r.Dst == "default" || r.Dev == s.Bridge {
				continue
			}
			_, rn, err := net.ParseCIDR(r.Dst)
			if err != nil {
				continue
			}
			if rn.Contains(sn.IP) || sn.Contains(rn.IP) {
				clash = append(clash, r.Dst+" dev "+r.Dev)
			}
		}
		evs = append(evs, ev("host routes", s.Network+" "+s.Subnet+" ("+s.Bridge+")", orNone(strings.Join(clash, ", ")), "no route through another device"))
		if len(clash) > 0 {
			bad = append(bad, s.Network)
			if s.Source != "" {
				cniFiles = append(cniFiles, s.Source)
			}
		}
	}
	if len(bad) == 0 {
		return pass(evs...)
	}
	cmds := []string{`echo '{"bip": "10.200.0.1/24"}' > /etc/docker/daemon.json   # then restart dockerd`}
	if len(cniFiles) > 0 {
		cmds = []string{"$EDITOR " + cniFiles[0] + "   # a free ipam range; pods get it when re-created"}
	}
	return Outcome{Status: Fail, Evidence: evs,
		Explanation: "Network " + strings.Join(bad, ", ") + " overlaps a host route through another device: replies to those addresses leave by the wrong interface (a VPN or a LAN using 172.17.0.0/16).",
		Fix:         fix("Move the runtime's network to a free range", cmds...)}
}
