package reliability

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// netSysctlsIn reads every readable sysctl under /proc/sys/net inside the
// netns at nsPath with grep under nsenter, independently of nsdebug.
func netSysctlsIn(t *testing.T, nsPath string) map[string]string {
	t.Helper()
	out, _ := testbed.Run("nsenter", "--net="+nsPath, "grep", "-rs", ".", "/proc/sys/net")
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if p, v, ok := strings.Cut(line, ":"); ok && !strings.HasSuffix(p, "nf_conntrack_count") {
			m[p] += v + "\n"
		}
	}
	if len(m) < 50 {
		t.Fatalf("read only %d sysctls in %s", len(m), nsPath)
	}
	return m
}

func unchanged(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if w, ok := after[k]; ok && w != v {
			t.Errorf("%s: %s changed: %q -> %q", what, k, strings.TrimSpace(v), strings.TrimSpace(w))
		}
	}
}

// The host keys a stray write would most likely hit; compared exactly here,
// and all of /proc/sys/net by TestMain.
var watchedHostKeys = []string{"/proc/sys/net/core/somaxconn", "/proc/sys/net/ipv4/tcp_keepalive_time", "/proc/sys/net/ipv4/ip_local_port_range", "/proc/sys/net/core/busy_poll"}

func hostKeys(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, p := range watchedHostKeys {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m[p] = string(b)
	}
	return m
}

// Case 10: bad sysctl keys and values through the binary: one line on
// stderr, the documented exit code (2 bad input, 3 key missing in the
// target's netns), nothing on stdout, nothing changed in the container, on
// the host, or in kernel.*/fs.* (core_pattern, file-max).
func TestSysctlCase10_BadKeysAndValues(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "rel-sysctl"})
	nsPath := "/proc/" + strconv.Itoa(c.PID) + "/ns/net"
	target := "docker:" + c.Name
	inside, host := netSysctlsIn(t, nsPath), hostKeys(t)
	corePattern, _ := os.ReadFile("/proc/sys/kernel/core_pattern")
	fileMax, _ := os.ReadFile("/proc/sys/fs/file-max")

	cases := []struct {
		args []string
		code int
	}{
		// traversal, in every spelling sysctl(8) accepts
		{[]string{"net.ipv4.conf.eth0/../../../kernel/core_pattern=|/bin/false"}, 2},
		{[]string{"net/ipv4/conf/eth0/../../../kernel/core_pattern=|/bin/false"}, 2},
		{[]string{"/proc/sys/net/../kernel/core_pattern=|/bin/false"}, 2},
		{[]string{"net/../kernel/core_pattern"}, 2},
		{[]string{"net./../kernel.core_pattern=x"}, 2},
		{[]string{"net.core.somaxconn/..=1"}, 2},
		{[]string{"net//core/somaxconn=1"}, 2},
		{[]string{"net.ipv4.conf.eth0/..=1"}, 2},
		// not network sysctls
		{[]string{"kernel.core_pattern=|/bin/false"}, 2},
		{[]string{"kernel/core_pattern"}, 2},
		{[]string{"fs.file-max=1"}, 2},
		{[]string{"fs/file-max"}, 2},
		{[]string{"vm.swappiness=1"}, 2},
		{[]string{"net"}, 2},
		{[]string{""}, 2},
		// a good write before a bad key: nothing is written
		{[]string{"net.core.somaxconn=17", "kernel.core_pattern=x"}, 2},
		// missing in the container's netns (host-only on this kernel, or no such interface)
		{[]string{"net.core.busy_poll=1"}, 3},
		{[]string{"net.core.somaxconn=17", "net.core.busy_poll=1"}, 3},
		{[]string{"net.nf_conntrack_max"}, 3},
		{[]string{"net.ipv4.conf.nosuchif.rp_filter=1"}, 3},
		{[]string{"net.ipv4.no_such_key=1"}, 3},
		// values
		{[]string{"net.core.somaxconn=17\n18"}, 2},
		{[]string{"net.core.somaxconn=17\r"}, 2},
		{[]string{"net.core.somaxconn=17\n"}, 2},
		{[]string{"net.ipv4.ip_local_port_range=1024 2000\nnet.core.somaxconn=1"}, 2},
		{[]string{"net.core.somaxconn=" + strings.Repeat("1", 4097)}, 2},
		{[]string{"net.ipv4.tcp_congestion_control=" + strings.Repeat("x", 100000)}, 2},
		{[]string{"net.core.somaxconn="}, 2},
		{[]string{"net.core.somaxconn=not-a-number"}, 2},
		// over-long keys
		{[]string{"net.ipv4." + strings.Repeat("a", 300) + "=1"}, 2},
		{[]string{"net.ipv4." + strings.Repeat("a/", 5000) + "=1"}, 2},
	}
	for _, tc := range cases {
		r := nsdebug(t, append([]string{"sysctl", target}, tc.args...)...)
		what := "sysctl " + printable(strings.Join(tc.args, " "))
		r.oneLine(t, what, tc.code)
		if r.stdout != "" {
			t.Errorf("%s: wrote to stdout %q", what, r.stdout)
		}
	}
	unchanged(t, "container", inside, netSysctlsIn(t, nsPath))
	unchanged(t, "host", host, hostKeys(t))
	if b, _ := os.ReadFile("/proc/sys/kernel/core_pattern"); string(b) != string(corePattern) {
		t.Errorf("kernel.core_pattern changed: %q -> %q", corePattern, b)
	}
	if b, _ := os.ReadFile("/proc/sys/fs/file-max"); string(b) != string(fileMax) {
		t.Errorf("fs.file-max changed: %q -> %q", fileMax, b)
	}
}

// Case 17: writes into the host's own netns (host-network container,
// hostNetwork pod, PID 1, any host process) are refused with exit 9 unless
// --force; dry runs too; the host's values stay.
func TestSysctlCase17_HostNetnsWrites(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "rel-sysctl-host", Network: "host"})
	p := testbed.RunPod(t, testbed.PodOptions{Namespace: "rel-sysctl", HostNetwork: true, Containers: []string{"app"}})
	host := hostKeys(t)
	for _, target := range []string{"docker:" + c.Name, c.Name, p.Ref(), p.Ref() + "/app", "pid:1", "1", "pid:2", "pid:" + strconv.Itoa(os.Getpid())} {
		for _, args := range [][]string{
			{"net.core.somaxconn=17"},
			{"net.core.somaxconn=17", "--dry-run"},
			{"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_keepalive_time=17"},
			{"net.core.somaxconn=17", "-o", "json"},
		} {
			r := nsdebug(t, append([]string{"sysctl", target}, args...)...)
			what := "sysctl " + target + " " + strings.Join(args, " ")
			r.oneLine(t, what, 9)
			if r.stdout != "" || !strings.Contains(r.stderr, "--force") {
				t.Errorf("%s: stdout %q stderr %q", what, r.stdout, r.stderr)
			}
		}
	}
	unchanged(t, "host", host, hostKeys(t))
}
