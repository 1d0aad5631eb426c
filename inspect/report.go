package inspect

import (
	"context"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/enter"
	"github.com/nsdebug/nsdebug/internal/nldump"
	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/internal/procfs"
	"github.com/nsdebug/nsdebug/resolver"
)

// Sections of a report, in output order.
var Sections = []string{"links", "addrs", "routes", "rules", "neigh", "sockets", "sysctls", "firewall"}

// Report is `nsdebug inspect -o json`. Field names are stable; they are
// documented for users in `nsdebug inspect --help` (cmd/inspect.go) and
// pinned by a test there. A section that was not asked for (--section) is
// null; one that was asked for and is empty is []. Target is the target as
// given on the command line (a bare word stays bare); a Link's peer and
// lower are absent (not null) when there is none; Conntrack is null both
// when conntrack is not loaded and when sysctls were not asked for.
type Report struct {
	Target    string             `json:"target"`
	Netns     resolver.NetnsInfo `json:"netns"`
	Host      bool               `json:"host"`
	Owners    []resolver.Owner   `json:"owners"`
	Links     []Link             `json:"links"`
	Addresses []Address          `json:"addresses"`
	Routes    []Route            `json:"routes"`
	Rules     []Rule             `json:"rules"`
	Neighbors []Neighbor         `json:"neighbors"`
	Sockets   []Socket           `json:"sockets"`
	Sysctls   map[string]string  `json:"sysctls"`
	Conntrack *Conntrack         `json:"conntrack"`
	Firewall  *Firewall          `json:"firewall"`
	Warnings  []string           `json:"warnings,omitempty"`
}

// Link is one network interface.
type Link struct {
	Name        string `json:"name"`
	Index       int    `json:"index"`
	Type        string `json:"type"`
	State       string `json:"state"`
	MTU         int    `json:"mtu"`
	MAC         string `json:"mac"`
	Master      string `json:"master,omitempty"`
	LinkNetnsID int    `json:"link_netnsid"`
	Peer        *Peer  `json:"peer,omitempty"`
	// Lower is the device a macvlan, ipvlan, vlan... sits on (IFLA_LINK),
	// possibly in another namespace (a macvlan moved into a container).
	Lower *Peer `json:"lower,omitempty"`

	parentIndex int
}

// Peer is the other end of a veth pair.
type Peer struct {
	Name   string    `json:"name"`
	Index  int       `json:"index"`
	Bridge string    `json:"bridge,omitempty"`
	Netns  PeerNetns `json:"netns"`
}

// PeerNetns says where a veth peer lives.
type PeerNetns struct {
	Inode uint64 `json:"inode,omitempty"`
	Path  string `json:"path,omitempty"`
	Host  bool   `json:"host"` // the host's namespace
	Same  bool   `json:"same"` // the inspected namespace itself
	// Owners are the containers/pods using it, in target syntax
	// (docker:web, pod:shop/cart), or its netns mount when no runtime
	// claims it.
	Owners []string `json:"owners,omitempty"`
}

// NameOtherEnds fills the owners of every namespace that a veth peer or a
// lower device of rep lives in, other than the host and rep's own. It lists
// the host's namespaces (as ls does), so it is only worth its cost when
// there is such an end: inspecting the host, or namespaces wired together.
func NameOtherEnds(ctx context.Context, r *resolver.Resolver, rep *Report) []string {
	var ends []*Peer
	for i := range rep.Links {
		for _, p := range []*Peer{rep.Links[i].Peer, rep.Links[i].Lower} {
			if p != nil && !p.Netns.Host && !p.Netns.Same && p.Netns.Inode != 0 {
				ends = append(ends, p)
			}
		}
	}
	if len(ends) == 0 {
		return nil
	}
	inv, err := ListNetns(ctx, r, ListOptions{})
	if err != nil {
		return []string{"naming the namespaces of veth peers: " + firstLine(err)}
	}
	labels := map[uint64]string{}
	for _, rw := range inv.Rows {
		labels[rw.Netns.Inode] = rw.label()
	}
	for _, p := range ends {
		if l, ok := labels[p.Netns.Inode]; ok && !strings.HasPrefix(l, "net:[") {
			p.Netns.Owners = strings.Split(l, ", ")
		}
	}
	return inv.Warnings
}

// Address is one interface address.
type Address struct {
	Ifname  string `json:"ifname"`
	Index   int    `json:"index"`
	Family  string `json:"family"`
	Address string `json:"address"`
	Scope   string `json:"scope"`
}

// Route is one route of any table. A multipath (ECMP) route has no gateway
// or dev of its own: its next hops carry them, as in ip -j route.
type Route struct {
	Table    string    `json:"table"`
	Type     string    `json:"type"`
	Family   string    `json:"family"`
	Dst      string    `json:"dst"`
	Gateway  string    `json:"gateway,omitempty"`
	Dev      string    `json:"dev,omitempty"`
	Src      string    `json:"src,omitempty"`
	Protocol string    `json:"protocol,omitempty"`
	Scope    string    `json:"scope"`
	Metric   int       `json:"metric,omitempty"`
	Nexthops []Nexthop `json:"nexthops,omitempty"`
}

// Nexthop is one path of a multipath route.
type Nexthop struct {
	Gateway string `json:"gateway,omitempty"`
	Dev     string `json:"dev,omitempty"`
	Weight  int    `json:"weight"` // rtnh_hops+1, as ip prints it
}

// Rule is one policy routing rule, as ip rule shows it.
type Rule struct {
	Priority int    `json:"priority"`
	Family   string `json:"family"`
	// Table is looked up by action "lookup"; absent for the other actions.
	Table string `json:"table,omitempty"`
	Src   string `json:"src,omitempty"`
	Dst   string `json:"dst,omitempty"`
	IIf   string `json:"iif,omitempty"`
	OIf   string `json:"oif,omitempty"`
	// Fwmark and Fwmask in hex; Fwmask is absent when it is all ones (the
	// kernel's default, which ip rule does not print either).
	Fwmark string `json:"fwmark,omitempty"`
	Fwmask string `json:"fwmask,omitempty"`
	// Action is lookup, goto, nop, blackhole, unreachable or prohibit (a
	// number for anything else); Goto is the priority a goto jumps to.
	Action string `json:"action"`
	Goto   int    `json:"goto,omitempty"`
	// Not: the selector is inverted (ip rule add not from ...).
	Not bool `json:"not,omitempty"`
}

// Neighbor is one ARP/NDP entry.
type Neighbor struct {
	IP    string `json:"ip"`
	MAC   string `json:"mac,omitempty"`
	Dev   string `json:"dev"`
	State string `json:"state"`
}

// Conntrack is the connection tracking table's fill.
type Conntrack struct {
	Count int `json:"count"`
	Max   int `json:"max"`
}

// Options choose what Inspect reads.
type Options struct {
	// Sections to read; nil means all (see Sections).
	Sections []string
	// ProcRoot is the host's /proc ("/proc" if empty).
	ProcRoot string
	// Host is the host's namespace, to recognise veth peers there; nil if
	// unknown.
	Host *nsfs.Netns
}

// ParseSections checks a --section list (comma-separated names, repeated
// flags) and returns it in output order.
func ParseSections(in []string) ([]string, error) {
	if len(in) == 0 {
		return Sections, nil
	}
	want := map[string]bool{}
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			// The JSON keys and text titles are accepted too.
			switch p {
			case "addresses":
				p = "addrs"
			case "neighbors", "neighbours":
				p = "neigh"
			}
			if !contains(Sections, p) {
				return nil, nserr.New(nserr.ErrUsage, "unknown section %q (want %s)", p, strings.Join(Sections, ", "))
			}
			want[p] = true
		}
	}
	var out []string
	for _, s := range Sections {
		if want[s] {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, nserr.New(nserr.ErrUsage, "--section names no section (want %s)", strings.Join(Sections, ", "))
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Inspect reads ns through netlink sockets opened inside it (and, for
// sysctls and the firewall, on a thread switched into it) and fills a report.
// A section that cannot be read becomes a warning; the others are still
// reported.
func Inspect(ctx context.Context, ns *nsfs.Netns, opts Options) (*Report, error) {
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.Sections == nil {
		opts.Sections = Sections
	}
	want := func(s string) bool { return contains(opts.Sections, s) }
	families := []int{}
	if want("sockets") {
		families = append(families, unix.NETLINK_INET_DIAG)
	}
	c, err := openConn(ns, families...)
	if err != nil {
		return nil, err
	}
	defer c.Close()

	rep := &Report{Netns: resolver.NetnsInfo{Path: ns.Path, Inode: ns.ID.Inode, Dev: ns.ID.Dev}, Owners: []resolver.Owner{}}
	rep.Host = opts.Host != nil && opts.Host.ID == ns.ID
	warn := func(section string, err error) {
		rep.Warnings = append(rep.Warnings, section+": "+firstLine(err))
	}

	// Links are needed to name devices in every other section.
	links, err := nldump.Retry(c.h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list links in %s: %w", ns.ID, err)
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	if want("links") {
		rep.Links = linksOf(links, names)
		resolvePeers(c, ns, opts, rep.Links)
	}
	if want("addrs") {
		if rep.Addresses, err = addressesOf(c.h, names); err != nil {
			warn("addresses", err)
		}
	}
	if want("routes") {
		if rep.Routes, err = routesOf(c.h, names); err != nil {
			warn("routes", err)
		}
	}
	if want("rules") {
		if rep.Rules, err = rulesOf(c); err != nil {
			warn("rules", err)
		}
	}
	if want("neigh") {
		if rep.Neighbors, err = neighborsOf(c.h, names); err != nil {
			warn("neighbors", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if want("sockets") {
		if rep.Sockets, err = socketsOf(c.h); err != nil {
			warn("sockets", err)
		} else if err := addProcesses(opts.ProcRoot, ns.ID, rep.Sockets); err != nil {
			warn("sockets: owning processes", err)
		}
	}
	if want("sysctls") || want("firewall") {
		readInside(ns, want("sysctls"), want("firewall"), rep)
	}
	return rep, nil
}

func linksOf(links []netlink.Link, names map[int]string) []Link {
	out := make([]Link, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		typ := l.Type()
		switch {
		case typ == "device" && a.Flags&net.FlagLoopback != 0:
			typ = "loopback"
		case typ == "tuntap":
			typ = "tun" // the kernel's kind (ip -d link, ls), not the library's name
		}
		out = append(out, Link{
			Name: a.Name, Index: a.Index, Type: typ, State: a.OperState.String(),
			MTU: a.MTU, MAC: a.HardwareAddr.String(), Master: names[a.MasterIndex],
			LinkNetnsID: a.NetNsID, parentIndex: a.ParentIndex,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}

// resolvePeers finds each veth's other end: in this namespace (no
// link-netnsid), in the host's, or in any other namespace on the host, by
// asking the kernel which netnsid each has here.
func resolvePeers(c *nlConn, ns *nsfs.Netns, opts Options, links []Link) {
	byNsid := map[int]PeerNetns{}
	var need []int
	for _, l := range links {
		if l.parentIndex > 0 && l.LinkNetnsID >= 0 {
			need = append(need, l.LinkNetnsID)
		}
	}
	if len(need) > 0 && opts.Host != nil && opts.Host.ID != ns.ID {
		if id := c.nsidOf(opts.Host); id >= 0 {
			byNsid[id] = PeerNetns{Inode: opts.Host.ID.Inode, Path: opts.Host.Path, Host: true}
		}
	}
	missing := false
	for _, id := range need {
		if _, ok := byNsid[id]; !ok {
			missing = true
		}
	}
	if missing {
		for id, p := range nsidsOfAll(c, opts.ProcRoot, ns.ID) {
			if _, ok := byNsid[id]; !ok {
				byNsid[id] = p
			}
		}
	}
	for i := range links {
		l := &links[i]
		if l.parentIndex == 0 {
			continue
		}
		var p *Peer
		if l.LinkNetnsID < 0 {
			// Both ends (or the lower device) here.
			for _, o := range links {
				if o.Index == l.parentIndex {
					p = &Peer{Name: o.Name, Index: o.Index, Bridge: o.Master, Netns: PeerNetns{Inode: ns.ID.Inode, Path: ns.Path, Same: true}}
				}
			}
		} else if where, ok := byNsid[l.LinkNetnsID]; ok {
			p = &Peer{Index: l.parentIndex, Netns: where}
			if rl, err := c.linkAt(l.LinkNetnsID, l.parentIndex); err == nil {
				p.Name = rl.Name
				p.Bridge = c.masterAt(l.LinkNetnsID, rl)
			}
		}
		if p == nil {
			continue
		}
		if l.Type == "veth" {
			l.Peer = p
		} else {
			l.Lower = p
		}
	}
}

// nsidsOfAll maps the netnsids that c's namespace has assigned to every
// namespace on the host (processes' and nsfs mounts').
func nsidsOfAll(c *nlConn, procRoot string, self nsfs.ID) map[int]PeerNetns {
	out := map[int]PeerNetns{}
	paths := map[nsfs.ID]string{}
	if scan, err := procfs.ScanNetns(procRoot); err == nil {
		for id, pids := range scan.PIDs {
			paths[id] = procRoot + "/" + strconv.Itoa(pids[0]) + "/ns/net"
		}
	}
	if mounts, err := procfs.NetnsMounts(procRoot + "/self/mountinfo"); err == nil {
		for _, m := range mounts {
			if m.Visible() {
				paths[m.ID] = m.MountPoint // a stable name beats /proc/PID
			}
		}
	}
	for id, path := range paths {
		if id == self {
			continue
		}
		ns, err := nsfs.Open(path)
		if err != nil || ns.ID != id {
			ns.Close()
			continue
		}
		if nsid := c.nsidOf(ns); nsid >= 0 {
			out[nsid] = PeerNetns{Inode: id.Inode, Path: path}
		}
		ns.Close()
	}
	return out
}

func familyName(f int) string {
	switch f {
	case unix.AF_INET:
		return "inet"
	case unix.AF_INET6:
		return "inet6"
	case unix.AF_BRIDGE:
		return "bridge"
	case unix.AF_MPLS:
		return "mpls"
	}
	return strconv.Itoa(f)
}

func scopeName(s netlink.Scope) string {
	switch s {
	case netlink.SCOPE_UNIVERSE:
		return "global"
	case netlink.SCOPE_SITE:
		return "site"
	case netlink.SCOPE_LINK:
		return "link"
	case netlink.SCOPE_HOST:
		return "host"
	case netlink.SCOPE_NOWHERE:
		return "nowhere"
	}
	return strconv.Itoa(int(s))
}

func addressesOf(h *netlink.Handle, names map[int]string) ([]Address, error) {
	addrs, err := nldump.Retry(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, err
	}
	out := make([]Address, 0, len(addrs))
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		fam := "inet6"
		if a.IP.To4() != nil {
			fam = "inet"
		}
		out = append(out, Address{Ifname: names[a.LinkIndex], Index: a.LinkIndex, Family: fam, Address: a.IPNet.String(), Scope: scopeName(netlink.Scope(a.Scope))})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

func tableName(t int) string {
	switch t {
	case unix.RT_TABLE_MAIN:
		return "main"
	case unix.RT_TABLE_LOCAL:
		return "local"
	case unix.RT_TABLE_DEFAULT:
		return "default"
	}
	return strconv.Itoa(t)
}

var routeTypes = map[int]string{
	unix.RTN_UNICAST: "unicast", unix.RTN_LOCAL: "local", unix.RTN_BROADCAST: "broadcast",
	unix.RTN_ANYCAST: "anycast", unix.RTN_MULTICAST: "multicast", unix.RTN_BLACKHOLE: "blackhole",
	unix.RTN_UNREACHABLE: "unreachable", unix.RTN_PROHIBIT: "prohibit", unix.RTN_THROW: "throw",
	unix.RTN_NAT: "nat",
}

var routeProtocols = map[netlink.RouteProtocol]string{
	unix.RTPROT_KERNEL: "kernel", unix.RTPROT_BOOT: "boot", unix.RTPROT_STATIC: "static",
	unix.RTPROT_DHCP: "dhcp", unix.RTPROT_RA: "ra",
}

func routesOf(h *netlink.Handle, names map[int]string) ([]Route, error) {
	// Table filter RT_TABLE_UNSPEC with the table flag: every table (without
	// it the library keeps the main table only).
	filter := &netlink.Route{Table: unix.RT_TABLE_UNSPEC}
	routes, err := nldump.Retry(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, err
	}
	out := make([]Route, 0, len(routes))
	for _, r := range routes {
		out = append(out, routeOf(r, names))
	}
	return out, nil
}

// routeOf converts one route; a multipath route keeps every next hop.
func routeOf(r netlink.Route, names map[int]string) Route {
	rt := Route{Table: tableName(r.Table), Type: routeTypes[r.Type], Family: familyName(r.Family), Dst: "default", Dev: names[r.LinkIndex], Scope: scopeName(r.Scope), Metric: r.Priority}
	if rt.Type == "" {
		rt.Type = strconv.Itoa(r.Type)
	}
	if r.Dst != nil {
		if ones, _ := r.Dst.Mask.Size(); ones > 0 {
			rt.Dst = r.Dst.String()
		}
	}
	rt.Gateway = gatewayOf(r.Gw, r.Via)
	if r.Src != nil {
		rt.Src = r.Src.String()
	}
	if p, ok := routeProtocols[r.Protocol]; ok {
		rt.Protocol = p
	} else if r.Protocol != 0 {
		rt.Protocol = strconv.Itoa(int(r.Protocol))
	}
	for _, nh := range r.MultiPath {
		if nh == nil {
			continue
		}
		rt.Nexthops = append(rt.Nexthops, Nexthop{Gateway: gatewayOf(nh.Gw, nh.Via), Dev: names[nh.LinkIndex], Weight: nh.Hops + 1})
	}
	return rt
}

// gatewayOf is RTA_GATEWAY, else RTA_VIA (an IPv4 route via an IPv6
// gateway), else "".
func gatewayOf(gw net.IP, via netlink.Destination) string {
	if gw != nil {
		return gw.String()
	}
	if v, ok := via.(*netlink.Via); ok && v != nil && v.Addr != nil {
		return v.Addr.String()
	}
	return ""
}

// ruleActions are the kernel's FR_ACT_* in ip rule's words.
var ruleActions = map[uint8]string{
	unix.FR_ACT_TO_TBL: "lookup", unix.FR_ACT_GOTO: "goto", unix.FR_ACT_NOP: "nop",
	unix.FR_ACT_BLACKHOLE: "blackhole", unix.FR_ACT_UNREACHABLE: "unreachable", unix.FR_ACT_PROHIBIT: "prohibit",
}

// rulesOf lists the IPv4 and IPv6 policy rules (ip rule; the multicast
// routing families' rules are left out, as ip rule does). The dump is made
// here, not with the library's RuleList: that one drops the action
// (fib_rule_hdr.action), so a prohibit rule would read as a lookup.
func rulesOf(c *nlConn) ([]Rule, error) {
	msgs, err := nldump.Retry(func() ([][]byte, error) {
		req := nl.NewNetlinkRequest(unix.RTM_GETRULE, unix.NLM_F_DUMP)
		req.Sockets = c.route
		req.AddData(&nl.RtMsg{})
		return req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWRULE)
	})
	if err != nil {
		return nil, err
	}
	out := make([]Rule, 0, len(msgs))
	for _, m := range msgs {
		ru, ok, err := parseRule(m)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, ru)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Family != out[j].Family {
			return out[i].Family < out[j].Family
		}
		return out[i].Priority < out[j].Priority
	})
	return out, nil
}

// parseRule decodes one RTM_NEWRULE message (a fib_rule_hdr, laid out as
// an rtmsg whose type is the action, then FRA_* attributes). ok is false
// for a family ip rule does not show.
func parseRule(m []byte) (Rule, bool, error) {
	if len(m) < unix.SizeofRtMsg {
		return Rule{}, false, nil
	}
	hdr := nl.DeserializeRtMsg(m)
	if hdr.Family != unix.AF_INET && hdr.Family != unix.AF_INET6 {
		return Rule{}, false, nil
	}
	attrs, err := nl.ParseRouteAttr(m[hdr.Len():])
	if err != nil {
		return Rule{}, false, fmt.Errorf("parse rule: %w", err)
	}
	ru := Rule{Family: familyName(int(hdr.Family)), Not: hdr.Flags&netlink.FibRuleInvert != 0}
	table := uint32(hdr.Table)
	var mark, mask uint32
	hasMark, hasMask := false, false
	u32 := func(b []byte) uint32 {
		if len(b) < 4 {
			return 0
		}
		return nl.NativeEndian().Uint32(b)
	}
	prefix := func(b []byte, bits uint8) string {
		return (&net.IPNet{IP: net.IP(b), Mask: net.CIDRMask(int(bits), 8*len(b))}).String()
	}
	for _, a := range attrs {
		switch a.Attr.Type & nl.NLA_TYPE_MASK {
		case nl.FRA_PRIORITY:
			ru.Priority = int(u32(a.Value))
		case nl.FRA_TABLE:
			table = u32(a.Value)
		case nl.FRA_SRC:
			ru.Src = prefix(a.Value, hdr.Src_len)
		case nl.FRA_DST:
			ru.Dst = prefix(a.Value, hdr.Dst_len)
		case nl.FRA_IIFNAME:
			ru.IIf = cString(a.Value)
		case nl.FRA_OIFNAME:
			ru.OIf = cString(a.Value)
		case nl.FRA_FWMARK:
			mark, hasMark = u32(a.Value), true
		case nl.FRA_FWMASK:
			mask, hasMask = u32(a.Value), true
		case nl.FRA_GOTO:
			ru.Goto = int(u32(a.Value))
		}
	}
	ru.Action = ruleActions[hdr.Type]
	if ru.Action == "" {
		ru.Action = strconv.Itoa(int(hdr.Type))
	}
	if ru.Action == "lookup" || table != 0 {
		ru.Table = tableName(int(table))
	}
	if hasMark || hasMask {
		ru.Fwmark = fmt.Sprintf("0x%x", mark)
		if hasMask && mask != 0xffffffff {
			ru.Fwmask = fmt.Sprintf("0x%x", mask)
		}
	}
	return ru, true, nil
}

func neighborsOf(h *netlink.Handle, names map[int]string) ([]Neighbor, error) {
	neighs, err := nldump.Retry(func() ([]netlink.Neigh, error) { return h.NeighList(0, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, err
	}
	out := make([]Neighbor, 0, len(neighs))
	for _, n := range neighs {
		if n.IP == nil || hiddenNeighbor(n.State) {
			continue
		}
		out = append(out, Neighbor{IP: n.IP.String(), MAC: n.HardwareAddr.String(), Dev: names[n.LinkIndex], State: neighState(n.State)})
	}
	return out, nil
}

// hiddenNeighbor: entries that are NOARP and nothing else (the kernel's
// 0.0.0.0 on lo, IPv6 multicast groups) are not neighbours anyone
// resolved; ip neigh leaves them out unless asked for "nud all".
func hiddenNeighbor(state int) bool {
	return state != 0 && state&^netlink.NUD_NOARP == 0
}

func neighState(s int) string {
	var parts []string
	for _, st := range []struct {
		bit  int
		name string
	}{{netlink.NUD_INCOMPLETE, "INCOMPLETE"}, {netlink.NUD_REACHABLE, "REACHABLE"}, {netlink.NUD_STALE, "STALE"}, {netlink.NUD_DELAY, "DELAY"}, {netlink.NUD_PROBE, "PROBE"}, {netlink.NUD_FAILED, "FAILED"}, {netlink.NUD_NOARP, "NOARP"}, {netlink.NUD_PERMANENT, "PERMANENT"}} {
		if s&st.bit != 0 {
			parts = append(parts, st.name)
		}
	}
	if len(parts) == 0 {
		return "NONE"
	}
	return strings.Join(parts, ",")
}

// sysctlNames are read in every report: the ones that matter in incidents.
var sysctlNames = []string{
	"net.ipv4.ip_forward",
	"net.ipv4.conf.all.rp_filter",
	"net.ipv4.conf.default.rp_filter",
	"net.core.somaxconn",
	"net.ipv4.ip_local_port_range",
	"net.ipv4.tcp_keepalive_time",
	"net.ipv6.conf.all.forwarding",
	"net.ipv6.conf.all.disable_ipv6",
}

// readInside reads what only a thread inside the namespace can see:
// /proc/sys/net (resolved against the opener's netns), conntrack, the legacy
// x_tables names under /proc/thread-self/net (not /proc/self/net: that is
// the thread-group leader's namespace) and the nftables ruleset through a
// NETLINK_NETFILTER socket made there.
func readInside(ns *nsfs.Netns, sysctls, firewall bool, rep *Report) {
	var warnings []string
	err := enter.Do(ns, func() error {
		if sysctls {
			rep.Sysctls = map[string]string{}
			for _, name := range sysctlNames {
				if v, err := readSysctl(name); err == nil {
					rep.Sysctls[name] = v
				}
			}
			cnt, err1 := readSysctl("net.netfilter.nf_conntrack_count")
			max, err2 := readSysctl("net.netfilter.nf_conntrack_max")
			if err1 == nil && err2 == nil {
				ct := &Conntrack{}
				ct.Count, _ = strconv.Atoi(cnt)
				ct.Max, _ = strconv.Atoi(max)
				rep.Conntrack = ct
			}
		}
		if firewall {
			fw, err := readFirewall()
			if err != nil {
				warnings = append(warnings, "firewall: "+firstLine(err))
			}
			rep.Firewall = fw
		}
		return nil
	})
	if err != nil {
		warnings = append(warnings, "sysctls/firewall: "+firstLine(err))
	}
	rep.Warnings = append(rep.Warnings, warnings...)
}

func readSysctl(name string) (string, error) {
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
	if err != nil {
		return "", err
	}
	return strings.Join(strings.Fields(string(b)), " "), nil
}
