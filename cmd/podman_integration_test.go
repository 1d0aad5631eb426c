package cmd

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/enter"
	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

// Done-when (issue 12): exec in a Podman container sees the address podman
// inspect reports, by podman:NAME and by its unique bare name.
func TestExecPodmanContainer(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunPodman(t, testbed.ContainerOpts{Prefix: "pmexec"})
	if len(c.IPs) != 1 {
		t.Fatalf("podman inspect gives %s addresses %v", c.Name, c.IPs)
	}
	for _, target := range []string{"podman:" + c.Name, c.Name} {
		out, _ := execOut(t, target, "--", "ip", "-4", "-o", "addr", "show", "eth0")
		f := strings.Fields(out)
		if len(f) < 4 || f[1] != "eth0" || !strings.HasPrefix(f[3], c.IPs[0]+"/") {
			t.Errorf("exec %s -- ip -4 -o addr show eth0: %q, podman inspect says %s", target, out, c.IPs[0])
		}
	}
	// iproute2 in the netns file podman names is the ground truth for the
	// whole interface set.
	out, _ := execOut(t, "podman:"+c.Name, "--", "ip", "-j", "addr")
	if got, want := addrsOf(t, out), ipAddrs(t, filepath.Base(c.SandboxKey)); !sameAddrs(got, want) {
		t.Errorf("exec sees %v, ip -n on %s sees %v", got, c.SandboxKey, want)
	}
}

func sameAddrs(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		var w []string
		for _, x := range b[k] {
			ip, _, _ := strings.Cut(x, "/") // ipAddrs gives prefixes
			w = append(w, ip)
		}
		if strings.Join(v, ",") != strings.Join(w, ",") {
			return false
		}
	}
	return true
}

// ls lists a Podman container's netns owned by podman, whois finds it by
// its address, completion offers it.
func TestLsWhoisCompletePodman(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunPodman(t, testbed.ContainerOpts{Prefix: "pmls"})
	host := testbed.RunPodman(t, testbed.ContainerOpts{Prefix: "pmlshost", Network: "host"})

	rows := lsJSON(t)
	row := findRow(rows, inodeOf(t, c.SandboxKey))
	if row == nil || len(row.Owners) != 1 || row.Owners[0].Runtime != "podman" || row.Owners[0].Ref() != "podman:"+c.Name || row.Owners[0].ID != c.ID {
		t.Fatalf("ls row of %s: %+v", c.SandboxKey, row)
	}
	if !contains(row.PIDs, c.PID) {
		t.Errorf("ls row pids %v lack podman's %d", row.PIDs, c.PID)
	}
	var ips []string
	for _, i := range row.Interfaces {
		ips = append(ips, i.Addresses...)
	}
	if !strings.Contains(strings.Join(ips, ","), c.IPs[0]+"/") {
		t.Errorf("ls row addresses %v lack %s", ips, c.IPs[0])
	}
	hostRow := findRow(rows, inodeOf(t, "/proc/2/ns/net"))
	if hostRow == nil || !hostRow.Host || !hasRef(hostRow, "podman:"+host.Name) {
		t.Errorf("host row lacks podman:%s: %v", host.Name, ownerRefs(hostRow))
	}
	table, _, _ := run(t, "ls")
	if !strings.Contains(table, "podman:"+c.Name) || !strings.Contains(table, c.IPs[0]+"/") {
		t.Errorf("ls table lacks podman:%s with %s:\n%s", c.Name, c.IPs[0], table)
	}

	stdout, stderr, code := run(t, "whois", c.IPs[0], "-o", "json")
	if code != 0 {
		t.Fatalf("whois %s: exit %d %s", c.IPs[0], code, stderr)
	}
	var res struct {
		Matches []struct {
			Netns  struct{ Inode uint64 }
			Owners []struct{ Runtime, Name string }
		}
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Matches) != 1 || res.Matches[0].Netns.Inode != inodeOf(t, c.SandboxKey) || len(res.Matches[0].Owners) != 1 ||
		res.Matches[0].Owners[0].Runtime != "podman" || res.Matches[0].Owners[0].Name != c.Name {
		t.Errorf("whois %s: %s", c.IPs[0], stdout)
	}

	cm := complete(t, nil, "exec", "")
	if !cm.has("podman:"+c.Name) || !strings.Contains(cm.descs["podman:"+c.Name], "Podman container "+c.ID[:12]) || !cm.has(c.Name) {
		t.Errorf("completion lacks podman:%s (and the bare name): %v", c.Name, cm.words)
	}
}

// Bad Podman targets: one line on stderr, the documented exit codes.
func TestPodmanTargetErrors(t *testing.T) {
	testbed.Require(t)
	stopped := testbed.RunPodman(t, testbed.ContainerOpts{Prefix: "pmstopped", Stopped: true})
	d := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "pmboth"})
	testbed.MustRun(t, "podman", "run", "-d", "--pull=never", "--name", d.Name, "--label", "nsdebug-test=1", testbed.PodmanImage)
	t.Cleanup(func() { testbed.Run("podman", "rm", "-f", "-t", "0", d.Name) })

	cases := []struct {
		args []string
		kind error
		want []string
	}{
		{[]string{"resolve", "podman:" + stopped.Name}, nserr.ErrNotRunning, []string{"podman:" + stopped.Name, "is not running (state: exited)"}},
		{[]string{"resolve", "podman:" + testbed.UniqueName("nosuch")}, nserr.ErrNotFound, []string{"looked in podman (unix:///run/podman/podman.sock)"}},
		{[]string{"resolve", d.Name}, nserr.ErrAmbiguous, []string{"matches 2 network namespaces", "docker:" + d.Name, "podman:" + d.Name}},
		{[]string{"resolve", "podman:"}, nserr.ErrUsage, []string{"podman: container name is empty"}},
	}
	for _, c := range cases {
		stdout, stderr, code := run(t, c.args...)
		if want := nserr.ExitCode(c.kind, false); code != want {
			t.Errorf("%q: exit %d, want %d (%v); stderr %q", c.args, code, want, c.kind, stderr)
		}
		if strings.Count(stderr, "\n") != 1 || stdout != "" {
			t.Errorf("%q: want one line on stderr and nothing on stdout, got %q / %q", c.args, stderr, stdout)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%q: stderr %q lacks %q", c.args, stderr, w)
			}
		}
	}
	// exec says the same, with docker exec's 125 for its own failures.
	_, stderr, code := run(t, "exec", "podman:"+stopped.Name, "--", "true")
	if code != nserr.ExitExecFailed || !strings.Contains(stderr, "is not running") {
		t.Errorf("exec in a stopped podman container: exit %d, %q", code, stderr)
	}
}

// diagnose reads a Podman container like a Docker one: its published port
// (the compat API's port bindings) and CNI's per-address FORWARD accepts.
func TestDiagnosePodman(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunPodman(t, testbed.ContainerOpts{Prefix: "pmdiag", Args: []string{"-p", "127.0.0.1::80/tcp"},
		Cmd: []string{"httpd", "-f", "-p", "80"}})
	stdout, stderr, _ := run(t, "diagnose", "podman:"+c.Name, "-o", "json")
	var rep struct {
		Targets []struct {
			Target string `json:"target"`
			Checks []struct {
				ID, Status string
				Evidence   []struct{ Key string }
			} `json:"checks"`
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || len(rep.Targets) != 1 {
		t.Fatalf("diagnose -o json: %v %s %s", err, stdout, stderr)
	}
	got := map[string]string{}
	keys := map[string]string{}
	for _, ch := range rep.Targets[0].Checks {
		got[ch.ID] = ch.Status
		for _, e := range ch.Evidence {
			keys[ch.ID] += e.Key + ";"
		}
	}
	port := strings.TrimSpace(testbed.MustRun(t, "podman", "port", c.Name, "80/tcp"))
	if got["ports.listen"] != "PASS" || !strings.Contains(keys["ports.listen"], "tcp "+port+" -> 80") {
		t.Errorf("ports.listen %s (%s), podman port says %s", got["ports.listen"], keys["ports.listen"], port)
	}
	if got["forward.policy"] != "PASS" {
		t.Errorf("forward.policy %s (%s): CNI's firewall plugin accepts the container's address", got["forward.policy"], keys["forward.policy"])
	}
}

// A link to a Podman container whose process stopped is kept by
// unlink --stale while podman still has the container, and goes with it.
func TestUnlinkStalePodmanLink(t *testing.T) {
	testbed.Require(t)
	dir := newLinkDir(t)
	stateDir := filepath.Join(t.TempDir(), "links")
	runIn := func(args ...string) (string, string, int) {
		return runEnv(t, func(e *Env) {
			e.NetnsDir, e.LinkStateDir = dir, stateDir
			e.StaleRuntimeMinAge = time.Nanosecond
		}, args...)
	}
	c := testbed.RunPodman(t, testbed.ContainerOpts{Prefix: "pmlink"})
	if stdout, stderr, code := runIn("link", "podman:"+c.Name, "pm"); code != 0 {
		t.Fatalf("link: %d %q %q", code, stdout, stderr)
	}
	removeLinkOnCleanup(t, filepath.Join(dir, "pm"))
	testbed.MustRun(t, "podman", "stop", "-t", "0", c.Name)

	stdout, stderr, code := runIn("unlink", "--stale", "-o", "json")
	var rep enter.StaleReport
	if code != 0 || json.Unmarshal([]byte(stdout), &rep) != nil {
		t.Fatalf("--stale: exit %d %q %q", code, stdout, stderr)
	}
	kept := ""
	for _, k := range rep.Kept {
		if k.Path == filepath.Join(dir, "pm") {
			kept = k.Reason
		}
	}
	if len(rep.Removed) != 0 || !strings.Contains(kept, "podman:"+c.Name+", which still exists") {
		t.Fatalf("link of a stopped podman container: removed %+v, kept reason %q", rep.Removed, kept)
	}

	testbed.MustRun(t, "podman", "rm", "-f", "-t", "0", c.Name)
	stdout, stderr, code = runIn("unlink", "--stale", "-o", "json")
	rep = enter.StaleReport{}
	if code != 0 || json.Unmarshal([]byte(stdout), &rep) != nil {
		t.Fatalf("--stale: exit %d %q %q", code, stdout, stderr)
	}
	if len(rep.Removed) != 1 || rep.Removed[0].Name != "pm" {
		t.Errorf("link of a removed podman container: removed %+v", rep.Removed)
	}
}

// Rootless Podman: root on the host works in its containers; root of the
// user's namespace (podman unshare) reaches them, and where the user
// namespace stops it, one line says so.
func TestPodmanRootlessUserNamespace(t *testing.T) {
	testbed.RequireRootlessPodman(t)
	testbed.RootlessPodmanService(t)
	c := testbed.RunRootlessPodman(t, "pmrlx")
	nsPath := fmt.Sprintf("/proc/%d/ns/net", c.PID)

	// As root on the host: nsenter is the ground truth.
	out, _ := execOut(t, "podman:"+c.Name, "--", "ip", "-o", "link")
	want := testbed.MustRun(t, "nsenter", "--net="+nsPath, "ip", "-o", "link")
	if strings.TrimSpace(out) != want {
		t.Errorf("exec podman:%s -- ip -o link:\n%s\nnsenter says:\n%s", c.Name, out, want)
	}

	// A copy of the binary the user may run.
	dir, err := os.MkdirTemp("", "nsdebug-rootless")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "nsdebug")
	data, err := os.ReadFile(nsdebugBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	asUser := func(unshare bool, args ...string) (string, string, int) {
		argv := append([]string{bin}, args...)
		if unshare {
			argv = append([]string{"unshare"}, argv...)
			return runProcess(testbed.AsRootless("podman", argv...))
		}
		return runProcess(testbed.AsRootless(argv[0], argv[1:]...))
	}
	// Not root at all: the usual refusal, with the way in for one's own.
	_, stderr, code := asUser(false, "resolve", "podman:"+c.Name)
	if code != nserr.ExitCode(nserr.ErrPermission, false) || !strings.Contains(stderr, "podman unshare nsdebug") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("as %s: exit %d %q", testbed.RootlessUser, code, stderr)
	}
	// Root of the user's namespace: its own containers work...
	stdout, stderr, code := asUser(true, "exec", "podman:"+c.Name, "--", "ip", "-o", "link")
	if code != 0 || strings.TrimSpace(stdout) != want {
		t.Errorf("podman unshare nsdebug exec podman:%s: exit %d %q %q", c.Name, code, stdout, stderr)
	}
	// ...the host's namespace does not, and the message says why.
	for _, args := range [][]string{{"resolve", "pid:1"}, {"exec", "pid:1", "--", "true"}} {
		_, stderr, code := asUser(true, args...)
		if !strings.Contains(stderr, "runs as root of a user namespace (UID "+testbed.RootlessUID(t)+" on the host") {
			t.Errorf("podman unshare nsdebug %q: exit %d %q", args, code, stderr)
		}
	}
	host := testbed.RunPodman(t, testbed.ContainerOpts{Prefix: "pmrlhost"})
	_, stderr, code = asUser(true, "exec", host.SandboxKey, "--", "true")
	if code != nserr.ExitExecFailed || !strings.Contains(stderr, "cannot enter network namespace") || !strings.Contains(stderr, "runs as root of a user namespace") {
		t.Errorf("podman unshare nsdebug exec %s (rootful podman's netns): exit %d %q", host.SandboxKey, code, stderr)
	}
}

// Podman absent or silent (a socket that never answers): bounded by
// --timeout, a warning naming podman, every other runtime still answers and
// ls still lists the Podman container's netns from the kernel side.
func TestPodmanFaults(t *testing.T) {
	testbed.Require(t)
	pm := testbed.RunPodman(t, testbed.ContainerOpts{Prefix: "pmfault"})
	d := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "pmfaultd"})
	silent := testbed.SilentSocket(t)
	absent := filepath.Join(t.TempDir(), "absent.sock")
	for _, host := range []string{"unix://" + silent, "unix://" + absent} {
		start := time.Now()
		stdout, stderr, code := run(t, "--podman-host", host, "--timeout", "700ms", "ls", "-o", "json")
		if d := time.Since(start); d > 5*time.Second || code != 0 || !strings.Contains(stderr, "nsdebug: warning: podman: ") {
			t.Errorf("--podman-host %s: ls exit %d after %s: %q", host, code, d, stderr)
		}
		var rows []struct{ Netns struct{ Inode uint64 } }
		if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
			t.Fatalf("ls -o json: %v", err)
		}
		found := false
		for _, r := range rows {
			found = found || r.Netns.Inode == inodeOf(t, pm.SandboxKey)
		}
		if !found {
			t.Errorf("--podman-host %s: ls lost podman:%s's netns", host, pm.Name)
		}
		if _, stderr, code := run(t, "--podman-host", host, "--timeout", "700ms", "resolve", "docker:"+d.Name); code != 0 {
			t.Errorf("--podman-host %s: resolve docker:%s: exit %d %q", host, d.Name, code, stderr)
		}
		_, stderr, code = run(t, "--podman-host", host, "--timeout", "700ms", "resolve", "podman:"+pm.Name)
		if code != nserr.ExitCode(nserr.ErrUnavailable, false) || !strings.Contains(stderr, host) {
			t.Errorf("--podman-host %s: resolve podman:%s: exit %d %q", host, pm.Name, code, stderr)
		}
	}
}

// inspect, whois and graph see a Podman container's wiring as iproute2 does:
// eth0's peer is the host veth on cni-podman0.
func TestInspectGraphPodman(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunPodman(t, testbed.ContainerOpts{Prefix: "pmwire"})
	rep := inspectJSON(t, "podman:"+c.Name)
	peer := checkWired(t, rep, c.SandboxKey, "cni-podman0")
	checkWhois(t, peer.Ifname, inodeOf(t, c.SandboxKey), "podman:"+c.Name, "host veth "+peer.Ifname+" (#")
	wide, stderr, code := run(t, "ls", "-o", "wide")
	if code != 0 {
		t.Fatalf("ls -o wide: exit %d: %s", code, stderr)
	}
	if row := wideRow(wide, inodeOf(t, c.SandboxKey)); !slices.Contains(row, peer.Ifname+"@cni-podman0") {
		t.Errorf("ls -o wide row of podman:%s: %q, want %s@cni-podman0", c.Name, row, peer.Ifname)
	}
	graph, stderr, code := run(t, "graph", "-o", "text")
	if code != 0 || !strings.Contains(graph, peer.Ifname+" (veth)") || !strings.Contains(graph, "⇄ eth0 in podman:"+c.Name+" ") {
		t.Errorf("graph: exit %d %s\n%s", code, stderr, graph)
	}
}

// --cri-endpoint kubelet (kubectl nsdebug's helper) asks only the kubelet's
// runtime: a Podman container on the node is not the cluster's.
func TestKubeletModeSkipsPodman(t *testing.T) {
	testbed.RequireKube(t)
	testbed.Require(t)
	c := testbed.RunPodman(t, testbed.ContainerOpts{Prefix: "pmkube"})
	_, stderr, code := run(t, "--cri-endpoint", "kubelet", "resolve", c.Name)
	if code != nserr.ExitCode(nserr.ErrNotFound, false) || strings.Contains(stderr, "podman") {
		t.Errorf("--cri-endpoint kubelet resolve %s: exit %d %q, want not found without asking podman", c.Name, code, stderr)
	}
}

// Podman runs on the live profile's runc (Debian's 1.1.5, or 1.5.3 on
// current), and nsdebug finds its containers either way.
func TestPodmanFollowsProfileRunc(t *testing.T) {
	v := testbed.LiveVersions(t)
	want := map[string]string{testbed.ProfileDebian: "runc version 1.1.", testbed.ProfileCurrent: "runc version 1.5."}[v.Profile]
	path := testbed.MustRun(t, "podman", "info", "--format", "{{.Host.OCIRuntime.Path}}")
	if got := testbed.MustRun(t, path, "--version"); !strings.HasPrefix(got, want) {
		t.Errorf("profile %s: podman's runtime %s says %q, want %s*", v.Profile, path, got, want)
	}
	c := testbed.RunPodman(t, testbed.ContainerOpts{Prefix: "pmrunc"})
	if rt := testbed.MustRun(t, "podman", "inspect", "--format", "{{.OCIRuntime}}", c.Name); rt != "runc" {
		t.Errorf("podman:%s runs on %q, want the configured runc", c.Name, rt)
	}
	out, _ := execOut(t, "podman:"+c.Name, "--", "ip", "-4", "-o", "addr", "show", "eth0")
	if !strings.Contains(out, " "+c.IPs[0]+"/") {
		t.Errorf("exec podman:%s: %q, want %s", c.Name, out, c.IPs[0])
	}
}
