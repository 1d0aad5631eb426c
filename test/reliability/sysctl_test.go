package reliability

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
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

// hostSysctlFiles snapshots the writable files under roots (directories
// or files, read in this process's netns), leaving out the entries of
// interfaces other tests create and remove (as TestMain does) and files
// that cannot be read.
func hostSysctlFiles(roots ...string) map[string]string {
	m := map[string]string{}
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if strings.Contains(p, "/conf/veth") || strings.Contains(p, "/neigh/veth") || strings.Contains(p, "/conf/br-") || strings.Contains(p, "/neigh/br-") || strings.Contains(p, "/netfilter/nf_log") {
				return nil
			}
			if fi, err := d.Info(); err != nil || fi.Mode().Perm()&0o200 == 0 {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil {
				m[p] = string(b)
			}
			return nil
		})
	}
	return m
}

// restoreSysctlFiles writes back the snapshot's value of every file that
// now differs, and returns what it restored ("path: now -> snapshot").
func restoreSysctlFiles(snap map[string]string) (restored []string, errs []error) {
	for p, v := range snap {
		now, err := os.ReadFile(p)
		if err != nil || string(now) == v {
			continue // gone (an interface), or unchanged
		}
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err == nil {
			_, err = f.WriteString(v)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("restore %s to %q: %w", p, strings.TrimSpace(v), err))
			continue
		}
		restored = append(restored, fmt.Sprintf("%s: %q -> %q", p, strings.TrimSpace(string(now)), strings.TrimSpace(v)))
	}
	sort.Strings(restored)
	return restored, errs
}

// restoreHostOnCleanup snapshots the host's sysctls now (all of
// /proc/sys/net and extra, read through /proc/sys in this process, which
// must be in the host's netns) and, in t.Cleanup, writes back any that a
// regression changed, failing t for each: a broken build must not leave
// the host changed after the test that caught it.
func restoreHostOnCleanup(t *testing.T, extra ...string) {
	t.Helper()
	self, err := os.Stat("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	host, err := os.Stat("/proc/1/ns/net")
	if err != nil {
		host, err = os.Stat("/proc/2/ns/net") // kthreadd: always in the initial netns
	}
	if err != nil || !os.SameFile(self, host) {
		t.Fatalf("the test must run in the host's network namespace to guard its sysctls (%v)", err)
	}
	snap := hostSysctlFiles(append([]string{"/proc/sys/net"}, extra...)...)
	if len(snap) < 50 {
		t.Fatalf("snapshot of the host's sysctls has only %d entries", len(snap))
	}
	t.Cleanup(func() {
		restored, errs := restoreSysctlFiles(snap)
		for _, r := range restored {
			t.Errorf("host sysctl changed during the test, restored: %s", r)
		}
		for _, err := range errs {
			t.Errorf("host sysctl changed during the test and could not be restored: %v", err)
		}
	})
}

// The restore guard itself, on ordinary files: only what differs is
// written, back to the snapshot's value; read-only and vanished files are
// left alone.
func TestSysctlRestoreGuard(t *testing.T) {
	d := t.TempDir()
	write := func(name, v string, mode os.FileMode) {
		p := filepath.Join(d, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(v), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("core/somaxconn", "4096\n", 0o644)
	write("ipv4/ip_local_port_range", "32768\t60999\n", 0o644)
	write("ipv4/tcp_keepalive_time", "7200\n", 0o644)
	write("ipv4/conf/veth1/rp_filter", "0\n", 0o644)
	write("ipv4/conf/eth0/rp_filter", "2\n", 0o644)
	write("ipv4/tcp_available_congestion_control", "reno cubic\n", 0o444)
	snap := hostSysctlFiles(d)
	if len(snap) != 4 {
		t.Fatalf("snapshot %v: want the 4 writable files, no veth", snap)
	}
	write("core/somaxconn", "17\n", 0o644)
	write("ipv4/ip_local_port_range", "1\t2\n", 0o644)
	write("ipv4/conf/veth1/rp_filter", "1\n", 0o644)
	os.Remove(filepath.Join(d, "ipv4/conf/eth0/rp_filter"))
	restored, errs := restoreSysctlFiles(snap)
	if len(errs) != 0 || len(restored) != 2 {
		t.Errorf("restored %q, errors %v; want somaxconn and ip_local_port_range", restored, errs)
	}
	for name, want := range map[string]string{"core/somaxconn": "4096\n", "ipv4/ip_local_port_range": "32768\t60999\n", "ipv4/tcp_keepalive_time": "7200\n", "ipv4/conf/veth1/rp_filter": "1\n"} {
		if b, _ := os.ReadFile(filepath.Join(d, name)); string(b) != want {
			t.Errorf("%s = %q, want %q", name, b, want)
		}
	}
	if _, err := os.Stat(filepath.Join(d, "ipv4/conf/eth0/rp_filter")); err == nil {
		t.Error("a vanished file was recreated")
	}
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
	restoreHostOnCleanup(t, "/proc/sys/kernel/core_pattern", "/proc/sys/fs/file-max")
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
	restoreHostOnCleanup(t)
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
