package diagnose

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"math/rand"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nsdebug/nsdebug/internal/testbed"
	"github.com/nsdebug/nsdebug/resolver"
)

// hostState is what the suite may touch on the shared host only briefly:
// it must be the same after the suite as before.
func hostState() string {
	var b strings.Builder
	for _, k := range []string{"net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "net.netfilter.nf_conntrack_max", "net.ipv4.conf.all.rp_filter"} {
		v, _ := readSysctl(k)
		fmt.Fprintf(&b, "%s=%s\n", k, v)
	}
	// Chain policies of both backends, and every rule or route naming a
	// fixture of this suite. A table with no such rule and every policy
	// ACCEPT counts as absent: the first use of a table makes an empty one
	// (on a new machine, the first `iptables-legacy -t nat` or a daemon
	// listing nft's mangle table), which filters nothing.
	counters := regexp.MustCompile(`\[\d+:\d+\]`)
	for _, tool := range []string{"iptables-nft-save", "iptables-legacy-save"} {
		out, _ := exec.Command(tool).Output()
		var table []string
		meaningful := false
		flush := func() {
			if meaningful {
				for _, l := range table {
					fmt.Fprintf(&b, "%s %s\n", tool, l)
				}
			}
			table, meaningful = nil, false
		}
		for _, l := range strings.Split(string(out), "\n") {
			l = counters.ReplaceAllString(l, "")
			switch {
			case strings.HasPrefix(l, "*"):
				flush()
				table = append(table, l)
			case strings.HasPrefix(l, ":") && !strings.Contains(l, " - "):
				table = append(table, l)
				meaningful = meaningful || !strings.Contains(l, " ACCEPT")
			case strings.Contains(l, "dgbr"):
				table = append(table, l)
				meaningful = true
			}
		}
		flush()
	}
	out, _ := exec.Command("ip", "route").Output()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "dgd") || strings.Contains(l, "dgbr") {
			b.WriteString("route " + l + "\n")
		}
	}
	return b.String()
}

func TestMain(m *testing.M) {
	before := hostState()
	code := m.Run()
	if after := hostState(); after != before {
		fmt.Fprintf(os.Stderr, "diagnose tests changed the host:\nbefore:\n%s\nafter:\n%s", before, after)
		code = 1
	}
	os.Exit(code)
}

type diagOpts struct {
	interval time.Duration
	probe    bool
}

// diag runs diagnose on one target in-process, as the command does.
func diag(t *testing.T, target string, o diagOpts) (map[string]Result, *Report) {
	t.Helper()
	if o.interval == 0 {
		o.interval = 100 * time.Millisecond
	}
	r := resolver.Open(resolver.Config{})
	defer r.Close()
	tg, err := resolver.ParseTarget(target)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := r.Resolve(ctx, tg)
	if err != nil {
		t.Fatalf("resolve %s: %v", target, err)
	}
	defer res.Close()
	rep, _ := Run(ctx, r, []*resolver.Result{res}, Options{Interval: o.interval, Selection: Selection{Probe: o.probe}})
	out := map[string]Result{}
	for _, c := range append(append([]Result{}, rep.Host.Checks...), rep.Targets[0].Checks...) {
		out[c.ID] = c
	}
	// A node forwarding for the target: its host checks as node:ID.
	for _, n := range rep.Nodes {
		for _, c := range n.Checks {
			out["node:"+c.ID] = c
		}
	}
	return out, rep
}

// expectOnly asserts that, from before to after, check id became want and
// every other check kept its verdict except the consequences in also.
func expectOnly(t *testing.T, before, after map[string]Result, id string, want Status, also map[string]Status) Result {
	t.Helper()
	got := after[id]
	if got.Status != want {
		t.Errorf("%s: %s, want %s (%s; evidence %+v)", id, got.Status, want, got.Explanation, got.Evidence)
	}
	if b := before[id]; b.Status == want {
		t.Errorf("%s was already %s before the fixture: the fixture proves nothing", id, want)
	}
	var ids []string
	for k := range after {
		ids = append(ids, k)
	}
	sort.Strings(ids)
	for _, k := range ids {
		if k == id {
			continue
		}
		w := before[k].Status
		if a, ok := also[k]; ok {
			w = a
		}
		if after[k].Status != w {
			t.Errorf("fixture for %s changed %s: %s -> %s (%s %+v)", id, k, before[k].Status, after[k].Status, after[k].Explanation, after[k].Evidence)
		}
	}
	return got
}

func hasEvidence(t *testing.T, r Result, key, value string) {
	t.Helper()
	for _, e := range r.Evidence {
		if strings.Contains(e.Key, key) && strings.Contains(e.Value, value) {
			return
		}
	}
	t.Errorf("%s: no evidence with key ~%q and value ~%q in %+v", r.ID, key, value, r.Evidence)
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	return testbed.MustRun(t, name, args...)
}

// network makes a Docker network whose MTU matches the host's egress
// device, so that a healthy container passes the mtu check on any host.
func network(t *testing.T) (name, subnet string) {
	t.Helper()
	testbed.Require(t)
	mtu := egressMTU(t)
	name = testbed.UniqueName("dgnet")
	mustRun(t, "docker", "network", "create", "--label", "nsdebug-test=1", "-o", "com.docker.network.driver.mtu="+mtu, name)
	t.Cleanup(func() { testbed.Run("docker", "network", "rm", name) })
	subnet = mustRun(t, "docker", "network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", name)
	return name, strings.TrimSpace(subnet)
}

func egressMTU(t *testing.T) string {
	t.Helper()
	out := mustRun(t, "ip", "route", "show", "default")
	f := strings.Fields(out)
	for i := range f {
		if f[i] == "dev" && i+1 < len(f) {
			b, err := os.ReadFile("/sys/class/net/" + f[i+1] + "/mtu")
			if err == nil {
				return strings.TrimSpace(string(b))
			}
		}
	}
	t.Fatalf("no default route on the host: %s", out)
	return ""
}

// container runs a healthy web container (httpd on every address, port 80
// published) on net, with extra docker run arguments.
func container(t *testing.T, net string, cmd []string, args ...string) *testbed.Container {
	t.Helper()
	if cmd == nil {
		cmd = []string{"httpd", "-f", "-p", "80"}
	}
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "dg", Network: net, Args: append([]string{"-p", "80"}, args...), Cmd: cmd})
	waitListen(t, c.PID, "80")
	return c
}

// waitListen waits until something listens on port in pid's netns (ss as
// ground truth).
func waitListen(t *testing.T, pid int, port string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out, _ := testbed.Run("nsenter", "-t", fmt.Sprint(pid), "-n", "ss", "-Hltn", "sport = :"+port)
		if strings.TrimSpace(out) != "" {
			return
		}
	}
	t.Fatalf("nothing listens on %s in pid %d", port, pid)
}

func nsenter(t *testing.T, pid int, args ...string) string {
	t.Helper()
	return mustRun(t, "nsenter", append([]string{"-t", fmt.Sprint(pid), "-n"}, args...)...)
}

// hostEnd is the host end of the container's eth0, from iproute2.
func hostEnd(t *testing.T, pid int) string {
	t.Helper()
	idx := strings.TrimSpace(nsenter(t, pid, "cat", "/sys/class/net/eth0/iflink"))
	// /sys there is still the host's (nsenter -n): read iflink through ip.
	out := nsenter(t, pid, "ip", "-o", "link", "show", "eth0")
	if m := regexp.MustCompile(`eth0@if(\d+)`).FindStringSubmatch(out); m != nil {
		idx = m[1]
	}
	for _, l := range strings.Split(mustRun(t, "ip", "-o", "link"), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && strings.TrimSuffix(f[0], ":") == idx {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			return name
		}
	}
	t.Fatalf("no host link with index %s", idx)
	return ""
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHealthyContainer(t *testing.T) {
	net, _ := network(t)
	c := container(t, net, nil)
	got, _ := diag(t, "docker:"+c.Name, diagOpts{})
	for id, r := range got {
		if r.Status != Pass && r.Status != Skip {
			t.Errorf("healthy container: %s is %s: %s %+v", id, r.Status, r.Explanation, r.Evidence)
		}
		if r.Status == Skip && r.Explanation == "" {
			t.Errorf("%s skipped without a reason", id)
		}
	}
	// Ground truth for a few passes.
	hasEvidence(t, got["ports.listen"], "-> 80", ":80 (httpd pid")
	hasEvidence(t, got["dns.resolvconf"], "nameserver", "127.0.0.11")
	hasEvidence(t, got["veth.host"], hostEnd(t, c.PID)+" master", "br-")
}

func TestPortsListen(t *testing.T) {
	net, _ := network(t)
	t.Run("nobody listening", func(t *testing.T) {
		c := container(t, net, []string{"sh", "-c", "httpd -p 80; exec sleep 2147483647"})
		before, _ := diag(t, "docker:"+c.Name, diagOpts{})
		mustRun(t, "docker", "exec", c.Name, "killall", "httpd")
		// SIGTERM is asynchronous: wait for ss to see no listener.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			out, _ := testbed.Run("nsenter", "-t", fmt.Sprint(c.PID), "-n", "ss", "-Hltn", "sport = :80")
			if strings.TrimSpace(out) == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("httpd still listens after killall")
			}
		}
		after, _ := diag(t, "docker:"+c.Name, diagOpts{})
		r := expectOnly(t, before, after, "ports.listen", Fail, nil)
		hasEvidence(t, r, "-> 80", "no listener")
	})
	t.Run("loopback only", func(t *testing.T) {
		healthy := container(t, net, nil)
		c := container(t, net, []string{"httpd", "-f", "-p", "127.0.0.1:80"})
		before, _ := diag(t, "docker:"+healthy.Name, diagOpts{})
		after, _ := diag(t, "docker:"+c.Name, diagOpts{})
		r := expectOnly(t, before, after, "ports.listen", Fail, nil)
		hasEvidence(t, r, "-> 80", "only 127.0.0.1:80 (httpd pid")
	})
}

func TestPortsDNAT(t *testing.T) {
	net, _ := network(t)
	t.Run("DNAT rule deleted", func(t *testing.T) {
		c := container(t, net, nil)
		before, _ := diag(t, "docker:"+c.Name, diagOpts{})
		ip := c.IPs[0]
		var spec, tool string
		for _, tl := range []string{"iptables-nft", "iptables-legacy"} {
			// Not `-save -t nat`: that makes the table where there is none.
			out, _ := testbed.Run(tl + "-save")
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "-A DOCKER ") && strings.Contains(l, "--to-destination "+ip+":80") {
					spec, tool = strings.TrimPrefix(l, "-A DOCKER "), tl
				}
			}
		}
		if spec == "" {
			t.Fatalf("no DNAT rule for %s:80 in either backend", ip)
		}
		mustRun(t, "sh", "-c", tool+" -t nat -D DOCKER "+spec)
		t.Cleanup(func() { testbed.Run("sh", "-c", tool+" -t nat -A DOCKER "+spec) })
		after, _ := diag(t, "docker:"+c.Name, diagOpts{})
		r := expectOnly(t, before, after, "ports.dnat", Fail, nil)
		hasEvidence(t, r, "DNAT", "none")
	})
	t.Run("docker-proxy killed", func(t *testing.T) {
		c := container(t, net, nil)
		before, _ := diag(t, "docker:"+c.Name, diagOpts{})
		if !strings.Contains(fmt.Sprint(before["ports.dnat"].Evidence), "docker-proxy pid") {
			t.Skip("userland-proxy is off on this host: no docker-proxy to kill")
		}
		_, _, proxies := dockerProxyFacts("/proc")
		killed := false
		for _, p := range proxies {
			if p.ContainerIP == c.IPs[0] {
				mustRun(t, "kill", fmt.Sprint(p.PID))
				killed = true
			}
		}
		if !killed {
			t.Fatal("no docker-proxy for the container")
		}
		time.Sleep(100 * time.Millisecond)
		after, _ := diag(t, "docker:"+c.Name, diagOpts{})
		r := expectOnly(t, before, after, "ports.dnat", Fail, nil)
		hasEvidence(t, r, "docker-proxy", "none")
	})
}

func TestLinkAndRoutes(t *testing.T) {
	net, subnet := network(t)
	t.Run("eth0 down", func(t *testing.T) {
		c := container(t, net, nil)
		before, _ := diag(t, "docker:"+c.Name, diagOpts{})
		nsenter(t, c.PID, "ip", "link", "set", "eth0", "down")
		after, _ := diag(t, "docker:"+c.Name, diagOpts{})
		// The kernel removes the routes of a downed interface.
		r := expectOnly(t, before, after, "link.up", Fail, map[string]Status{"route.default": Fail, "route.gateway": Skip})
		hasEvidence(t, r, "eth0 state", "down")
	})
	t.Run("no default route", func(t *testing.T) {
		c := container(t, net, nil)
		before, _ := diag(t, "docker:"+c.Name, diagOpts{})
		nsenter(t, c.PID, "ip", "route", "del", "default")
		after, _ := diag(t, "docker:"+c.Name, diagOpts{})
		r := expectOnly(t, before, after, "route.default", Fail, map[string]Status{"route.gateway": Skip})
		hasEvidence(t, r, "main default", "none")
	})
	t.Run("gateway does not answer", func(t *testing.T) {
		c := container(t, net, nil)
		before, _ := diag(t, "docker:"+c.Name, diagOpts{})
		// An address of the container's own network that nobody holds.
		base := strings.Split(strings.Split(subnet, "/")[0], ".")
		ghost := base[0] + "." + base[1] + "." + base[2] + ".254"
		nsenter(t, c.PID, "ip", "route", "replace", "default", "via", ghost)
		// busybox ping from inside: an ARP request on the test's own bridge.
		testbed.Run("docker", "exec", c.Name, "ping", "-c", "1", "-W", "1", ghost)
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			out, _ := testbed.Run("nsenter", "-t", fmt.Sprint(c.PID), "-n", "ip", "neigh", "show", ghost)
			if strings.Contains(out, "FAILED") || strings.Contains(out, "INCOMPLETE") {
				break
			}
		}
		after, _ := diag(t, "docker:"+c.Name, diagOpts{})
		r := expectOnly(t, before, after, "route.gateway", Fail, nil)
		hasEvidence(t, r, ghost, "")
	})
}

func TestVethHost(t *testing.T) {
	net, _ := network(t)
	t.Run("down", func(t *testing.T) {
		c := container(t, net, nil)
		before, _ := diag(t, "docker:"+c.Name, diagOpts{})
		v := hostEnd(t, c.PID)
		mustRun(t, "ip", "link", "set", v, "down")
		t.Cleanup(func() { testbed.Run("ip", "link", "set", v, "up") })
		after, _ := diag(t, "docker:"+c.Name, diagOpts{})
		r := expectOnly(t, before, after, "veth.host", Fail, nil)
		hasEvidence(t, r, v+" (peer of eth0) state", "down")
	})
	t.Run("off the bridge", func(t *testing.T) {
		c := container(t, net, nil)
		before, _ := diag(t, "docker:"+c.Name, diagOpts{})
		v := hostEnd(t, c.PID)
		br := strings.Fields(mustRun(t, "sh", "-c", "ip -o link show "+v+" | grep -o 'master [^ ]*'"))[1]
		mustRun(t, "ip", "link", "set", v, "nomaster")
		t.Cleanup(func() { testbed.Run("ip", "link", "set", v, "master", br) })
		after, _ := diag(t, "docker:"+c.Name, diagOpts{})
		// On no bridge, the bridge checks have nothing to look at.
		r := expectOnly(t, before, after, "veth.host", Fail, map[string]Status{"forward.policy": Skip, "addr.conflict": Skip})
		hasEvidence(t, r, v+" master", "none")
	})
}

func TestMTU(t *testing.T) {
	net, _ := network(t)
	c := container(t, net, nil)
	before, _ := diag(t, "docker:"+c.Name, diagOpts{})
	nsenter(t, c.PID, "ip", "link", "set", "eth0", "mtu", "1300")
	after, _ := diag(t, "docker:"+c.Name, diagOpts{})
	r := expectOnly(t, before, after, "mtu", Fail, nil)
	hasEvidence(t, r, "eth0 mtu vs "+hostEnd(t, c.PID), "1300 / "+egressMTU(t))
}

func TestDNS(t *testing.T) {
	net, _ := network(t)
	healthy := container(t, net, nil)
	before, _ := diag(t, "docker:"+healthy.Name, diagOpts{})
	t.Run("no nameserver", func(t *testing.T) {
		c := container(t, net, nil, "-v", writeFile(t, "search example.internal\n")+":/etc/resolv.conf")
		after, _ := diag(t, "docker:"+c.Name, diagOpts{})
		r := expectOnly(t, before, after, "dns.resolvconf", Fail, map[string]Status{"dns.loopback": Skip, "dns.docker-embedded": Skip, "dns.search": Skip})
		hasEvidence(t, r, "nameserver", "none")
	})
	t.Run("host stub 127.0.0.53", func(t *testing.T) {
		c := container(t, net, nil, "-v", writeFile(t, "nameserver 127.0.0.53\n")+":/etc/resolv.conf")
		after, _ := diag(t, "docker:"+c.Name, diagOpts{})
		r := expectOnly(t, before, after, "dns.loopback", Fail, map[string]Status{"dns.docker-embedded": Skip})
		hasEvidence(t, r, "127.0.0.53:53", "nothing listening")
	})
	t.Run("nat table flushed", func(t *testing.T) {
		c := container(t, net, nil)
		b, _ := diag(t, "docker:"+c.Name, diagOpts{})
		// Flush where Docker put the rules; never load a backend's table
		// that is not there (legacy tables are per module, host-wide).
		mustRun(t, "nsenter", "-t", fmt.Sprint(c.PID), "-n", "iptables-nft", "-t", "nat", "-F")
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/ip_tables_names", c.PID)); strings.Contains(string(b), "nat") {
			mustRun(t, "nsenter", "-t", fmt.Sprint(c.PID), "-n", "iptables-legacy", "-t", "nat", "-F")
		}
		after, _ := diag(t, "docker:"+c.Name, diagOpts{})
		r := expectOnly(t, b, after, "dns.docker-embedded", Fail, nil)
		hasEvidence(t, r, "DOCKER_OUTPUT", "0 rules")
	})
	t.Run("ndots 5 and three search domains", func(t *testing.T) {
		c := container(t, net, nil, "--dns-search", "a.example", "--dns-search", "b.example", "--dns-search", "c.example", "--dns-option", "ndots:5")
		after, _ := diag(t, "docker:"+c.Name, diagOpts{})
		r := expectOnly(t, before, after, "dns.search", Warn, nil)
		hasEvidence(t, r, "ndots", "5")
		hasEvidence(t, r, "search", "a.example b.example c.example")
	})
	t.Run("localhost ::1 first without ::1", func(t *testing.T) {
		c := container(t, net, nil, "-v", writeFile(t, "::1 localhost\n127.0.0.1 localhost\n")+":/etc/hosts")
		// Docker 20.10 disables IPv6 in the container, Docker 29 does not:
		// take ::1 away in the container's own netns either way.
		nsenter(t, c.PID, "sysctl", "-qw", "net.ipv6.conf.lo.disable_ipv6=1")
		after, _ := diag(t, "docker:"+c.Name, diagOpts{})
		r := expectOnly(t, before, after, "ipv6.localhost", Warn, nil)
		hasEvidence(t, r, "::1 on lo", "false")
	})
}

func TestPod(t *testing.T) {
	testbed.Require(t)
	t.Run("healthy", func(t *testing.T) {
		p := testbed.RunPod(t, testbed.PodOptions{
			Containers: []string{"web"}, Command: []string{"/bin/httpd", "-f", "-p", "8080"},
			DNS:   &cri.DNSConfig{Servers: []string{"10.99.0.10"}, Searches: []string{"default.svc.cluster.local"}, Options: []string{"ndots:1"}},
			Ports: []*cri.PortMapping{{Protocol: cri.Protocol_TCP, ContainerPort: 8080, HostPort: int32(20000 + rand.Intn(20000))}},
		})
		waitListen(t, p.SandboxPID, "8080")
		got, _ := diag(t, p.Ref(), diagOpts{})
		// The test bed's own state, which diagnose must report: Docker sets
		// FORWARD DROP and the CNI bridge plugin adds no accept rule (the
		// host drops this pod's forwarded traffic), and the CNI bridge keeps
		// MTU 1500 above this VM's egress MTU with no MSS clamp. With the
		// rules the fixes name, the pod is healthy.
		if fp := got["forward.policy"]; fp.Status == Fail {
			hasEvidence(t, fp, "FORWARD policy; ACCEPT rules for nsdbg-cni0", "DROP; 0")
			applyFix(t, fp)
		}
		if m := got["mtu"]; m.Status == Warn {
			hasEvidence(t, m, "mtu vs egress", "(MSS clamp: false)")
			applyFix(t, m)
		}
		got, _ = diag(t, p.Ref(), diagOpts{})
		for id, r := range got {
			if r.Status != Pass && r.Status != Skip {
				t.Errorf("healthy pod: %s is %s: %s %+v", id, r.Status, r.Explanation, r.Evidence)
			}
		}
		hasEvidence(t, got["ports.listen"], "-> 8080", ":8080 (httpd pid")
		hasEvidence(t, got["ports.dnat"], "DNAT", "nat CNI-DN-")
		hasEvidence(t, got["veth.host"], "master", "nsdbg-cni0")
		hasEvidence(t, got["dns.resolvconf"], "nameserver", "10.99.0.10")
	})
	t.Run("kubelet's ClusterFirst DNS", func(t *testing.T) {
		p := testbed.RunPod(t, testbed.PodOptions{Containers: []string{"app"}})
		got, _ := diag(t, p.Ref(), diagOpts{})
		r := got["dns.search"]
		if r.Status != Warn {
			t.Errorf("ndots:5 with 3 search domains: %s", r.Status)
		}
		hasEvidence(t, r, "options ndots", "5")
		hasEvidence(t, r, "search", "svc.cluster.local cluster.local")
	})
}

// applyFix runs a check's iptables fix commands, and deletes the rules in
// Cleanup.
func applyFix(t *testing.T, r Result) {
	t.Helper()
	for _, c := range r.Fix.Commands {
		if !strings.HasPrefix(c, "iptables ") {
			continue
		}
		del := strings.Replace(strings.Replace(c, " -I ", " -D ", 1), " -A ", " -D ", 1)
		mustRun(t, "sh", "-c", c)
		t.Cleanup(func() { testbed.Run("sh", "-c", del) })
	}
}
