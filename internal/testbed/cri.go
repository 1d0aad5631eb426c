package testbed

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// kubelet's labels on pods and their containers.
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
)

// PodOptions describe a pod for RunPod.
type PodOptions struct {
	Namespace   string // Kubernetes namespace; "default" if empty
	Name        string // pod name; a unique one if empty
	HostNetwork bool
	Containers  []string // app container names (each runs sleep)
	// Command replaces the app containers' sleep (nil: sleep).
	Command []string
	// DNS replaces kubelet's ClusterFirst configuration (nil: ClusterFirst).
	DNS *cri.DNSConfig
	// Ports are published through the CNI portmap plugin.
	Ports []*cri.PortMapping
}

// Pod is a pod made by RunPod. Everything but the IDs comes from outside the
// CRI API (ctr, iproute2), so tests can use it as ground truth.
type Pod struct {
	Namespace, Name, UID string
	SandboxID            string
	SandboxPID           int
	NetnsPath            string // /var/run/netns/cni-...; "" for hostNetwork pods
	IP                   string
	Containers           map[string]PodContainer // by container name

	conn    *grpc.ClientConn
	rt      cri.RuntimeServiceClient
	removed bool
}

// PodContainer is one app container of a Pod.
type PodContainer struct {
	ID  string
	PID int
}

// CRIClient dials the test bed's CRI socket; the caller closes the conn.
func CRIClient(t testing.TB) (*grpc.ClientConn, cri.RuntimeServiceClient) {
	t.Helper()
	return dialCRI(t, ContainerdSock)
}

func dialCRI(t testing.TB, sock string) (*grpc.ClientConn, cri.RuntimeServiceClient) {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial CRI at %s: %v", sock, err)
	}
	return conn, cri.NewRuntimeServiceClient(conn)
}

// RunPod starts a pod through the CRI API the way kubelet does
// (RunPodSandbox, then CreateContainer and StartContainer per container, with
// kubelet's labels) and removes it in t.Cleanup.
func RunPod(t testing.TB, opts PodOptions) *Pod {
	t.Helper()
	RequireRoot(t)
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.Name == "" {
		opts.Name = UniqueName("pod")
	}
	p := &Pod{
		Namespace: opts.Namespace, Name: opts.Name,
		UID:        fmt.Sprintf("nsdebug-%d-%d", time.Now().UnixNano(), len(opts.Containers)),
		Containers: map[string]PodContainer{},
	}
	p.conn, p.rt = CRIClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	netMode := cri.NamespaceMode_POD
	if opts.HostNetwork {
		netMode = cri.NamespaceMode_NODE
	}
	nsOpts := &cri.NamespaceOption{Network: netMode, Pid: cri.NamespaceMode_CONTAINER, Ipc: cri.NamespaceMode_POD}
	podLabels := map[string]string{LabelPodName: p.Name, LabelPodNamespace: p.Namespace, LabelPodUID: p.UID}
	logDir := t.TempDir() // removed after the pod (cleanups run last-in first-out)
	cfg := &cri.PodSandboxConfig{
		Metadata:     &cri.PodSandboxMetadata{Name: p.Name, Namespace: p.Namespace, Uid: p.UID},
		LogDirectory: logDir,
		Labels:       podLabels,
		Annotations:  map[string]string{"kubernetes.io/config.source": "api"},
		Linux: &cri.LinuxPodSandboxConfig{
			SecurityContext: &cri.LinuxSandboxSecurityContext{NamespaceOptions: nsOpts},
		},
	}
	if !opts.HostNetwork {
		// As kubelet: a hostname only with a UTS namespace of the pod's
		// own, and ClusterFirst DNS (tests find it in the pod's resolv.conf).
		cfg.Hostname = p.Name
		cfg.DnsConfig = &cri.DNSConfig{
			Servers:  []string{"10.99.0.10"},
			Searches: []string{p.Namespace + ".svc.cluster.local", "svc.cluster.local", "cluster.local"},
			Options:  []string{"ndots:5"},
		}
		if opts.DNS != nil {
			cfg.DnsConfig = opts.DNS
		}
		cfg.PortMappings = opts.Ports
	}
	run, err := p.rt.RunPodSandbox(ctx, &cri.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		p.conn.Close()
		t.Fatalf("RunPodSandbox %s/%s: %v", p.Namespace, p.Name, err)
	}
	p.SandboxID = run.PodSandboxId
	t.Cleanup(func() { p.remove(t) })

	command := []string{"/bin/sleep", "2147483647"}
	if opts.Command != nil {
		command = opts.Command
	}
	for _, name := range opts.Containers {
		labels := map[string]string{LabelContainerName: name}
		for k, v := range podLabels {
			labels[k] = v
		}
		created, err := p.rt.CreateContainer(ctx, &cri.CreateContainerRequest{
			PodSandboxId:  p.SandboxID,
			SandboxConfig: cfg,
			Config: &cri.ContainerConfig{
				Metadata:    &cri.ContainerMetadata{Name: name},
				Image:       &cri.ImageSpec{Image: CtrdImage},
				Command:     command,
				Labels:      labels,
				Annotations: map[string]string{"io.kubernetes.container.restartCount": "0"},
				LogPath:     name + "/0.log",
				Linux: &cri.LinuxContainerConfig{
					SecurityContext: &cri.LinuxContainerSecurityContext{NamespaceOptions: nsOpts},
				},
			},
		})
		if err != nil {
			t.Fatalf("CreateContainer %s in pod %s/%s: %v", name, p.Namespace, p.Name, err)
		}
		if _, err := p.rt.StartContainer(ctx, &cri.StartContainerRequest{ContainerId: created.ContainerId}); err != nil {
			t.Fatalf("StartContainer %s in pod %s/%s: %v", name, p.Namespace, p.Name, err)
		}
		p.Containers[name] = PodContainer{ID: created.ContainerId}
	}

	st, err := p.rt.PodSandboxStatus(ctx, &cri.PodSandboxStatusRequest{PodSandboxId: p.SandboxID})
	if err != nil {
		t.Fatalf("PodSandboxStatus %s: %v", p.SandboxID, err)
	}
	p.IP = st.GetStatus().GetNetwork().GetIp()

	// Ground truth from containerd's task list (ctr) and iproute2, not CRI.
	pids := ctrTaskPIDs(t, "k8s.io")
	p.SandboxPID = pids[p.SandboxID]
	if p.SandboxPID == 0 {
		t.Fatalf("sandbox %s has no running task in containerd", p.SandboxID)
	}
	for name, c := range p.Containers {
		c.PID = pids[c.ID]
		if c.PID == 0 {
			t.Fatalf("container %s (%s) has no running task in containerd", name, c.ID)
		}
		p.Containers[name] = c
	}
	if !opts.HostNetwork {
		name := MustRun(t, "ip", "netns", "identify", strconv.Itoa(p.SandboxPID))
		if name == "" {
			t.Fatalf("ip netns identify %d: the sandbox netns has no name under /var/run/netns", p.SandboxPID)
		}
		p.NetnsPath = "/var/run/netns/" + name
	}
	return p
}

// Ref is the pod in target syntax.
func (p *Pod) Ref() string { return "pod:" + p.Namespace + "/" + p.Name }

// Stop stops the pod's sandbox (StopPodSandbox) but keeps it, as kubelet
// does before removal; the pod is then NOTREADY.
func (p *Pod) Stop(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := p.rt.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: p.SandboxID}); err != nil {
		t.Fatalf("StopPodSandbox %s: %v", p.SandboxID, err)
	}
}

// Remove stops and removes the pod now (kubelet's pod deletion); the
// cleanup registered by RunPod then does nothing.
func (p *Pod) Remove(t testing.TB) {
	t.Helper()
	p.remove(t)
}

func (p *Pod) remove(t testing.TB) {
	if p.removed {
		return
	}
	p.removed = true
	defer p.conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := p.rt.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: p.SandboxID}); err != nil {
		t.Errorf("cleanup: StopPodSandbox %s: %v", p.SandboxID, err)
	}
	if _, err := p.rt.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: p.SandboxID}); err != nil {
		t.Errorf("cleanup: RemovePodSandbox %s: %v", p.SandboxID, err)
	}
}

// ctrTaskPIDs maps task IDs to PIDs of running tasks in a containerd
// namespace of the test bed's containerd, as ctr reports them.
func ctrTaskPIDs(t testing.TB, namespace string) map[string]int {
	t.Helper()
	out := MustRun(t, "ctr", "--address", ContainerdSock, "-n", namespace, "tasks", "ls")
	pids := map[string]int{}
	for _, line := range strings.Split(out, "\n")[1:] { // skip the header
		f := strings.Fields(line)
		if len(f) == 3 && f[2] == "RUNNING" {
			if pid, err := strconv.Atoi(f[1]); err == nil {
				pids[f[0]] = pid
			}
		}
	}
	return pids
}
