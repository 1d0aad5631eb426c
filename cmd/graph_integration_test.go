package cmd

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// dotNode is the Graphviz node ID graph -o dot gives an interface.
func dotNode(inode uint64, ifname string) string {
	return fmt.Sprintf("%q", fmt.Sprintf("%d/%s", inode, ifname))
}

// dotEdge reports whether dot joins a and b (either way round) by an edge
// whose attributes contain attr.
func dotEdge(dot, a, b, attr string) bool {
	for _, line := range strings.Split(dot, "\n") {
		line = strings.TrimSpace(line)
		if (strings.HasPrefix(line, a+" -- "+b+" ") || strings.HasPrefix(line, b+" -- "+a+" ")) && strings.Contains(line, attr) {
			return true
		}
	}
	return false
}

// graphDot runs graph -o dot, checks that Graphviz renders it, and returns it.
func graphDot(t *testing.T) string {
	t.Helper()
	dot, stderr, code := run(t, "graph", "-o", "dot")
	if code != 0 {
		t.Fatalf("graph -o dot: exit %d: %s", code, stderr)
	}
	if out, err := runStdin(dot, "dot", "-Tsvg"); err != nil || !strings.Contains(out, "<svg") {
		t.Fatalf("dot -Tsvg rejects the graph: %v %.300s", err, out)
	}
	return dot
}

// TestGraphDrawsEveryNamespace: namespaces with interfaces but no veth to
// another namespace are drawn too: one with a veth pair inside itself, one
// holding a macvlan whose lower device lives in a third namespace (the
// edge to it is drawn), and the third itself.
func TestGraphDrawsEveryNamespace(t *testing.T) {
	testbed.Require(t)
	pair := testbed.NewNetNS(t, "nsdbg-gpair")
	pair.Exec(t, "ip", "link", "add", "va", "type", "veth", "peer", "name", "vb")
	pair.Exec(t, "ip", "addr", "add", "10.250.5.1/24", "dev", "va")
	lowerNS := testbed.NewNetNS(t, "nsdbg-glow")
	lowerNS.Exec(t, "ip", "link", "add", "lowr", "type", "veth", "peer", "name", "lowr2")
	mv := testbed.NewNetNS(t, "nsdbg-gmv")
	lowerNS.Exec(t, "ip", "link", "add", "mv0", "link", "lowr", "type", "macvlan", "mode", "bridge")
	lowerNS.Exec(t, "ip", "link", "set", "mv0", "netns", mv.Name)
	mv.Exec(t, "ip", "addr", "add", "10.250.4.2/24", "dev", "mv0")
	pairIno, mvIno, lowIno := inode(t, pair.Path), inode(t, mv.Path), inode(t, lowerNS.Path)

	dot := graphDot(t)
	for _, ino := range []uint64{pairIno, mvIno, lowIno} {
		if !strings.Contains(dot, fmt.Sprintf("subgraph cluster_%d ", ino)) {
			t.Errorf("no cluster for net:[%d] in:\n%s", ino, dot)
		}
	}
	for _, n := range []string{dotNode(pairIno, "va") + ` [label="va\n10.250.5.1/24"`, dotNode(pairIno, "vb") + " [", dotNode(mvIno, "mv0") + ` [label="mv0\n10.250.4.2/24"`, dotNode(lowIno, "lowr") + " ["} {
		if !strings.Contains(dot, n) {
			t.Errorf("no node %s in:\n%s", n, dot)
		}
	}
	if !dotEdge(dot, dotNode(pairIno, "va"), dotNode(pairIno, "vb"), `label="veth"`) {
		t.Errorf("no veth edge va -- vb in net:[%d]:\n%s", pairIno, dot)
	}
	if !dotEdge(dot, dotNode(mvIno, "mv0"), dotNode(lowIno, "lowr"), `label="macvlan on"`) {
		t.Errorf("no edge from mv0 to its lower device lowr in net:[%d]:\n%s", lowIno, dot)
	}

	text, stderr, code := run(t, "graph")
	if code != 0 {
		t.Fatalf("graph: exit %d: %s", code, stderr)
	}
	if !hasLine(text, "── mv0 (macvlan) 10.250.4.2/24 on lowr in ", lowerNS.Name) {
		t.Errorf("graph text lacks mv0 on lowr in %s:\n%s", lowerNS.Name, text)
	}
	if !hasLine(text, "── va (veth) 10.250.5.1/24 ⇄ vb in here") {
		t.Errorf("graph text lacks va ⇄ vb in here:\n%s", text)
	}
}
