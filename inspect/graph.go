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
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/resolver"
)

// Graph is the host's wiring: every namespace with its interfaces (and the
// bridge or bond each is enslaved to), and every veth pair, wherever its two
// ends are: host and container, or two namespaces (seed-style setups with
// the bridge in a namespace of its own).
type Graph struct {
	Nodes    []GraphNetns
	Pairs    []VethPair
	Warnings []string
}

// GraphNetns is one namespace in the graph.
type GraphNetns struct {
	Row   NetnsRow
	Links []GraphLink
}

// GraphLink is one interface of a namespace.
type GraphLink struct {
	Name      string
	Index     int
	Kind      string
	Master    string
	Addresses []string

	peerNsid, peerIndex int
}

// End is one end of a veth pair: node index in Graph.Nodes and interface.
type End struct {
	Node int
	Link string
}

// VethPair joins two interfaces.
type VethPair struct{ A, B End }

// BuildGraph lists the namespaces (as ls does), then reads every
// namespace's links on threads switched into it and joins veth ends by
// netnsid and peer index.
func BuildGraph(ctx context.Context, r *resolver.Resolver) (*Graph, error) {
	inv, err := ListNetns(ctx, r, ListOptions{})
	if err != nil {
		return nil, err
	}
	g := &Graph{Warnings: inv.Warnings}
	var nss []*nsfs.Netns
	var idx []int
	for _, rw := range inv.Rows {
		g.Nodes = append(g.Nodes, GraphNetns{Row: rw})
		ns, err := openRow(&rw)
		if err != nil {
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
	// namespaces with a veth into another namespace need one.
	nsidMaps := make([]map[int]int, len(nss))
	errs := enter.Each(nss, func(i int) error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		links, err := RetryDump(h.LinkList)
		if err != nil {
			return err
		}
		addrs, err := RetryDump(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_ALL) })
		if err != nil {
			return err
		}
		names := map[int]string{}
		for _, l := range links {
			names[l.Attrs().Index] = l.Attrs().Name
		}
		byIndex := map[int][]string{}
		for _, a := range addrs {
			if a.IPNet != nil {
				byIndex[a.LinkIndex] = append(byIndex[a.LinkIndex], a.IPNet.String())
			}
		}
		node := &g.Nodes[idx[i]]
		need := false
		for _, l := range links {
			a := l.Attrs()
			gl := GraphLink{Name: a.Name, Index: a.Index, Kind: l.Type(), Master: names[a.MasterIndex], Addresses: byIndex[a.Index], peerNsid: -1}
			if gl.Kind == "veth" && a.ParentIndex > 0 {
				gl.peerNsid, gl.peerIndex = a.NetNsID, a.ParentIndex
				need = need || a.NetNsID >= 0
			}
			node.Links = append(node.Links, gl)
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
			g.Warnings = append(g.Warnings, fmt.Sprintf("%s: %v", g.Nodes[idx[i]].Row.label(), firstLine(err)))
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	seen := map[[2]End]bool{}
	for i, ni := range idx {
		for _, l := range g.Nodes[ni].Links {
			if l.Kind != "veth" || l.peerIndex == 0 {
				continue
			}
			peerNode := ni
			if l.peerNsid >= 0 {
				pn, ok := nsidMaps[i][l.peerNsid]
				if !ok {
					continue
				}
				peerNode = pn
			}
			peer := g.Nodes[peerNode].linkByIndex(l.peerIndex)
			if peer == "" {
				continue
			}
			a, b := End{ni, l.Name}, End{peerNode, peer}
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

// wired reports which nodes have at least one veth pair to another node.
func (g *Graph) wired() map[int]bool {
	m := map[int]bool{}
	for _, p := range g.Pairs {
		if p.A.Node != p.B.Node {
			m[p.A.Node], m[p.B.Node] = true, true
		}
	}
	return m
}

// WriteDot writes the graph in Graphviz's language: a cluster per wired
// namespace with its interfaces, bridges as hexagons, host uplinks as double
// octagons, veth pairs as bold edges and bridge ports as dashed ones.
// Namespaces with nothing but loopback are left out (a host with hundreds
// of empty namespaces would drown the picture); -o text lists them.
func (g *Graph) WriteDot(w io.Writer) error {
	var b strings.Builder
	b.WriteString("graph nsdebug {\n  rankdir=LR;\n  node [shape=box, fontsize=10];\n")
	id := func(node int, ifname string) string { return strconv.Quote(fmt.Sprintf("%d/%s", node, ifname)) }
	wired := g.wired()
	for i, n := range g.Nodes {
		if !n.Row.Host && !wired[i] {
			continue
		}
		fmt.Fprintf(&b, "  subgraph cluster_%d {\n    label=%s;\n", i, strconv.Quote(n.Row.label()+"\nnet:["+strconv.FormatUint(n.Row.Netns.Inode, 10)+"]"))
		if n.Row.Host {
			b.WriteString("    style=filled; fillcolor=\"#eeeeee\";\n")
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
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteText writes the wiring as a tree, one namespace with interfaces
// beyond loopback after another (the host first): each interface, the
// bridge it hangs on, and for a veth the other end (interface and
// namespace). Namespaces with loopback only are counted at the end.
func (g *Graph) WriteText(w io.Writer) error {
	var b strings.Builder
	peerOf := map[End]End{}
	for _, p := range g.Pairs {
		peerOf[p.A], peerOf[p.B] = p.B, p.A
	}
	var empty []string
	for i, n := range g.Nodes {
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
		describe := func(l GraphLink) string {
			s := fmt.Sprintf("%s (%s)", l.Name, l.Kind)
			if len(l.Addresses) > 0 {
				s += " " + strings.Join(l.Addresses, " ")
			}
			if p, ok := peerOf[End{i, l.Name}]; ok {
				where := g.Nodes[p.Node].Row.label()
				if p.Node == i {
					where = "here"
				}
				s += fmt.Sprintf(" ⇄ %s in %s", p.Link, where)
				if addrs := g.Nodes[p.Node].link(p.Link).Addresses; len(addrs) > 0 {
					s += " " + strings.Join(addrs, " ")
				}
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
		fmt.Fprintf(&b, "\n%d namespaces with loopback only: %s\n", len(empty), strings.Join(empty, " "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
