package cmd

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nsdebug/nsdebug/diagnose"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

// completion is what `nsdebug __complete ARGS...` printed: candidates (the
// word before any tab), ActiveHelp lines, and the directive.
type completion struct {
	words      []string
	descs      map[string]string
	activeHelp []string
	directive  string
	stderr     string
}

func (c completion) has(w string) bool { return c.descs[w] != "" || contains2(c.words, w) }

// complete runs the built binary (as the shell scripts do) with extra
// environment and arguments.
func complete(t *testing.T, prefix []string, args ...string) completion {
	t.Helper()
	bin := nsdebugBinary(t)
	argv := append(append(append([]string{}, prefix...), bin, "__complete"), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	stdout, stderr, code := runProcess(cmd)
	if code != 0 {
		t.Fatalf("__complete %q: exit %d, stderr %q", args, code, stderr)
	}
	c := completion{descs: map[string]string{}, stderr: stderr}
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	for i, l := range lines {
		if i == len(lines)-1 {
			if !strings.HasPrefix(l, ":") {
				t.Fatalf("__complete %q: last line %q is not a directive", args, l)
			}
			c.directive = l
			break
		}
		if h, ok := strings.CutPrefix(l, "_activeHelp_ "); ok {
			c.activeHelp = append(c.activeHelp, h)
			continue
		}
		w, d, _ := strings.Cut(l, "\t")
		c.words = append(c.words, w)
		c.descs[w] = d
	}
	return c
}

func lines(s string) []string { return strings.Fields(s) }

// Targets complete from what the runtimes and iproute2 say runs now: a
// Docker container (prefixed and, being unique, bare), a CRI pod, a named
// netns, PIDs with their command.
func TestCompleteTargets(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "cmpl"})
	pod := testbed.RunPod(t, testbed.PodOptions{Namespace: "cmpl-ns"})
	ns := testbed.NewNetNS(t, "cmpl")

	dockerBefore := lines(testbed.MustRun(t, "docker", "ps", "--format", "{{.Names}}"))
	netnsBefore := lines(testbed.MustRun(t, "ls", "/var/run/netns"))
	got := complete(t, nil, "exec", "")
	dockerAfter := lines(testbed.MustRun(t, "docker", "ps", "--format", "{{.Names}}"))
	netnsAfter := lines(testbed.MustRun(t, "ls", "/var/run/netns"))

	if got.directive != ":4" { // ShellCompDirectiveNoFileComp
		t.Errorf("directive %s, want :4", got.directive)
	}
	if len(got.activeHelp) != 0 {
		t.Errorf("ActiveHelp with every runtime up: %q", got.activeHelp)
	}
	for _, w := range []string{"docker:" + c.Name, c.Name, pod.Ref(), pod.Name, "netns:" + ns.Name, "pid:"} {
		if !got.has(w) {
			t.Errorf("exec <TAB> lacks %q", w)
		}
	}
	if got.descs[c.Name] != "docker:"+c.Name || !strings.Contains(got.descs["docker:"+c.Name], c.ID[:12]) {
		t.Errorf("descriptions: %q -> %q, %q -> %q", c.Name, got.descs[c.Name], "docker:"+c.Name, got.descs["docker:"+c.Name])
	}
	// Against the runtimes: every container docker ps listed before and
	// after is offered, and nothing docker ps never listed.
	offered := map[string]bool{}
	for _, w := range got.words {
		offered[w] = true
		if name, ok := strings.CutPrefix(w, "docker:"); ok && !contains2(dockerBefore, name) && !contains2(dockerAfter, name) {
			t.Errorf("offered %s, which docker ps does not list", w)
		}
		if name, ok := strings.CutPrefix(w, "netns:"); ok && !contains2(netnsBefore, name) && !contains2(netnsAfter, name) {
			t.Errorf("offered %s, which is not in /var/run/netns", w)
		}
	}
	for _, n := range dockerBefore {
		if contains2(dockerAfter, n) && !offered["docker:"+n] {
			t.Errorf("docker ps lists %s, not offered", n)
		}
	}
	for _, n := range netnsBefore {
		if contains2(netnsAfter, n) && !offered["netns:"+n] {
			t.Errorf("ip netns has %s, not offered", n)
		}
	}
	// Pods: the CRI API's own list of ready pods.
	conn, rt := testbed.CRIClient(t)
	defer conn.Close()
	resp, err := rt.ListPodSandbox(context.Background(), &cri.ListPodSandboxRequest{Filter: &cri.PodSandboxFilter{State: &cri.PodSandboxStateValue{State: cri.PodSandboxState_SANDBOX_READY}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.Items {
		ref := "pod:" + p.Metadata.Namespace + "/" + p.Metadata.Name
		if !offered[ref] && time.Since(time.Unix(0, p.CreatedAt)) > 5*time.Second {
			t.Errorf("CRI lists ready pod %s, not offered", ref)
		}
	}

	// A prefix narrows the candidates to its runtime.
	pre := complete(t, nil, "inspect", "docker:"+c.Name[:len(c.Name)-2])
	if !pre.has("docker:"+c.Name) || len(pre.words) == 0 {
		t.Errorf("inspect docker:<prefix> lacks %s: %q", c.Name, pre.words)
	}
	for _, w := range pre.words {
		if !strings.HasPrefix(w, "docker:"+c.Name[:len(c.Name)-2]) {
			t.Errorf("inspect docker:<prefix> offers %q", w)
		}
	}
	pp := complete(t, nil, "resolve", "pod:cmpl-ns/")
	if len(pp.words) != 1 || pp.words[0] != pod.Ref() {
		t.Errorf("resolve pod:cmpl-ns/<TAB> = %q, want only %s", pp.words, pod.Ref())
	}

	// pid: offers PIDs with their command (ground truth: /proc/PID/comm).
	pids := complete(t, nil, "shell", "pid:"+strconv.Itoa(c.PID))
	comm, _ := os.ReadFile("/proc/" + strconv.Itoa(c.PID) + "/comm")
	if d := pids.descs["pid:"+strconv.Itoa(c.PID)]; d == "" || d != strings.TrimSpace(string(comm)) {
		t.Errorf("pid:%d<TAB>: %q (descriptions %v), want its command %q", c.PID, pids.words, pids.descs, comm)
	}
	for _, w := range pids.words {
		if !strings.HasPrefix(w, "pid:"+strconv.Itoa(c.PID)) {
			t.Errorf("pid:%d<TAB> offers %q", c.PID, w)
		}
	}

	// unlink offers the entries of /var/run/netns.
	un := complete(t, nil, "unlink", ns.Name[:len(ns.Name)-1])
	if !un.has(ns.Name) {
		t.Errorf("unlink <TAB> lacks %s: %q", ns.Name, un.words)
	}
	if un2 := complete(t, nil, "unlink", "--stale", ""); len(un2.words) != 0 {
		t.Errorf("unlink --stale <TAB> offers %q", un2.words)
	}
}

// sysctl TARGET net.ipv4.<TAB> offers the keys of that netns, one component
// at a time, compared with the netns's own /proc/sys/net (nsenter + ls).
func TestCompleteSysctlKeys(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "cmpl-sys"})
	got := complete(t, nil, "sysctl", c.Name, "net.ipv4.conf.")
	if strings.Join(got.words, " ") != "net.ipv4.conf.all. net.ipv4.conf.default. net.ipv4.conf.eth0. net.ipv4.conf.lo." {
		t.Errorf("sysctl %s net.ipv4.conf.<TAB> = %q, want the container's all, default, eth0, lo", c.Name, got.words)
	}
	if got.directive != ":6" { // NoSpace | NoFileComp
		t.Errorf("directive %s, want :6", got.directive)
	}
	top := complete(t, nil, "sysctl", "docker:"+c.Name, "net.ipv4.")
	ls := testbed.MustRun(t, "nsenter", "-t", strconv.Itoa(c.PID), "-n", "sh", "-c", `cd /proc/sys/net/ipv4 && for f in *; do if [ -d "$f" ]; then echo "net.ipv4.$f."; elif [ -r "$f" ]; then echo "net.ipv4.$f"; fi; done`)
	if strings.Join(top.words, "\n") != strings.TrimSpace(ls) {
		t.Errorf("sysctl net.ipv4.<TAB>:\n%s\nwant (from the netns's /proc/sys/net):\n%s", strings.Join(top.words, "\n"), ls)
	}
	leaf := complete(t, nil, "sysctl", c.Name, "net.core.somaxc")
	if strings.Join(leaf.words, " ") != "net.core.somaxconn" {
		t.Errorf("net.core.somaxc<TAB> = %q", leaf.words)
	}
	if v := complete(t, nil, "sysctl", c.Name, "net.core.somaxconn="); len(v.words) != 0 {
		t.Errorf("a value is completed: %q", v.words)
	}
	// Not root: nothing listed, and ActiveHelp says why.
	nr := complete(t, []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}, "sysctl", c.Name, "net.")
	if len(nr.words) != 0 || len(nr.activeHelp) != 1 || !strings.Contains(nr.activeHelp[0], "root") {
		t.Errorf("as nobody: %q, ActiveHelp %q", nr.words, nr.activeHelp)
	}
}

// Fixed lists: inspect --section (comma-separated) and every -o.
func TestCompleteFlags(t *testing.T) {
	testbed.RequireRoot(t)
	if got := complete(t, nil, "inspect", "x", "--section", "links,r"); strings.Join(got.words, " ") != "links,routes links,rules" {
		t.Errorf("--section links,r<TAB> = %q", got.words)
	}
	if got := complete(t, nil, "inspect", "x", "--section", ""); strings.Join(got.words, " ") != "links addrs routes rules neigh sockets sysctls firewall" {
		t.Errorf("--section <TAB> = %q", got.words)
	}
	for cmd, want := range map[string]string{"ls": "table wide json", "graph": "text dot", "inspect": "text json", "resolve": "text json", "sysctl": "text json", "whois": "text json", "link": "text json", "unlink": "text json", "diagnose": "text json"} {
		if got := complete(t, nil, cmd, "-o", ""); strings.Join(got.words, " ") != want || got.directive != ":4" {
			t.Errorf("%s -o <TAB> = %q %s, want %q", cmd, got.words, got.directive, want)
		}
	}
	for _, tc := range []struct{ args, want []string }{
		{[]string{"capture", "x", "--format", ""}, []string{"pcapng", "pcap"}},
		{[]string{"capture", "x", "--linktype", ""}, []string{"sll2", "sll"}},
		{[]string{"diagnose", "x", "--fail-on", ""}, []string{"fail", "warn"}},
	} {
		if got := complete(t, nil, tc.args...); strings.Join(got.words, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%q <TAB> = %q, want %q", tc.args, got.words, tc.want)
		}
	}
	// Every check diagnose has, and nothing else, for --check and --skip.
	var ids []string
	for _, ch := range diagnose.Checks() {
		ids = append(ids, ch.ID)
	}
	for _, flag := range []string{"--check", "--skip"} {
		if got := complete(t, nil, "diagnose", "x", flag, ""); strings.Join(got.words, " ") != strings.Join(ids, " ") {
			t.Errorf("diagnose %s <TAB> = %q, want %q", flag, got.words, ids)
		}
	}
}

// With Docker silent (a socket that accepts and never answers), completion
// still returns within its bound, offers what the other runtimes and the
// kernel side have, says on an ActiveHelp line that Docker could not be
// listed, and prints no error.
func TestCompleteRuntimeDown(t *testing.T) {
	testbed.Require(t)
	pod := testbed.RunPod(t, testbed.PodOptions{})
	ns := testbed.NewNetNS(t, "cmpl-down")
	sock := testbed.SilentSocket(t)
	start := time.Now()
	got := complete(t, nil, "--docker-host", "unix://"+sock, "exec", "")
	took := time.Since(start)
	// The bound is 1s; the runtimes' own --timeout (3s) must not apply.
	if took > 2500*time.Millisecond {
		t.Errorf("completion with Docker silent took %s", took)
	}
	if !got.has(pod.Ref()) || !got.has("netns:"+ns.Name) {
		t.Errorf("with Docker silent, lacks %s or netns:%s", pod.Ref(), ns.Name)
	}
	if len(got.activeHelp) == 0 || !strings.Contains(strings.Join(got.activeHelp, " "), "docker at unix://"+sock) {
		t.Errorf("no ActiveHelp naming the silent Docker: %q", got.activeHelp)
	}
	if strings.Contains(got.stderr, "nsdebug:") {
		t.Errorf("an error on stderr: %q", got.stderr)
	}
	t.Logf("took %s; ActiveHelp %q", took, got.activeHelp)
}

// As another user: named netns and PIDs are still offered (no privilege
// needed), containers and pods are not, and ActiveHelp says why.
func TestCompleteNotRoot(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "cmpl-nr"})
	ns := testbed.NewNetNS(t, "cmpl-nr")
	got := complete(t, []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}, "exec", "")
	if !got.has("netns:"+ns.Name) || got.has("docker:"+c.Name) {
		t.Errorf("as nobody: netns:%s offered %v, docker:%s offered %v", ns.Name, got.has("netns:"+ns.Name), c.Name, got.has("docker:"+c.Name))
	}
	if len(got.activeHelp) != 1 || !strings.Contains(got.activeHelp[0], "not root") {
		t.Errorf("as nobody: ActiveHelp %q", got.activeHelp)
	}
	if got.directive != ":4" {
		t.Errorf("as nobody: directive %s", got.directive)
	}
}
