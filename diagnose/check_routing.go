package diagnose

import (
	"fmt"
	"strings"
)

// Check 3a: the namespace's uplinks are up.
func checkLinkUp(f *Facts) Outcome {
	ups := f.uplinks()
	if len(ups) == 0 {
		if in, why := f.internal(); in {
			return skip(why + ": no interface but loopback is expected")
		}
		return Outcome{Status: Fail, Evidence: []Evidence{ev(srcLinks, "interfaces", "lo only", "an uplink (eth0)")},
			Explanation: "The namespace has no interface but loopback: nothing can reach it.",
			Fix:         fix("Attach the container to a network", "docker network connect bridge CONTAINER")}
	}
	var evs []Evidence
	var down []string
	for _, l := range ups {
		// An interface set down here is this check's; one that is up
		// with no carrier (its veth peer set down) is veth.host's.
		up, known := f.AdminUp[l.Name]
		v := l.State
		switch {
		case known && !up:
			v = "down (set down)"
			down = append(down, l.Name)
		case known && l.State != "up":
			v = "set up, operstate " + l.State + " (no carrier: see veth.host)"
		case !known && l.State == "down":
			down = append(down, l.Name)
		}
		evs = append(evs, ev(srcLinks, l.Name+" state", v, "up"))
	}
	if len(down) == 0 {
		return pass(evs...)
	}
	var cmds []string
	for _, d := range down {
		cmds = append(cmds, fmt.Sprintf("nsdebug exec %s -- ip link set %s up", f.Target, d))
	}
	return Outcome{Status: Fail, Evidence: evs, Explanation: strings.Join(down, ", ") + " is down: no packet leaves or arrives through it.",
		Fix: fix("Bring the interface up", cmds...)}
}

// Check 3b: a default route, unless the runtime made the network internal.
func checkRouteDefault(f *Facts) Outcome {
	if f.hostNetwork() {
		return skip("host network: the host's routes")
	}
	if in, why := f.internal(); in {
		return skip(why + ": no default route is expected")
	}
	d := defaultRoutes(f.Report.Routes)
	want := "default via the network's gateway"
	gw := ""
	if f.Net != nil {
		for _, n := range f.Net.Networks {
			if n.Gateway != "" {
				gw = n.Gateway
				want = "default via " + gw
				break
			}
		}
	}
	if len(d) == 0 {
		cmd := fmt.Sprintf("nsdebug exec %s -- ip route add default via GATEWAY", f.Target)
		if gw != "" {
			cmd = fmt.Sprintf("nsdebug exec %s -- ip route add default via %s", f.Target, gw)
		}
		return Outcome{Status: Fail, Evidence: []Evidence{ev(srcRoutes, "main default (inet)", "none", want)},
			Explanation: "There is no default route: only directly connected subnets are reachable, so outside addresses (and most DNS servers) fail with 'network unreachable'.",
			Fix:         fix("Add the default route back (or restart the container to have the runtime set it)", cmd)}
	}
	var evs []Evidence
	for _, r := range d {
		v := "via " + r.Gateway + " dev " + r.Dev
		if r.Gateway == "" {
			v = "dev " + r.Dev
		}
		evs = append(evs, ev(srcRoutes, "main default (inet)", v, want))
	}
	return pass(evs...)
}

// Check 3c: the default gateway's neighbour entry did not fail.
func checkRouteGateway(f *Facts) Outcome {
	d := defaultRoutes(f.Report.Routes)
	if len(d) == 0 || d[0].Gateway == "" {
		return skip("no default route with a gateway")
	}
	gw, dev := d[0].Gateway, d[0].Dev
	for _, n := range f.Report.Neighbors {
		if n.IP != gw || n.Dev != dev {
			continue
		}
		e := ev(srcNeigh, gw+" dev "+dev, n.State+" "+n.MAC, "REACHABLE, STALE, DELAY or PROBE")
		if strings.Contains(n.State, "FAILED") || strings.Contains(n.State, "INCOMPLETE") {
			return Outcome{Status: Fail, Evidence: []Evidence{e},
				Explanation: "The gateway does not answer ARP: every packet to another subnet is dropped. The host's bridge is down, the veth is off the bridge, or the gateway address is not on the bridge.",
				Fix:         fix("Check the host side: the bridge holding the gateway address and the veth on it", "ip -br addr show | grep "+gw, fmt.Sprintf("nsdebug exec %s -- arping -c 1 -I %s %s", f.Target, dev, gw))}
		}
		return pass(e)
	}
	return pass(ev(srcNeigh, gw+" dev "+dev, "no entry yet", "not FAILED or INCOMPLETE"))
}

// Check 4: the host side of each veth is up and on the right bridge.
func checkVethHost(f *Facts) Outcome {
	veths := f.hostVeths()
	if len(veths) == 0 {
		return skip("no veth with its peer in the host's namespace")
	}
	want := map[string]bool{}
	if f.Net != nil {
		for _, n := range f.Net.Networks {
			if ni := f.Networks[n.Name]; ni != nil && ni.Bridge != "" {
				want[ni.Bridge] = true
			}
		}
	}
	var evs []Evidence
	var bad []string
	var cmds []string
	for _, l := range veths {
		p := l.Peer
		hl := f.Host.link(p.Name)
		state := "unknown"
		if hl != nil {
			state = hl.State
			if up, ok := f.Host.AdminUp[p.Name]; ok {
				if !up {
					state = "down"
				} else if state != "up" {
					// Its peer (the container's end) set down: link.up's.
					state = "set up, operstate " + state
				}
			}
		}
		evs = append(evs, ev(srcHostLinks, p.Name+" (peer of "+l.Name+") state", state, "up"))
		if state == "down" {
			bad = append(bad, p.Name+" is down")
			cmds = append(cmds, "ip link set "+p.Name+" up")
		}
		expected := "a bridge"
		if len(want) > 0 {
			expected = strings.Join(keys(want), " or ")
		}
		br := p.Bridge
		if br == "" {
			br = "none"
		}
		evs = append(evs, ev(srcHostLinks, p.Name+" master", br, expected))
		switch {
		case p.Bridge == "" && len(want) > 0:
			bad = append(bad, p.Name+" is on no bridge")
			cmds = append(cmds, "ip link set "+p.Name+" master "+keys(want)[0])
		case p.Bridge == "" && f.Runtime == "cri":
			bad = append(bad, p.Name+" is on no bridge")
			cmds = append(cmds, "ip link set "+p.Name+" master BRIDGE   # the CNI bridge, e.g. cni0")
		case p.Bridge != "" && len(want) > 0 && !want[p.Bridge]:
			bad = append(bad, p.Name+" is on "+p.Bridge)
			cmds = append(cmds, "ip link set "+p.Name+" master "+keys(want)[0])
		}
	}
	if len(bad) == 0 {
		return pass(evs...)
	}
	return Outcome{Status: Fail, Evidence: evs, Explanation: strings.Join(bad, "; ") + ": the container's frames do not reach its network's bridge (and its gateway).",
		Fix: fix("Put the host side of the veth back up and on its bridge", cmds...)}
}
