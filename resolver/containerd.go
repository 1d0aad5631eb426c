package resolver

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"time"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	namespacesapi "github.com/containerd/containerd/api/services/namespaces/v1"
	"github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

func init() { registerBackend(newContainerdBackends) }

// newContainerdBackends returns one backend for cfg.ContainerdAddress, or one
// per default containerd socket that exists (the standalone containerd and
// the one dockerd starts). Nothing is dialled here.
func newContainerdBackends(cfg Config) []Backend {
	if cfg.ContainerdAddress != "" {
		return []Backend{&containerdBackend{address: cfg.ContainerdAddress, timeout: cfg.Timeout}}
	}
	var bs []Backend
	for _, s := range existingSockets(DefaultContainerdSockets) {
		bs = append(bs, &containerdBackend{address: s, timeout: cfg.Timeout})
	}
	return bs
}

// containerdBackend finds containers of one containerd, in all of its
// namespaces, through containerd's gRPC API (the v1 namespaces, containers
// and tasks services, which containerd 1.6 and 2.x serve alike).
//
// It uses the generated clients of github.com/containerd/containerd/api, the
// layer the containerd v2 client wraps, rather than the v2 client itself:
// nsdebug needs four read-only calls, and linking the v2 client (images,
// content, snapshots, tracing...) grows the binary by 8 MB and every nsdebug
// start-up, even "resolve pid:N", by about 4 ms. The v2 client is used by the
// test fixtures (internal/testbed) to create containers.
type containerdBackend struct {
	address string // socket path (or unix:// address) as configured
	timeout time.Duration

	mu         sync.Mutex
	conn       *grpc.ClientConn
	namespaces namespacesapi.NamespacesClient
	containers containersapi.ContainersClient
	tasks      tasks.TasksClient
}

// containerdNamespaceHeader is the gRPC metadata key that selects a
// containerd namespace (namespaces.GRPCHeader in containerd).
const containerdNamespaceHeader = "containerd-namespace"

func withContainerdNamespace(ctx context.Context, ns string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, containerdNamespaceHeader, ns)
}

func (b *containerdBackend) Name() string     { return "containerd" }
func (b *containerdBackend) Endpoint() string { return b.address }

func (b *containerdBackend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn == nil {
		return nil
	}
	err := b.conn.Close()
	b.conn = nil
	return err
}

// connect makes the gRPC clients. grpc.NewClient does not dial, so this never
// blocks; the first call connects, bounded by its context.
func (b *containerdBackend) connect() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil {
		return nil
	}
	path, err := unixSocketPath(b.address)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient("unix://"+path,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20))) // containerd's own limit
	if err != nil {
		return rpcError(context.Background(), "containerd", b.address, err)
	}
	b.conn = conn
	b.namespaces = namespacesapi.NewNamespacesClient(conn)
	b.containers = containersapi.NewContainersClient(conn)
	b.tasks = tasks.NewTasksClient(conn)
	return nil
}

// namespaceNames returns only, or every namespace when it is "".
func (b *containerdBackend) namespaceNames(ctx context.Context, only string) ([]string, error) {
	if only != "" {
		return []string{only}, nil
	}
	resp, err := b.namespaces.List(ctx, &namespacesapi.ListNamespacesRequest{})
	if err != nil {
		return nil, rpcError(ctx, "containerd", b.address, err)
	}
	var names []string
	for _, ns := range resp.GetNamespaces() {
		names = append(names, ns.GetName())
	}
	return names, nil
}

// Find returns the containers whose ID is q.Name, in every namespace (or
// q.Namespace); failing an exact ID, those whose ID starts with q.Name.
// Several answers are returned as they are: the Resolver merges those that
// share a netns and reports the others as ambiguous.
func (b *containerdBackend) Find(ctx context.Context, q Query) ([]Candidate, error) {
	ctx, cancel := withTimeout(ctx, b.timeout)
	defer cancel()
	filter, possible := idPrefixFilter(q.Name)
	if !possible {
		return nil, nil
	}
	if err := b.connect(); err != nil {
		return nil, err
	}
	nss, err := b.namespaceNames(ctx, q.Namespace)
	if err != nil {
		return nil, err
	}
	var exact, prefixed []Candidate
	for _, ns := range nss {
		nctx := withContainerdNamespace(ctx, ns)
		resp, err := b.containers.List(nctx, &containersapi.ListContainersRequest{Filters: []string{filter}})
		if err != nil {
			return nil, rpcError(ctx, "containerd", b.address, err)
		}
		for _, ct := range resp.GetContainers() {
			if !strings.HasPrefix(ct.GetID(), q.Name) {
				continue
			}
			cand := containerdCandidate(ns, ct)
			if err := b.addTask(nctx, &cand); err != nil {
				return nil, err
			}
			if ct.GetID() == q.Name {
				exact = append(exact, cand)
			} else {
				prefixed = append(prefixed, cand)
			}
		}
	}
	if len(exact) > 0 {
		return exact, nil
	}
	return prefixed, nil
}

// idPrefixFilter is a containerd filter that narrows a container list to IDs
// starting with prefix, so that the server does not send every container's
// spec (about 30 kB each for Docker's). possible is false when prefix has a
// character containerd never allows in an ID. The filter stops before the
// first '.', which is a regexp metacharacter; callers compare exactly.
func idPrefixFilter(prefix string) (filter string, possible bool) {
	for _, r := range prefix {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '.' && r != '_' && r != '-' {
			return "", false
		}
	}
	if i := strings.IndexByte(prefix, '.'); i >= 0 {
		prefix = prefix[:i]
	}
	return "id~=^" + prefix, true
}

// addTask fills the task's state and PID.
func (b *containerdBackend) addTask(ctx context.Context, cand *Candidate) error {
	resp, err := b.tasks.Get(ctx, &tasks.GetRequest{ContainerID: cand.ID})
	if err != nil {
		if isNotFound(err) {
			cand.State = "created (no task)"
			return nil
		}
		return rpcError(ctx, "containerd", b.address, err)
	}
	setTaskState(cand, resp.GetProcess().GetStatus(), resp.GetProcess().GetPid())
	return nil
}

func setTaskState(cand *Candidate, st tasktypes.Status, pid uint32) {
	cand.State = strings.ToLower(st.String())
	cand.Running = taskAlive(st)
	if cand.Running {
		// A stopped task's PID may already belong to another process.
		cand.PID = int(pid)
	}
}

// taskAlive: the task's processes exist, so its namespaces do. A paused
// (frozen) task's netns is as usable as a running one's.
func taskAlive(st tasktypes.Status) bool {
	return st == tasktypes.Status_RUNNING || st == tasktypes.Status_PAUSED || st == tasktypes.Status_PAUSING
}

type taskStatus struct {
	status tasktypes.Status
	pid    uint32
}

// List returns every running (or paused) task in every namespace, in two
// calls per namespace: the tasks (IDs and PIDs), and only those container
// records that carry kubelet's pod labels. Other records are not fetched:
// each carries its whole OCI spec (about 30 kB for Docker's), and the PID
// already places the container's netns.
func (b *containerdBackend) List(ctx context.Context) ([]Candidate, error) {
	ctx, cancel := withTimeout(ctx, b.timeout)
	defer cancel()
	if err := b.connect(); err != nil {
		return nil, err
	}
	nss, err := b.namespaceNames(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []Candidate
	for _, ns := range nss {
		nctx := withContainerdNamespace(ctx, ns)
		ts, err := b.tasks.List(nctx, &tasks.ListTasksRequest{})
		if err != nil {
			return nil, rpcError(ctx, "containerd", b.address, err)
		}
		running := map[string]taskStatus{}
		var ids []string
		for _, t := range ts.GetTasks() {
			// Exec'd processes are listed too; only a container's init
			// process has ID == ContainerID.
			if taskAlive(t.GetStatus()) && (t.GetContainerID() == "" || t.GetID() == t.GetContainerID()) {
				running[t.GetID()] = taskStatus{t.GetStatus(), t.GetPid()}
				ids = append(ids, t.GetID())
			}
		}
		if len(running) == 0 {
			continue
		}
		resp, err := b.containers.List(nctx, &containersapi.ListContainersRequest{Filters: []string{`labels."` + labelPodName + `"`}})
		if err != nil {
			return nil, rpcError(ctx, "containerd", b.address, err)
		}
		labelled := map[string]*containersapi.Container{}
		for _, ct := range resp.GetContainers() {
			labelled[ct.GetID()] = ct
		}
		sort.Strings(ids)
		for _, id := range ids {
			task := running[id]
			cand := Candidate{Owner: Owner{Runtime: "containerd", ID: id, Name: id, Namespace: ns}}
			if ct, ok := labelled[id]; ok {
				cand = containerdCandidate(ns, ct)
			}
			setTaskState(&cand, task.status, task.pid)
			out = append(out, cand)
		}
	}
	return out, nil
}

// containerdCandidate describes a container from its record: kubelet's
// labels (pods made through containerd's CRI plugin) and its OCI spec.
func containerdCandidate(ns string, ct *containersapi.Container) Candidate {
	l := ct.GetLabels()
	cand := Candidate{
		Owner: Owner{Runtime: "containerd", ID: ct.GetID(), Name: ct.GetID(), Namespace: ns},
		State: "unknown",
	}
	if l[labelPodName] != "" {
		cand.Pod = &PodRef{Namespace: l[labelPodNamespace], Name: l[labelPodName], UID: l[labelPodUID]}
		cand.Name = l[labelPodName]
	}
	if n := l[labelContainerName]; n != "" {
		cand.Container, cand.Name = n, n
	}
	cand.Sandbox = l[labelCRIKind] == "sandbox"
	if raw := ct.GetSpec().GetValue(); len(raw) > 0 {
		var spec specView
		if json.Unmarshal(raw, &spec) == nil {
			cand.NetnsPath = spec.netnsPath()
		}
	}
	return cand
}
