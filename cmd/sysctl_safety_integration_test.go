package cmd

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// sysctlNetns is a netns made for the test (never the host's), with
// somaxconn set to a known value.
func sysctlNetns(t *testing.T, prefix string) (target, nsPath string, cat func(rel string) string) {
	t.Helper()
	ns := testbed.NewNetNS(t, prefix)
	ns.Exec(t, "sh", "-c", "echo 1234 >/proc/sys/net/core/somaxconn")
	return "netns:" + ns.Name, ns.Path, func(rel string) string {
		return ns.Exec(t, "cat", "/proc/sys/net/"+rel)
	}
}

// TestSysctlValuesCheckedBeforeWriting: a value the kernel would take only
// in part (more numbers than an integer sysctl holds) or not at all (not a
// number) is refused before anything is written, in a dry run too, with
// exit 2 and a line naming the key; kernel number forms go through.
func TestSysctlValuesCheckedBeforeWriting(t *testing.T) {
	testbed.Require(t)
	target, nsPath, cat := sysctlNetns(t, "nsdbg-sysval")
	inside, host := netSysctls(t, nsPath), netSysctls(t, hostNS)
	for _, tc := range []struct {
		args []string
		key  string
	}{
		{[]string{"net.core.somaxconn=77 88", "net.ipv4.tcp_fin_timeout=30"}, "net.core.somaxconn"},
		{[]string{"net.ipv4.tcp_fin_timeout=30", "net.core.somaxconn=77 88"}, "net.core.somaxconn"},
		{[]string{"net.ipv4.ip_local_port_range=20000 30000 40000"}, "net.ipv4.ip_local_port_range"},
		{[]string{"net.core.somaxconn=abc"}, "net.core.somaxconn"},
		{[]string{"net.core.somaxconn=77abc"}, "net.core.somaxconn"},
		{[]string{"net.core.somaxconn=+77"}, "net.core.somaxconn"},
		{[]string{"net.core.somaxconn=08"}, "net.core.somaxconn"},
		{[]string{"net.core.somaxconn=0x"}, "net.core.somaxconn"},
		{[]string{"net.core.somaxconn=99999999999999999999999"}, "net.core.somaxconn"},
		{[]string{"net.ipv4.tcp_rmem=4096 x 6291456"}, "net.ipv4.tcp_rmem"},
	} {
		for _, extra := range [][]string{nil, {"--dry-run"}, {"-o", "json"}} {
			args := append(append([]string{"sysctl", target}, tc.args...), extra...)
			stdout, stderr, code := run(t, args...)
			if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.key) || !strings.Contains(stderr, "integer") || !strings.Contains(stderr, "nothing was written") {
				t.Errorf("%q: exit %d stdout %q stderr %q; want 2 and one line naming %s", args[2:], code, stdout, stderr, tc.key)
			}
		}
	}
	sameSysctls(t, "target netns", inside, netSysctls(t, nsPath))
	sameSysctls(t, "host", host, netSysctls(t, hostNS))

	// Forms the kernel takes pass the check: hex, octal, a sign, fewer
	// numbers than a vector holds, spaces and tabs around them.
	for _, v := range []string{"0x10", "010", "-1", " 77 ", "1\t"} {
		stdout, stderr, code := run(t, "sysctl", target, "net.core.somaxconn="+v, "--dry-run")
		if code != 0 || stdout != "net.core.somaxconn: 1234 -> "+v+" (dry run: not written)\n" {
			t.Errorf("--dry-run somaxconn=%q: %d %q %s", v, code, stdout, stderr)
		}
	}
	if stdout, stderr, code := run(t, "sysctl", target, "net.ipv4.ip_local_port_range=20000", "--dry-run"); code != 0 || !strings.HasSuffix(stdout, "-> 20000 (dry run: not written)\n") {
		t.Errorf("--dry-run one of two numbers: %d %q %s", code, stdout, stderr)
	}
	stdout, stderr, code := run(t, "sysctl", target, "net.core.somaxconn=0x10")
	if code != 0 || stdout != "net.core.somaxconn: 1234 -> 16\n" || cat("core/somaxconn") != "16" {
		t.Errorf("somaxconn=0x10: %d %q %s; inside %s", code, stdout, stderr, cat("core/somaxconn"))
	}
}

// TestSysctlPartlyKeptValue: the kernel writes a vector element by element
// and stops at the first it rejects (tcp_rmem's minimum is 1), keeping the
// ones before it. nsdebug says so: the key is applied with the value the
// kernel kept, the list stops, exit 2.
func TestSysctlPartlyKeptValue(t *testing.T) {
	testbed.Require(t)
	target, nsPath, cat := sysctlNetns(t, "nsdbg-syspart")
	host := netSysctls(t, hostNS)
	oldRmem, oldFin := cat("ipv4/tcp_rmem"), cat("ipv4/tcp_fin_timeout")
	kept := "5000" + oldRmem[strings.IndexByte(oldRmem, '\t'):]
	stdout, stderr, code := run(t, "sysctl", target, "net.core.somaxconn=2001", "net.ipv4.tcp_rmem=5000 0 6000000", "net.ipv4.tcp_fin_timeout=31")
	if code != 2 || strings.Count(stderr, "\n") != 1 {
		t.Errorf("exit %d, stderr %q; want 2 and one line", code, stderr)
	}
	for _, want := range []string{"net.ipv4.tcp_rmem is now " + strings.ReplaceAll(kept, "\t", " "), "applied before it: net.core.somaxconn (1234 -> 2001)", "not attempted: net.ipv4.tcp_fin_timeout"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q lacks %q", stderr, want)
		}
	}
	if strings.Contains(stderr, "nothing was written") {
		t.Errorf("stderr %q says nothing was written", stderr)
	}
	wantOut := "net.core.somaxconn: 1234 -> 2001\nnet.ipv4.tcp_rmem: " + oldRmem + " -> " + kept + " (partly applied"
	if !strings.HasPrefix(stdout, wantOut) || strings.Count(stdout, "\n") != 2 {
		t.Errorf("stdout %q, want it to start with %q", stdout, wantOut)
	}
	if got := cat("ipv4/tcp_rmem"); got != kept {
		t.Errorf("inside: tcp_rmem = %q, want %q", got, kept)
	}
	if got := cat("ipv4/tcp_fin_timeout"); got != oldFin {
		t.Errorf("inside: tcp_fin_timeout = %s after the list stopped, want %s", got, oldFin)
	}
	sameSysctls(t, "host", host, netSysctls(t, hostNS))
	_ = nsPath
}

// TestSysctlWriteJSON: the write-mode document, in a dry run, a real run
// and a run that stops at a failure (which names the failed key and the
// writes not attempted).
func TestSysctlWriteJSON(t *testing.T) {
	testbed.Require(t)
	target, _, cat := sysctlNetns(t, "nsdbg-sysjson")
	host := netSysctls(t, hostNS)
	oldFin := cat("ipv4/tcp_fin_timeout")
	fields := func(what string, raw json.RawMessage) []string {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %v in %s", what, err, raw)
		}
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks
	}
	type change struct {
		Key, Old, New string
		Applied       bool
		Partial       bool
	}
	type doc struct {
		DryRun bool              `json:"dry_run"`
		Reads  map[string]string `json:"reads"`
		Writes []change          `json:"writes"`
		Failed *struct {
			Key, Error string
		} `json:"failed"`
		NotAttempted []string `json:"not_attempted"`
	}
	decode := func(what, stdout string, want []string) doc {
		want = append([]string(nil), want...)
		sort.Strings(want)
		if got := fields(what, json.RawMessage(stdout)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: fields %v, want %v: %s", what, got, want, stdout)
		}
		var d doc
		json.Unmarshal([]byte(stdout), &d)
		var raw struct{ Writes []json.RawMessage }
		json.Unmarshal([]byte(stdout), &raw)
		for _, w := range raw.Writes {
			if got := fields(what, w); len(got) < 4 || !reflect.DeepEqual(got[:4], []string{"applied", "key", "new", "old"}) {
				t.Errorf("%s: write fields %v: %s", what, got, w)
			}
		}
		return d
	}
	base := []string{"dry_run", "reads", "writes"}

	stdout, stderr, code := run(t, "sysctl", target, "-o", "json", "--dry-run", "net.core.somaxconn", "net.core.somaxconn=2002")
	d := decode("dry run", stdout, base)
	if code != 0 || !d.DryRun || d.Reads["net.core.somaxconn"] != "1234" || len(d.Writes) != 1 || d.Writes[0] != (change{Key: "net.core.somaxconn", Old: "1234", New: "2002"}) {
		t.Errorf("dry run: %d %s %s", code, stdout, stderr)
	}
	stdout, stderr, code = run(t, "sysctl", target, "-o", "json", "net.core.somaxconn=2002", "net.ipv4.tcp_fin_timeout=33")
	d = decode("write", stdout, base)
	if code != 0 || d.DryRun || len(d.Reads) != 0 || len(d.Writes) != 2 || d.Writes[0] != (change{Key: "net.core.somaxconn", Old: "1234", New: "2002", Applied: true}) ||
		d.Writes[1] != (change{Key: "net.ipv4.tcp_fin_timeout", Old: oldFin, New: "33", Applied: true}) {
		t.Errorf("write: %d %s %s", code, stdout, stderr)
	}

	// The kernel rejects the whole value (somaxconn's minimum is 0): the
	// list stops there, nothing of that key is applied.
	stdout, stderr, code = run(t, "sysctl", target, "-o", "json", "net.ipv4.tcp_fin_timeout=34", "net.core.somaxconn=-5", "net.core.somaxconn=7", "net.ipv4.tcp_fin_timeout=35")
	d = decode("rejected", stdout, append(base, "failed", "not_attempted"))
	if code != 2 || len(d.Writes) != 1 || d.Writes[0] != (change{Key: "net.ipv4.tcp_fin_timeout", Old: "33", New: "34", Applied: true}) ||
		d.Failed == nil || d.Failed.Key != "net.core.somaxconn" || !strings.Contains(d.Failed.Error, "rejected") ||
		!reflect.DeepEqual(d.NotAttempted, []string{"net.core.somaxconn", "net.ipv4.tcp_fin_timeout"}) {
		t.Errorf("rejected: %d %s %s", code, stdout, stderr)
	}
	if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "applied before it: net.ipv4.tcp_fin_timeout (33 -> 34)") {
		t.Errorf("rejected: stderr %q", stderr)
	}

	// The kernel keeps part of the value: applied, partial, and failed.
	stdout, stderr, code = run(t, "sysctl", target, "-o", "json", "net.ipv4.tcp_rmem=5000 0 6000000", "net.ipv4.tcp_fin_timeout=36")
	d = decode("partial", stdout, append(base, "failed", "not_attempted"))
	if code != 2 || len(d.Writes) != 1 || d.Writes[0].Key != "net.ipv4.tcp_rmem" || !d.Writes[0].Applied || !d.Writes[0].Partial || d.Writes[0].New != cat("ipv4/tcp_rmem") ||
		d.Failed == nil || d.Failed.Key != "net.ipv4.tcp_rmem" || !reflect.DeepEqual(d.NotAttempted, []string{"net.ipv4.tcp_fin_timeout"}) {
		t.Errorf("partial: %d %s %s", code, stdout, stderr)
	}
	if got := cat("ipv4/tcp_fin_timeout"); got != "34" {
		t.Errorf("inside: tcp_fin_timeout = %s, want 34", got)
	}

	// Failures before anything is attempted (a missing key) print no document.
	if stdout, _, code := run(t, "sysctl", target, "-o", "json", "net.core.somaxconn=9", "net.ipv4.conf.nosuchif.rp_filter=1"); code != 3 || stdout != "" {
		t.Errorf("missing key: %d %q", code, stdout)
	}
	sameSysctls(t, "host", host, netSysctls(t, hostNS))
}

// fakeProc is a /proc for the resolver where the host's netns cannot be
// read: no 1/ns/net, a kthreadd 2 without ns/ (enough for hostcheck), and
// with self=true a thread-self to fall back on (nsdebug's own netns).
func fakeProc(t *testing.T, self bool) string {
	t.Helper()
	d := t.TempDir()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(strconv.Itoa(os.Getpid()), filepath.Join(d, "self")))
	must(os.MkdirAll(filepath.Join(d, "2"), 0o755))
	must(os.WriteFile(filepath.Join(d, "2", "comm"), []byte("kthreadd\n"), 0o644))
	if self {
		must(os.Symlink("/proc/thread-self", filepath.Join(d, "thread-self")))
	}
	return d
}

// TestSysctlRefusesWhenHostUnknown: when nsdebug cannot read the host's
// netns (PIDs 1 and 2 refused), a target that is not nsdebug's own netns
// might still be the host's: writes are refused (exit 9) unless --force.
// The target is a netns the test made, so even a regression writes no host
// value.
func TestSysctlRefusesWhenHostUnknown(t *testing.T) {
	testbed.Require(t)
	target, _, cat := sysctlNetns(t, "nsdbg-sysunk")
	host := netSysctls(t, hostNS)
	for _, self := range []bool{true, false} {
		proc := fakeProc(t, self)
		withProc := func(e *Env) { e.ProcRoot = proc }
		for _, extra := range [][]string{{"--dry-run"}, nil, {"-o", "json"}} {
			args := append([]string{"sysctl", target, "net.core.somaxconn=77"}, extra...)
			stdout, stderr, code := runEnv(t, withProc, args...)
			last := stderr[strings.LastIndex(strings.TrimSuffix(stderr, "\n"), "\n")+1:]
			if code != 9 || stdout != "" || !strings.HasPrefix(last, "nsdebug: refusing") || !strings.Contains(last, "cannot tell whether "+target+" is the host's network namespace") ||
				!strings.Contains(last, proc+"/1/ns/net") || !strings.Contains(last, "--force") {
				t.Errorf("self=%v %q: exit %d stdout %q stderr %q; want 9 and a refusal saying why", self, args[2:], code, stdout, stderr)
			}
		}
		if got := cat("core/somaxconn"); got != "1234" {
			t.Errorf("self=%v: somaxconn = %s inside after refusals", self, got)
		}
		// Reads are allowed; --force writes (this netns is the test's own).
		if stdout, stderr, code := runEnv(t, withProc, "sysctl", target, "net.core.somaxconn"); code != 0 || stdout != "net.core.somaxconn = 1234\n" {
			t.Errorf("self=%v read: %d %q %s", self, code, stdout, stderr)
		}
	}
	stdout, stderr, code := runEnv(t, func(e *Env) { e.ProcRoot = fakeProc(t, true) }, "sysctl", target, "net.core.somaxconn=77", "--force")
	if code != 0 || stdout != "net.core.somaxconn: 1234 -> 77\n" || cat("core/somaxconn") != "77" {
		t.Errorf("--force: %d %q %s", code, stdout, stderr)
	}
	sameSysctls(t, "host", host, netSysctls(t, hostNS))
}

// TestSysctlPrivilegeBeforePID1: without root the answer is the missing
// privilege (exit 7), even for a write to PID 1 that root would be refused.
func TestSysctlPrivilegeBeforePID1(t *testing.T) {
	testbed.RequireRoot(t)
	bin := nsdebugBinary(t)
	for _, args := range [][]string{{"sysctl", "pid:1", "net.core.somaxconn=1"}, {"sysctl", "1", "net.core.somaxconn=1", "--dry-run"}} {
		stdout, stderr, code := runProcess(exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", bin}, args...)...))
		if code != 7 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "must run as root") {
			t.Errorf("as nobody %q: exit %d stdout %q stderr %q; want 7 and the root message", args, code, stdout, stderr)
		}
	}
}
