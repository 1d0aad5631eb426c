package cmd

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/inspect"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

// hostPeerOf is iproute2's word on which host interface is the peer of
// ifname inside nsPath: the host link whose index is ifname's link_index.
func hostPeerOf(t *testing.T, nsPath, ifname string) ipLink {
	t.Helper()
	var inside []ipLink
	nsJSON(t, nsPath, &inside, "ip", "-j", "link", "show", "dev", ifname)
	var host []ipLink
	nsJSON(t, "/proc/2/ns/net", &host, "ip", "-j", "link")
	for _, l := range host {
		if len(inside) == 1 && l.Ifindex == inside[0].LinkIndex {
			return l
		}
	}
	t.Fatalf("no host link is the peer of %s in %s", ifname, nsPath)
	return ipLink{}
}

// checkWired: eth0's peer is the host veth iproute2 names, on bridge.
func checkWired(t *testing.T, rep *inspect.Report, nsPath, bridge string) ipLink {
	t.Helper()
	want := hostPeerOf(t, nsPath, "eth0")
	if want.Master != bridge {
		t.Fatalf("fixture: host peer %s is on %q, not %q", want.Ifname, want.Master, bridge)
	}
	p := linkNamed(t, rep, "eth0").Peer
	if p == nil || p.Name != want.Ifname || p.Index != want.Ifindex || !p.Netns.Host || p.Bridge != bridge {
		t.Errorf("eth0 peer = %+v, want host %s#%d on %s", p, want.Ifname, want.Ifindex, bridge)
	}
	return want
}

// checkWhois: whois THING finds exactly one namespace, the right one, for
// the right reason, owned by wantRef alone (besides containerd's mirrors of
// Docker containers and pods, and the pod's own containers).
func checkWhois(t *testing.T, thing string, wantInode uint64, wantRef, wantReason string) {
	t.Helper()
	stdout, stderr, code := run(t, "whois", thing, "-o", "json")
	if code != 0 {
		t.Fatalf("whois %s: exit %d %s", thing, code, stderr)
	}
	var res inspect.WhoisResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Matches) != 1 {
		t.Fatalf("whois %s: %d matches, want exactly net:[%d]: %s", thing, len(res.Matches), wantInode, stdout)
	}
	m := res.Matches[0]
	if m.Netns.Inode != wantInode || !strings.HasPrefix(m.Reason, wantReason) {
		t.Errorf("whois %s: net:[%d] because %q, want net:[%d] because %q...", thing, m.Netns.Inode, m.Reason, wantInode, wantReason)
	}
	found := false
	for _, o := range m.Owners {
		ref := o.Ref()
		switch {
		case ref == wantRef:
			found = true
		case o.Runtime == "containerd" && (o.Namespace == "moby" || o.Namespace == "k8s.io"):
		case strings.HasPrefix(wantRef, "pod:") && strings.HasPrefix(ref, wantRef+"/"):
		default:
			t.Errorf("whois %s: net:[%d] also owned by %s, want %s alone", thing, wantInode, ref, wantRef)
		}
	}
	if !found {
		t.Errorf("whois %s: net:[%d] not owned by %s: %s", thing, wantInode, wantRef, stdout)
	}
}

// socketsScript gives a container's processes sockets of every kind ss
// shows: a TCP listener (httpd), an established TCP connection between two
// nc (the accepted end is an inet6 socket with IPv4-mapped addresses: nc
// listens dual-stack) and a UDP socket (syslogd forwarding to 127.0.0.1).
const socketsScript = `httpd -p 8080
sleep 3600 | nc -l -p 9000 >/dev/null &
until netstat -ltn | grep -q ':9000 '; do sleep 0.05; done
sleep 3600 | nc 127.0.0.1 9000 >/dev/null &
syslogd -n -R 127.0.0.1:5514 &
until [ -S /dev/log ]; do sleep 0.05; done
logger nsdebug-test
exec sleep 3600`

// waitSockets waits until ss sees every socket of socketsScript.
func waitSockets(t *testing.T, nsPath string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		out, _ := exec.Command("nsenter", "--net="+nsPath, "ss", "-tunapH").CombinedOutput()
		s := string(out)
		if strings.Contains(s, ":8080 ") && strings.Count(s, "ESTAB") >= 2 && strings.Contains(s, `"syslogd"`) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, _ := exec.Command("nsenter", "--net="+nsPath, "ss", "-tunapH").CombinedOutput()
	t.Fatalf("the fixture's sockets are not all there in %s:\n%s", nsPath, out)
}

func TestInspectDockerContainers(t *testing.T) {
	testbed.Require(t)
	userNet := testbed.NewDockerNetwork(t, "nsdbg-insp")
	netID := testbed.MustRun(t, "docker", "network", "inspect", "-f", "{{.Id}}", userNet)
	cases := []struct {
		name, network, bridge string
	}{
		{"bridge", "", "docker0"},
		{"user-network", userNet, "br-" + netID[:12]},
		{"none", "none", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "nsdbg-insp", Network: tc.network, Cmd: []string{"sh", "-c", socketsScript}})
			nsPath := "/proc/" + strconv.Itoa(c.PID) + "/ns/net"
			waitSockets(t, nsPath)
			rep := inspectJSON(t, "docker:"+c.Name)
			compareWithIproute2(t, rep, nsPath)
			if len(rep.Owners) == 0 || rep.Owners[0].Ref() != "docker:"+c.Name {
				t.Errorf("owners = %+v", rep.Owners)
			}
			ino := inode(t, nsPath)
			if tc.bridge == "" {
				for _, l := range rep.Links {
					if l.Name != "lo" {
						t.Errorf("none container has link %s", l.Name)
					}
				}
				checkWhois(t, "net:["+strconv.FormatUint(ino, 10)+"]", ino, "docker:"+c.Name, "network namespace net:[")
				return
			}
			hostVeth := checkWired(t, rep, nsPath, tc.bridge)
			// From the host's side, that veth's peer is eth0 in this container.
			hostRep := inspectJSON(t, "/proc/2/ns/net")
			if p := linkNamed(t, hostRep, hostVeth.Ifname).Peer; p == nil || p.Name != "eth0" || p.Netns.Inode != ino || !containsStr(p.Netns.Owners, "docker:"+c.Name) {
				t.Errorf("host %s peer = %+v, want eth0 in docker:%s", hostVeth.Ifname, p, c.Name)
			}
			for _, ip := range c.IPs {
				checkWhois(t, ip, ino, "docker:"+c.Name, "address "+ip+" on eth0")
			}
			viaVeth := fmt.Sprintf("host veth %s (#%d) is the peer of eth0 inside", hostVeth.Ifname, hostVeth.Ifindex)
			checkWhois(t, hostVeth.Ifname, ino, "docker:"+c.Name, viaVeth)
			checkWhois(t, "ifindex:"+strconv.Itoa(hostVeth.Ifindex), ino, "docker:"+c.Name, viaVeth)
			checkWhois(t, "pid:"+strconv.Itoa(c.PID), ino, "docker:"+c.Name, "process "+strconv.Itoa(c.PID)+" (")
		})
	}
}

func TestInspectCRIPod(t *testing.T) {
	testbed.Require(t)
	p := testbed.RunPod(t, testbed.PodOptions{Namespace: "nsdbg-insp", Containers: []string{"app"}})
	rep := inspectJSON(t, p.Ref())
	compareWithIproute2(t, rep, p.NetnsPath)
	checkWired(t, rep, p.NetnsPath, "nsdbg-cni0")
	ino := inode(t, p.NetnsPath)
	if rep.Netns.Inode != ino {
		t.Errorf("inspected net:[%d], pod netns is net:[%d]", rep.Netns.Inode, ino)
	}
	ref := "pod:" + p.Namespace + "/" + p.Name
	checkWhois(t, p.IP, ino, ref, "address "+p.IP+" on eth0")
	veth := hostPeerOf(t, p.NetnsPath, "eth0")
	viaVeth := fmt.Sprintf("host veth %s (#%d) is the peer of eth0 inside", veth.Ifname, veth.Ifindex)
	checkWhois(t, veth.Ifname, ino, ref, viaVeth)
	checkWhois(t, "ifindex:"+strconv.Itoa(veth.Ifindex), ino, ref, viaVeth)
}

// TestGraphDotRenders: graphviz accepts -o dot, and the text tree shows a
// container under its bridge.
func TestGraphDotRenders(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "nsdbg-graph", Cmd: []string{"sleep", "3600"}})
	nsPath := "/proc/" + strconv.Itoa(c.PID) + "/ns/net"
	veth := hostPeerOf(t, nsPath, "eth0").Ifname
	dot := graphDot(t)
	hostIno, cIno := inode(t, "/proc/2/ns/net"), inode(t, nsPath)
	if !dotEdge(dot, dotNode(hostIno, veth), dotNode(cIno, "eth0"), `label="veth"`) {
		t.Errorf("dot lacks the veth edge %s (host) -- eth0 (docker:%s):\n%s", veth, c.Name, dot)
	}
	if !dotEdge(dot, dotNode(hostIno, veth), dotNode(hostIno, "docker0"), "dashed") {
		t.Errorf("dot lacks %s's port edge to docker0:\n%s", veth, dot)
	}
	text, _, code := run(t, "graph")
	if code != 0 || !hasLine(text, "── "+veth+" (veth)", "⇄ eth0 in docker:"+c.Name) {
		t.Errorf("graph text lacks %s ⇄ eth0 in docker:%s:\n%s", veth, c.Name, text)
	}
}

// TestGraphSeedStyle: two namespaces on a bridge that lives in a third
// namespace (no host veth at all); the tree shows the bridge's ports and
// their peers.
func TestGraphSeedStyle(t *testing.T) {
	testbed.Require(t)
	hub := testbed.NewNetNS(t, "nsdbg-ghub")
	var leaves []*testbed.NetNS
	for i, name := range []string{"p1", "p2"} {
		leaf := testbed.NewNetNS(t, "nsdbg-g"+name)
		hub.Exec(t, "ip", "link", "add", "to-"+name, "type", "veth", "peer", "name", "eth0", "netns", leaf.Name)
		leaf.Exec(t, "ip", "addr", "add", "10.234.0."+strconv.Itoa(i+2)+"/24", "dev", "eth0")
		leaves = append(leaves, leaf)
	}
	hub.Exec(t, "ip", "link", "add", "br0", "type", "bridge")
	for _, name := range []string{"p1", "p2"} {
		hub.Exec(t, "ip", "link", "set", "to-"+name, "master", "br0")
	}
	text, stderr, code := run(t, "graph")
	if code != 0 {
		t.Fatalf("graph: %d %s", code, stderr)
	}
	if !hasLine(text, "── br0 (bridge)") {
		t.Errorf("no br0 in:\n%s", text)
	}
	for i, name := range []string{"p1", "p2"} {
		if !hasLine(text, "── to-"+name+" (veth) ⇄ eth0 in ", leaves[i].Name, "10.234.0."+strconv.Itoa(i+2)+"/24") {
			t.Errorf("br0 port to-%s ⇄ eth0 in %s missing:\n%s", name, leaves[i].Name, text)
		}
	}
	dot := graphDot(t)
	hubIno := inode(t, hub.Path)
	for _, name := range []string{"p1", "p2"} {
		if !dotEdge(dot, dotNode(hubIno, "to-"+name), dotNode(hubIno, "br0"), "dashed") {
			t.Errorf("dot lacks br0's port to-%s:\n%s", name, dot)
		}
	}
	for i, name := range []string{"p1", "p2"} {
		if !dotEdge(dot, dotNode(hubIno, "to-"+name), dotNode(inode(t, leaves[i].Path), "eth0"), `label="veth"`) {
			t.Errorf("dot lacks the veth edge to-%s -- eth0 in %s:\n%s", name, leaves[i].Name, dot)
		}
	}
}

// hasLine reports whether one line of text contains every part.
func hasLine(text string, parts ...string) bool {
	for _, line := range strings.Split(text, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return true
		}
	}
	return false
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
