package kube_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// pluginDir holds kubectl-nsdebug (and nsdebug): $KUBECTL_NSDEBUG_BIN's
// directory, else the repository's bin/ (make build).
func pluginDir(t *testing.T) string {
	t.Helper()
	p := os.Getenv("KUBECTL_NSDEBUG_BIN")
	if p == "" {
		abs, err := filepath.Abs("../bin/kubectl-nsdebug")
		if err != nil {
			t.Fatal(err)
		}
		p = abs
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("kubectl-nsdebug not built (%v): run make build", err)
	}
	return filepath.Dir(p)
}

// plugin is `kubectl nsdebug ARGS` through /usr/bin/kubectl, which finds the
// plugin on PATH as it would for a user.
func plugin(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	testbed.RequireKube(t)
	cmd := exec.Command(testbed.KubectlPath, append([]string{"nsdebug"}, args...)...)
	cmd.Env = pluginEnv(t)
	return cmd
}

// pluginEnv: the plugin on PATH, the test bed's kubeconfig, and the helper
// image of bin/nsdebug's version, which make testbed-kube imported; never
// pulled (there is no registry, and a pull would look up an outside name).
func pluginEnv(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command(filepath.Join(pluginDir(t), "nsdebug"), "version", "-o", "json").Output()
	if err != nil {
		t.Fatalf("nsdebug version: %v", err)
	}
	var v struct{ Version string }
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	image := "docker.io/nsdebug/nsdebug:" + v.Version
	imagesOnce.Do(func() {
		// From the kubelet's containerd itself: the node status lags.
		out, _ := exec.Command("ctr", "-a", testbed.KubeContainerdSock, "-n", "k8s.io", "images", "ls", "-q").Output()
		nodeImages = string(out)
	})
	if !strings.Contains("\n"+nodeImages, "\n"+image+"\n") {
		t.Fatalf("image %s is not on node %s (run make testbed-kube after make build): %s", image, testbed.KubeNode, nodeImages)
	}
	return append(os.Environ(), "PATH="+pluginDir(t)+":"+os.Getenv("PATH"), "KUBECONFIG="+testbed.Kubeconfig,
		"KUBECTL_NSDEBUG_IMAGE="+image, "KUBECTL_NSDEBUG_IMAGE_PULL_POLICY=Never")
}

var (
	imagesOnce sync.Once
	nodeImages string
)

type result struct {
	out, err string
	code     int
}

func runPlugin(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	cmd := plugin(t, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("kubectl nsdebug %q: %v", args, err)
	}
	return result{o.String(), e.String(), code}
}

// noHelpersLeft: after the test, no helper pod made for target pod name
// remains. Only the test's own helpers are counted and deleted: other
// engineers' and CI's runs share the cluster, and deleting their helpers
// would fail their tests ("deleted while starting").
func noHelpersLeft(t *testing.T, name string) {
	t.Helper()
	t.Cleanup(func() {
		if hs := helpersOf(t, name, false); len(hs) > 0 {
			t.Errorf("helper pods left behind: %v", hs)
			for _, h := range hs {
				_, _, _ = testbed.KubectlRun(nil, "-n", "kube-system", "delete", h, "--grace-period=0", "--force")
			}
		}
	})
}

// noNodeHelpersLeft: after the test, no helper without a target pod (-l,
// ls, graph, whois) made since it started remains. Reported, not deleted:
// a concurrent run's may be among them.
func noNodeHelpersLeft(t *testing.T) {
	t.Helper()
	start := time.Now().Add(-time.Second)
	t.Cleanup(func() {
		out := testbed.Kubectl(t, "get", "pods", "-A", "-l", "app.kubernetes.io/managed-by=nsdebug,!nsdebug.io/target-pod", "-o", "jsonpath={range .items[*]}{.metadata.name} {.metadata.creationTimestamp}{\"\\n\"}{end}")
		for _, line := range strings.Split(out, "\n") {
			name, ts, ok := strings.Cut(line, " ")
			if c, err := time.Parse(time.RFC3339, ts); ok && err == nil && c.After(start.Truncate(time.Second)) {
				t.Errorf("helper pod %s (made during the test) left behind", name)
			}
		}
	})
}

func pod(t *testing.T, opts testbed.KubePodOptions) *testbed.KubePod {
	t.Helper()
	p := testbed.RunKubePod(t, opts)
	noHelpersLeft(t, p.Name)
	return p
}

// exec: the pod IP iproute2 shows on eth0 through the plugin is the one the
// API gives; the command's exit status comes back as the plugin's.
func TestExecPodIP(t *testing.T) {
	p := pod(t, testbed.KubePodOptions{})
	apiIP := testbed.Kubectl(t, "-n", p.Namespace, "get", "pod", p.Name, "-o", "jsonpath={.status.podIP}")
	r := runPlugin(t, "", "-n", p.Namespace, p.Name, "--", "ip", "-4", "-o", "addr", "show", "eth0")
	if r.code != 0 || !strings.Contains(r.out, "inet "+apiIP+"/") {
		t.Fatalf("code %d out %q err %q; want inet %s/", r.code, r.out, r.err, apiIP)
	}
	for _, c := range []struct {
		argv []string
		code int
	}{{[]string{"true"}, 0}, {[]string{"sh", "-c", "exit 3"}, 3}, {[]string{"no-such-command-nsdebug"}, 127}} {
		r := runPlugin(t, "", append([]string{"-n", p.Namespace, p.Name, "--"}, c.argv...)...)
		if r.code != c.code {
			t.Errorf("%q: exit %d, want %d (stderr %q)", c.argv, r.code, c.code, r.err)
		}
	}
}

// --host-tools: the command is the NODE's binary (iproute2's ip, which the
// helper image's busybox is not), run in the pod's netns, and it sees the
// pod's /sys/class/net, resolv.conf and hosts as any exec does.
func TestHostTools(t *testing.T) {
	p := pod(t, testbed.KubePodOptions{})
	apiIP := testbed.Kubectl(t, "-n", p.Namespace, "get", "pod", p.Name, "-o", "jsonpath={.status.podIP}")
	hostTools := func(argv ...string) result {
		t.Helper()
		return runPlugin(t, "", append([]string{"-n", p.Namespace, "--host-tools", p.Name, "--"}, argv...)...)
	}
	r := hostTools("ip", "-4", "-o", "addr", "show", "eth0")
	if r.code != 0 || !strings.Contains(r.out, "inet "+apiIP+"/") {
		t.Fatalf("code %d out %q err %q; want inet %s/", r.code, r.out, r.err, apiIP)
	}
	// Which ip ran: the node's prints its iproute2 version, as ip on this
	// machine (the node) does; the helper image's busybox ip has no -V.
	want, err := exec.Command("ip", "-V").CombinedOutput()
	if err != nil || !strings.Contains(string(want), "iproute2") {
		t.Fatalf("ip -V on the node: %q, %v", want, err)
	}
	if r := hostTools("ip", "-V"); r.code != 0 || strings.TrimSpace(r.out) != strings.TrimSpace(string(want)) {
		t.Errorf("--host-tools ip -V: code %d out %q err %q; want the node's %q", r.code, r.out, r.err, want)
	}
	if r := runPlugin(t, "", "-n", p.Namespace, p.Name, "--", "ip", "-V"); strings.Contains(r.out, "iproute2") {
		t.Errorf("without --host-tools ip -V printed %q: the helper image's ip is the node's, the test proves nothing", r.out)
	}
	// A file only the node has (the helper image is busybox + nsdebug).
	nodeOnly, err := exec.Command("readlink", "-f", "/proc/self/exe").Output()
	if err != nil {
		t.Fatal(err)
	}
	if r := hostTools("readlink", "-f", "/proc/self/exe"); r.code != 0 || r.out != string(nodeOnly) {
		t.Errorf("--host-tools readlink: code %d out %q err %q; want the node's %q", r.code, r.out, r.err, nodeOnly)
	}
	// exec's overlays stay: the pod's interfaces in /sys/class/net and its
	// resolv.conf, as the pod itself sees them.
	fields := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	podNet := testbed.Kubectl(t, "-n", p.Namespace, "exec", p.Name, "--", "ls", "/sys/class/net")
	if r := hostTools("ls", "/sys/class/net"); r.code != 0 || fields(r.out) != fields(podNet) {
		t.Errorf("--host-tools ls /sys/class/net: code %d out %q err %q; want the pod's %q", r.code, r.out, r.err, podNet)
	}
	podResolv := testbed.Kubectl(t, "-n", p.Namespace, "exec", p.Name, "--", "cat", "/etc/resolv.conf")
	if r := hostTools("cat", "/etc/resolv.conf"); r.code != 0 || strings.TrimSpace(r.out) != strings.TrimSpace(podResolv) {
		t.Errorf("--host-tools cat /etc/resolv.conf: code %d out %q err %q; want the pod's %q", r.code, r.out, r.err, podResolv)
	}
	// And the pod's /etc/hosts (the kubelet's, with the pod's own name and
	// address), not the helper's: with the helper image's tools too.
	podHosts := testbed.Kubectl(t, "-n", p.Namespace, "exec", p.Name, "--", "cat", "/etc/hosts")
	for _, r := range []result{hostTools("cat", "/etc/hosts"), runPlugin(t, "", "-n", p.Namespace, p.Name, "--", "cat", "/etc/hosts")} {
		if r.code != 0 || strings.TrimSpace(r.out) != strings.TrimSpace(podHosts) || strings.Contains(r.err, "hosts") {
			t.Errorf("cat /etc/hosts: code %d out %q err %q; want the pod's %q and no warning", r.code, r.out, r.err, podHosts)
		}
	}
	// The command's status still comes back.
	if r := hostTools("no-such-command-nsdebug"); r.code != 127 {
		t.Errorf("--host-tools missing command: exit %d, want 127 (stderr %q)", r.code, r.err)
	}
}

// -u NAME with --host-tools is the NODE's user: its UID, groups and HOME
// come from the node's /etc/passwd and /etc/group, as `id NAME` on the node
// gives them, not from the helper image's (busybox and nsdebug: no
// /etc/passwd at all, so no name resolves there).
func TestHostToolsUser(t *testing.T) {
	p := pod(t, testbed.KubePodOptions{})
	users := []string{"_apt"} // Debian's, on every node of this kind
	// And a user with supplementary groups, when the node has one.
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	home := map[string]string{}
	for _, line := range strings.Split(string(passwd), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 7 {
			continue
		}
		home[f[0]] = f[5]
		if len(users) == 1 && f[0] != "root" {
			if g, err := exec.Command("id", "-G", f[0]).Output(); err == nil && len(strings.Fields(string(g))) > 1 {
				users = append(users, f[0])
			}
		}
	}
	for _, u := range users {
		want, err := exec.Command("id", u).Output()
		if err != nil {
			t.Fatalf("id %s on the node: %v", u, err)
		}
		r := runPlugin(t, "", "-n", p.Namespace, "--host-tools", p.Name, "-u", u, "--", "sh", "-c", `id; echo "HOME=$HOME"`)
		if wantOut := string(want) + "HOME=" + home[u] + "\n"; r.code != 0 || r.out != wantOut {
			t.Errorf("--host-tools -u %s: code %d out %q err %q; want the node's %q", u, r.code, r.out, r.err, wantOut)
		}
	}
	// Without --host-tools the user database is the helper image's.
	if r := runPlugin(t, "", "-n", p.Namespace, p.Name, "-u", "_apt", "--", "id"); r.code != 125 || !strings.Contains(r.err, "no such user") {
		t.Errorf("-u _apt with the image's tools: code %d out %q err %q; want 125 and no such user (the image has no _apt)", r.code, r.out, r.err)
	}
}

func TestExecTwoContainersAndStdin(t *testing.T) {
	p := pod(t, testbed.KubePodOptions{Containers: []testbed.KubeContainer{{Name: "one"}, {Name: "two"}}})
	for _, ref := range []string{p.Name + "/one", p.Name + "/two", "pod/" + p.Name + "/two"} {
		r := runPlugin(t, "", "-n", p.Namespace, ref, "--", "ip", "-4", "-o", "addr", "show", "eth0")
		if r.code != 0 || !strings.Contains(r.out, "inet "+p.IP+"/") {
			t.Errorf("%s: code %d out %q err %q", ref, r.code, r.out, r.err)
		}
	}
	r := runPlugin(t, "", "-n", p.Namespace, p.Name+"/three", "--", "true")
	if r.code != 125 || !strings.Contains(r.err, `has no container "three" (it has: one, two)`) || strings.Count(r.err, "\n") != 1 {
		t.Errorf("unknown container: %d %q", r.code, r.err)
	}
	r = runPlugin(t, "hello through stdin\n", "-n", p.Namespace, p.Name, "--", "cat")
	if r.code != 0 || r.out != "hello through stdin\n" {
		t.Errorf("stdin: %d %q %q", r.code, r.out, r.err)
	}
}

// -l over three pods: one line per pod, prefixed as kubectl logs --prefix,
// each with its own IP; the status is the worst.
func TestSelector(t *testing.T) {
	noNodeHelpersLeft(t)
	label := testbed.UniqueName("sel")
	var ps []*testbed.KubePod
	for i := 0; i < 3; i++ {
		ps = append(ps, pod(t, testbed.KubePodOptions{Labels: map[string]string{"nsdebug-sel": label}}))
	}
	r := runPlugin(t, "", "-n", testbed.KubeNamespace, "-l", "nsdebug-sel="+label, "--", "ip", "-4", "-o", "addr", "show", "eth0")
	if r.code != 0 {
		t.Fatalf("code %d err %q", r.code, r.err)
	}
	for _, p := range ps {
		re := regexp.MustCompile(`(?m)^\[pod/` + regexp.QuoteMeta(p.Name) + `/main\] .*inet ` + regexp.QuoteMeta(p.IP) + `/`)
		if !re.MatchString(r.out) {
			t.Errorf("no line for %s (%s) in %q", p.Name, p.IP, r.out)
		}
	}
	if n := strings.Count(r.out, "\n"); n != 3 {
		t.Errorf("%d lines, want 3: %q", n, r.out)
	}
	// The worst status: one pod exits 4, the others 0 or 2.
	script := fmt.Sprintf(`case $(ip -4 -o addr show eth0) in *" %s/"*) exit 4;; *" %s/"*) exit 2;; esac`, ps[0].IP, ps[1].IP)
	r = runPlugin(t, "", "-n", testbed.KubeNamespace, "-l", "nsdebug-sel="+label, "--", "sh", "-c", script)
	if r.code != 4 {
		t.Errorf("worst status %d, want 4 (%q)", r.code, r.err)
	}
}

// A TTY session driven by script(1): the remote side has a terminal.
func TestTTY(t *testing.T) {
	p := pod(t, testbed.KubePodOptions{})
	testbed.RequireKube(t)
	cmd := exec.Command("script", "-qec", fmt.Sprintf("%s nsdebug -n %s shell %s", testbed.KubectlPath, p.Namespace, p.Name), "/dev/null")
	cmd.Env = pluginEnv(t)
	cmd.Stdin = strings.NewReader("tty; echo answer=$((6*7)); exit 5\n")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 5 {
		t.Errorf("exit %v, want 5; output %q", err, out)
	}
	if !strings.Contains(string(out), "/dev/pts/") || !strings.Contains(string(out), "answer=42") {
		t.Errorf("output %q: want a /dev/pts terminal and answer=42", out)
	}
}

// SIGINT and SIGTERM mid-command: the helper is deleted, the status is
// 128+N. SIGKILL leaves it; gc removes it once past its deadline.
func TestSignals(t *testing.T) {
	p := pod(t, testbed.KubePodOptions{})
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		cmd := plugin(t, "-n", p.Namespace, p.Name, "--", "sleep", "60")
		var e bytes.Buffer
		cmd.Stderr = &e
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitHelperRunning(t, p.Name)
		time.Sleep(500 * time.Millisecond) // the exec is under way
		_ = cmd.Process.Signal(sig)
		err := cmd.Wait()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 128+int(sig) {
			t.Errorf("%v: exit %v, want %d (%q)", sig, err, 128+int(sig), e.String())
		}
		if hs := helpersOf(t, p.Name, false); len(hs) > 0 {
			t.Errorf("%v: helper left: %v", sig, hs)
		}
	}
	cmd := plugin(t, "-n", p.Namespace, p.Name, "--", "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	name := waitHelperRunning(t, p.Name)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	// Other runs' helpers may be within their deadline too: this one must
	// be among those kept.
	if r := runPlugin(t, "", "gc"); r.code != 0 || strings.Contains(r.out, "deleted "+name+" ") || !regexp.MustCompile(`deleted, [1-9]\d* still within`).MatchString(r.out) {
		t.Errorf("gc within the deadline: %d %q %q", r.code, r.out, r.err)
	}
	ads := testbed.Kubectl(t, "-n", "kube-system", "get", name, "-o", "jsonpath={.spec.activeDeadlineSeconds}")
	if ads != fmt.Sprint(int((30*time.Minute+2*time.Minute)/time.Second)) {
		t.Errorf("activeDeadlineSeconds %q", ads)
	}
	testbed.Kubectl(t, "-n", "kube-system", "annotate", "--overwrite", name, "nsdebug.io/deadline="+time.Now().Add(-time.Second).UTC().Format(time.RFC3339))
	if r := runPlugin(t, "", "gc"); r.code != 0 || !strings.Contains(r.out, "deleted "+name+" ") || !strings.Contains(r.out, "past its deadline") {
		t.Errorf("gc past the deadline: %d %q %q", r.code, r.out, r.err)
	}
}

// A second and third Ctrl-C while the first one's clean-up runs do not
// skip the deletion (nor kill the plugin: its status is still 130).
func TestRepeatedCtrlC(t *testing.T) {
	p := pod(t, testbed.KubePodOptions{})
	cmd := plugin(t, "-n", p.Namespace, p.Name, "--", "sleep", "60")
	var e bytes.Buffer
	cmd.Stderr = &e
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); len(helpersOf(t, p.Name, true)) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no helper Running within 60 s")
		}
	}
	time.Sleep(500 * time.Millisecond) // the exec is under way
	for i := 0; i < 3; i++ {
		_ = cmd.Process.Signal(syscall.SIGINT)
		time.Sleep(time.Millisecond)
	}
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Errorf("exit %v, want 130 (%q)", err, e.String())
	}
	if hs := helpersOf(t, p.Name, false); len(hs) > 0 {
		t.Errorf("helper left after three Ctrl-C: %v", hs)
	}
}

// activeDeadlineSeconds ends a helper whose client and idle command are both
// gone, server-side, without gc.
func TestActiveDeadline(t *testing.T) {
	p := pod(t, testbed.KubePodOptions{})
	cmd := plugin(t, "-n", p.Namespace, "--timeout", "2s", "--deadline-slack", "3s", p.Name, "--", "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	name := waitHelperRunning(t, p.Name)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	deadline := time.Now().Add(60 * time.Second)
	for {
		phase := testbed.Kubectl(t, "-n", "kube-system", "get", name, "-o", "jsonpath={.status.phase}/{.status.reason}")
		if strings.HasPrefix(phase, "Failed") || strings.HasPrefix(phase, "Succeeded") {
			t.Logf("%s: %s", name, phase)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %s after 60 s", name, phase)
		}
		time.Sleep(time.Second)
	}
	if r := runPlugin(t, "", "gc"); r.code != 0 || !strings.Contains(r.out, "deleted "+name+" ") {
		t.Errorf("gc of an ended helper: %d %q %q", r.code, r.out, r.err)
	}
}

func waitHelperRunning(t *testing.T, target string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if hs := helpersOf(t, target, true); len(hs) > 0 {
			return hs[0]
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no helper pod Running within 60 s")
	return ""
}

// Pod Security admission, a missing image, unknown pod/namespace/node: one
// line naming the reason, a documented status, never a hang.
func TestErrors(t *testing.T) {
	p := pod(t, testbed.KubePodOptions{})
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"restricted helper namespace", []string{"--helper-namespace", testbed.KubeRestrictedNamespace, "inspect", p.Name}, 13,
			[]string{"Pod Security admission rejected", "pod-security.kubernetes.io/enforce=restricted", "--helper-namespace", testbed.KubeRestrictedNamespace}},
		{"restricted helper namespace, exec", []string{"--helper-namespace", testbed.KubeRestrictedNamespace, p.Name, "--", "true"}, 125,
			[]string{"Pod Security admission rejected"}},
		{"missing image", []string{"--image", "docker.io/nsdebug/no-such-image:0", "--image-pull-policy", "Never", "inspect", p.Name}, 12,
			[]string{"ErrImageNeverPull", "docker.io/nsdebug/no-such-image:0"}},
		{"unknown pod", []string{"inspect", "no-such-pod"}, 3, []string{`pod "no-such-pod" not found in namespace "nsdebug-test"`}},
		{"unknown namespace", []string{"-n", "no-such-ns", "inspect", "web"}, 3, []string{`namespace "no-such-ns" not found`}},
		{"unknown node", []string{"ls", "node/no-such-node"}, 3, []string{`node "no-such-node" not found`}},
		{"unknown helper namespace", []string{"--helper-namespace", "no-such-ns", "inspect", p.Name}, 3, []string{`helper namespace "no-such-ns" not found`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			r := runPlugin(t, "", append([]string{"-n", p.Namespace}, c.args...)...)
			if r.code != c.code || strings.Count(r.err, "\n") != 1 || !strings.HasPrefix(r.err, "kubectl-nsdebug: ") {
				t.Errorf("exit %d stderr %q; want %d and one line", r.code, r.err, c.code)
			}
			for _, w := range c.want {
				if !strings.Contains(r.err, w) {
					t.Errorf("stderr %q lacks %q", r.err, w)
				}
			}
			if d := time.Since(start); d > 45*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

// RBAC: a service account bound to exactly what `kubectl nsdebug rbac`
// prints runs exec; without pods/exec it gets "forbidden" naming it.
func TestRBAC(t *testing.T) {
	p := pod(t, testbed.KubePodOptions{})
	sa := testbed.UniqueName("sa")
	name := testbed.UniqueName("nsdebug-rbac")
	testbed.Kubectl(t, "-n", testbed.KubeNamespace, "create", "serviceaccount", sa)
	t.Cleanup(func() {
		_, _, _ = testbed.KubectlRun(nil, "-n", testbed.KubeNamespace, "delete", "serviceaccount", sa)
		_, _, _ = testbed.KubectlRun(nil, "delete", "clusterrole,clusterrolebinding", name, "--ignore-not-found")
		_, _, _ = testbed.KubectlRun(nil, "-n", "kube-system", "delete", "role,rolebinding", name, "--ignore-not-found")
	})
	r := runPlugin(t, "", "rbac", "--rbac-name", name, "--for-serviceaccount", testbed.KubeNamespace+":"+sa)
	if r.code != 0 {
		t.Fatalf("rbac: %d %q", r.code, r.err)
	}
	testbed.KubectlStdin(t, []byte(r.out), "apply", "-f", "-")
	as := "system:serviceaccount:" + testbed.KubeNamespace + ":" + sa
	// Nothing before the binding.
	ok := runPlugin(t, "", "--as", as, "-n", p.Namespace, p.Name, "--", "ip", "-4", "-o", "addr", "show", "eth0")
	if ok.code != 0 || !strings.Contains(ok.out, "inet "+p.IP+"/") {
		t.Fatalf("with the printed RBAC: %d %q %q", ok.code, ok.out, ok.err)
	}
	// The same role without pods/exec.
	role := testbed.Kubectl(t, "-n", "kube-system", "get", "role", name, "-o", "json")
	var obj map[string]any
	if err := json.Unmarshal([]byte(role), &obj); err != nil {
		t.Fatal(err)
	}
	rules := obj["rules"].([]any)
	var kept []any
	for _, rl := range rules {
		if !strings.Contains(fmt.Sprint(rl.(map[string]any)["resources"]), "pods/exec") {
			kept = append(kept, rl)
		}
	}
	obj["rules"] = kept
	b, _ := json.Marshal(obj)
	testbed.KubectlStdin(t, b, "replace", "-f", "-")
	r = runPlugin(t, "", "--as", as, "-n", p.Namespace, "inspect", p.Name)
	if r.code != 7 || !strings.Contains(r.err, "forbidden") || !strings.Contains(r.err, `cannot create resource "pods/exec"`) {
		t.Errorf("without pods/exec: %d %q", r.code, r.err)
	}
	// Nor is anything of the target namespace granted: no exec there.
	if _, errOut, err := testbed.KubectlRun(nil, "--as", as, "-n", p.Namespace, "exec", p.Name, "--", "true"); err == nil || !strings.Contains(errOut, "forbidden") {
		t.Errorf("kubectl exec into the target as the SA: %v %q", err, errOut)
	}
}

// sysctl write through the plugin changes the pod's netns only; inspect -o
// json through the plugin equals nsdebug's on the node.
func TestSysctlAndInspectParity(t *testing.T) {
	p := pod(t, testbed.KubePodOptions{})
	key := "net.ipv4.ip_unprivileged_port_start"
	hostBefore, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		t.Fatal(err)
	}
	r := runPlugin(t, "", "-n", p.Namespace, "sysctl", p.Name, key+"=777")
	if r.code != 0 {
		t.Fatalf("sysctl write: %d %q %q", r.code, r.out, r.err)
	}
	if got := testbed.Kubectl(t, "-n", p.Namespace, "exec", p.Name, "--", "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"); got != "777" {
		t.Errorf("in the pod: %q, want 777", got)
	}
	if hostAfter, _ := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); !bytes.Equal(hostAfter, hostBefore) {
		t.Errorf("host changed: %q -> %q", hostBefore, hostAfter)
	}
	r = runPlugin(t, "", "-n", p.Namespace, "inspect", p.Name, "-o", "json")
	if r.code != 0 {
		t.Fatalf("inspect: %d %q", r.code, r.err)
	}
	nsdebug := filepath.Join(pluginDir(t), "nsdebug")
	local, err := exec.Command(nsdebug, "--cri-endpoint", "unix://"+testbed.KubeContainerdSock, "inspect", "pod:"+p.Namespace+"/"+p.Name, "-o", "json").Output()
	if err != nil {
		t.Fatalf("nsdebug on the node: %v", err)
	}
	if r.out != string(local) {
		t.Errorf("inspect through the plugin differs from nsdebug on the node:\nplugin: %s\nnode:   %s", r.out, local)
	}
}

// resolve, whois, ls and graph through the plugin, against what the CRI
// (the test bed's fixture) and the kernel say of the pod: its sandbox, its
// netns inode (stat of the CRI's netns file), its IP.
func TestNodeCommands(t *testing.T) {
	noNodeHelpersLeft(t)
	p := pod(t, testbed.KubePodOptions{})
	var st syscall.Stat_t
	if err := syscall.Stat(p.NetnsPath, &st); err != nil {
		t.Fatal(err)
	}
	inode := st.Ino
	r := runPlugin(t, "", "-n", p.Namespace, "resolve", p.Name, "-o", "json")
	var res struct {
		ID    string `json:"id"`
		Netns struct {
			Inode uint64 `json:"inode"`
		} `json:"netns"`
		Target string `json:"target"`
	}
	if err := json.Unmarshal([]byte(r.out), &res); r.code != 0 || err != nil {
		t.Fatalf("resolve: %d %v %q %q", r.code, err, r.out, r.err)
	}
	if res.ID != p.SandboxID || res.Netns.Inode != inode || res.Target != "pod:"+p.Namespace+"/"+p.Name {
		t.Errorf("resolve: %+v; want sandbox %s, inode %d", res, p.SandboxID, inode)
	}
	// whois the pod IP, on the node named and on the pod's node.
	for _, where := range []string{"node/" + testbed.KubeNode, p.Name} {
		r := runPlugin(t, "", "-n", p.Namespace, "whois", p.IP, where)
		if r.code != 0 || !regexp.MustCompile(`(?m)^owner: +pod:`+regexp.QuoteMeta(p.Namespace+"/"+p.Name)+`$`).MatchString(r.out) ||
			!strings.Contains(r.out, fmt.Sprintf("net:[%d]", inode)) {
			t.Errorf("whois %s %s: %d %q %q", p.IP, where, r.code, r.out, r.err)
		}
	}
	// ls: the pod's netns with its owner and address (--node, flags after --).
	r = runPlugin(t, "", "ls", "--node", testbed.KubeNode, "--", "-o", "json")
	var entries []struct {
		Netns struct {
			Inode uint64 `json:"inode"`
		} `json:"netns"`
		Owners []struct {
			Pod struct{ Namespace, Name string } `json:"pod"`
		} `json:"owners"`
		Interfaces []struct {
			Addresses []string `json:"addresses"`
		} `json:"interfaces"`
	}
	if err := json.Unmarshal([]byte(r.out), &entries); r.code != 0 || err != nil {
		t.Fatalf("ls: %d %v %q", r.code, err, r.err)
	}
	found := false
	for _, e := range entries {
		if e.Netns.Inode != inode {
			continue
		}
		found = len(e.Owners) > 0 && e.Owners[0].Pod.Name == p.Name && e.Owners[0].Pod.Namespace == p.Namespace &&
			strings.Contains(fmt.Sprint(e.Interfaces), p.IP+"/")
		if !found {
			t.Errorf("ls entry for net:[%d]: %+v", inode, e)
		}
	}
	if !found {
		t.Errorf("ls: no entry for the pod's net:[%d] in %q", inode, r.out)
	}
	// graph: the pod's end of its veth, named by its owner, with its IP.
	r = runPlugin(t, "", "graph", "node/"+testbed.KubeNode)
	if want := fmt.Sprintf("⇄ eth0 in pod:%s/%s %s/", p.Namespace, p.Name, p.IP); r.code != 0 || !strings.Contains(r.out, want) {
		t.Errorf("graph: %d %q %q; want %q", r.code, r.out, r.err, want)
	}
}
