package inspect

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/nsdebug/nsdebug/resolver"
)

// Graph is the host's wiring: every namespace with its interfaces, the
// host's bridges and uplinks, and the veth pairs between the host and the
// namespaces (host end, bridge, end inside).
type Graph struct {
	Rows     []NetnsRow
	Warnings []string
}

// BuildGraph lists the namespaces (as ls does) and their host wiring.
func BuildGraph(ctx context.Context, r *resolver.Resolver) (*Graph, error) {
	inv, err := ListNetns(ctx, r, ListOptions{})
	if err != nil {
		return nil, err
	}
	g := &Graph{Rows: inv.Rows, Warnings: inv.Warnings}
	if err := AddHostWiring(ctx, r, g.Rows); err != nil {
		g.Warnings = append(g.Warnings, "host wiring: "+err.Error())
	}
	return g, nil
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

func (g *Graph) host() *NetnsRow {
	for i := range g.Rows {
		if g.Rows[i].Host {
			return &g.Rows[i]
		}
	}
	return nil
}

// hostVethNames are the host interfaces that are one end of a pair into a
// namespace: drawn as edges, not as host boxes.
func (g *Graph) hostVethNames() map[string]bool {
	m := map[string]bool{}
	for _, rw := range g.Rows {
		for _, hv := range rw.HostVeths {
			m[hv.Name] = true
		}
	}
	return m
}

// WriteDot writes the graph in Graphviz's language: one cluster per
// namespace, its interfaces as nodes, veth pairs as edges, host veths linked
// to their bridge.
func (g *Graph) WriteDot(w io.Writer) error {
	var b strings.Builder
	b.WriteString("graph nsdebug {\n  rankdir=LR;\n  node [shape=box, fontsize=10];\n")
	id := func(ns uint64, ifname string) string { return strconv.Quote(fmt.Sprintf("%d/%s", ns, ifname)) }
	hostVeths := g.hostVethNames()
	for i, rw := range g.Rows {
		fmt.Fprintf(&b, "  subgraph cluster_%d {\n    label=%s;\n", i, strconv.Quote(rw.label()+"\nnet:["+strconv.FormatUint(rw.Netns.Inode, 10)+"]"))
		if rw.Host {
			b.WriteString("    style=filled; fillcolor=\"#eeeeee\";\n")
		}
		for _, ifc := range rw.Interfaces {
			if ifc.Name == "lo" || (rw.Host && hostVeths[ifc.Name]) {
				continue
			}
			shape := "box"
			switch {
			case ifc.Type == "bridge":
				shape = "hexagon"
			case rw.Host && ifc.Type != "veth":
				shape = "doubleoctagon" // uplinks and other host devices
			}
			fmt.Fprintf(&b, "    %s [label=%s, shape=%s];\n", id(rw.Netns.Inode, ifc.Name), strconv.Quote(ifc.Name+"\n"+strings.Join(ifc.Addresses, "\n")), shape)
		}
		b.WriteString("  }\n")
	}
	host := g.host()
	for _, rw := range g.Rows {
		for _, hv := range rw.HostVeths {
			if hv.Peer == "" || host == nil {
				continue
			}
			from := id(rw.Netns.Inode, hv.Peer)
			if hv.Bridge != "" {
				fmt.Fprintf(&b, "  %s -- %s [label=%s];\n", from, id(host.Netns.Inode, hv.Bridge), strconv.Quote(hv.Name))
			} else {
				fmt.Fprintf(&b, "  %s -- %s [label=\"veth\"];\n  %s [label=%s, shape=box];\n", from, id(host.Netns.Inode, hv.Name), id(host.Netns.Inode, hv.Name), strconv.Quote(hv.Name))
			}
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteText writes the wiring as a tree: the host's uplinks, its bridges
// with the namespaces hanging on them, veths without a bridge, then
// namespaces not wired to the host.
func (g *Graph) WriteText(w io.Writer) error {
	var b strings.Builder
	host := g.host()
	hostVeths := g.hostVethNames()
	type member struct {
		rw NetnsRow
		hv HostVeth
	}
	byBridge := map[string][]member{}
	wired := map[uint64]bool{}
	for _, rw := range g.Rows {
		for _, hv := range rw.HostVeths {
			byBridge[hv.Bridge] = append(byBridge[hv.Bridge], member{rw, hv})
			wired[rw.Netns.Inode] = true
		}
	}
	if host != nil {
		fmt.Fprintf(&b, "host net:[%d]\n", host.Netns.Inode)
		var bridges, others []Interface
		for _, ifc := range host.Interfaces {
			switch {
			case ifc.Name == "lo" || hostVeths[ifc.Name]:
			case ifc.Type == "bridge":
				bridges = append(bridges, ifc)
			default:
				others = append(others, ifc)
			}
		}
		for _, ifc := range others {
			fmt.Fprintf(&b, "├── %s (%s, %s) %s\n", ifc.Name, ifc.Type, ifc.State, strings.Join(ifc.Addresses, " "))
		}
		sections := len(bridges)
		if len(byBridge[""]) > 0 {
			sections++
		}
		n := 0
		writeMembers := func(ms []member, indent string) {
			sort.Slice(ms, func(i, j int) bool { return ms[i].hv.Name < ms[j].hv.Name })
			for i, m := range ms {
				branch := "├── "
				if i == len(ms)-1 {
					branch = "└── "
				}
				fmt.Fprintf(&b, "%s%s%s ⇄ %s in %s %s\n", indent, branch, m.hv.Name, dashOr(m.hv.Peer, "?"), m.rw.label(), ifAddrs(m.rw, m.hv.Peer))
			}
		}
		for _, br := range bridges {
			n++
			branch, indent := "├── ", "│   "
			if n == sections {
				branch, indent = "└── ", "    "
			}
			fmt.Fprintf(&b, "%sbridge %s (%s) %s\n", branch, br.Name, br.State, strings.Join(br.Addresses, " "))
			writeMembers(byBridge[br.Name], indent)
		}
		if ms := byBridge[""]; len(ms) > 0 {
			fmt.Fprintf(&b, "└── veths without a bridge\n")
			writeMembers(ms, "    ")
		}
	}
	var loose []string
	for _, rw := range g.Rows {
		if !rw.Host && !wired[rw.Netns.Inode] {
			var ifs []string
			for _, ifc := range rw.Interfaces {
				if ifc.Name != "lo" {
					ifs = append(ifs, ifc.Name+"("+ifc.Type+")")
				}
			}
			loose = append(loose, fmt.Sprintf("%s net:[%d] %s", rw.label(), rw.Netns.Inode, dashOr(strings.Join(ifs, " "), "(loopback only)")))
		}
	}
	if len(loose) > 0 {
		fmt.Fprintf(&b, "\nnot wired to the host (%d):\n", len(loose))
		for _, l := range loose {
			b.WriteString("  " + l + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func ifAddrs(rw NetnsRow, name string) string {
	for _, ifc := range rw.Interfaces {
		if ifc.Name == name {
			return strings.Join(ifc.Addresses, " ")
		}
	}
	return ""
}
