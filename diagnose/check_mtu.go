package diagnose

import (
	"fmt"
	"github.com/nsdebug/nsdebug/inspect"
	"strings"
)

// Check 5: MTU along the path: container end vs host end of the veth
// (must be equal), vs the bridge, vs the device the host's default route
// leaves by (a larger container MTU needs an MSS clamp).
func checkMTU(f *Facts) Outcome {
	veths := f.hostVeths()
	if len(veths) == 0 {
		return skip("no veth with its peer in the host's namespace")
	}
	var evs []Evidence
	status := Pass
	var why, cmds []string
	egress := f.Host.egressLink()
	for _, l := range veths {
		hl := f.Host.link(l.Peer.Name)
		if hl == nil {
			continue
		}
		evs = append(evs, ev(srcLinks+" / "+srcHostLinks, l.Name+" mtu vs "+hl.Name+" mtu", fmt.Sprintf("%d / %d", l.MTU, hl.MTU), "equal"))
		if l.MTU != hl.MTU {
			status = Fail
			why = append(why, fmt.Sprintf("the veth's ends differ (%s %d, %s %d): frames larger than the smaller end are dropped", l.Name, l.MTU, hl.Name, hl.MTU))
			cmds = append(cmds, fmt.Sprintf("nsdebug exec %s -- ip link set %s mtu %d", f.Target, l.Name, min(l.MTU, hl.MTU)), fmt.Sprintf("ip link set %s mtu %d", hl.Name, min(l.MTU, hl.MTU)))
		}
		if br := f.Host.link(hl.Master); br != nil {
			evs = append(evs, ev(srcHostLinks, l.Name+" mtu vs bridge "+br.Name, fmt.Sprintf("%d / %d", l.MTU, br.MTU), "<= bridge"))
			if l.MTU > br.MTU {
				status = worst(status, Warn)
				why = append(why, fmt.Sprintf("%s's MTU %d is above its bridge %s's %d", l.Name, l.MTU, br.Name, br.MTU))
			}
		}
		if egress != nil {
			clamp := f.Host.mssClamp()
			evs = append(evs, ev(srcHostLinks, l.Name+" mtu vs egress "+egress.Name, fmt.Sprintf("%d / %d (MSS clamp: %v)", l.MTU, egress.MTU, clamp), "<= egress, or an MSS clamp rule"))
			if l.MTU > egress.MTU && !clamp {
				status = worst(status, Warn)
				why = append(why, fmt.Sprintf("%s's MTU %d is above the host's egress %s (%d) and no TCPMSS clamp rule exists: large TCP segments to the outside need PMTU discovery, which ICMP filtering breaks (large responses hang)", l.Name, l.MTU, egress.Name, egress.MTU))
				cmds = append(cmds, "iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu", fmt.Sprintf("# or: docker network create -o com.docker.network.driver.mtu=%d ...", egress.MTU))
			}
		}
	}
	if status == Pass {
		return pass(evs...)
	}
	return Outcome{Status: status, Evidence: evs, Explanation: strings.Join(why, "; ") + ".", Fix: fix("Make the MTU consistent along the path", cmds...)}
}

// egressLink is the device the host's IPv4 default route leaves by.
func (h *HostFacts) egressLink() *inspect.Link {
	if h == nil || h.Report == nil {
		return nil
	}
	for _, r := range defaultRoutes(h.Report.Routes) {
		if l := h.link(r.Dev); l != nil {
			return l
		}
	}
	return nil
}

// mssClamp: a TCPMSS rule in either backend's mangle table.
func (h *HostFacts) mssClamp() bool {
	for _, rs := range h.IPTables {
		if t := rs.Tables["mangle"]; t != nil {
			for _, c := range t.Chains {
				for _, r := range c.Rules {
					if strings.Contains(r, "-j TCPMSS") {
						return true
					}
				}
			}
		}
	}
	return false
}

func worst(a, b Status) Status {
	rank := map[Status]int{Pass: 0, Skip: 0, Warn: 1, Fail: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}
