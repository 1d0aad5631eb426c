package diagnose

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/nsdebug/nsdebug/inspect"
)

// Sources named in evidence.
const (
	srcRuntime   = "runtime"
	srcSockets   = "sock_diag"
	srcLinks     = "netlink links"
	srcRoutes    = "netlink routes"
	srcNeigh     = "netlink neighbours"
	srcResolv    = "resolv.conf"
	srcHosts     = "/etc/hosts"
	srcFirewall  = "netns firewall"
	srcSysctl    = "sysctl"
	srcNetstat   = "/proc/net/netstat"
	srcSnmp      = "/proc/net/snmp"
	srcCtStat    = "/proc/net/stat/nf_conntrack"
	srcHostLinks = "host links"
	srcIPTables  = "host iptables-save"
	srcProcs     = "host /proc"
)

// uplinks are the namespace's interfaces that connect it somewhere:
// everything but loopback.
func (f *Facts) uplinks() []inspect.Link {
	var out []inspect.Link
	for _, l := range f.Report.Links {
		if l.Type != "loopback" {
			out = append(out, l)
		}
	}
	return out
}

// hostVeths are the uplinks whose veth peer is in the forwarding
// namespace, f.Host's: the host's, or a node namespace's.
func (f *Facts) hostVeths() []inspect.Link {
	var out []inspect.Link
	for _, l := range f.uplinks() {
		if l.Peer == nil || l.Peer.Netns.Same {
			continue
		}
		if f.Host != nil && f.Host.Node {
			if l.Peer.Netns.Inode == f.Host.Inode {
				out = append(out, l)
			}
		} else if l.Peer.Netns.Host {
			out = append(out, l)
		}
	}
	return out
}

// in makes a fix command run where h's facts come from: as is on the host,
// through nsenter in a node namespace.
func (h *HostFacts) in(cmd string) string {
	if h == nil || !h.Node || strings.HasPrefix(cmd, "#") {
		return cmd
	}
	return "nsenter --net=" + h.Path + " " + cmd
}

// inAll is in for each command.
func (h *HostFacts) inAll(cmds ...string) []string {
	out := make([]string, len(cmds))
	for i, c := range cmds {
		out[i] = h.in(c)
	}
	return out
}

func (h *HostFacts) link(name string) *inspect.Link {
	if h == nil || h.Report == nil {
		return nil
	}
	for i := range h.Report.Links {
		if h.Report.Links[i].Name == name {
			return &h.Report.Links[i]
		}
	}
	return nil
}

// internal: the runtime says the namespace should have no way out.
func (f *Facts) internal() (bool, string) {
	if f.NetworkMode == "none" {
		return true, "network mode none"
	}
	if f.Net != nil && len(f.Net.Networks) > 0 {
		all := true
		for _, n := range f.Net.Networks {
			if ni := f.Networks[n.Name]; ni == nil || !ni.Internal {
				all = false
			}
		}
		if all {
			return true, "internal network"
		}
	}
	return false, ""
}

// hostNetwork: the target is the host's own namespace.
func (f *Facts) hostNetwork() bool { return f.NetworkMode == "host" || f.Report.Host }

// listeners are the sockets accepting on port: TCP LISTEN, UDP bound.
func (f *Facts) listeners(proto string, port int) []inspect.Socket {
	var out []inspect.Socket
	for _, s := range f.Report.Sockets {
		if s.Proto != proto || (proto == "tcp" && s.State != "LISTEN") || (proto == "udp" && s.State != "UNCONN") {
			continue
		}
		if _, p := splitHostPort(s.Local); p == port {
			out = append(out, s)
		}
	}
	return out
}

// splitHostPort undoes ss's ip:port / [ip6]:port.
func splitHostPort(s string) (string, int) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return s, 0
	}
	n, _ := strconv.Atoi(p)
	return strings.TrimPrefix(h, "::ffff:"), n
}

func isLoopback(ip string) bool {
	p := net.ParseIP(ip)
	return p != nil && p.IsLoopback()
}

func isWildcard(ip string) bool { return ip == "0.0.0.0" || ip == "::" || ip == "*" || ip == "" }

func sockLabel(s inspect.Socket) string {
	l := s.Local
	if len(s.Processes) > 0 {
		var ps []string
		for _, p := range s.Processes {
			ps = append(ps, fmt.Sprintf("%s pid %d", p.Command, p.PID))
		}
		l += " (" + strings.Join(ps, ", ") + ")"
	}
	return l
}

// defaultRoutes are the main table's IPv4 default routes.
func defaultRoutes(routes []inspect.Route) []inspect.Route {
	var out []inspect.Route
	for _, r := range routes {
		if r.Table == "main" && r.Family == "inet" && r.Dst == "default" && r.Type == "unicast" {
			out = append(out, r)
		}
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }

func fix(summary string, cmds ...string) *Fix {
	if cmds == nil {
		cmds = []string{}
	}
	return &Fix{Summary: summary, Commands: cmds}
}

// containerIP is the runtime's address for the container on its first
// network, or the first global IPv4 address of the namespace.
func (f *Facts) containerIPs() []string {
	var out []string
	if f.Net != nil {
		for _, n := range f.Net.Networks {
			if n.IP != "" {
				out = append(out, n.IP)
			}
		}
	}
	if len(out) == 0 {
		for _, a := range f.Report.Addresses {
			if a.Family == "inet" && a.Scope == "global" {
				ip, _, _ := strings.Cut(a.Address, "/")
				out = append(out, ip)
			}
		}
	}
	return out
}

func sortStrings(s []string) { sort.Strings(s) }
