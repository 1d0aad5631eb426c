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
