package cmd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// netSysctls is every readable net.* sysctl in the netns at nsPath, read by
// grep inside nsenter (ground truth independent of nsdebug), by path.
// Counters and entries of short-lived interfaces are left out: they change
// without anyone writing.
func netSysctls(t *testing.T, nsPath string) map[string]string {
	t.Helper()
	out, _ := testbed.Run("nsenter", "--net="+nsPath, "grep", "-rs", ".", "/proc/sys/net")
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		p, v, ok := strings.Cut(line, ":")
		if ok && !strings.HasSuffix(p, "nf_conntrack_count") && !strings.Contains(p, "/netfilter/nf_log") && stableIf(p) {
			m[p] += v + "\n"
		}
	}
	if len(m) < 50 {
		t.Fatalf("read only %d sysctls in %s: %.300s", len(m), nsPath, out)
	}
	return m
}

// stableIf: p is not a per-interface entry, or one of an interface that
// lives for the whole run; others' tests create, change and remove
// interfaces of their own on the host while these run.
func stableIf(p string) bool {
	for _, dir := range []string{"/conf/", "/neigh/"} {
		if _, rest, ok := strings.Cut(p, dir); ok {
			ifname, _, _ := strings.Cut(rest, "/")
			switch ifname {
			case "all", "default", "lo", "eth0", "docker0":
				return true
			}
			return false
		}
	}
	return true
}

// hostNS is the host's netns for ground truth (PID 2, kthreadd, is readable
// where PID 1 is not).
const hostNS = "/proc/2/ns/net"

func sameSysctls(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if w, ok := after[k]; ok && w != v {
			t.Errorf("%s: %s changed: %q -> %q", what, k, strings.TrimSpace(v), strings.TrimSpace(w))
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// writeTwo sets somaxconn and tcp_keepalive_time in target (through both key
// forms) and checks nsdebug's old -> new report against the values read
// inside with readInside; the host keeps its values.
func writeTwo(t *testing.T, target string, readInside func(path string) string) {
	t.Helper()
	const somax, keep = "/proc/sys/net/core/somaxconn", "/proc/sys/net/ipv4/tcp_keepalive_time"
	hostSomax, hostKeep := readFile(t, somax), readFile(t, keep)
	hostAll := netSysctls(t, hostNS)
	oldSomax, oldKeep := readInside(somax), readInside(keep)
	newSomax := strconv.Itoa(1000 + len(target)%1000) // differs from the defaults
	newKeep := "611"

	stdout, stderr, code := run(t, "sysctl", target, "net.core.somaxconn="+newSomax, "net/ipv4/tcp_keepalive_time="+newKeep)
	if code != 0 {
		t.Fatalf("sysctl write: exit %d %s", code, stderr)
	}
	want := "net.core.somaxconn: " + oldSomax + " -> " + newSomax + "\nnet.ipv4.tcp_keepalive_time: " + oldKeep + " -> " + newKeep + "\n"
	if stdout != want {
		t.Errorf("stdout = %q, want %q", stdout, want)
	}
	if got := readInside(somax); got != newSomax {
		t.Errorf("inside: somaxconn = %s, want %s", got, newSomax)
	}
	if got := readInside(keep); got != newKeep {
		t.Errorf("inside: tcp_keepalive_time = %s, want %s", got, newKeep)
	}
	if readFile(t, somax) != hostSomax || readFile(t, keep) != hostKeep {
		t.Errorf("host values changed: somaxconn %s -> %s, tcp_keepalive_time %s -> %s", hostSomax, readFile(t, somax), hostKeep, readFile(t, keep))
	}
	sameSysctls(t, "host", hostAll, netSysctls(t, hostNS))

	// Reads give the new values, in sysctl's format and in JSON.
	stdout, _, code = run(t, "sysctl", target, "net.core.somaxconn", "net.ipv4.tcp_keepalive_time")
	if code != 0 || stdout != "net.core.somaxconn = "+newSomax+"\nnet.ipv4.tcp_keepalive_time = "+newKeep+"\n" {
		t.Errorf("read back: %d %q", code, stdout)
	}
	stdout, _, _ = run(t, "sysctl", target, "-o", "json")
	var all map[string]string
	if err := json.Unmarshal([]byte(stdout), &all); err != nil || all["net.core.somaxconn"] != newSomax || len(all) < 50 {
		t.Errorf("json listing: %v somaxconn=%q (%d keys)", err, all["net.core.somaxconn"], len(all))
	}

	// --diff names the changed keys with both values.
	stdout, stderr, code = run(t, "sysctl", target, "--diff")
	if code != 0 || !hasLine(stdout, "net.core.somaxconn", newSomax, hostSomax) || !hasLine(stdout, "net.ipv4.tcp_keepalive_time", newKeep, hostKeep) {
		t.Errorf("--diff: %d %s\n%s", code, stderr, stdout)
	}
	stdout, _, _ = run(t, "sysctl", target, "--diff", "-o", "json", "net.core.somaxconn")
	var diff []struct{ Key, Target, Host string }
	if err := json.Unmarshal([]byte(stdout), &diff); err != nil || len(diff) != 1 || diff[0].Key != "net.core.somaxconn" || diff[0].Target != newSomax || diff[0].Host != hostSomax {
		t.Errorf("--diff -o json net.core.somaxconn: %v %s", err, stdout)
	}

	// Per-interface keys are compared for all, default and lo only: the
	// target's eth0 and the host's eth0 are different devices.
	other := func(v string) string {
		if v == "1" {
			return "2"
		}
		return "1"
	}
	hostLo := readFile(t, "/proc/sys/net/ipv4/conf/lo/rp_filter")
	args := []string{"sysctl", target, "net.ipv4.conf.lo.rp_filter=" + other(hostLo)}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/conf/eth0/rp_filter"); err == nil {
		args = append(args, "net.ipv4.conf.eth0.rp_filter="+other(strings.TrimSpace(string(b))))
	} else {
		t.Log("the host has no eth0: the check that eth0 is left out of --diff proves nothing here")
	}
	if _, stderr, code := run(t, args...); code != 0 {
		t.Fatalf("%q: exit %d %s", args, code, stderr)
	}
	stdout, stderr, code = run(t, "sysctl", target, "--diff")
	if code != 0 || !hasLine(stdout, "net.ipv4.conf.lo.rp_filter", other(hostLo), hostLo) {
		t.Errorf("--diff lacks lo's changed rp_filter: %d %s\n%s", code, stderr, stdout)
	}
	for _, line := range strings.Split(stdout, "\n") {
		if strings.Contains(line, ".conf.eth0.") || strings.Contains(line, ".neigh.eth0.") {
			t.Errorf("--diff compares eth0 across namespaces: %q", line)
		}
	}
	stdout, stderr, code = run(t, "sysctl", target, "--diff", "net.ipv4.conf.eth0.rp_filter")
	if code != 2 || stdout != "" || !strings.Contains(stderr, "different devices") {
		t.Errorf("--diff net.ipv4.conf.eth0.rp_filter: %d %q %q; want exit 2 saying they are different devices", code, stdout, stderr)
	}
	sameSysctls(t, "host", hostAll, netSysctls(t, hostNS))
}

func TestSysctlDockerContainer(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "nsdbg-sysctl"})
	writeTwo(t, "docker:"+c.Name, func(p string) string {
		return testbed.MustRun(t, "docker", "exec", c.Name, "cat", p)
	})
}

func TestSysctlCRIPod(t *testing.T) {
	testbed.Require(t)
	p := testbed.RunPod(t, testbed.PodOptions{Namespace: "nsdbg-sysctl", Containers: []string{"app"}})
	writeTwo(t, p.Ref()+"/app", func(path string) string {
		return testbed.MustRun(t, "nsenter", "-t", strconv.Itoa(p.Containers["app"].PID), "-n", "cat", path)
	})
}

// TestSysctlVLANKey: the slash-in-interface form reaches eth0.100 (not
// eth0), and the path form reads it back.
func TestSysctlVLANKey(t *testing.T) {
	testbed.Require(t)
	ns := testbed.NewNetNS(t, "nsdbg-sysvlan")
	// This kernel has neither vlan nor dummy links; the key only cares about
	// the name, so a veth pair named like a VLAN and its parent will do.
	ns.Exec(t, "ip", "link", "add", "eth0.100", "type", "veth", "peer", "name", "eth0")
	target := "netns:" + ns.Name
	old := ns.Exec(t, "cat", "/proc/sys/net/ipv4/conf/eth0.100/rp_filter")
	stdout, stderr, code := run(t, "sysctl", target, "net.ipv4.conf.eth0/100.rp_filter=2")
	if code != 0 || stdout != "net.ipv4.conf.eth0/100.rp_filter: "+old+" -> 2\n" {
		t.Fatalf("write: %d %q %s", code, stdout, stderr)
	}
	if got := ns.Exec(t, "cat", "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"); got != "2" {
		t.Errorf("eth0.100 rp_filter = %s", got)
	}
	if got := ns.Exec(t, "cat", "/proc/sys/net/ipv4/conf/eth0/rp_filter"); got != old {
		t.Errorf("eth0 rp_filter changed to %s", got)
	}
	stdout, _, code = run(t, "sysctl", target, "net/ipv4/conf/eth0.100/rp_filter")
	if code != 0 || stdout != "net.ipv4.conf.eth0/100.rp_filter = 2\n" {
		t.Errorf("read path form: %d %q", code, stdout)
	}
	// A group lists the keys below it.
	stdout, _, _ = run(t, "sysctl", target, "net.ipv4.conf.eth0/100")
	if !strings.Contains(stdout, "net.ipv4.conf.eth0/100.rp_filter = 2\n") || !strings.Contains(stdout, "net.ipv4.conf.eth0/100.forwarding = ") {
		t.Errorf("group read: %q", stdout)
	}
}

// TestSysctlRefusesHostNetns: writes to the host's own netns are refused
// (exit 9, one line) for host-network containers, hostNetwork pods, PID 1
// and any host process, and go through with --force.
func TestSysctlRefusesHostNetns(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "nsdbg-sysctl-host", Network: "host"})
	p := testbed.RunPod(t, testbed.PodOptions{Namespace: "nsdbg-sysctl", HostNetwork: true, Containers: []string{"app"}})
	before := netSysctls(t, hostNS)
	somax := readFile(t, "/proc/sys/net/core/somaxconn")
	hostLink := hostNetnsLink(t)
	self := strconv.Itoa(os.Getpid())
	for target, why := range map[string]string{
		"docker:" + c.Name:          "host network mode",
		p.Ref():                     "hostNetwork pod",
		"pid:1":                     "PID 1",
		"pid:" + self:               "host's network namespace",
		self:                        "host's network namespace",
		"/proc/self/ns/net":         "host's network namespace",
		"/proc/" + self + "/ns/net": "host's network namespace",
		"/proc/2/ns/net":            "host's network namespace",
		"netns:" + hostLink:         "host's network namespace",
	} {
		for _, extra := range [][]string{nil, {"--dry-run"}} {
			args := append([]string{"sysctl", target, "net.core.somaxconn=" + strconv.Itoa(1+len(target))}, extra...)
			stdout, stderr, code := run(t, args...)
			if code != 9 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, why) || !strings.Contains(stderr, "--force") {
				t.Errorf("%q: exit %d stdout %q stderr %q; want 9 and one line naming %q and --force", args, code, stdout, stderr, why)
			}
		}
		// Reading is always allowed.
		if stdout, _, code := run(t, "sysctl", target, "net.core.somaxconn"); target != "pid:1" && (code != 0 || stdout != "net.core.somaxconn = "+somax+"\n") {
			t.Errorf("read %s: %d %q", target, code, stdout)
		}
	}
	// --force passes the refusal: a dry run shows the host change, and
	// writing the host's current value back goes through without changing it.
	stdout, stderr, code := run(t, "sysctl", "docker:"+c.Name, "net.core.somaxconn=1", "--force", "--dry-run")
	if code != 0 || stdout != "net.core.somaxconn: "+somax+" -> 1 (dry run: not written)\n" {
		t.Errorf("--force --dry-run: %d %q %s", code, stdout, stderr)
	}
	stdout, stderr, code = run(t, "sysctl", p.Ref(), "net.core.somaxconn="+somax, "--force")
	if code != 0 || stdout != "net.core.somaxconn: "+somax+" -> "+somax+"\n" {
		t.Errorf("--force same value: %d %q %s", code, stdout, stderr)
	}
	// --diff of a host-network container has nothing to show.
	if stdout, _, code := run(t, "sysctl", "docker:"+c.Name, "--diff"); code != 0 || !strings.Contains(stdout, "no differences") {
		t.Errorf("--diff host container: %d %q", code, stdout)
	}
	sameSysctls(t, "host", before, netSysctls(t, hostNS))
}

// hostNetnsLink bind-mounts the host's netns (the test's own) as a name
// under /var/run/netns, removed in t.Cleanup: a host netns nsdebug can only
// recognise by its inode.
func hostNetnsLink(t *testing.T) string {
	t.Helper()
	name := testbed.UniqueName("nsdbg-sysctl-hostlink")
	p := filepath.Join(hostNetnsDir, name)
	if err := os.MkdirAll(hostNetnsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(p) })
	testbed.MustRun(t, "mount", "--bind", "/proc/self/ns/net", p)
	t.Cleanup(func() {
		if out, err := testbed.Run("umount", p); err != nil {
			t.Errorf("cleanup: umount %s: %v %s", p, err, out)
		}
	})
	return name
}

// TestSysctlRejects: bad keys and values fail with one line and their exit
// code, and nothing changes in the container or on the host.
func TestSysctlRejects(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "nsdbg-sysctl-bad"})
	nsPath := "/proc/" + strconv.Itoa(c.PID) + "/ns/net"
	target := "docker:" + c.Name
	inside, host := netSysctls(t, nsPath), netSysctls(t, hostNS)
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"kernel.core_pattern"}, 2, "not a network sysctl"},
		{[]string{"kernel.core_pattern=|/bin/false"}, 2, "not a network sysctl"},
		{[]string{"fs.file-max=1"}, 2, "not a network sysctl"},
		{[]string{"net.core.somaxconn=7", "vm.swappiness=1"}, 2, "not a network sysctl"},
		{[]string{"net.ipv4.conf.eth0/../../../kernel/core_pattern=|/bin/false"}, 2, `contains ".."`},
		{[]string{"net/ipv4/../../kernel/core_pattern=x"}, 2, `contains ".."`},
		{[]string{"/proc/sys/net/../kernel/core_pattern=x"}, 2, `".."`},
		{[]string{"net.core.somaxconn=7\n8"}, 2, "newline"},
		{[]string{"net.core.somaxconn=" + strings.Repeat("7", 5000)}, 2, "too long"},
		{[]string{"net.core.somaxconn="}, 2, "empty value"},
		{[]string{"net.core.somaxconn=7", "net.core.somaxconn=8", "--diff"}, 2, "--diff only reads"},
		{[]string{"net.core.somaxconn=7", "-o", "yaml"}, 2, "unknown output format"},
		// Host-only on this kernel: exists on the host, not in the container.
		{[]string{"net.core.somaxconn=7", "net.core.busy_poll=1"}, 3, "does not exist in the target's network namespace"},
		{[]string{"net.ipv4.conf.nosuchif.rp_filter=1"}, 3, "does not exist"},
		{[]string{"net.nf_conntrack_max"}, 3, "does not exist"},
		{[]string{"net.ipv4.conf=1"}, 2, "group of sysctls"},
		{[]string{"net.core.somaxconn=7", "net.ipv4.route.flush"}, 2, "write-only"},
		// The kernel's own refusal of a value, before anything else was written.
		{[]string{"net.core.somaxconn=-5", "net.ipv4.tcp_keepalive_time=7"}, 2, "nothing was written; not attempted: net.ipv4.tcp_keepalive_time"},
		// Values an integer sysctl cannot take are refused before writing.
		{[]string{"net.ipv4.tcp_keepalive_time=7", "net.core.somaxconn=abc"}, 2, "nothing was written"},
		{[]string{"net.ipv4.tcp_keepalive_time=7", "net.core.somaxconn=7 8"}, 2, "nothing was written"},
		{[]string{"net.core.somaxconn=abc", "--dry-run"}, 2, "nothing was written"},
		{[]string{"net.ipv4.tcp_keepalive_time=7", "--dry-run"}, 0, ""},
	}
	for _, tc := range cases {
		stdout, stderr, code := run(t, append([]string{"sysctl", target}, tc.args...)...)
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d (%q)", tc.args, code, tc.code, stderr)
		}
		if tc.code == 0 {
			continue
		}
		if stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "nsdebug: ") || !strings.Contains(stderr, tc.msg) {
			t.Errorf("%q: stdout %q stderr %q; want one line with %q", tc.args, stdout, stderr, tc.msg)
		}
	}
	sameSysctls(t, "container", inside, netSysctls(t, nsPath))
	sameSysctls(t, "host", host, netSysctls(t, hostNS))

	// A failed write in a list stops there and says what was applied.
	old := testbed.MustRun(t, "docker", "exec", c.Name, "cat", "/proc/sys/net/ipv4/tcp_keepalive_time")
	stdout, stderr, code := run(t, "sysctl", target, "net.core.somaxconn=2001", "net.core.somaxconn=-5", "net.ipv4.tcp_keepalive_time=7")
	if code != 2 || !strings.Contains(stderr, "applied before it: net.core.somaxconn (") || !strings.Contains(stderr, "not attempted: net.ipv4.tcp_keepalive_time") || !strings.HasSuffix(stdout, "-> 2001\n") {
		t.Errorf("partial failure: %d %q %q", code, stdout, stderr)
	}
	if got := testbed.MustRun(t, "docker", "exec", c.Name, "cat", "/proc/sys/net/core/somaxconn"); got != "2001" {
		t.Errorf("somaxconn = %s, want the applied 2001", got)
	}
	if got := testbed.MustRun(t, "docker", "exec", c.Name, "cat", "/proc/sys/net/ipv4/tcp_keepalive_time"); got != old {
		t.Errorf("tcp_keepalive_time = %s after the list stopped, want %s", got, old)
	}
	sameSysctls(t, "host", host, netSysctls(t, hostNS))
}
