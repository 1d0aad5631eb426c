package resolver

import (
	"context"

	"github.com/nsdebug/nsdebug/internal/nsfs"
)

// PodRef names a Kubernetes pod.
type PodRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid,omitempty"`
}

// Owner is a container or pod that uses a network namespace.
type Owner struct {
	Runtime     string  `json:"runtime"` // docker, podman, containerd or cri
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Namespace   string  `json:"namespace,omitempty"` // containerd namespace
	Pod         *PodRef `json:"pod"`
	Container   string  `json:"container,omitempty"`    // container name inside a pod
	NetworkMode string  `json:"network_mode,omitempty"` // docker, podman: bridge, host, none, container:ID, NAME
	Sandbox     bool    `json:"sandbox,omitempty"`      // a pod's sandbox (pause) container
}

// Ref is the owner in target syntax, e.g. docker:web, pod:shop/cart.
func (o Owner) Ref() string {
	switch o.Runtime {
	case "docker", "podman":
		return o.Runtime + ":" + o.Name
	case "containerd":
		return "containerd:" + o.Namespace + "/" + o.ID
	case "cri":
		if o.Pod != nil {
			s := "pod:" + o.Pod.Namespace + "/" + o.Pod.Name
			if o.Container != "" && !o.Sandbox {
				s += "/" + o.Container
			}
			return s
		}
	}
	return o.Runtime + ":" + o.ID
}

// Candidate is what a backend knows about one container or pod.
type Candidate struct {
	Owner
	Running bool
	State   string // the runtime's word: running, exited, created, NOTREADY...
	// Where the netns can be found; the resolver tries NetnsPath first (a
	// bind mount: no PID race), then PID.
	NetnsPath string
	PID       int
	// HostNetwork: the runtime put it in the host's netns (docker host mode,
	// hostNetwork pods).
	HostNetwork bool
	// The container's own resolver files on the host, for exec (may be "").
	ResolvConf string
	Hosts      string
	// Net is what the runtime says about ports and networks (nil if
	// nothing).
	Net *NetConfig
}

// Query is a lookup in one backend. Namespace "" means every namespace.
type Query struct {
	Name      string // name, ID or unique ID prefix
	Namespace string
	Container string // pods: the container inside the pod
	// Pods only: Name must be a pod name (pod: targets) rather than any word.
}

// Backend is one container runtime's view of the host. Implementations:
// docker, containerd (all its namespaces) and cri (Kubernetes pods).
type Backend interface {
	// Name is the runtime word used in targets and output: docker, containerd, cri.
	Name() string
	// Endpoint is the socket or address the backend talks to, for messages.
	Endpoint() string
	// Find returns every container or pod that q names, running or not.
	Find(ctx context.Context, q Query) ([]Candidate, error)
	// List returns every container or pod that runs now.
	List(ctx context.Context) ([]Candidate, error)
	Close() error
}

// BriefLister is implemented by backends whose full List costs one call per
// container (Docker: an inspect each). ListBrief answers in one call but may
// leave PID and NetnsPath empty; Complete fills them for the candidates
// given. `nsdebug ls` uses these to place most containers from what other
// backends already said (Docker's containers are containerd's "moby" tasks).
type BriefLister interface {
	ListBrief(ctx context.Context) ([]Candidate, error)
	Complete(ctx context.Context, cands []Candidate) ([]Candidate, error)
}

// KnownLister is implemented by backends that know network namespaces of
// containers or pods that do not run now: a pod whose sandbox process died
// keeps its netns file (containerd's /run/netns/cni-*) until the pod is
// stopped. `unlink --stale` asks for these so that it never takes such a file
// away from the runtime that will tear it down.
type KnownLister interface {
	ListKnown(ctx context.Context) ([]Candidate, error)
}

// Result is a resolved target: an open, pinned network namespace and what is
// known about who owns it. Close it when done.
type Result struct {
	Runtime string  `json:"runtime"` // docker, podman, containerd, cri, pid, netns, path
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Pod     *PodRef `json:"pod"`
	PID     int     `json:"pid"`
	Host    bool    `json:"host"`
	// HostUncertain: the host's netns could not be read (/proc/1 and
	// /proc/2 refused), so Host compares with nsdebug's own netns only and
	// a false Host proves nothing. Commands that change things must not
	// treat such a target as "not the host".
	HostUncertain bool      `json:"host_uncertain,omitempty"`
	Netns         NetnsInfo `json:"netns"`
	Owners        []Owner   `json:"owners"`
	Target        string    `json:"target"` // the target in prefixed form
	// NetworkMode is docker's network mode, or "host" for hostNetwork pods.
	NetworkMode string   `json:"network_mode,omitempty"`
	Warnings    []string `json:"warnings,omitempty"`

	ResolvConf string `json:"-"`
	Hosts      string `json:"-"`
	// Net is the owner's published ports and networks (diagnose); nil when
	// the runtime says nothing. Not in resolve's JSON.
	Net *NetConfig `json:"-"`

	// NS pins the namespace; valid until Close.
	NS *nsfs.Netns `json:"-"`
}

// NetnsInfo identifies a network namespace in output.
type NetnsInfo struct {
	Path  string `json:"path"`
	Inode uint64 `json:"inode"`
	Dev   uint64 `json:"dev"`
}

// Close releases the pinned namespace.
func (r *Result) Close() error {
	if r == nil {
		return nil
	}
	return r.NS.Close()
}

// IDLister is a BriefLister that can also list only the running containers
// with the given IDs, as ListBrief lists them. whois IP asks it for the
// containers whose processes are in the namespaces that hold the address
// (their cgroups name them) instead of for every container: a running
// container always has its first process in its own network namespace.
type IDLister interface {
	BriefLister
	ListBriefIDs(ctx context.Context, ids []string) ([]Candidate, error)
}
