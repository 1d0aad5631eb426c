package cmd

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

func TestDiagnoseExitCodes(t *testing.T) {
	testbed.Require(t)
	mtu := strings.TrimSpace(testbed.MustRun(t, "sh", "-c", "cat /sys/class/net/$(ip route show default | awk '{for(i=1;i<NF;i++) if($i==\"dev\") print $(i+1)}' | head -1)/mtu"))
	net := testbed.UniqueName("dgcmd")
	testbed.MustRun(t, "docker", "network", "create", "--label", "nsdebug-test=1", "-o", "com.docker.network.driver.mtu="+mtu, net)
	t.Cleanup(func() { testbed.Run("docker", "network", "rm", net) })
	healthy := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "dgcmd", Network: net, Args: []string{"-p", "80"}, Cmd: []string{"httpd", "-f", "-p", "80"}})
	broken := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "dgcmd", Network: net, Args: []string{"-p", "80"}, Cmd: []string{"httpd", "-f", "-p", "127.0.0.1:80"}})
	// The search list as Docker writes it from --dns-search/--dns-option.
	warned := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "dgcmd", Network: net, Args: []string{"-p", "80", "--dns-search", "a.example", "--dns-search", "b.example", "--dns-search", "c.example", "--dns-option", "ndots:5"}, Cmd: []string{"httpd", "-f", "-p", "80"}})
	for _, c := range []*testbed.Container{healthy, broken, warned} {
		waitFor(t, c.PID)
	}
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"diagnose", healthy.Name, "--interval", "100ms"}, 0, "0 failed"},
		{[]string{"diagnose", broken.Name, "--interval", "100ms"}, 1, "[✗] ports.listen"},
		{[]string{"diagnose", warned.Name, "--interval", "100ms"}, 0, "[!] dns.search"},
		{[]string{"diagnose", warned.Name, "--interval", "100ms", "--fail-on", "warn"}, 1, "1 warnings"},
		{[]string{"diagnose", broken.Name, "--interval", "100ms", "--skip", "ports.listen"}, 0, "0 failed"},
		{[]string{"diagnose", broken.Name, "--interval", "100ms", "--check", "mtu"}, 0, "[✓] mtu"},
		{[]string{"diagnose", "no-such-container-dg"}, 3, ""},
	}
	for _, c := range cases {
		out, stderr, code := runEnv(t, nil, c.args...)
		if code != c.code || !strings.Contains(out, c.out) {
			t.Errorf("%v: exit %d (want %d), stdout %q, stderr %q", c.args, code, c.code, out, stderr)
		}
		if code == 1 && stderr != "" {
			t.Errorf("%v: a failing check printed on stderr: %q", c.args, stderr)
		}
		if strings.Contains(out, "\x1b[") {
			t.Errorf("%v: colour without a terminal", c.args)
		}
	}
	// JSON of a real run: pinned keys, the broken port's evidence.
	out, _, code := runEnv(t, nil, "diagnose", broken.Name, "-o", "json", "--interval", "100ms")
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 1 {
		t.Fatalf("json: %v, exit %d", err, code)
	}
	wantKeys(t, "report", v)
	tg := v["targets"].([]any)[0].(map[string]any)
	if tg["target"] != broken.Name { // as given, like inspect
		t.Errorf("target %v", tg["target"])
	}
	found := false
	for _, c := range tg["checks"].([]any) {
		c := wantKeys(t, "check", c)
		if c["id"] == "ports.listen" && c["status"] == "FAIL" && strings.Contains(out, "only 127.0.0.1:80 (httpd pid") {
			found = true
		}
	}
	if !found {
		t.Errorf("ports.listen FAIL with its evidence missing from %s", out)
	}
	// Colour on a terminal only, never with NO_COLOR.
	colored, _, _ := runEnv(t, func(e *Env) { e.IO.OutTTY = true }, "diagnose", broken.Name, "--interval", "100ms")
	if !strings.Contains(colored, "\x1b[31m[✗]") {
		t.Errorf("no colour on a terminal: %q", colored)
	}
	t.Setenv("NO_COLOR", "1")
	plain, _, _ := runEnv(t, func(e *Env) { e.IO.OutTTY = true }, "diagnose", broken.Name, "--interval", "100ms")
	if strings.Contains(plain, "\x1b[") {
		t.Error("colour with NO_COLOR")
	}
}

// waitFor waits until the container's httpd listens on port 80.
func waitFor(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 250; i++ {
		out, _ := testbed.Run("nsenter", "-t", strconv.Itoa(pid), "-n", "ss", "-Hltn", "sport = :80")
		if strings.TrimSpace(out) != "" {
			return
		}
		testbed.Run("sleep", "0.02")
	}
	t.Fatalf("pid %d: nothing listens on 80", pid)
}

// TestDiagnoseNodeNetns: the command on a netns whose veth peer is on a
// bridge in another namespace (a node's) runs the host checks in that node:
// its ip_forward 0 is a FAIL there (exit 1), while the host's own checks
// still run once for the host.
func TestDiagnoseNodeNetns(t *testing.T) {
	testbed.RequireRoot(t)
	node := testbed.NewNetNS(t, "dgcnode")
	ctr := testbed.NewNetNS(t, "dgcctr")
	node.Exec(t, "ip", "link", "add", "br0", "type", "bridge")
	node.Exec(t, "ip", "link", "add", "vc0", "type", "veth", "peer", "name", "eth0", "netns", ctr.Name)
	node.Exec(t, "ip", "link", "set", "vc0", "master", "br0")
	node.Exec(t, "ip", "addr", "add", "10.246.0.1/24", "dev", "br0")
	ctr.Exec(t, "ip", "addr", "add", "10.246.0.2/24", "dev", "eth0")
	for _, d := range []string{"lo", "br0", "vc0"} {
		node.Exec(t, "ip", "link", "set", d, "up")
	}
	for _, d := range []string{"lo", "eth0"} {
		ctr.Exec(t, "ip", "link", "set", d, "up")
	}
	ctr.Exec(t, "ip", "route", "add", "default", "via", "10.246.0.1")
	node.Exec(t, "sysctl", "-qw", "net.ipv4.ip_forward=0")
	target := "netns:" + ctr.Name
	out, stderr, code := runEnv(t, nil, "diagnose", target, "-o", "json", "--interval", "50ms")
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 1 {
		t.Fatalf("json: %v, exit %d (want 1), stderr %q", err, code, stderr)
	}
	wantKeys(t, "report", v)
	nodes := v["nodes"].([]any)
	if len(nodes) != 1 {
		t.Fatalf("nodes: %v", nodes)
	}
	n := wantKeys(t, "node", nodes[0])
	if !strings.HasSuffix(n["target"].(string), "/netns/"+node.Name) || len(n["forwards"].([]any)) != 1 || n["forwards"].([]any)[0] != target {
		t.Errorf("node %v %v, want %s forwarding for %s", n["target"], n["forwards"], node.Name, target)
	}
	status := map[string]string{}
	for _, c := range n["checks"].([]any) {
		c := c.(map[string]any)
		status[c["id"].(string)] = c["status"].(string)
	}
	if status["host.ip_forward"] != "FAIL" {
		t.Errorf("node host.ip_forward %q, want FAIL (node ip_forward=0): %s", status["host.ip_forward"], out)
	}
	if h := v["host"].(map[string]any); h["target"] != "host" || len(h["checks"].([]any)) == 0 {
		t.Errorf("host report %v", h)
	}
	text, _, code := runEnv(t, nil, "diagnose", target, "--interval", "50ms")
	if code != 1 || !strings.Contains(text, "(forwards for "+target+")") {
		t.Errorf("text: exit %d, %s", code, text)
	}
}
