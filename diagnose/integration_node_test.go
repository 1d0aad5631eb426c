package diagnose

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

// nodeBed is a nested setup made only of namespaces the test owns: a
// "node" netns forwarding for a "container" netns on its bridge, with an
// uplink to a "wan" netns and a port published by a DNAT rule, the way a
// kind node or a pod's node netns does it. Nothing on the host changes:
// ip_forward, bridge-nf-call-iptables (per netns since Linux 5.3) and both
// iptables backends are the node netns's own.
type nodeBed struct {
	node, ctr, wan *testbed.NetNS
	ctrNS          *nsfs.Netns
}

const (
	nodeBrAddr  = "10.247.0.1"
	nodeCtrAddr = "10.247.0.2"
	nodeUpAddr  = "10.247.1.1" // the node's own address: the published one
	nodeWanAddr = "10.247.1.2"
)

func newNodeBed(t *testing.T) *nodeBed {
	t.Helper()
	testbed.RequireRoot(t)
	b := &nodeBed{node: testbed.NewNetNS(t, "dgnode"), ctr: testbed.NewNetNS(t, "dgctr"), wan: testbed.NewNetNS(t, "dgwan")}
	n, c, w := b.node, b.ctr, b.wan
	n.Exec(t, "ip", "link", "add", "br0", "type", "bridge")
	n.Exec(t, "ip", "addr", "add", nodeBrAddr+"/24", "dev", "br0")
	n.Exec(t, "ip", "link", "add", "vc0", "type", "veth", "peer", "name", "eth0", "netns", c.Name)
	n.Exec(t, "ip", "link", "set", "vc0", "master", "br0")
	n.Exec(t, "ip", "link", "set", "vc0", "type", "bridge_slave", "hairpin", "on")
	n.Exec(t, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", w.Name)
	n.Exec(t, "ip", "addr", "add", nodeUpAddr+"/24", "dev", "eth0")
	w.Exec(t, "ip", "addr", "add", nodeWanAddr+"/24", "dev", "eth0")
	c.Exec(t, "ip", "addr", "add", nodeCtrAddr+"/24", "dev", "eth0")
	for _, x := range []struct {
		ns   *testbed.NetNS
		devs []string
	}{{n, []string{"lo", "br0", "vc0", "eth0"}}, {c, []string{"lo", "eth0"}}, {w, []string{"lo", "eth0"}}} {
		for _, d := range x.devs {
			x.ns.Exec(t, "ip", "link", "set", d, "up")
		}
	}
	c.Exec(t, "ip", "route", "add", "default", "via", nodeBrAddr)
	n.Exec(t, "ip", "route", "add", "default", "via", nodeWanAddr)
	n.Exec(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	// br_netfilter is built into this kernel (no modules: /proc/modules
	// is absent) and its sysctls are per netns; a new netns starts at 1.
	if v := sysctlIn(t, n, "net.bridge.bridge-nf-call-iptables"); v != "1" {
		t.Fatalf("node netns bridge-nf-call-iptables=%q, want the kernel's per-netns default 1", v)
	}
	// The published port: node:8080 -> container:80, with the hairpin
	// masquerade Docker and CNI portmap add, and a FORWARD accept rule in
	// the nft backend only.
	n.Exec(t, "iptables-nft", "-t", "nat", "-A", "PREROUTING", "-d", nodeUpAddr, "-p", "tcp", "--dport", "8080", "-j", "DNAT", "--to-destination", nodeCtrAddr+":80")
	n.Exec(t, "iptables-nft", "-t", "nat", "-A", "POSTROUTING", "-s", nodeCtrAddr, "-d", nodeCtrAddr, "-p", "tcp", "--dport", "80", "-j", "MASQUERADE")
	n.Exec(t, "iptables-nft", "-A", "FORWARD", "-i", "br0", "-j", "ACCEPT")
	var err error
	if b.ctrNS, err = nsfs.Open(c.Path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.ctrNS.Close() })
	fd := socketIn(t, b.ctrNS, unix.SOCK_STREAM)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: 80}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 16); err != nil {
		t.Fatal(err)
	}
	acceptAll(t, fd)
	return b
}

// hairpinConnect: the container connects to its own published address
// (node:8080), which comes back to it through the node's DNAT.
func (b *nodeBed) hairpinConnect(t *testing.T) error {
	t.Helper()
	fd := socketIn(t, b.ctrNS, unix.SOCK_STREAM)
	tv := unix.Timeval{Sec: 1}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	return unix.Connect(fd, &unix.SockaddrInet4{Port: 8080, Addr: [4]byte{10, 247, 1, 1}})
}

// nodeDiag is diag with the node's checks keyed node:ID, after checking
// that exactly the fixture's node forwards for the target.
func (b *nodeBed) diag(t *testing.T) map[string]Result {
	t.Helper()
	target := "netns:" + b.ctr.Name
	out, rep := diag(t, target, diagOpts{interval: 50 * time.Millisecond})
	if len(rep.Nodes) != 1 || !strings.HasSuffix(rep.Nodes[0].Target, "/netns/"+b.node.Name) || strings.Join(rep.Nodes[0].Forwards, ",") != target {
		t.Fatalf("nodes %+v, want one: %s forwarding for %s", rep.Nodes, b.node.Path, target)
	}
	// The host's own checks ran too, once, for the host.
	if rep.Host.Target != "host" || len(rep.Host.Checks) == 0 {
		t.Fatalf("host report %+v", rep.Host)
	}
	return out
}

func TestNodeHealthy(t *testing.T) {
	b := newNodeBed(t)
	if err := b.hairpinConnect(t); err != nil {
		t.Fatalf("hairpin connect with hairpin on: %v", err)
	}
	r := b.diag(t)
	for _, id := range []string{"node:host.ip_forward", "node:host.bridge_nf", "node:host.iptables_backends", "hairpin", "veth.host", "forward.policy"} {
		if r[id].Status != Pass {
			t.Errorf("%s: %s (%s %+v), want PASS", id, r[id].Status, r[id].Explanation, r[id].Evidence)
		}
	}
	hasEvidence(t, r["hairpin"], "vc0 hairpin_mode", "1")
	hasEvidence(t, r["hairpin"], "DNAT rules to this target", "--to-destination "+nodeCtrAddr+":80")
	hasEvidence(t, r["veth.host"], "vc0", "br0")
}

func TestNodeIPForward(t *testing.T) {
	b := newNodeBed(t)
	before := b.diag(t)
	b.node.Exec(t, "sysctl", "-qw", "net.ipv4.ip_forward=0")
	after := b.diag(t)
	r := expectOnly(t, before, after, "node:host.ip_forward", Fail, nil)
	hasEvidence(t, r, "net.ipv4.ip_forward", "0")
	b.applyFix(t, r, "node:host.ip_forward")
}

// applyFix runs the check's printed fix commands as they are (they name
// the node namespace through nsenter) and expects the check to PASS again.
func (b *nodeBed) applyFix(t *testing.T, r Result, id string) {
	t.Helper()
	if r.Fix == nil || len(r.Fix.Commands) == 0 {
		t.Fatalf("%s: no fix command", id)
	}
	for _, c := range r.Fix.Commands {
		if !strings.HasPrefix(c, "nsenter --net=") || !strings.Contains(c, "/netns/"+b.node.Name+" ") {
			t.Fatalf("%s: fix %q does not run in the node netns", id, c)
		}
		mustRun(t, "sh", "-c", c)
	}
	if got := b.diag(t)[id]; got.Status != Pass {
		t.Errorf("%s after its fix %q: %s (%+v)", id, r.Fix.Commands, got.Status, got.Evidence)
	}
}

func TestNodeBridgeNF(t *testing.T) {
	b := newNodeBed(t)
	before := b.diag(t)
	b.node.Exec(t, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0")
	after := b.diag(t)
	r := expectOnly(t, before, after, "node:host.bridge_nf", Warn, nil)
	hasEvidence(t, r, "net.bridge.bridge-nf-call-iptables", "0")
	b.applyFix(t, r, "node:host.bridge_nf")
}

func TestNodeIPTablesBackends(t *testing.T) {
	b := newNodeBed(t)
	before := b.diag(t)
	// Legacy rules beside the nft ones, with another FORWARD policy: a
	// second firewall tool on the node (the accept rules keep this
	// container's own forwarding allowed, so only the backends disagree).
	b.node.Exec(t, "iptables-legacy", "-A", "FORWARD", "-i", "br0", "-j", "ACCEPT")
	b.node.Exec(t, "iptables-legacy", "-A", "FORWARD", "-o", "br0", "-j", "ACCEPT")
	b.node.Exec(t, "iptables-legacy", "-P", "FORWARD", "DROP")
	after := b.diag(t)
	r := expectOnly(t, before, after, "node:host.iptables_backends", Fail, nil)
	hasEvidence(t, r, "legacy rules, FORWARD policy", "2, DROP")
	hasEvidence(t, r, "nft rules, FORWARD policy", "3, ACCEPT")
	// iptables-legacy-save itself, run in the node, as ground truth.
	if out := b.node.Exec(t, "iptables-legacy-save", "-t", "filter"); !strings.Contains(out, ":FORWARD DROP") {
		t.Errorf("iptables-legacy-save in the node: %s", out)
	}
}

func TestNodeHairpin(t *testing.T) {
	b := newNodeBed(t)
	if err := b.hairpinConnect(t); err != nil {
		t.Fatalf("hairpin connect with hairpin on: %v", err)
	}
	before := b.diag(t)
	b.node.Exec(t, "ip", "link", "set", "vc0", "type", "bridge_slave", "hairpin", "off")
	// The real consequence: the container no longer reaches itself.
	if err := b.hairpinConnect(t); err == nil {
		t.Fatal("hairpin connect succeeded with hairpin off: the fixture does not break what the check is about")
	}
	after := b.diag(t)
	r := expectOnly(t, before, after, "hairpin", Fail, nil)
	hasEvidence(t, r, "vc0 hairpin_mode", "0")
	// iproute2 as ground truth for what the check read by netlink.
	if out := b.node.Exec(t, "ip", "-d", "link", "show", "vc0"); !strings.Contains(out, "hairpin off") {
		t.Errorf("ip -d link show vc0: %s", out)
	}
	b.applyFix(t, r, "hairpin")
	if err := b.hairpinConnect(t); err != nil {
		t.Errorf("hairpin connect after the fix: %v", err)
	}
}
