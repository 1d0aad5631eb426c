package kube

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/version"
)

func TestParse(t *testing.T) {
	cases := []struct {
		args             []string
		sub, target, thg string
		pass             []string
		sel, node, ns    string
	}{
		{args: []string{"web", "--", "ip", "addr"}, sub: "exec", target: "web", pass: []string{"--", "ip", "addr"}},
		{args: []string{"-n", "shop", "web/app", "-e", "A=1", "--", "env"}, sub: "exec", target: "web/app", pass: []string{"-e", "A=1", "--", "env"}, ns: "shop"},
		{args: []string{"exec", "--image", "x", "web", "--", "true"}, sub: "exec", target: "web", pass: []string{"--", "true"}},
		{args: []string{"inspect", "web", "-o", "json"}, sub: "inspect", target: "web", pass: []string{"-o", "json"}},
		{args: []string{"sysctl", "web", "net.ipv4.ip_forward=1"}, sub: "sysctl", target: "web", pass: []string{"net.ipv4.ip_forward=1"}},
		{args: []string{"shell", "web"}, sub: "shell", target: "web"},
		{args: []string{"capture", "web", "-c", "4", "tcp", "port", "80"}, sub: "capture", target: "web", pass: []string{"-c", "4", "tcp", "port", "80"}},
		{args: []string{"diagnose", "-n", "shop", "web", "-o", "json"}, sub: "diagnose", target: "web", pass: []string{"-o", "json"}, ns: "shop"},
		{args: []string{"ls", "--node", "n1", "--", "-o", "wide"}, sub: "ls", pass: []string{"-o", "wide"}, node: "n1"},
		{args: []string{"ls", "node/n1", "-o", "wide"}, sub: "ls", target: "node/n1", pass: []string{"-o", "wide"}},
		{args: []string{"graph", "web"}, sub: "graph", target: "web"},
		{args: []string{"whois", "10.1.2.3", "node/n1"}, sub: "whois", thg: "10.1.2.3", target: "node/n1"},
		{args: []string{"whois", "--node", "n1", "10.1.2.3", "-o", "json"}, sub: "whois", thg: "10.1.2.3", pass: []string{"-o", "json"}, node: "n1"},
		{args: []string{"-l", "app=web", "--", "true"}, sub: "exec", pass: []string{"--", "true"}, sel: "app=web"},
		{args: []string{"inspect", "-l", "app=web", "--", "-o", "json"}, sub: "inspect", pass: []string{"-o", "json"}, sel: "app=web"},
		{args: []string{"gc", "--all"}, sub: "gc"},
		{args: []string{"help", "exit-codes"}, sub: "help", pass: []string{"exit-codes"}},
	}
	for _, c := range cases {
		o := &Options{}
		iv, err := parse(c.args, o)
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if iv.sub != c.sub || iv.target != c.target || iv.thing != c.thg || !reflect.DeepEqual(nonNil(iv.pass), nonNil(c.pass)) || o.Selector != c.sel || o.Node != c.node || *o.Config.Namespace != c.ns {
			t.Errorf("%q: got %+v sel %q node %q ns %q", c.args, iv, o.Selector, o.Node, *o.Config.Namespace)
		}
	}
}

func nonNil(a []string) []string {
	if a == nil {
		return []string{}
	}
	return a
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "no pod given"},
		{[]string{"web"}, "no command given"},
		{[]string{"web", "--"}, "no command given"},
		{[]string{"inspect"}, "inspect needs a pod"},
		{[]string{"ls"}, "ls needs a node"},
		{[]string{"whois"}, "whois needs THING"},
		{[]string{"-l", "a=b", "web", "--", "true"}, "not both"},
		{[]string{"shell", "-l", "a=b"}, "shell opens one terminal"},
		{[]string{"capture", "-l", "a=b", "--", "-w", "-"}, "capture -l prints each pod's packets"},
		{[]string{"capture", "-l", "a=b", "--", "-c", "5", "-Uw", "-", "icmp"}, "capture -l prints each pod's packets"},
		{[]string{"capture", "-l", "a=b", "--", "--write=x"}, "capture -l prints each pod's packets"},
		{[]string{"ls", "-l", "a=b"}, "-l works with pod commands"},
		{[]string{"--bogus", "web", "--", "true"}, "unknown flag: --bogus"},
		{[]string{"--image-pull-policy", "Sometimes", "web", "--", "true"}, "want Always, IfNotPresent or Never"},
		{[]string{"inspect", "node/n1"}, "inspect needs a pod, not node/n1"},
		{[]string{"gc", "extra"}, "gc takes no arguments"},
	} {
		_, err := parse(c.args, &Options{})
		if err == nil || !errors.Is(err, nserr.ErrUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want usage error with %q", c.args, err, c.want)
		}
	}
}

// Usage errors: exec-style 125, others 2; one line on stderr.
func TestMainUsageExit(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"web"}, 125},
		{[]string{"inspect"}, 2},
		{[]string{"help", "nope"}, 2},
	} {
		var out, errb bytes.Buffer
		code := Main(c.args, Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errb})
		if code != c.code || strings.Count(errb.String(), "\n") != 1 || !strings.HasPrefix(errb.String(), "kubectl-nsdebug: ") {
			t.Errorf("%q: code %d stderr %q, want %d and one line", c.args, code, errb.String(), c.code)
		}
	}
	var out bytes.Buffer
	if code := Main([]string{"help", "exit-codes"}, Streams{Out: &out, ErrOut: &out}); code != 0 || !strings.Contains(out.String(), "13  helper pod rejected by admission") {
		t.Errorf("help exit-codes: %d %q", code, out.String())
	}
}

func TestExitMapping(t *testing.T) {
	cases := []struct {
		err  error
		exec bool
		want int
	}{
		{&nserr.ExecError{Code: 3}, true, 3},
		{&nserr.ExecError{Code: 127}, false, 127},
		{nserr.New(nserr.ErrAdmission, "x"), false, 13},
		{nserr.New(nserr.ErrHelper, "x"), false, 12},
		{nserr.New(nserr.ErrProtocol, "x"), false, 14},
		{nserr.New(nserr.ErrAdmission, "x"), true, 125},
		{nserr.New(nserr.ErrPermission, "x"), false, 7},
		{&signalError{sig: 2, code: 130}, true, 130},
	}
	for _, c := range cases {
		var b bytes.Buffer
		if got := exit(Streams{ErrOut: &b}, invocation{sub: map[bool]string{true: "exec", false: "inspect"}[c.exec]}, c.err); got != c.want {
			t.Errorf("%v: %d, want %d", c.err, got, c.want)
		}
	}
}

func TestHelperPod(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := HelperSpec{Name: HelperName("node-1"), Namespace: "kube-system", Node: "node-1", Image: "img:1", PullPolicy: corev1.PullIfNotPresent,
		Lifetime: 10 * time.Minute, Client: "laptop", TargetNS: "shop", TargetPod: "web", Command: "exec", Now: now}
	p := HelperPod(s)
	spec := p.Spec
	c := spec.Containers[0]
	if spec.NodeName != "node-1" || spec.RestartPolicy != corev1.RestartPolicyNever || !spec.HostPID || spec.HostNetwork || spec.HostIPC {
		t.Errorf("spec %+v", spec)
	}
	if *spec.ActiveDeadlineSeconds != int64((10*time.Minute+DeadlineSlack)/time.Second) || *spec.TerminationGracePeriodSeconds != 0 || *spec.AutomountServiceAccountToken {
		t.Errorf("deadline/grace/token %v %v %v", *spec.ActiveDeadlineSeconds, *spec.TerminationGracePeriodSeconds, *spec.AutomountServiceAccountToken)
	}
	if len(spec.Tolerations) != 1 || spec.Tolerations[0].Operator != corev1.TolerationOpExists || spec.Tolerations[0].Key != "" {
		t.Errorf("tolerations %+v", spec.Tolerations)
	}
	if len(spec.Volumes) != 1 || spec.Volumes[0].EmptyDir == nil || len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/tmp" {
		t.Errorf("volumes %+v %+v", spec.Volumes, c.VolumeMounts)
	}
	if c.SecurityContext.Privileged != nil {
		t.Error("privileged without sysctl writes")
	}
	if got := c.SecurityContext.Capabilities.Add; !reflect.DeepEqual(got, []corev1.Capability{"SYS_ADMIN", "SYS_PTRACE", "NET_ADMIN", "NET_RAW"}) {
		t.Errorf("caps %v", got)
	}
	wantCmd := []string{"nsdebug", "node-helper", "--protocol=" + itoa(version.Protocol), "--until=2026-01-02T03:15:05Z"}
	if !reflect.DeepEqual(c.Command, wantCmd) {
		t.Errorf("command %q, want %q", c.Command, wantCmd)
	}
	if p.Labels[LabelManagedBy] != "nsdebug" || p.Labels[LabelTargetPod] != "web" || p.Labels[LabelTargetNS] != "shop" || p.Labels[LabelClient] != "laptop" || p.Labels[LabelTargetNode] != "node-1" {
		t.Errorf("labels %v", p.Labels)
	}
	if p.Annotations[AnnotationDeadln] != "2026-01-02T03:16:05Z" {
		t.Errorf("deadline annotation %q", p.Annotations[AnnotationDeadln])
	}
	s.Privileged = true
	if p := HelperPod(s); p.Spec.Containers[0].SecurityContext.Privileged == nil || !*p.Spec.Containers[0].SecurityContext.Privileged {
		t.Error("sysctl write helper not privileged")
	}
	long := strings.Repeat("n", 300)
	if n := HelperName(long); len(n) > validation.DNS1123SubdomainMaxLength || len(validation.IsDNS1123Subdomain(n)) != 0 {
		t.Errorf("name %q invalid", n)
	}
	if v := labelSafe("user@host:1/" + long); len(validation.IsValidLabelValue(v)) != 0 {
		t.Errorf("label %q invalid", v)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestGCReason(t *testing.T) {
	now := time.Now()
	mk := func(deadline time.Time, phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{LabelManagedBy: ManagedByValue},
			Annotations: map[string]string{AnnotationDeadln: deadline.UTC().Format(time.RFC3339)}}, Status: corev1.PodStatus{Phase: phase}}
	}
	if r := gcReason(mk(now.Add(time.Hour), corev1.PodRunning), now, false); r != "" {
		t.Errorf("live helper collected: %s", r)
	}
	if r := gcReason(mk(now.Add(time.Hour), corev1.PodRunning), now, true); !strings.HasPrefix(r, "--all") {
		t.Errorf("--all: %q", r)
	}
	if r := gcReason(mk(now.Add(-time.Second), corev1.PodRunning), now, false); !strings.HasPrefix(r, "past its deadline") {
		t.Errorf("past: %q", r)
	}
	if r := gcReason(mk(now.Add(time.Hour), corev1.PodFailed), now, false); !strings.HasPrefix(r, "ended") {
		t.Errorf("ended: %q", r)
	}
	other := mk(now.Add(-time.Hour), corev1.PodRunning)
	other.Labels = nil
	if r := gcReason(other, now, true); r != "" {
		t.Errorf("foreign pod collected: %q", r)
	}
}

func TestRemoteArgv(t *testing.T) {
	k := &client{o: &Options{}}
	iv := invocation{sub: "exec", pass: []string{"-e", "A=1", "--", "ip", "addr"}}
	got := k.remoteArgv(iv, "pod:ns/web")
	want := []string{"nsdebug", "--cri-endpoint", "kubelet", "exec", "pod:ns/web", "-e", "A=1", "--", "ip", "addr"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("exec: %q", got)
	}
	k.o.HostTools = true
	got = k.remoteArgv(iv, "pod:ns/web")
	// The node's root comes from nsdebug exec --node-root on the node (the
	// kubelet's mount namespace), never a chroot that would drop exec's
	// /sys, resolv.conf and hosts overlays.
	want = []string{"nsdebug", "--cri-endpoint", "kubelet", "exec", "--node-root", "pod:ns/web", "-e", "A=1", "--", "ip", "addr"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("host tools: %q", got)
	}
	got = k.remoteArgv(invocation{sub: "shell", pass: []string{"-w", "/tmp"}}, "pod:ns/web")
	want = []string{"nsdebug", "--cri-endpoint", "kubelet", "exec", "--node-root", "pod:ns/web", "-w", "/tmp", "--", "/bin/sh", "-i"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("host tools shell: %q", got)
	}
	k.o.HostTools = false
	got = k.remoteArgv(invocation{sub: "whois", thing: "10.0.0.1", pass: []string{"-o", "json"}}, "")
	want = []string{"nsdebug", "--cri-endpoint", "kubelet", "whois", "10.0.0.1", "-o", "json"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("whois: %q", got)
	}
	got = k.remoteArgv(invocation{sub: "capture", pass: []string{"-c", "2", "icmp"}}, "pod:ns/web")
	want = []string{"nsdebug", "--cri-endpoint", "kubelet", "capture", "--stop-on-stdin-eof", "pod:ns/web", "-c", "2", "icmp"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("capture: %q", got)
	}
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"-w", "-"}, true}, {[]string{"-pw", "f"}, true}, {[]string{"--write", "f"}, true},
		{[]string{"-iwlan0", "icmp"}, false}, {[]string{"-c", "5", "icmp"}, false}, {[]string{"--", "-w"}, false},
	} {
		if got := writesFile(c.args); got != c.want {
			t.Errorf("writesFile(%q) = %v, want %v", c.args, got, c.want)
		}
	}
	if !sysctlWrites(invocation{sub: "sysctl", pass: []string{"net.ipv4.ip_forward=1"}}) || sysctlWrites(invocation{sub: "sysctl", pass: []string{"net.ipv4.ip_forward"}}) {
		t.Error("sysctlWrites")
	}
}

func TestPrefixWriter(t *testing.T) {
	var b bytes.Buffer
	var mu = new(syncMutex)
	w := &prefixWriter{mu: &mu.Mutex, w: &b, prefix: "[pod/a/c] "}
	_, _ = w.Write([]byte("one\ntw"))
	_, _ = w.Write([]byte("o\nthree"))
	w.Flush()
	if b.String() != "[pod/a/c] one\n[pod/a/c] two\n[pod/a/c] three\n" {
		t.Errorf("%q", b.String())
	}
}

// client-go must stay out of the nsdebug binary: it would slow its start.
func TestNsdebugLinksNoClientGo(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(goBin, "list", "-deps", "github.com/nsdebug/nsdebug/cmd/nsdebug")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	if !strings.Contains(string(out), "github.com/nsdebug/nsdebug/resolver") {
		t.Fatalf("go list output does not look like nsdebug's deps: %.200s", out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "k8s.io/client-go") || strings.HasPrefix(l, "k8s.io/cli-runtime") || strings.HasPrefix(l, "github.com/nsdebug/nsdebug/kube") {
			t.Errorf("nsdebug links %s", l)
		}
	}
}

type syncMutex struct{ sync.Mutex }
