package diagnose

import (
	"fmt"
	"strings"
)

// Check 1: every published port has a listener that the forwarded traffic
// can reach (not only 127.0.0.1/::1).
func checkPortsListen(f *Facts) Outcome {
	if f.Net == nil || len(f.Net.Ports) == 0 {
		return skip("the runtime publishes no ports for this target")
	}
	var evs []Evidence
	bad := Pass
	var why, fixCmd []string
	for _, p := range f.Net.Ports {
		key := fmt.Sprintf("%s %s:%d -> %d", p.Proto, hostIPOr(p.HostIP), p.HostPort, p.ContainerPort)
		ls := f.listeners(p.Proto, p.ContainerPort)
		var reachable, loop []string
		for _, s := range ls {
			ip, _ := splitHostPort(s.Local)
			if isLoopback(ip) {
				loop = append(loop, sockLabel(s))
			} else {
				reachable = append(reachable, sockLabel(s))
			}
		}
		want := fmt.Sprintf("a %s socket on *:%d or the container's address", p.Proto, p.ContainerPort)
		switch {
		case len(reachable) > 0:
			evs = append(evs, ev(srcSockets, key, strings.Join(reachable, ", "), want))
		case len(loop) > 0:
			bad = Fail
			evs = append(evs, ev(srcSockets, key, "only "+strings.Join(loop, ", "), want))
			why = append(why, fmt.Sprintf("port %d listens only on loopback, which forwarded traffic never reaches", p.ContainerPort))
			fixCmd = append(fixCmd, fmt.Sprintf("# make the application bind 0.0.0.0:%d (or [::]:%d) instead of 127.0.0.1", p.ContainerPort, p.ContainerPort))
		default:
			bad = Fail
			evs = append(evs, ev(srcSockets, key, "no listener", want))
			why = append(why, fmt.Sprintf("nothing listens on %s port %d in the container", p.Proto, p.ContainerPort))
			fixCmd = append(fixCmd, fmt.Sprintf("nsdebug exec %s -- ss -lntup   # is the application running, on which port?", f.Target))
		}
	}
	if bad == Pass {
		return pass(evs...)
	}
	return Outcome{Status: bad, Evidence: evs, Explanation: strings.Join(dedup(why), "; ") + ": connections to the published port are refused or reset.",
		Fix: fix("Make the application listen on the published container port on all addresses", dedup(fixCmd)...)}
}

func hostIPOr(ip string) string {
	if ip == "" {
		return "0.0.0.0"
	}
	return ip
}

// Check 2: a DNAT rule leads each published host port to the container's
// address and port (in the legacy or the nft iptables); with Docker's
// userland proxy on, a docker-proxy holds the host port too.
func checkPortsDNAT(f *Facts) Outcome {
	if f.Net == nil || len(f.Net.Ports) == 0 {
		return skip("the runtime publishes no ports for this target")
	}
	if f.hostNetwork() {
		return skip("host network: ports are the host's own, no DNAT")
	}
	h := f.Host
	if h == nil || len(h.IPTables) == 0 {
		return skip("the host's iptables could not be read: " + joinMap(h.IPTablesErr))
	}
	ips := f.containerIPs()
	var evs []Evidence
	status := Pass
	var why []string
	var cmds []string
	for _, p := range f.Net.Ports {
		key := fmt.Sprintf("%s %s:%d -> %d", p.Proto, hostIPOr(p.HostIP), p.HostPort, p.ContainerPort)
		var found []string
		for _, name := range []string{"nft", "legacy"} {
			rs := h.IPTables[name]
			if rs == nil || rs.Tables["nat"] == nil {
				continue
			}
			for cname, c := range rs.Tables["nat"].Chains {
				for _, r := range c.Rules {
					if dnatMatches(r, p.Proto, p.HostPort, ips, p.ContainerPort) {
						found = append(found, name+" nat "+cname)
					}
				}
			}
		}
		want := fmt.Sprintf("-p %s --dport %d -j DNAT --to-destination %s:%d", p.Proto, p.HostPort, strings.Join(ips, "|"), p.ContainerPort)
		if len(found) == 0 {
			status = Fail
			evs = append(evs, ev(srcIPTables, key+" DNAT", "none", want))
			why = append(why, fmt.Sprintf("no DNAT rule sends host port %d to %s:%d", p.HostPort, strings.Join(ips, "|"), p.ContainerPort))
		} else {
			evs = append(evs, ev(srcIPTables, key+" DNAT", strings.Join(found, ", "), want))
		}
		if f.Runtime == "docker" && h.UserlandProxy == "true" && p.Proto != "sctp" {
			var px []string
			for _, d := range h.DockerProxies {
				if d.HostPort == p.HostPort && d.Proto == p.Proto {
					px = append(px, d.String())
				}
			}
			if len(px) == 0 {
				status = Fail
				evs = append(evs, ev(srcProcs, key+" docker-proxy", "none", "a docker-proxy for host port "+itoa(p.HostPort)+" ("+h.ProxySource+")"))
				why = append(why, fmt.Sprintf("userland-proxy is on but no docker-proxy holds host port %d", p.HostPort))
			} else {
				evs = append(evs, ev(srcProcs, key+" docker-proxy", strings.Join(px, ", "), "a docker-proxy ("+h.ProxySource+")"))
			}
		}
	}
	if status == Pass {
		return pass(evs...)
	}
	cmds = append(cmds, "iptables-save -t nat | grep DNAT", "iptables-legacy-save -t nat | grep DNAT")
	if f.Runtime == "docker" {
		cmds = append(cmds, "docker restart "+strings.TrimPrefix(f.Target, "docker:")+"   # Docker re-creates its port rules and proxies", "# if rules vanish again: something flushes the nat table (firewalld, a script, iptables-restore)")
	}
	return Outcome{Status: status, Evidence: evs, Explanation: strings.Join(dedup(why), "; ") + ": connections to the host port never reach the container.",
		Fix: fix("Restore the runtime's port forwarding", cmds...)}
}

// dnatMatches: an iptables-save rule that DNATs proto/hostPort to one of
// ips at port.
func dnatMatches(rule, proto string, hostPort int, ips []string, port int) bool {
	if !strings.Contains(rule, "-j DNAT") || !strings.Contains(rule, "-p "+proto) {
		return false
	}
	f := strings.Fields(rule)
	dport, to := "", ""
	for i := 0; i+1 < len(f); i++ {
		switch f[i] {
		case "--dport", "--dports":
			dport = f[i+1]
		case "--to-destination":
			to = f[i+1]
		}
	}
	if dport != itoa(hostPort) {
		return false
	}
	for _, ip := range ips {
		if to == fmt.Sprintf("%s:%d", ip, port) || to == fmt.Sprintf("[%s]:%d", ip, port) {
			return true
		}
	}
	return false
}

func joinMap(m map[string]string) string {
	var out []string
	for k, v := range m {
		out = append(out, k+": "+v)
	}
	return strings.Join(out, "; ")
}
