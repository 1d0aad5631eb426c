package resolver

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nsdebug/nsdebug/internal/nserr"
)

// Labels kubelet puts on pods and containers; containerd's CRI plugin marks
// its containers with kindLabel.
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
	labelCRIKind       = "io.cri-containerd.kind"
)

// criStatusConcurrency bounds the PodSandboxStatus calls List makes at once.
const criStatusConcurrency = 8

func init() { registerBackend(newCRIBackends) }

// newCRIBackends returns one backend for cfg.CRIEndpoint, or one per default
// CRI socket that exists. Nothing is dialled here.
func newCRIBackends(cfg Config) []Backend {
	if cfg.CRIEndpoint != "" {
		return []Backend{&criBackend{endpoint: cfg.CRIEndpoint, timeout: cfg.Timeout, explicit: true, hostRoot: cfg.HostRoot}}
	}
	var bs []Backend
	for _, s := range existingSockets(DefaultCRISockets) {
		bs = append(bs, &criBackend{endpoint: "unix://" + s, timeout: cfg.Timeout, hostRoot: cfg.HostRoot})
	}
	return bs
}

// criBackend finds Kubernetes pods through a CRI runtime (containerd, CRI-O)
// with the CRI v1 gRPC API, as kubelet and crictl do.
type criBackend struct {
	endpoint string // as configured: unix:///path or /path
	timeout  time.Duration
	// explicit: the user named this endpoint. A default socket that turns
	// out not to serve CRI (containerd with its CRI plugin disabled, as on
	// most Docker hosts) simply has no pods; a named one is an error.
	explicit bool
	// hostRoot prefixes the paths the runtime reports (see Config.HostRoot).
	hostRoot string

	mu   sync.Mutex
	conn *grpc.ClientConn
	rt   cri.RuntimeServiceClient
}

func (b *criBackend) Name() string     { return "cri" }
func (b *criBackend) Endpoint() string { return b.endpoint }

func (b *criBackend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn == nil {
		return nil
	}
	err := b.conn.Close()
	b.conn, b.rt = nil, nil
	return err
}

// client returns the CRI client; grpc.NewClient does not dial, so this never
// blocks: the first call connects, bounded by its context.
func (b *criBackend) client() (cri.RuntimeServiceClient, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rt != nil {
		return b.rt, nil
	}
	path, err := unixSocketPath(b.endpoint)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient("unix://"+path,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// kubelet's limit: a busy node's pod list exceeds gRPC's 4 MiB default.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		return nil, nserr.Wrap(nserr.ErrUsage, err, "CRI endpoint %s", b.endpoint)
	}
	b.conn, b.rt = conn, cri.NewRuntimeServiceClient(conn)
	return b.rt, nil
}

// Find returns the pods named q.Name (in q.Namespace, or in any namespace
// when it is ""). A bare word (q.Namespace "") that names no pod may also be
// a pod ID or a unique prefix of one, as crictl prints them. With
// q.Container, the candidate is that container of the pod (its netns is
// still the pod's).
func (b *criBackend) Find(ctx context.Context, q Query) ([]Candidate, error) {
	ctx, cancel := withTimeout(ctx, b.timeout)
	defer cancel()
	rt, err := b.client()
	if err != nil {
		return nil, err
	}
	resp, err := rt.ListPodSandbox(ctx, &cri.ListPodSandboxRequest{})
	if err != nil {
		return nil, b.listError(ctx, err)
	}
	var out []Candidate
	for _, p := range matchPods(resp.Items, q) {
		c := podCandidate(p)
		if c.Running {
			if err := b.fillSandboxStatus(ctx, rt, &c); err != nil {
				if isNotFound(err) { // removed since the list
					continue
				}
				return nil, err
			}
			resp, err := rt.ListContainers(ctx, &cri.ListContainersRequest{Filter: &cri.ContainerFilter{PodSandboxId: c.ID}})
			if err != nil {
				return nil, rpcError(ctx, "cri", b.endpoint, err)
			}
			if q.Container != "" {
				if err := b.pickContainer(&c, resp.Containers, q.Container); err != nil {
					return nil, err
				}
			}
			b.fillContainerHosts(ctx, rt, &c, resp.Containers)
		}
		out = append(out, c)
	}
	return out, nil
}

// matchPods picks the pods q names: by name (and namespace); failing that,
// for a bare word, by sandbox ID prefix.
func matchPods(pods []*cri.PodSandbox, q Query) []*cri.PodSandbox {
	var byName, byID []*cri.PodSandbox
	for _, p := range pods {
		md := p.GetMetadata()
		switch {
		case md.GetName() == q.Name && (q.Namespace == "" || md.GetNamespace() == q.Namespace):
			byName = append(byName, p)
		case q.Namespace == "" && q.Container == "" && strings.HasPrefix(p.GetId(), q.Name):
			byID = append(byID, p)
		}
	}
	if len(byName) > 0 {
		return byName
	}
	return byID
}

// List returns every ready pod.
func (b *criBackend) List(ctx context.Context) ([]Candidate, error) {
	return b.list(ctx, &cri.PodSandboxFilter{State: &cri.PodSandboxStateValue{State: cri.PodSandboxState_SANDBOX_READY}})
}

// ListKnown returns every pod the runtime has, ready or not, with the netns
// file each still has.
func (b *criBackend) ListKnown(ctx context.Context) ([]Candidate, error) {
	return b.list(ctx, nil)
}

func (b *criBackend) list(ctx context.Context, filter *cri.PodSandboxFilter) ([]Candidate, error) {
	ctx, cancel := withTimeout(ctx, b.timeout)
	defer cancel()
	rt, err := b.client()
	if err != nil {
		return nil, err
	}
	resp, err := rt.ListPodSandbox(ctx, &cri.ListPodSandboxRequest{Filter: filter})
	if err != nil {
		return nil, b.listError(ctx, err)
	}
	cands := make([]Candidate, len(resp.Items))
	errs := make([]error, len(resp.Items))
	sem := make(chan struct{}, criStatusConcurrency)
	var wg sync.WaitGroup
	for i, p := range resp.Items {
		cands[i] = podCandidate(p)
		wg.Add(1)
		sem <- struct{}{}
		go func(c *Candidate, err *error) {
			defer func() { <-sem; wg.Done() }()
			*err = b.fillSandboxStatus(ctx, rt, c)
		}(&cands[i], &errs[i])
	}
	wg.Wait()
	out := cands[:0]
	for i, c := range cands {
		switch {
		case errs[i] == nil:
			out = append(out, c)
		case isNotFound(errs[i]): // removed since the list
		default:
			return nil, errs[i]
		}
	}
	return out, nil
}

// listError is rpcError, except that a default socket without the CRI
// service is not an error: that runtime has no pods (nil).
func (b *criBackend) listError(ctx context.Context, err error) error {
	if !b.explicit && status.Code(err) == codes.Unimplemented && ctx.Err() == nil {
		return nil
	}
	return rpcError(ctx, "cri", b.endpoint, err)
}

// podCandidate is what ListPodSandbox says about a pod.
func podCandidate(p *cri.PodSandbox) Candidate {
	md := p.GetMetadata()
	return Candidate{
		Owner: Owner{
			Runtime: "cri", ID: p.GetId(), Name: md.GetName(), Sandbox: true,
			Pod: &PodRef{Namespace: md.GetNamespace(), Name: md.GetName(), UID: md.GetUid()},
		},
		Running: p.GetState() == cri.PodSandboxState_SANDBOX_READY,
		State:   stateWord(p.GetState().String()),
	}
}

// fillSandboxStatus adds what only PodSandboxStatus knows: host networking,
// and (in the verbose info) the sandbox's PID, netns file and resolver files.
func (b *criBackend) fillSandboxStatus(ctx context.Context, rt cri.RuntimeServiceClient, c *Candidate) error {
	st, err := rt.PodSandboxStatus(ctx, &cri.PodSandboxStatusRequest{PodSandboxId: c.ID, Verbose: true})
	if err != nil {
		return rpcError(ctx, "cri", b.endpoint, err)
	}
	c.HostNetwork = st.GetStatus().GetLinux().GetNamespaces().GetOptions().GetNetwork() == cri.NamespaceMode_NODE
	if c.HostNetwork {
		c.NetworkMode = "host"
	}
	if s := st.GetStatus(); s != nil {
		c.Running = s.GetState() == cri.PodSandboxState_SANDBOX_READY
		c.State = stateWord(s.GetState().String())
	}
	info := parseSandboxInfo(st.GetInfo()["info"], b.hostPath)
	// The netns path stays as the runtime wrote it below the root (shown as
	// the node names it); pin resolves it.
	c.PID, c.NetnsPath, c.ResolvConf, c.Hosts = info.PID, b.rootJoin(info.NetnsPath), info.ResolvConf, info.Hosts
	c.Net = &NetConfig{Ports: parseSandboxPorts(st.GetInfo()["info"]), Networks: []NetworkAttachment{}}
	if ip := st.GetStatus().GetNetwork().GetIp(); ip != "" {
		c.Net.Networks = append(c.Net.Networks, NetworkAttachment{Name: "cni", IP: ip})
	}
	return nil
}

func (b *criBackend) rootJoin(p string) string {
	if p == "" || b.hostRoot == "" {
		return p
	}
	return filepath.Join(b.hostRoot, p)
}

// hostPath is where a path the runtime reported is seen from here.
func (b *criBackend) hostPath(p string) string {
	if p == "" || b.hostRoot == "" {
		return p
	}
	return InRoot(b.hostRoot, p)
}

// InRoot is path p of the filesystem whose root is root, with symlinks
// resolved inside root: through procfs (/proc/1/root) an absolute link such
// as /var/run -> /run would otherwise resolve against our own root.
func InRoot(root, p string) string {
	parts := strings.Split(strings.TrimPrefix(filepath.Clean("/"+p), "/"), "/")
	cur := ""
	for hops := 0; len(parts) > 0; {
		name := parts[0]
		parts = parts[1:]
		if name == "" || name == "." {
			continue
		}
		if name == ".." {
			cur = filepath.Dir("/" + cur)[1:]
			continue
		}
		next := filepath.Join(cur, name)
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil || hops > 40 { // not a link (or gone): keep it as it is
			cur = next
			continue
		}
		hops++
		if filepath.IsAbs(target) {
			cur = ""
		}
		parts = append(strings.Split(strings.Trim(target, "/"), "/"), parts...)
	}
	return filepath.Join(root, "/"+cur)
}

// pickContainer turns a pod candidate into the candidate for one of its
// containers; the namespace stays the pod's.
func (b *criBackend) pickContainer(c *Candidate, containers []*cri.Container, name string) error {
	ctr, names := pickPodContainer(containers, name)
	if ctr == nil {
		have := "it has none"
		if len(names) > 0 {
			have = "it has: " + strings.Join(names, ", ")
		}
		return nserr.New(nserr.ErrNotFound, "pod %s/%s has no container %q (%s)", c.Pod.Namespace, c.Pod.Name, name, have)
	}
	c.ID, c.Container, c.Sandbox = ctr.GetId(), name, false
	if c.State != "ready" {
		return nil
	}
	c.State = "ready, container " + stateWord(ctr.GetState().String())
	return nil
}

// fillContainerHosts sets c.Hosts to the /etc/hosts the pod's containers
// see: under Kubernetes the kubelet's etc-hosts (the pod's own name and
// address), which only the containers' runtime specs name; the sandbox's
// hosts file is containerd's copy of the node's. The picked container's,
// else the pod's best one's; where no container names one (a CRI pod made
// without a kubelet), the sandbox's stays. Best effort: a failure here
// leaves c as it was.
func (b *criBackend) fillContainerHosts(ctx context.Context, rt cri.RuntimeServiceClient, c *Candidate, containers []*cri.Container) {
	var ctr *cri.Container
	for _, ct := range containers {
		switch {
		case !c.Sandbox && ct.GetId() == c.ID:
			ctr = ct
		case !c.Sandbox:
		case ctr == nil || better(ct, ctr):
			ctr = ct
		}
	}
	if ctr == nil {
		return
	}
	st, err := rt.ContainerStatus(ctx, &cri.ContainerStatusRequest{ContainerId: ctr.GetId(), Verbose: true})
	if err != nil {
		return
	}
	if hosts := parseContainerHosts(st.GetInfo()["info"], b.hostPath); hosts != "" {
		c.Hosts = hosts
	}
}

// parseContainerHosts is the source of the /etc/hosts mount in a verbose
// ContainerStatus info["info"] (containerd's and CRI-O's runtimeSpec), as
// seen from here through seen, if that is a regular file.
func parseContainerHosts(raw string, seen func(string) string) string {
	var v struct {
		Spec *specView `json:"runtimeSpec"`
	}
	if raw == "" || json.Unmarshal([]byte(raw), &v) != nil || v.Spec == nil {
		return ""
	}
	for _, m := range v.Spec.Mounts {
		if m.Destination == "/etc/hosts" && m.Source != "" {
			if p := seen(m.Source); isRegularFile(p) {
				return p
			}
		}
	}
	return ""
}

// pickPodContainer returns the container called name (the running one, else
// the newest attempt) and the sorted names of all the pod's containers.
func pickPodContainer(cs []*cri.Container, name string) (*cri.Container, []string) {
	var best *cri.Container
	seen := map[string]bool{}
	var names []string
	for _, ct := range cs {
		n := ct.GetMetadata().GetName()
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
		if n != name {
			continue
		}
		if best == nil || better(ct, best) {
			best = ct
		}
	}
	sort.Strings(names)
	return best, names
}

func better(a, b *cri.Container) bool {
	ar, br := a.GetState() == cri.ContainerState_CONTAINER_RUNNING, b.GetState() == cri.ContainerState_CONTAINER_RUNNING
	if ar != br {
		return ar
	}
	if a.GetMetadata().GetAttempt() != b.GetMetadata().GetAttempt() {
		return a.GetMetadata().GetAttempt() > b.GetMetadata().GetAttempt()
	}
	return a.GetCreatedAt() > b.GetCreatedAt()
}

// stateWord shortens CRI enum names: SANDBOX_NOTREADY -> notready,
// CONTAINER_EXITED -> exited.
func stateWord(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "SANDBOX_"), "CONTAINER_")
	return strings.ToLower(s)
}

// sandboxInfo is what nsdebug reads from the verbose PodSandboxStatus
// info["info"] JSON. containerd and CRI-O both put the sandbox's "pid" and
// OCI "runtimeSpec" there.
type sandboxInfo struct {
	PID        int
	NetnsPath  string
	ResolvConf string
	Hosts      string
}

// sandboxConfigView is the part of the PodSandboxConfig in the verbose info
// that diagnose reads.
type sandboxConfigView struct {
	PortMappings []struct {
		Protocol      json.RawMessage `json:"protocol"` // an enum number, or its name
		ContainerPort int             `json:"container_port"`
		HostPort      int             `json:"host_port"`
		HostIP        string          `json:"host_ip"`
	} `json:"port_mappings"`
}

// criResolvPathAnnotation is where CRI-O records the pod's resolv.conf.
const criResolvPathAnnotation = "io.kubernetes.cri-o.ResolvPath"

// ResolvConf and Hosts are as seen from here (through seen: the node's
// root in a helper pod), and only if they are regular files there.
func parseSandboxInfo(raw string, seen func(string) string) sandboxInfo {
	var v struct {
		PID  int       `json:"pid"`
		Spec *specView `json:"runtimeSpec"`
	}
	if raw == "" || json.Unmarshal([]byte(raw), &v) != nil {
		return sandboxInfo{}
	}
	info := sandboxInfo{PID: v.PID}
	if v.Spec == nil {
		return info
	}
	info.NetnsPath = v.Spec.netnsPath()
	for _, m := range v.Spec.Mounts {
		switch m.Destination {
		case "/etc/resolv.conf":
			info.ResolvConf = m.Source
		case "/etc/hosts":
			info.Hosts = m.Source
		}
	}
	if info.ResolvConf == "" {
		info.ResolvConf = v.Spec.Annotations[criResolvPathAnnotation]
	}
	// Both runtimes keep hosts next to resolv.conf (containerd:
	// <root>/io.containerd.grpc.v1.cri/sandboxes/<id>/; CRI-O: the sandbox's
	// userdata directory), but mount only resolv.conf into the sandbox.
	if info.Hosts == "" && info.ResolvConf != "" {
		info.Hosts = filepath.Join(filepath.Dir(info.ResolvConf), "hosts")
	}
	// Checked where nsdebug will open them: a helper pod sees the node's
	// files only below the node's root.
	for _, p := range []*string{&info.ResolvConf, &info.Hosts} {
		if *p != "" {
			if *p = seen(*p); !isRegularFile(*p) {
				*p = ""
			}
		}
	}
	return info
}

// specView is the part of an OCI runtime spec nsdebug reads.
type specView struct {
	Annotations map[string]string `json:"annotations"`
	Mounts      []struct {
		Destination string `json:"destination"`
		Source      string `json:"source"`
	} `json:"mounts"`
	Linux *struct {
		Namespaces []struct {
			Type string `json:"type"`
			Path string `json:"path"`
		} `json:"namespaces"`
	} `json:"linux"`
}

// netnsPath is the network namespace file the spec joins, if it is one that
// outlives processes (a bind mount such as /var/run/netns/cni-...). A
// /proc/PID/ns/net path is ignored: it names the PID of whoever held the
// namespace at creation time, which may since be reused.
func (s *specView) netnsPath() string {
	if s == nil || s.Linux == nil {
		return ""
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == "network" && ns.Path != "" && !strings.HasPrefix(ns.Path, "/proc/") {
			return ns.Path
		}
	}
	return ""
}

func isRegularFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// --- helpers shared with containerd.go -------------------------------------

// existingSockets returns the paths in candidates that are sockets now, each
// real file once (so a symlinked duplicate is not asked twice).
func existingSockets(candidates []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range candidates {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode()&os.ModeSocket == 0 {
			continue
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			real = p
		}
		if !seen[real] {
			seen[real] = true
			out = append(out, p)
		}
	}
	return out
}

// unixSocketPath accepts "unix:///path" and "/path", the forms kubelet's
// --container-runtime-endpoint and CONTAINERD_ADDRESS take on Linux.
func unixSocketPath(endpoint string) (string, error) {
	p := strings.TrimPrefix(endpoint, "unix://")
	if !strings.HasPrefix(p, "/") {
		return "", nserr.New(nserr.ErrUsage, "endpoint %q is not supported: give a unix socket as unix:///path or /path", endpoint)
	}
	return filepath.Clean(p), nil
}

// withTimeout bounds ctx by d unless it already has a deadline, so that no
// runtime call can hang whoever calls the backend.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// rpcError classifies a failed gRPC call to a runtime: not answering
// (refused, missing socket, timeout) is ErrUnavailable naming the endpoint;
// a refused socket permission is ErrPermission.
func rpcError(ctx context.Context, runtime, endpoint string, err error) error {
	if ctx.Err() != nil {
		return nserr.Wrap(nserr.ErrUnavailable, ctx.Err(), "%s did not answer at %s", runtime, endpoint)
	}
	code := status.Code(err)
	msg := err.Error()
	if s, ok := status.FromError(err); ok {
		msg = s.Message()
	}
	reason := dialReason(msg)
	switch {
	case strings.Contains(reason, "permission denied"):
		return nserr.New(nserr.ErrPermission, "cannot connect to %s at %s: %s", runtime, endpoint, reason)
	case code == codes.Unavailable || code == codes.DeadlineExceeded || code == codes.Canceled:
		return nserr.New(nserr.ErrUnavailable, "%s is not answering at %s: %s", runtime, endpoint, reason)
	case code == codes.Unimplemented:
		return nserr.New(nserr.ErrUnavailable, "%s at %s does not serve the API nsdebug needs: %s", runtime, endpoint, reason)
	}
	return fmt.Errorf("%s at %s: %w", runtime, endpoint, err)
}

// dialReason trims gRPC's transport wrapping down to the dial error, e.g.
// "dial unix /run/x.sock: connect: connection refused".
func dialReason(msg string) string {
	if i := strings.LastIndex(msg, "dial unix "); i >= 0 {
		return strings.TrimRight(msg[i:], `"`)
	}
	return msg
}

func isNotFound(err error) bool {
	return status.Code(err) == codes.NotFound
}
