package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The one-node Kubernetes of scripts/testbed-kube.sh (make testbed-kube).
// Tests drive it with /usr/bin/kubectl, never client-go: this package is only
// imported by tests, and nsdebug's own dependencies stay as they are.
const (
	// Kubeconfig is the cluster admin's (group system:masters).
	Kubeconfig = "/etc/nsdebug-testbed/kubeconfig"
	// KubectlPath is the kubectl tests run (kubectl plugins are found by it).
	KubectlPath = "/usr/bin/kubectl"
	// KubeContainerdSock is the kubelet's own containerd (CRI), apart from
	// ContainerdSock whose fixtures the kubelet would garbage-collect.
	KubeContainerdSock = "/run/nsdebug-kube/containerd/containerd.sock"
	// KubeNode is the only node; pods set nodeName (there is no scheduler).
	KubeNode = "nsdebug-node"
	// KubeNamespace allows privileged pods; KubeRestrictedNamespace enforces
	// the restricted Pod Security level. Both exist for good: without a
	// controller manager a namespace cannot be deleted.
	KubeNamespace           = "nsdebug-test"
	KubeRestrictedNamespace = "nsdebug-restricted"
	// KubeImage is the test bed's busybox, imported into the kubelet's containerd.
	KubeImage = CtrdImage
)

var kubeBed = &bed{name: "Kubernetes test bed", setUp: "sudo make testbed testbed-kube", check: checkKube}

// RequireKube fails (CI) or skips (elsewhere) t unless the test bed's
// Kubernetes answers and its node is Ready.
func RequireKube(t testing.TB) {
	t.Helper()
	kubeBed.require(t)
}

func checkKube() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root")
	}
	for _, f := range []string{Kubeconfig, KubectlPath, KubeContainerdSock} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%s missing", f)
		}
	}
	out, errOut, err := KubectlRun(nil, "get", "node", KubeNode, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
	if err != nil {
		return fmt.Errorf("kubectl get node %s: %v %s", KubeNode, err, errOut)
	}
	if strings.TrimSpace(out) != "True" {
		return fmt.Errorf("node %s not Ready (%q)", KubeNode, out)
	}
	return nil
}

// KubectlRun runs kubectl against the test bed's cluster with stdin (may be
// nil) and returns stdout and stderr apart.
func KubectlRun(stdin []byte, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(KubectlPath, append([]string{"--kubeconfig", Kubeconfig}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// Kubectl runs kubectl against the test bed's cluster and fails t if it
// fails; returns trimmed stdout.
func Kubectl(t testing.TB, args ...string) string {
	t.Helper()
	return KubectlStdin(t, nil, args...)
}

// KubectlStdin is Kubectl with stdin.
func KubectlStdin(t testing.TB, stdin []byte, args ...string) string {
	t.Helper()
	out, errOut, err := KubectlRun(stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return strings.TrimSpace(out)
}

// KubeContainer is one container of a KubePodOptions.
type KubeContainer struct {
	Name    string   // "main" if empty (and the only one)
	Image   string   // KubeImage if empty
	Command []string // sleep if empty
	// PullPolicy is IfNotPresent if empty; no image can be pulled here.
	PullPolicy string
}

// KubePodOptions describe a pod for RunKubePod.
type KubePodOptions struct {
	Namespace  string // KubeNamespace if empty
	Name       string // a unique one if empty
	Labels     map[string]string
	Containers []KubeContainer // one busybox "main" container if empty
	// Timeout bounds the wait for Running (60 s if zero).
	Timeout time.Duration
}

// KubePod is a pod made by RunKubePod. SandboxID, SandboxPID and NetnsPath
// come from the kubelet's containerd (CRI), not from the API.
type KubePod struct {
	Namespace, Name, UID string
	IP                   string // status.podIP
	SandboxID            string
	SandboxPID           int
	NetnsPath            string // /var/run/netns/cni-...
}

// Ref is the pod as kubectl names it.
func (p *KubePod) Ref() string { return p.Namespace + "/" + p.Name }

// RunKubePod creates a pod on KubeNode (nodeName set, no service account
// token, images never pulled), waits until it is Running and deletes it in
// t.Cleanup (grace period 0), waiting until its sandbox is stopped and
// removed from the kubelet's containerd.
func RunKubePod(t testing.TB, opts KubePodOptions) *KubePod {
	t.Helper()
	RequireKube(t)
	if opts.Namespace == "" {
		opts.Namespace = KubeNamespace
	}
	if opts.Name == "" {
		opts.Name = UniqueName("kpod")
	}
	if opts.Timeout == 0 {
		opts.Timeout = 60 * time.Second
	}
	if len(opts.Containers) == 0 {
		opts.Containers = []KubeContainer{{}}
	}
	var containers []map[string]any
	for i, c := range opts.Containers {
		if c.Name == "" {
			c.Name = "main"
			if i > 0 {
				c.Name = fmt.Sprintf("c%d", i)
			}
		}
		if c.Image == "" {
			c.Image = KubeImage
		}
		if len(c.Command) == 0 {
			c.Command = []string{"sleep", "3600"}
		}
		if c.PullPolicy == "" {
			c.PullPolicy = "IfNotPresent"
		}
		containers = append(containers, map[string]any{
			"name": c.Name, "image": c.Image, "command": c.Command, "imagePullPolicy": c.PullPolicy,
		})
	}
	labels := map[string]string{"app.kubernetes.io/created-by": "nsdebug-tests"}
	for k, v := range opts.Labels {
		labels[k] = v
	}
	manifest, err := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": opts.Name, "namespace": opts.Namespace, "labels": labels},
		"spec": map[string]any{
			"nodeName":                      KubeNode,
			"automountServiceAccountToken":  false,
			"terminationGracePeriodSeconds": 0,
			"containers":                    containers,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	KubectlStdin(t, manifest, "create", "-f", "-")
	p := &KubePod{Namespace: opts.Namespace, Name: opts.Name}
	t.Cleanup(func() { p.delete(t) })

	if _, errOut, err := KubectlRun(nil, "-n", p.Namespace, "wait", "--for=jsonpath={.status.phase}=Running",
		"pod/"+p.Name, fmt.Sprintf("--timeout=%ds", int(opts.Timeout.Seconds()))); err != nil {
		desc, _, _ := KubectlRun(nil, "-n", p.Namespace, "describe", "pod", p.Name)
		t.Fatalf("pod %s not Running within %s: %v %s\n%s", p.Ref(), opts.Timeout, err, errOut, desc)
	}
	var obj struct {
		Metadata struct{ UID string }
		Status   struct{ PodIP string }
	}
	if err := json.Unmarshal([]byte(Kubectl(t, "-n", p.Namespace, "get", "pod", p.Name, "-o", "json")), &obj); err != nil {
		t.Fatalf("pod %s: %v", p.Ref(), err)
	}
	p.UID, p.IP = obj.Metadata.UID, obj.Status.PodIP

	conn, rt := kubeCRI(t)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sbs, err := rt.ListPodSandbox(ctx, &cri.ListPodSandboxRequest{Filter: &cri.PodSandboxFilter{
		LabelSelector: map[string]string{LabelPodUID: p.UID},
		State:         &cri.PodSandboxStateValue{State: cri.PodSandboxState_SANDBOX_READY},
	}})
	if err != nil || len(sbs.Items) != 1 {
		t.Fatalf("pod %s: ready sandboxes in the kubelet's containerd: %v %v", p.Ref(), sbs, err)
	}
	p.SandboxID = sbs.Items[0].Id
	st, err := rt.PodSandboxStatus(ctx, &cri.PodSandboxStatusRequest{PodSandboxId: p.SandboxID, Verbose: true})
	if err != nil {
		t.Fatalf("PodSandboxStatus %s: %v", p.SandboxID, err)
	}
	// containerd's verbose info: the sandbox task's PID and its OCI spec.
	var info struct {
		Pid         int
		RuntimeSpec struct {
			Linux struct {
				Namespaces []struct{ Type, Path string }
			}
		}
	}
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil {
		t.Fatalf("sandbox %s info: %v", p.SandboxID, err)
	}
	p.SandboxPID = info.Pid
	for _, ns := range info.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "network" {
			p.NetnsPath = ns.Path
		}
	}
	if p.SandboxPID <= 0 || p.NetnsPath == "" {
		t.Fatalf("sandbox %s: no pid (%d) or netns (%q) in its info", p.SandboxID, p.SandboxPID, p.NetnsPath)
	}
	return p
}

func kubeCRI(t testing.TB) (*grpc.ClientConn, cri.RuntimeServiceClient) {
	t.Helper()
	return dialCRI(t, KubeContainerdSock)
}

// delete removes the pod object at once (grace 0), then waits for the
// kubelet to stop its sandbox (netns and IP released) and removes the
// stopped sandbox, which the kubelet's own GC would only do within a minute.
func (p *KubePod) delete(t testing.TB) {
	t.Helper()
	if _, errOut, err := KubectlRun(nil, "-n", p.Namespace, "delete", "pod", p.Name,
		"--grace-period=0", "--force", "--ignore-not-found", "--wait=false"); err != nil {
		t.Errorf("cleanup: kubectl delete pod %s: %v %s", p.Ref(), err, errOut)
		return
	}
	if p.UID == "" {
		return // never became Running, so no UID; the kubelet cleans up alone
	}
	conn, rt := kubeCRI(t)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		sbs, err := rt.ListPodSandbox(ctx, &cri.ListPodSandboxRequest{Filter: &cri.PodSandboxFilter{
			LabelSelector: map[string]string{LabelPodUID: p.UID},
		}})
		if err != nil {
			t.Errorf("cleanup: pod %s: sandbox still there after 60 s (%v)", p.Ref(), err)
			return
		}
		ready := 0
		for _, sb := range sbs.Items {
			if sb.State == cri.PodSandboxState_SANDBOX_READY {
				ready++
			}
		}
		if ready == 0 {
			for _, sb := range sbs.Items {
				removeSandbox(ctx, t, rt, sb.Id, p.Ref())
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// removeSandbox removes a stopped pod's sandbox, retrying while the kubelet's
// own teardown of it is still under way: a remove that overlaps it runs CNI's
// delete on a netns file the kubelet has just unmounted but not yet removed
// ("unknown FS magic ... ef53"), which a retry a moment later does not meet.
func removeSandbox(ctx context.Context, t testing.TB, rt cri.RuntimeServiceClient, id, ref string) {
	t.Helper()
	for {
		_, err := rt.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: id})
		if err == nil || status.Code(err) == codes.NotFound {
			return
		}
		select {
		case <-ctx.Done():
			t.Errorf("cleanup: remove sandbox %s of %s: %v", id, ref, err)
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}
