package diagnose

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// Check 7a: the namespace's conntrack table fill (count is per netns, the
// limit nf_conntrack_max applies to each).
func checkConntrackFill(f *Facts) Outcome {
	ct := f.Report.Conntrack
	if ct == nil || ct.Max == 0 {
		return skip("conntrack is not loaded (no nf_conntrack_count)")
	}
	w, fl := threshold("conntrack.fill", "warn_ratio"), threshold("conntrack.fill", "fail_ratio")
	r := float64(ct.Count) / float64(ct.Max)
	e := ev(srcSysctl, "nf_conntrack_count / nf_conntrack_max", fmt.Sprintf("%d / %d (%.0f%%)", ct.Count, ct.Max, 100*r), fmt.Sprintf("< %.0f%%", 100*w))
	st := Pass
	switch {
	case r >= fl:
		st = Fail
	case r >= w:
		st = Warn
	}
	if st == Pass {
		return pass(e)
	}
	return Outcome{Status: st, Evidence: []Evidence{e},
		Explanation: "The connection tracking table is nearly full: when it is, new connections are dropped ('nf_conntrack: table full, dropping packet' in dmesg) and time out.",
		Fix: fix("Raise the limit (host-wide) or shorten timeouts of idle flows",
			fmt.Sprintf("sysctl -w net.netfilter.nf_conntrack_max=%d", ct.Max*2),
			"sysctl -w net.netfilter.nf_conntrack_tcp_timeout_time_wait=30")}
}

// Check 7b: conntrack drops rising over the interval.
func checkConntrackDrops(f *Facts) Outcome {
	if f.Before.ConntrackErr != "" || f.After.ConntrackErr != "" {
		return skip(f.Before.ConntrackErr + f.After.ConntrackErr)
	}
	var evs []Evidence
	st := Pass
	for _, k := range []string{"drop", "early_drop", "insert_failed"} {
		d, ok := delta(f.Before.Conntrack, f.After.Conntrack, k)
		if !ok {
			evs = append(evs, ev(srcCtStat, k, "column absent on this kernel", "0 rise over "+f.Interval.String()))
			continue
		}
		evs = append(evs, ev(srcCtStat, k, fmt.Sprintf("+%d over %s", d, f.Interval), "+0"))
		if d > 0 {
			if k == "insert_failed" {
				st = worst(st, Warn)
			} else {
				st = Fail
			}
		}
	}
	if st == Pass {
		return pass(evs...)
	}
	return Outcome{Status: st, Evidence: evs,
		Explanation: "conntrack is dropping packets now: drop/early_drop rise when the table is full, insert_failed on races of parallel connections with the same tuple (UDP DNS from glibc's parallel A/AAAA).",
		Fix:         fix("Raise nf_conntrack_max; for insert_failed on DNS, use 'options single-request-reopen'", "sysctl net.netfilter.nf_conntrack_max", "conntrack -S")}
}

// Check 8: listen queues.
func checkListenQueue(f *Facts) Outcome {
	var evs []Evidence
	st := Pass
	var why []string
	somax, _ := strconv.Atoi(f.Report.Sysctls["net.core.somaxconn"])
	for _, s := range f.Report.Sockets {
		if s.Proto != "tcp" || s.State != "LISTEN" {
			continue
		}
		// For a listener sock_diag's recv-q is the accept queue, send-q
		// its backlog (as ss shows).
		if s.SendQ > 0 && float64(s.RecvQ) >= threshold("listen.queue", "full_ratio")*float64(s.SendQ) {
			st = Fail
			evs = append(evs, ev(srcSockets, sockLabel(s)+" accept queue", fmt.Sprintf("%d / backlog %d", s.RecvQ, s.SendQ), "< backlog"))
			why = append(why, s.Local+"'s accept queue is full: the application does not accept() fast enough")
		}
	}
	for _, k := range []string{"TcpExt.ListenOverflows", "TcpExt.ListenDrops"} {
		d, ok := delta(f.Before.Net, f.After.Net, k)
		if !ok {
			continue
		}
		evs = append(evs, ev(srcNetstat, k, fmt.Sprintf("+%d over %s", d, f.Interval), "+0"))
		if d > 0 {
			st = Fail
			why = append(why, k+" rose: connections are being dropped at accept")
		}
	}
	if somax > 0 {
		evs = append(evs, ev(srcSysctl, "net.core.somaxconn", itoa(somax), "a listener's backlog is capped by it"))
	}
	if st == Pass {
		return pass(evs...)
	}
	return Outcome{Status: st, Evidence: evs, Explanation: strings.Join(dedup(why), "; ") + ". Clients see connection timeouts under load.",
		Fix: fix("Make the application accept faster (more workers) or raise its backlog and somaxconn",
			fmt.Sprintf("nsdebug sysctl %s net.core.somaxconn=%d", f.Target, max(4096, somax*2)), fmt.Sprintf("nsdebug exec %s -- ss -lnt", f.Target))}
}

func dedup(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// Check 9: ephemeral ports per (source, destination) against the port
// range; TIME-WAIT; TCPTimeWaitOverflow rising.
func checkEphemeral(f *Facts) Outcome {
	lo, hi, ok := portRange(f.Report.Sysctls["net.ipv4.ip_local_port_range"])
	if !ok {
		return skip("net.ipv4.ip_local_port_range unreadable")
	}
	size := hi - lo + 1
	count := map[string]int{}
	tw := 0
	for _, s := range f.Report.Sockets {
		if s.Proto != "tcp" || s.State == "LISTEN" {
			continue
		}
		if s.State == "TIME-WAIT" {
			tw++
		}
		src, sp := splitHostPort(s.Local)
		if sp < lo || sp > hi {
			continue // not an ephemeral port (an accepted connection)
		}
		count[src+" -> "+s.Remote]++
	}
	worstKey, worstN := "", 0
	for k, n := range count {
		if n > worstN || (n == worstN && k < worstKey) {
			worstKey, worstN = k, n
		}
	}
	w, fl := threshold("ports.ephemeral", "warn_ratio"), threshold("ports.ephemeral", "fail_ratio")
	r := float64(worstN) / float64(size)
	evs := []Evidence{
		ev(srcSysctl, "net.ipv4.ip_local_port_range", fmt.Sprintf("%d-%d (%d ports)", lo, hi, size), ""),
		ev(srcSockets, "busiest source -> destination", fmt.Sprintf("%s: %d sockets (%.0f%%)", orNone(worstKey), worstN, 100*r), fmt.Sprintf("< %.0f%% of the range", 100*w)),
		ev(srcSockets, "TIME-WAIT sockets", itoa(tw), ""),
	}
	st := Pass
	switch {
	case r >= fl:
		st = Fail
	case r >= w:
		st = Warn
	}
	if d, ok := delta(f.Before.Net, f.After.Net, "TcpExt.TCPTimeWaitOverflow"); ok {
		evs = append(evs, ev(srcNetstat, "TcpExt.TCPTimeWaitOverflow", fmt.Sprintf("+%d over %s", d, f.Interval), "+0"))
		if d > 0 {
			st = worst(st, Warn)
		}
	}
	if st == Pass {
		return pass(evs...)
	}
	return Outcome{Status: st, Evidence: evs,
		Explanation: "Outgoing connections to one destination are using up the ephemeral port range: connect() will fail with EADDRNOTAVAIL ('cannot assign requested address').",
		Fix: fix("Reuse connections (keep-alive, pooling), widen the range, or spread over more destination addresses",
			fmt.Sprintf("nsdebug sysctl %s net.ipv4.ip_local_port_range='1024 65535'", f.Target), fmt.Sprintf("nsdebug sysctl %s net.ipv4.tcp_tw_reuse=1", f.Target))}
}

func portRange(s string) (int, int, bool) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, 0, false
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	return lo, hi, err1 == nil && err2 == nil && hi >= lo
}

// Check 10: retransmitted share of segments over the interval.
func checkRetrans(f *Facts) Outcome {
	out, ok1 := delta(f.Before.Net, f.After.Net, "Tcp.OutSegs")
	re, ok2 := delta(f.Before.Net, f.After.Net, "Tcp.RetransSegs")
	if !ok1 || !ok2 {
		return skip("Tcp counters unreadable: " + f.Before.NetErr + f.After.NetErr)
	}
	minSeg := int64(threshold("tcp.retrans", "min_segments"))
	e := ev(srcSnmp, "Tcp.RetransSegs / Tcp.OutSegs", fmt.Sprintf("+%d / +%d over %s", re, out, f.Interval), fmt.Sprintf("< %.0f%%", 100*threshold("tcp.retrans", "warn_ratio")))
	if out < minSeg {
		return pass(e, ev(srcSnmp, "segments sent", itoa(int(out)), fmt.Sprintf(">= %d to judge; fewer is too little traffic to matter", minSeg)))
	}
	r := float64(re) / float64(out)
	st := Pass
	switch {
	case r >= threshold("tcp.retrans", "fail_ratio"):
		st = Fail
	case r >= threshold("tcp.retrans", "warn_ratio"):
		st = Warn
	}
	if st == Pass {
		return pass(e)
	}
	return Outcome{Status: st, Evidence: []Evidence{e},
		Explanation: fmt.Sprintf("%.1f%% of TCP segments were retransmitted: packets are being lost on the path (a full queue, an MTU black hole, a flapping link).", 100*r),
		Fix:         fix("Find where: per-socket retransmits and drops", fmt.Sprintf("nsdebug exec %s -- ss -ti", f.Target), "ip -s link   # drops on the veth and the bridge")}
}

// Check 12: strict rp_filter with more than one route back.
func checkRPFilter(f *Facts) Outcome {
	all, _ := strconv.Atoi(f.Report.Sysctls["net.ipv4.conf.all.rp_filter"])
	var evs []Evidence
	strict := []string{}
	for _, l := range f.uplinks() {
		v, ok := f.Sysctl["net.ipv4.conf."+l.Name+".rp_filter"]
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(v)
		eff := max(all, n)
		evs = append(evs, ev(srcSysctl, "rp_filter max(all, "+l.Name+")", itoa(eff), "0 or 2 when several routes lead back"))
		if eff == 1 {
			strict = append(strict, l.Name)
		}
	}
	devs := map[string]bool{}
	for _, r := range f.Report.Routes {
		if r.Table != "local" && r.Family == "inet" && r.Dev != "" && r.Dev != "lo" {
			devs[r.Dev] = true
		}
	}
	st := Pass
	if len(strict) > 0 && len(devs) > 1 {
		st = Warn
		evs = append(evs, ev(srcRoutes, "devices with IPv4 routes", strings.Join(keys(devs), ", "), "one, with strict rp_filter"))
	}
	if d, ok := delta(f.Before.Net, f.After.Net, "TcpExt.IPReversePathFilter"); ok {
		evs = append(evs, ev(srcNetstat, "TcpExt.IPReversePathFilter", fmt.Sprintf("+%d over %s", d, f.Interval), "+0"))
		if d > 0 {
			st = Fail
		}
	}
	if st == Pass {
		return pass(evs...)
	}
	return Outcome{Status: st, Evidence: evs,
		Explanation: "Strict reverse-path filtering drops packets that arrive on an interface other than the one the route back would use: with several interfaces (multi-network containers, asymmetric routing) replies vanish.",
		Fix:         fix("Use loose mode", fmt.Sprintf("nsdebug sysctl %s net.ipv4.conf.all.rp_filter=2", f.Target))}
}

// Check 14: localhost in /etc/hosts maps to ::1 but the namespace has no
// ::1, or the app listens on IPv4 only while localhost resolves to ::1
// first.
func checkIPv6Localhost(f *Facts) Outcome {
	if f.HostsErr != "" {
		return skip("/etc/hosts unreadable: " + f.HostsErr)
	}
	// Which localhost line comes first: most resolvers (musl, Go's, many
	// clients) take the first; glibc sorts ::1 last when it is missing.
	first := ""
	for _, l := range strings.Split(f.Hosts, "\n") {
		fs := strings.Fields(l)
		if len(fs) < 2 || first != "" {
			continue
		}
		for _, n := range fs[1:] {
			if n == "localhost" {
				first = fs[0]
			}
		}
	}
	if first != "::1" {
		return pass(ev(srcHosts, "first localhost line", orNone(first), "127.0.0.1, or ::1 with ::1 configured"))
	}
	has := false
	for _, a := range f.Report.Addresses {
		if a.Address == "::1/128" {
			has = true
		}
	}
	e := ev(srcHosts+" / "+srcLinks, "first localhost line ::1; ::1 on lo", fmt.Sprint(has), "true")
	if !has {
		return Outcome{Status: Warn, Evidence: []Evidence{e},
			Explanation: "/etc/hosts maps localhost to ::1, but the namespace has no ::1 (IPv6 disabled): clients that try ::1 first get 'address not available' or a delay before falling back to 127.0.0.1.",
			Fix:         fix("Drop the ::1 localhost line, or enable IPv6 on lo", fmt.Sprintf("nsdebug sysctl %s net.ipv6.conf.lo.disable_ipv6=0", f.Target))}
	}
	var v4only []string
	for _, s := range f.Report.Sockets {
		if s.Proto != "tcp" || s.State != "LISTEN" || s.Family != "inet" {
			continue
		}
		ip, p := splitHostPort(s.Local)
		if !isLoopback(ip) {
			continue
		}
		both := false
		for _, o := range f.listeners("tcp", p) {
			if o.Family == "inet6" {
				both = true
			}
		}
		if !both {
			v4only = append(v4only, sockLabel(s))
		}
	}
	if len(v4only) > 0 {
		return Outcome{Status: Warn, Evidence: []Evidence{e, ev(srcSockets, "IPv4-only loopback listeners", strings.Join(v4only, ", "), "also on [::1]")},
			Explanation: "localhost resolves to ::1 first, but these listen on 127.0.0.1 only: clients connecting to 'localhost' are refused before they fall back (or never fall back).",
			Fix:         fix("Listen on both, or connect to 127.0.0.1 explicitly")}
	}
	return pass(e)
}

// Check 15: hairpin: a container reaching its own published port through
// the host needs hairpin_mode on its bridge port when no userland proxy
// carries that traffic (with br_netfilter the DNATed frame goes back out the
// port it came in by, which a bridge refuses without hairpin). Docker says
// whether its proxy is on; any other published port is a kernel DNAT rule in
// the forwarding namespace (CNI portmap, a node's own rules): no proxy.
func checkHairpin(f *Facts) Outcome {
	var evs []Evidence
	if f.Runtime == "docker" {
		if f.Net == nil || len(f.Net.Ports) == 0 {
			return skip("the runtime publishes no ports for this target")
		}
		if f.Host.UserlandProxy != "false" {
			return skip("userland-proxy is on (" + f.Host.ProxySource + "): docker-proxy handles hairpin traffic")
		}
	} else {
		dnat := dnatTo(f.Host, f.containerIPs())
		if len(dnat) == 0 {
			return skip("no DNAT rule in the forwarding namespace publishes a port of this target")
		}
		evs = append(evs, ev(srcIPTables, "DNAT rules to this target", strings.Join(dnat, "; "), ""))
	}
	var off []string
	read := 0
	for _, l := range f.hostVeths() {
		v, ok := f.Host.Hairpin[l.Peer.Name]
		if !ok {
			continue
		}
		read++
		evs = append(evs, ev("bridge port (netlink)", l.Peer.Name+" hairpin_mode", v, "1"))
		if v != "1" {
			off = append(off, l.Peer.Name)
		}
	}
	if read == 0 {
		return skip("no bridge port of this target's veths found in the forwarding namespace", evs...)
	}
	if len(off) == 0 {
		return pass(evs...)
	}
	why := "userland-proxy is off"
	if f.Runtime != "docker" {
		why = "its published ports are kernel DNAT rules (no userland proxy)"
	}
	return Outcome{Status: Fail, Evidence: evs,
		Explanation: why + " and hairpin_mode is off on " + strings.Join(off, ", ") + ": the container cannot reach its own published port through the host's address.",
		Fix:         fix("Turn hairpin mode on for the bridge port", f.Host.in("ip link set "+off[0]+" type bridge_slave hairpin on"))}
}

// dnatTo lists h's nat rules (both backends) that DNAT to one of ips, as
// "backend chain: rule".
func dnatTo(h *HostFacts, ips []string) []string {
	var out []string
	for _, name := range []string{"nft", "legacy"} {
		rs := h.IPTables[name]
		if rs == nil || rs.Tables["nat"] == nil {
			continue
		}
		for cname, c := range rs.Tables["nat"].Chains {
			for _, r := range c.Rules {
				if !strings.Contains(r, "-j DNAT") {
					continue
				}
				f := strings.Fields(r)
				for i := 0; i+1 < len(f); i++ {
					if f[i] != "--to-destination" {
						continue
					}
					to, _, _ := strings.Cut(strings.Trim(f[i+1], "[]"), ":")
					if h, _, err := net.SplitHostPort(f[i+1]); err == nil {
						to = h
					}
					if contains(ips, to) {
						out = append(out, name+" "+cname+": "+r)
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out
}
