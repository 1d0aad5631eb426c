package inspect

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/enter"
	"github.com/nsdebug/nsdebug/internal/nldump"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/resolver"
)

// Graph is the host's wiring: every namespace with its interfaces (and the
// bridge or bond each is enslaved to), every veth pair, wherever its two
// ends are: host and container, or two namespaces (seed-style setups with
// the bridge in a namespace of its own), and every macvlan, ipvlan, vlan...
// with the device it sits on, in the same namespace or another.
type Graph struct {
	Nodes    []GraphNetns
	Pairs    []VethPair
	Lowers   []LowerLink
	Warnings []string
}

// GraphNetns is one namespace in the graph. Error says why its interfaces
// could not be read (it vanished, or was replaced, meanwhile); such a
// namespace is shown as unreadable, never as empty.
type GraphNetns struct {
	Row   NetnsRow
	Links []GraphLink
	Error string
}

// GraphLink is one interface of a namespace.
type GraphLink struct {
	Name      string
	Index     int
	Kind      string
	Master    string
	Addresses []string

	// IFLA_LINK and IFLA_LINK_NETNSID: a veth's peer, or the lower device
	// of a macvlan, ipvlan, vlan...
	parentNsid, parentIndex int
}

// End is one end of a veth pair: node index in Graph.Nodes and interface.
type End struct {
	Node int
	Link string
}

// VethPair joins two interfaces.
type VethPair struct{ A, B End }

// LowerLink joins a macvlan, ipvlan, vlan... (Upper) to the device it sits
// on (Lower), possibly in another namespace (a macvlan moved into a
// container sits on a host NIC).
type LowerLink struct{ Upper, Lower End }

// BuildGraph lists the namespaces (as ls does), then reads every
// namespace's links on threads switched into it and joins veth ends and
// lower devices by netnsid and index.
func BuildGraph(ctx context.Context, r *resolver.Resolver) (*Graph, error) {
	inv, err := ListNetns(ctx, r, ListOptions{})
	if err != nil {
		return nil, err
	}
	g, err := graphOf(ctx, inv.Rows)
	if err != nil {
		return nil, err
	}
	g.Warnings = append(inv.Warnings, g.Warnings...)
	return g, nil
}

// graphOf builds the graph of the namespaces in rows.
func graphOf(ctx context.Context, rows []NetnsRow) (*Graph, error) {
	g := &Graph{}
	var nss []*nsfs.Netns
	var idx []int
	unreadable := func(node int, err error) {
		n := &g.Nodes[node]
		n.Error = firstLine(err)
		g.Warnings = append(g.Warnings, fmt.Sprintf("%s net:[%d]: cannot read its interfaces (shown as unreadable): %s", n.Row.label(), n.Row.Netns.Inode, n.Error))
	}
	for _, rw := range rows {
		g.Nodes = append(g.Nodes, GraphNetns{Row: rw})
		ns, err := openRow(&rw)
		if err != nil {
			unreadable(len(g.Nodes)-1, err)
			continue
		}
		nss = append(nss, ns)
		idx = append(idx, len(g.Nodes)-1)
	}
	defer func() {
		for _, ns := range nss {
			ns.Close()
		}
	}()
	// nsidMaps[i]: netnsid -> node, as namespace i numbers the others. Only
	// namespaces with a veth or lower device in another namespace need one.
	nsidMaps := make([]map[int]int, len(nss))
	links := make([][]GraphLink, len(nss))
	errs := enter.Each(nss, func(i int) error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		ll, err := nldump.Retry(h.LinkList)
		if err != nil {
			return err
		}
		addrs, err := nldump.Retry(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_ALL) })
		if err != nil {
			return err
		}
		names := map[int]string{}
		for _, l := range ll {
			names[l.Attrs().Index] = l.Attrs().Name
		}
		byIndex := map[int][]string{}
		for _, a := range addrs {
			if a.IPNet != nil {
				byIndex[a.LinkIndex] = append(byIndex[a.LinkIndex], a.IPNet.String())
			}
		}
		need := false
		for _, l := range ll {
			a := l.Attrs()
			gl := GraphLink{Name: a.Name, Index: a.Index, Kind: l.Type(), Master: names[a.MasterIndex], Addresses: byIndex[a.Index], parentNsid: -1}
			if gl.Kind == "tuntap" {
				gl.Kind = "tun"
			}
			// IFLA_LINK is the link itself for some devices; an end in
			// another namespace may well have the same index, though.
			if a.ParentIndex > 0 && (a.NetNsID >= 0 || a.ParentIndex != a.Index) {
				gl.parentNsid, gl.parentIndex = a.NetNsID, a.ParentIndex
				need = need || a.NetNsID >= 0
			}
			links[i] = append(links[i], gl)
		}
		if need {
			m := map[int]int{}
			for j, other := range nss {
				if j != i {
					if id, err := h.GetNetNsIdByFd(other.Fd()); err == nil && id >= 0 {
						m[id] = idx[j]
					}
				}
			}
			nsidMaps[i] = m
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			unreadable(idx[i], err)
			continue
		}
		g.Nodes[idx[i]].Links = links[i]
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	seen := map[[2]End]bool{}
	for i, ni := range idx {
		for _, l := range g.Nodes[ni].Links {
			if l.parentIndex == 0 {
				continue
			}
			otherNode := ni
			if l.parentNsid >= 0 {
				pn, ok := nsidMaps[i][l.parentNsid]
				if !ok {
					continue
				}
				otherNode = pn
			}
			other := g.Nodes[otherNode].linkByIndex(l.parentIndex)
			if other == "" {
				continue
			}
			if l.Kind != "veth" {
				g.Lowers = append(g.Lowers, LowerLink{Upper: End{ni, l.Name}, Lower: End{otherNode, other}})
				continue
			}
			a, b := End{ni, l.Name}, End{otherNode, other}
			if b.Node < a.Node || (b.Node == a.Node && b.Link < a.Link) {
				a, b = b, a
			}
			if !seen[[2]End{a, b}] {
				seen[[2]End{a, b}] = true
				g.Pairs = append(g.Pairs, VethPair{a, b})
			}
		}
	}
	return g, nil
}

func (n GraphNetns) linkByIndex(i int) string {
	for _, l := range n.Links {
		if l.Index == i {
			return l.Name
		}
	}
	return ""
}

func (n GraphNetns) link(name string) GraphLink {
	for _, l := range n.Links {
		if l.Name == name {
			return l
		}
	}
	return GraphLink{}
}

// label names a namespace for people: its owners, else its mount, else its
// inode.
func (rw NetnsRow) label() string {
	if rw.Host {
		return "host"
	}
	seen := map[string]bool{}
	var refs []string
	for _, o := range rw.Owners {
		if o.Runtime == "containerd" && (o.Namespace == "moby" || o.Namespace == "k8s.io") && len(refs) > 0 {
			continue // mirrors of docker containers and pods
		}
		if !seen[o.Ref()] {
			seen[o.Ref()] = true
			refs = append(refs, o.Ref())
		}
	}
	if len(refs) == 0 {
		for _, m := range rw.Mounts {
			if !m.Hidden {
				refs = append(refs, m.Path)
				break
			}
		}
	}
	if len(refs) == 0 {
		return "net:[" + strconv.FormatUint(rw.Netns.Inode, 10) + "]"
	}
	return strings.Join(refs, ", ")
}

// shown reports whether a namespace is drawn: the host, every namespace
// with an interface beyond loopback, and every one that could not be read.
func (n GraphNetns) shown() bool {
	if n.Row.Host || n.Error != "" {
		return true
	}
	for _, l := range n.Links {
		if l.Name != "lo" {
			return true
		}
	}
	return false
}

// WriteDot writes the graph in Graphviz's language: a cluster per namespace
// with its interfaces, bridges as hexagons, host uplinks as double
// octagons, veth pairs as bold edges, bridge ports as dashed ones and a
// macvlan/ipvlan/vlan's lower device as a dotted one. Node IDs are
// "INODE/IFNAME". Namespaces with nothing but loopback are left out (a
// host with hundreds of empty namespaces would drown the picture); -o text
// lists them. An unreadable namespace is a cluster saying so.
func (g *Graph) WriteDot(w io.Writer) error {
	var b strings.Builder
	b.WriteString("graph nsdebug {\n  rankdir=LR;\n  node [shape=box, fontsize=10];\n")
	id := func(node int, ifname string) string {
		return strconv.Quote(fmt.Sprintf("%d/%s", g.Nodes[node].Row.Netns.Inode, ifname))
	}
	for i, n := range g.Nodes {
		if !n.shown() {
			continue
		}
		fmt.Fprintf(&b, "  subgraph cluster_%d {\n    label=%s;\n", n.Row.Netns.Inode, strconv.Quote(n.Row.label()+"\nnet:["+strconv.FormatUint(n.Row.Netns.Inode, 10)+"]"))
		if n.Row.Host {
			b.WriteString("    style=filled; fillcolor=\"#eeeeee\";\n")
		}
		if n.Error != "" {
			fmt.Fprintf(&b, "    %s [label=%s, shape=note, style=dashed];\n", strconv.Quote(fmt.Sprintf("%d/(unreadable)", n.Row.Netns.Inode)), strconv.Quote("unreadable: "+n.Error))
		}
		for _, l := range n.Links {
			if l.Name == "lo" {
				continue
			}
			shape := "box"
			switch {
			case l.Kind == "bridge":
				shape = "hexagon"
			case n.Row.Host && l.Kind != "veth":
				shape = "doubleoctagon"
			}
			fmt.Fprintf(&b, "    %s [label=%s, shape=%s];\n", id(i, l.Name), strconv.Quote(strings.Join(append([]string{l.Name}, l.Addresses...), "\n")), shape)
		}
		for _, l := range n.Links {
			if l.Master != "" {
				fmt.Fprintf(&b, "    %s -- %s [style=dashed];\n", id(i, l.Name), id(i, l.Master))
			}
		}
		b.WriteString("  }\n")
	}
	for _, p := range g.Pairs {
		fmt.Fprintf(&b, "  %s -- %s [style=bold, label=\"veth\"];\n", id(p.A.Node, p.A.Link), id(p.B.Node, p.B.Link))
	}
	for _, lw := range g.Lowers {
		kind := g.Nodes[lw.Upper.Node].link(lw.Upper.Link).Kind
		fmt.Fprintf(&b, "  %s -- %s [style=dotted, label=%s];\n", id(lw.Upper.Node, lw.Upper.Link), id(lw.Lower.Node, lw.Lower.Link), strconv.Quote(kind+" on"))
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteText writes the wiring as a tree, one namespace with interfaces
// beyond loopback after another (the host first): each interface, the
// bridge it hangs on, for a veth the other end (interface and namespace),
// and for a macvlan, ipvlan, vlan... the device it sits on. Namespaces with
// loopback only, and those that could not be read, are listed at the end.
func (g *Graph) WriteText(w io.Writer) error {
	var b strings.Builder
	peerOf := map[End]End{}
	for _, p := range g.Pairs {
		peerOf[p.A], peerOf[p.B] = p.B, p.A
	}
	lowerOf := map[End]End{}
	uppersOf := map[End][]End{}
	for _, lw := range g.Lowers {
		lowerOf[lw.Upper] = lw.Lower
		uppersOf[lw.Lower] = append(uppersOf[lw.Lower], lw.Upper)
	}
	var empty, unreadable []string
	for i, n := range g.Nodes {
		if n.Error != "" {
			unreadable = append(unreadable, fmt.Sprintf("%s net:[%d] (%s)", n.Row.label(), n.Row.Netns.Inode, n.Error))
			continue
		}
		var links []GraphLink
		for _, l := range n.Links {
			if l.Name != "lo" {
				links = append(links, l)
			}
		}
		if len(links) == 0 && !n.Row.Host {
			empty = append(empty, n.Row.label())
			continue
		}
		fmt.Fprintf(&b, "%s net:[%d]\n", n.Row.label(), n.Row.Netns.Inode)
		// Bridges first with their ports under them, then the rest.
		sort.SliceStable(links, func(a, c int) bool { return links[a].Kind == "bridge" && links[c].Kind != "bridge" })
		var top []GraphLink
		ports := map[string][]GraphLink{}
		for _, l := range links {
			if l.Master != "" && n.link(l.Master).Kind == "bridge" {
				ports[l.Master] = append(ports[l.Master], l)
			} else {
				top = append(top, l)
			}
		}
		where := func(node int) string {
			if node == i {
				return "here"
			}
			return g.Nodes[node].Row.label()
		}
		describe := func(l GraphLink) string {
			s := fmt.Sprintf("%s (%s)", l.Name, l.Kind)
			if len(l.Addresses) > 0 {
				s += " " + strings.Join(l.Addresses, " ")
			}
			if p, ok := peerOf[End{i, l.Name}]; ok {
				s += fmt.Sprintf(" ⇄ %s in %s", p.Link, where(p.Node))
				if addrs := g.Nodes[p.Node].link(p.Link).Addresses; len(addrs) > 0 {
					s += " " + strings.Join(addrs, " ")
				}
			}
			if lw, ok := lowerOf[End{i, l.Name}]; ok {
				s += fmt.Sprintf(" on %s in %s", lw.Link, where(lw.Node))
			}
			for _, up := range uppersOf[End{i, l.Name}] {
				s += fmt.Sprintf(" ⇠ %s (%s) in %s", up.Link, g.Nodes[up.Node].link(up.Link).Kind, where(up.Node))
			}
			return s
		}
		for ti, l := range top {
			branch, indent := "├── ", "│   "
			if ti == len(top)-1 {
				branch, indent = "└── ", "    "
			}
			b.WriteString(branch + describe(l) + "\n")
			ps := ports[l.Name]
			sort.Slice(ps, func(a, c int) bool { return ps[a].Name < ps[c].Name })
			for pi, p := range ps {
				pb := "├── "
				if pi == len(ps)-1 {
					pb = "└── "
				}
				b.WriteString(indent + pb + describe(p) + "\n")
			}
		}
	}
	if len(empty) > 0 {
		fmt.Fprintf(&b, "\n%s with loopback only: %s\n", countNamespaces(len(empty)), strings.Join(empty, " "))
	}
	if len(unreadable) > 0 {
		fmt.Fprintf(&b, "\n%s could not be read: %s\n", countNamespaces(len(unreadable)), strings.Join(unreadable, "; "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func countNamespaces(n int) string {
	if n == 1 {
		return "1 namespace"
	}
	return strconv.Itoa(n) + " namespaces"
}
