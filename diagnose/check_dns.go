package diagnose

import (
	"fmt"
	"strings"
	"time"
)

// dockerDNS is Docker's embedded resolver on user-defined networks.
const dockerDNS = "127.0.0.11"

// Check 6a: resolv.conf exists and names a nameserver.
func checkDNSResolvConf(f *Facts) Outcome {
	if f.ResolvConf == nil {
		return Outcome{Status: Fail, Evidence: []Evidence{ev(srcResolv, "file", "unreadable: "+f.ResolvErr, "present")},
			Explanation: "The container has no readable /etc/resolv.conf: every name lookup fails.",
			Fix:         fix("Recreate the container (the runtime writes resolv.conf), or mount one", "docker inspect -f '{{.ResolvConfPath}}' CONTAINER")}
	}
	if len(f.ResolvConf.Nameservers) == 0 {
		return Outcome{Status: Fail, Evidence: []Evidence{ev(srcResolv, "nameserver", "none", "at least one")},
			Explanation: "resolv.conf names no nameserver: glibc then asks 127.0.0.1, where nothing answers in a container.",
			Fix:         fix("Give the container a nameserver", "docker run --dns IP ...", "# Kubernetes: dnsPolicy / dnsConfig.nameservers")}
	}
	return pass(ev(srcResolv, "nameserver", strings.Join(f.ResolvConf.Nameservers, " "), "at least one"))
}

// Check 6b: a loopback nameserver has something listening on port 53 in
// this namespace (a systemd-resolved stub copied from the host does not).
func checkDNSLoopback(f *Facts) Outcome {
	if f.ResolvConf == nil {
		return skip("no resolv.conf")
	}
	var evs []Evidence
	var bad []string
	for _, ns := range f.ResolvConf.Nameservers {
		if !isLoopback(ns) || (ns == dockerDNS && f.Runtime == "docker") {
			continue
		}
		var got []string
		for _, proto := range []string{"udp", "tcp"} {
			for _, s := range f.listeners(proto, 53) {
				ip, _ := splitHostPort(s.Local)
				if ip == ns || isWildcard(ip) {
					got = append(got, proto+" "+sockLabel(s))
				}
			}
		}
		if len(got) == 0 {
			bad = append(bad, ns)
			evs = append(evs, ev(srcSockets, ns+":53", "nothing listening", "a DNS server in this netns"))
		} else {
			evs = append(evs, ev(srcSockets, ns+":53", strings.Join(got, ", "), "a DNS server in this netns"))
		}
	}
	if len(evs) == 0 {
		return pass(ev(srcResolv, "loopback nameservers", "none", "none, or one with a listener"))
	}
	if len(bad) == 0 {
		return pass(evs...)
	}
	return Outcome{Status: Fail, Evidence: evs,
		Explanation: "nameserver " + strings.Join(bad, ", ") + " is a loopback address, which in a container is the container's own: nothing there answers (the host's 127.0.0.53 stub is not in this netns).",
		Fix:         fix("Point the container at a reachable resolver", "docker run --dns IP ...   # an address outside 127.0.0.0/8", "# on the host: use /run/systemd/resolve/resolv.conf as Docker's resolv.conf source")}
}

// Check 6c: Docker's embedded DNS (127.0.0.11) needs its DNAT rules in the
// container's own nat table.
func checkDNSDockerEmbedded(f *Facts) Outcome {
	if f.ResolvConf == nil {
		return skip("no resolv.conf")
	}
	if f.Runtime != "docker" || !contains(f.ResolvConf.Nameservers, dockerDNS) {
		return skip("nameserver is not Docker's embedded " + dockerDNS)
	}
	fw := f.Report.Firewall
	if fw == nil {
		return skip("the namespace's firewall could not be read: " + f.Missing["firewall"])
	}
	rules := 0
	var where []string
	for _, set := range [][]string{{"nft"}, {"legacy"}} {
		tables := fw.NFTables
		if set[0] == "legacy" {
			tables = fw.IPTablesLegacy
		}
		for _, t := range tables {
			if t.Name != "nat" {
				continue
			}
			for _, c := range t.Chains {
				if strings.HasPrefix(c.Name, "DOCKER_OUTPUT") || strings.HasPrefix(c.Name, "DOCKER_POSTROUTING") {
					rules += c.Rules
					where = append(where, fmt.Sprintf("%s %s %s: %d rules", set[0], t.Family, c.Name, c.Rules))
				}
			}
		}
	}
	e := ev(srcFirewall, "nat DOCKER_OUTPUT/DOCKER_POSTROUTING", orNone(strings.Join(where, "; ")), "DNAT of "+dockerDNS+":53 to the embedded server's ports")
	if rules == 0 {
		return Outcome{Status: Fail, Evidence: []Evidence{e},
			Explanation: "The container asks " + dockerDNS + ":53, but the nat rules that send it to dockerd's embedded server (listening on a random port) are gone: every lookup times out.",
			Fix:         fix("Have Docker recreate them", "docker restart "+strings.TrimPrefix(f.Target, "docker:"), "# something in the container flushed its nat table (iptables -t nat -F)")}
	}
	return pass(e)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// Check 6d: ndots >= 2 with 3+ search domains: each outside name costs a
// query per search domain first.
func checkDNSSearch(f *Facts) Outcome {
	if f.ResolvConf == nil {
		return skip("no resolv.conf")
	}
	rc := f.ResolvConf
	nd, sd := int(threshold("dns.search", "ndots")), int(threshold("dns.search", "search_domains"))
	evs := []Evidence{
		ev(srcResolv, "options ndots", itoa(rc.Ndots), fmt.Sprintf("< %d, or fewer than %d search domains", nd, sd)),
		ev(srcResolv, "search", orNone(strings.Join(rc.Search, " ")), fmt.Sprintf("< %d domains with ndots >= %d", sd, nd)),
	}
	if rc.Ndots >= nd && len(rc.Search) >= sd {
		return Outcome{Status: Warn, Evidence: evs,
			Explanation: fmt.Sprintf("With ndots:%d a name with fewer dots is tried with each of the %d search domains first: %d queries (A and AAAA each) before the real one; one lost UDP answer costs a 5 s timeout.", rc.Ndots, len(rc.Search), len(rc.Search)),
			Fix:         fix("Use fully qualified names (a trailing dot) or lower ndots", "# Kubernetes: spec.dnsConfig.options: [{name: ndots, value: \"2\"}]")}
	}
	return pass(evs...)
}

// Check 6e (--probe): each nameserver answers within the timeout.
func checkDNSProbe(f *Facts) Outcome {
	if f.ResolvConf == nil || len(f.ResolvConf.Nameservers) == 0 {
		return skip("no nameserver to ask")
	}
	if f.DNSProbe == nil {
		return skip("not probed")
	}
	to := time.Duration(threshold("dns.probe", "timeout_s") * float64(time.Second))
	var evs []Evidence
	var bad []string
	for _, s := range f.DNSProbe.Servers {
		v := "no answer: " + s.Err
		if s.Answered {
			v = fmt.Sprintf("%s in %s", s.RCode, s.RTT.Round(time.Millisecond))
		}
		evs = append(evs, ev("dns probe", s.Server+" A "+probeName, v, "an answer within "+to.String()))
		if !s.Answered {
			bad = append(bad, s.Server)
		}
	}
	if len(bad) == 0 {
		return pass(evs...)
	}
	st := Fail
	if len(bad) < len(f.DNSProbe.Servers) {
		st = Warn // another nameserver answers, after a timeout
	}
	return Outcome{Status: st, Evidence: evs,
		Explanation: "nameserver " + strings.Join(bad, ", ") + " did not answer a query sent from inside the namespace: lookups time out (or wait for the next server).",
		Fix:         fix("Check the path to the nameserver and that it runs", fmt.Sprintf("nsdebug exec %s -- nslookup localhost %s", f.Target, bad[0]))}
}
