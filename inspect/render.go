package inspect

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/nsdebug/nsdebug/internal/output"
)

// WriteText prints the report as aligned tables, one per section, in the
// order of Sections. Colour (section titles in bold, down links in yellow)
// only when color is set.
func (r *Report) WriteText(w io.Writer, color bool) error {
	var b strings.Builder
	title := func(s string) { fmt.Fprintf(&b, "\n%s\n", output.Paint(color, output.Bold, "== "+s)) }
	where := r.Netns.Path + " (net:[" + strconv.FormatUint(r.Netns.Inode, 10) + "])"
	if r.Host {
		where += " host"
	}
	fmt.Fprintf(&b, "%s %s\n", output.Paint(color, output.Bold, "netns:"), where)
	if len(r.Owners) > 0 {
		refs := make([]string, len(r.Owners))
		for i, o := range r.Owners {
			refs[i] = o.Ref()
		}
		fmt.Fprintf(&b, "%s %s\n", output.Paint(color, output.Bold, "owners:"), strings.Join(refs, ", "))
	}
	table := func(header ...string) *output.Table { return output.NewTable(&b, color, header...) }
	// An empty section prints "(none)" and no header.
	tableFor := func(rows int, header ...string) *output.Table {
		if rows == 0 {
			return output.NewTable(io.Discard, false)
		}
		return table(header...)
	}

	if r.Links != nil {
		title("links")
		if len(r.Links) == 0 {
			b.WriteString("(none)\n")
		}
		t := tableFor(len(r.Links), "INDEX", "NAME", "TYPE", "STATE", "MTU", "MAC", "MASTER", "PEER")
		for _, l := range r.Links {
			code := ""
			if l.State == "down" || l.State == "lower-layer-down" {
				code = output.Yellow
			}
			t.RowColored(code, strconv.Itoa(l.Index), l.Name, l.Type, l.State, strconv.Itoa(l.MTU), dash(l.MAC), dash(l.Master), peerText(l))
		}
		t.Flush()
	}
	if r.Addresses != nil {
		title("addresses")
		if len(r.Addresses) == 0 {
			b.WriteString("(none)\n")
		}
		t := tableFor(len(r.Addresses), "IFNAME", "FAMILY", "ADDRESS", "SCOPE")
		for _, a := range r.Addresses {
			t.Row(a.Ifname, a.Family, a.Address, a.Scope)
		}
		t.Flush()
	}
	if r.Routes != nil {
		title("routes")
		if len(r.Routes) == 0 {
			b.WriteString("(none)\n")
		}
		t := tableFor(len(r.Routes), "TABLE", "TYPE", "DST", "GATEWAY", "DEV", "SRC", "PROTO", "SCOPE", "METRIC")
		for _, rt := range r.Routes {
			gw := dash(rt.Gateway)
			if len(rt.Nexthops) > 0 && rt.Gateway == "" {
				gw = "multipath"
			}
			t.Row(rt.Table, rt.Type, rt.Dst, gw, dash(rt.Dev), dash(rt.Src), dash(rt.Protocol), rt.Scope, dashInt(rt.Metric))
			// One line per path under its route, in the gateway and dev
			// columns, as ip route prints "nexthop via ... dev ... weight N".
			for _, nh := range rt.Nexthops {
				t.Row("", "", "  nexthop weight "+strconv.Itoa(nh.Weight), dash(nh.Gateway), dash(nh.Dev))
			}
		}
		t.Flush()
	}
	if r.Rules != nil {
		title("rules")
		if len(r.Rules) == 0 {
			b.WriteString("(none)\n")
		}
		t := tableFor(len(r.Rules), "PRIO", "FAMILY", "FROM", "TO", "IIF", "OIF", "FWMARK", "ACTION", "TABLE")
		for _, ru := range r.Rules {
			from, mark, action := dashOr(ru.Src, "all"), ru.Fwmark, ru.Action
			if ru.Not {
				from = "not " + from // ip rule: the whole selector is inverted
			}
			if ru.Fwmask != "" {
				mark += "/" + ru.Fwmask
			}
			if ru.Action == "goto" {
				action += " " + strconv.Itoa(ru.Goto)
			}
			t.Row(strconv.Itoa(ru.Priority), ru.Family, from, dashOr(ru.Dst, "all"), dash(ru.IIf), dash(ru.OIf), dash(mark), action, dash(ru.Table))
		}
		t.Flush()
	}
	if r.Neighbors != nil {
		title("neighbors")
		if len(r.Neighbors) == 0 {
			b.WriteString("(none)\n")
		}
		t := tableFor(len(r.Neighbors), "IP", "MAC", "DEV", "STATE")
		for _, n := range r.Neighbors {
			t.Row(n.IP, dash(n.MAC), n.Dev, n.State)
		}
		t.Flush()
	}
	if r.Sockets != nil {
		title("sockets")
		if len(r.Sockets) == 0 {
			b.WriteString("(none)\n")
		}
		t := tableFor(len(r.Sockets), "PROTO", "STATE", "RECV-Q", "SEND-Q", "LOCAL", "REMOTE", "PROCESS")
		for _, s := range r.Sockets {
			var ps []string
			for _, p := range s.Processes {
				ps = append(ps, fmt.Sprintf("%s(%d)", p.Command, p.PID))
			}
			t.Row(s.Proto, s.State, strconv.FormatUint(uint64(s.RecvQ), 10), strconv.FormatUint(uint64(s.SendQ), 10), s.Local, s.Remote, dash(strings.Join(ps, ",")))
		}
		t.Flush()
	}
	if r.Sysctls != nil {
		title("sysctls")
		t := table()
		names := make([]string, 0, len(r.Sysctls))
		for n := range r.Sysctls {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			t.Row(n, r.Sysctls[n])
		}
		if r.Conntrack != nil {
			t.Row("conntrack", fmt.Sprintf("%d / %d entries", r.Conntrack.Count, r.Conntrack.Max))
		} else {
			t.Row("conntrack", "not loaded")
		}
		t.Flush()
	}
	if r.Firewall != nil {
		title("firewall")
		fw := r.Firewall
		if len(fw.NFTables) == 0 {
			b.WriteString("nftables: no tables\n")
		}
		t := table()
		row := func(what string, tb NFTable) {
			var chains []string
			rules := 0
			for _, c := range tb.Chains {
				s := fmt.Sprintf("%s:%d", c.Name, c.Rules)
				if c.Hook != "" {
					s = fmt.Sprintf("%s(%s):%d", c.Name, c.Hook, c.Rules)
				}
				chains = append(chains, s)
				rules += c.Rules
			}
			n := fmt.Sprintf("%d rules", rules)
			if rules == 1 {
				n = "1 rule"
			}
			t.Row(what+" "+tb.Family+" "+tb.Name, n, dash(strings.Join(chains, " ")))
		}
		for _, tb := range fw.NFTables {
			row("nft", tb)
		}
		for _, tb := range fw.IPTablesLegacy {
			row("iptables-legacy", tb)
		}
		t.Flush()
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "\n%s %s\n", output.Paint(color, output.Yellow, "warning:"), w)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func peerText(l Link) string {
	switch {
	case l.Peer != nil:
		return endText(l.Peer)
	case l.Lower != nil:
		return "lower " + endText(l.Lower)
	case l.Type == "veth":
		return "(peer not found)"
	}
	return "-"
}

// endText is a veth peer or lower device: name#index, where, bridge.
func endText(p *Peer) string {
	s := p.Name
	if s == "" {
		s = "?"
	}
	s += "#" + strconv.Itoa(p.Index)
	switch {
	case p.Netns.Same:
		s += " here"
	case p.Netns.Host:
		s += " in host"
	case len(p.Netns.Owners) > 0:
		s += " in " + strings.Join(p.Netns.Owners, ",")
	default:
		s += " in net:[" + strconv.FormatUint(p.Netns.Inode, 10) + "]"
	}
	if p.Bridge != "" {
		s += " on " + p.Bridge
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func dashOr(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func dashInt(i int) string {
	if i == 0 {
		return "-"
	}
	return strconv.Itoa(i)
}
