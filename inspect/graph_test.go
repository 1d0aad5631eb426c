package inspect

import (
	"context"
	"strings"
	"testing"

	"github.com/nsdebug/nsdebug/resolver"
)

func graphRow(inode uint64, host bool, mount string) NetnsRow {
	rw := NetnsRow{Netns: NetnsRef{Inode: inode, Dev: 4}, Host: host, Owners: []resolver.Owner{}}
	if mount != "" {
		rw.Mounts = []MountRef{{Path: mount}}
	}
	return rw
}

// A namespace that cannot be opened (it vanished meanwhile) is a warning
// and shown as unreadable: never as a namespace with loopback only.
func TestGraphUnreadableNamespace(t *testing.T) {
	g, err := graphOf(context.Background(), []NetnsRow{graphRow(4242, false, "/nonexistent/nsdebug-graph-test")})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != 1 || g.Nodes[0].Error == "" {
		t.Fatalf("nodes = %+v, want one unreadable node", g.Nodes)
	}
	if len(g.Warnings) != 1 || !strings.Contains(g.Warnings[0], "net:[4242]") || !strings.Contains(g.Warnings[0], "unreadable") {
		t.Errorf("warnings = %q, want one naming net:[4242] as unreadable", g.Warnings)
	}
	var text, dot strings.Builder
	if err := g.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text.String(), "loopback only") || !strings.Contains(text.String(), "1 namespace could not be read: /nonexistent/nsdebug-graph-test net:[4242] (") {
		t.Errorf("text does not show net:[4242] as unreadable:\n%s", text.String())
	}
	if err := g.WriteDot(&dot); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dot.String(), "subgraph cluster_4242 ") || !strings.Contains(dot.String(), `"4242/(unreadable)" [label="unreadable: `) {
		t.Errorf("dot does not show net:[4242] as unreadable:\n%s", dot.String())
	}
}

// Every namespace with interfaces is drawn, whether or not a veth joins it
// to another: one with a veth pair inside itself, one holding a macvlan
// whose lower device is on the host. Only loopback-only ones are left out.
func TestGraphDotDrawsEveryNamespace(t *testing.T) {
	g := &Graph{
		Nodes: []GraphNetns{
			{Row: graphRow(1, true, ""), Links: []GraphLink{{Name: "lo", Kind: "device"}, {Name: "eth0", Kind: "device", Addresses: []string{"192.0.2.2/24"}}}},
			{Row: graphRow(2, false, "/run/netns/pair"), Links: []GraphLink{{Name: "lo", Kind: "device"}, {Name: "va", Kind: "veth"}, {Name: "vb", Kind: "veth"}}},
			{Row: graphRow(3, false, "/run/netns/mv"), Links: []GraphLink{{Name: "lo", Kind: "device"}, {Name: "mv0", Kind: "macvlan", Addresses: []string{"10.250.4.2/24"}}}},
			{Row: graphRow(4, false, "/run/netns/empty"), Links: []GraphLink{{Name: "lo", Kind: "device"}}},
		},
		Pairs:  []VethPair{{A: End{1, "va"}, B: End{1, "vb"}}},
		Lowers: []LowerLink{{Upper: End{2, "mv0"}, Lower: End{0, "eth0"}}},
	}
	var dot strings.Builder
	if err := g.WriteDot(&dot); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"subgraph cluster_1 ", "subgraph cluster_2 ", "subgraph cluster_3 ",
		`"2/va" [label="va"`, `"2/vb" [label="vb"`, `"3/mv0" [label="mv0\n10.250.4.2/24"`,
		`"2/va" -- "2/vb" [style=bold, label="veth"]`,
		`"3/mv0" -- "1/eth0" [style=dotted, label="macvlan on"]`,
	} {
		if !strings.Contains(dot.String(), want) {
			t.Errorf("dot lacks %s:\n%s", want, dot.String())
		}
	}
	if strings.Contains(dot.String(), "cluster_4 ") {
		t.Errorf("a loopback-only namespace is drawn:\n%s", dot.String())
	}
	var text strings.Builder
	if err := g.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"va (veth) ⇄ vb in here",
		"mv0 (macvlan) 10.250.4.2/24 on eth0 in host",
		"eth0 (device) 192.0.2.2/24 ⇠ mv0 (macvlan) in /run/netns/mv",
		"1 namespace with loopback only: /run/netns/empty",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
}
