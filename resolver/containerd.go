package resolver

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
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
// namespaces, through the containerd client's gRPC services.
//
// The v2 client works against containerd 1.6: it only uses the v1 gRPC
// services (namespaces, containers, tasks) that 1.6 serves.
type containerdBackend struct {
	address string // socket path (or unix:// address) as configured
	timeout time.Duration

	mu sync.Mutex
	c  *client.Client
}

func (b *containerdBackend) Name() string     { return "containerd" }
func (b *containerdBackend) Endpoint() string { return b.address }

func (b *containerdBackend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c == nil {
		return nil
	}
	err := b.c.Close()
	b.c = nil
	return err
}

// client returns the containerd client. client.New does not dial (it makes
// a lazy gRPC client), so this never blocks; calls connect, bounded by ctx.
func (b *containerdBackend) client() (*client.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c != nil {
		return b.c, nil
	}
	path, err := unixSocketPath(b.address)
	if err != nil {
		return nil, err
	}
	c, err := client.New(path, client.WithTimeout(b.timeout))
	if err != nil {
		return nil, rpcError(context.Background(), "containerd", b.address, err)
	}
	b.c = c
	return c, nil
}

// namespaces returns q's namespace, or every namespace when it is "".
func (b *containerdBackend) namespaces(ctx context.Context, c *client.Client, only string) ([]string, error) {
	if only != "" {
		return []string{only}, nil
	}
	nss, err := c.NamespaceService().List(ctx)
	if err != nil {
		return nil, rpcError(ctx, "containerd", b.address, err)
	}
	return nss, nil
}

// Find returns the containers whose ID is q.Name, in every namespace (or
// q.Namespace); failing an exact ID, those whose ID starts with q.Name.
// Several answers are returned as they are: the Resolver merges those that
// share a netns and reports the others as ambiguous.
func (b *containerdBackend) Find(ctx context.Context, q Query) ([]Candidate, error) {
	ctx, cancel := withTimeout(ctx, b.timeout)
	defer cancel()
	c, err := b.client()
	if err != nil {
		return nil, err
	}
	nss, err := b.namespaces(ctx, c, q.Namespace)
	if err != nil {
		return nil, err
	}
	var exact, prefixed []Candidate
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		cs, err := c.ContainerService().List(nctx)
		if err != nil {
			return nil, rpcError(ctx, "containerd", b.address, err)
		}
		for _, ct := range cs {
			if !strings.HasPrefix(ct.ID, q.Name) {
				continue
			}
			cand := containerdCandidate(ns, ct)
			if err := b.addTask(nctx, c, &cand); err != nil {
				return nil, err
			}
			if ct.ID == q.Name {
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

// addTask fills the task's state and PID.
func (b *containerdBackend) addTask(ctx context.Context, c *client.Client, cand *Candidate) error {
	resp, err := c.TaskService().Get(ctx, &tasks.GetRequest{ContainerID: cand.ID})
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

// List returns every running (or paused) task in every namespace: two calls per
// namespace (containers, tasks).
func (b *containerdBackend) List(ctx context.Context) ([]Candidate, error) {
	ctx, cancel := withTimeout(ctx, b.timeout)
	defer cancel()
	c, err := b.client()
	if err != nil {
		return nil, err
	}
	nss, err := b.namespaces(ctx, c, "")
	if err != nil {
		return nil, err
	}
	var out []Candidate
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		ts, err := c.TaskService().List(nctx, &tasks.ListTasksRequest{})
		if err != nil {
			return nil, rpcError(ctx, "containerd", b.address, err)
		}
		running := map[string]taskStatus{}
		for _, t := range ts.GetTasks() {
			// Exec'd processes are listed too; only a container's init
			// process has ID == ContainerID.
			if taskAlive(t.GetStatus()) && (t.GetContainerID() == "" || t.GetID() == t.GetContainerID()) {
				running[t.GetID()] = taskStatus{t.GetStatus(), t.GetPid()}
			}
		}
		if len(running) == 0 {
			continue
		}
		cs, err := c.ContainerService().List(nctx)
		if err != nil {
			return nil, rpcError(ctx, "containerd", b.address, err)
		}
		for _, ct := range cs {
			task, ok := running[ct.ID]
			if !ok {
				continue
			}
			cand := containerdCandidate(ns, ct)
			setTaskState(&cand, task.status, task.pid)
			out = append(out, cand)
		}
	}
	return out, nil
}

// containerdCandidate describes a container from its record: kubelet's
// labels (pods made through containerd's CRI plugin) and its OCI spec.
func containerdCandidate(ns string, ct containers.Container) Candidate {
	l := ct.Labels
	cand := Candidate{
		Owner: Owner{Runtime: "containerd", ID: ct.ID, Name: ct.ID, Namespace: ns},
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
	if ct.Spec != nil {
		var spec specView
		if json.Unmarshal(ct.Spec.GetValue(), &spec) == nil {
			cand.NetnsPath = spec.netnsPath()
		}
	}
	return cand
}
