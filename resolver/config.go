package resolver

import (
	"os"
	"sort"
	"time"
)

// Config says where each runtime listens. Empty fields take the environment
// (DOCKER_HOST, CONTAINERD_ADDRESS, CONTAINER_RUNTIME_ENDPOINT) and then the
// runtimes' default sockets.
type Config struct {
	DockerHost string
	// PodmanHost: Podman's API socket (unix:///run/podman/podman.sock);
	// "" = $CONTAINER_HOST, then the rootful socket and every rootless
	// one (/run/user/UID/podman/podman.sock) that exists.
	PodmanHost        string
	ContainerdAddress string // "" = every default socket that exists
	CRIEndpoint       string // "" = every default CRI socket that exists
	Timeout           time.Duration
	// HostRoot: the runtimes' paths (CRI sockets aside, which the caller
	// names) are the node's, visible below this directory (kubelet's root
	// through procfs, when nsdebug runs in kubectl-nsdebug's helper pod).
	HostRoot string
	// Disabled runtimes are not asked (names: docker, podman, containerd, cri).
	Disabled map[string]bool
	// BareWord: see Options.BareWord.
	BareWord Kind
}

// Default sockets, searched in this order.
var (
	DefaultContainerdSockets = []string{
		"/run/containerd/containerd.sock",
		"/var/run/docker/containerd/containerd.sock", // the containerd that dockerd starts itself
	}
	DefaultCRISockets = []string{
		"/run/containerd/containerd.sock",
		"/var/run/crio/crio.sock",
	}
)

// FromEnv fills empty fields from the environment.
func (c Config) FromEnv() Config {
	if c.DockerHost == "" {
		c.DockerHost = os.Getenv("DOCKER_HOST")
	}
	if c.PodmanHost == "" {
		c.PodmanHost = os.Getenv("CONTAINER_HOST")
	}
	if c.ContainerdAddress == "" {
		c.ContainerdAddress = os.Getenv("CONTAINERD_ADDRESS")
	}
	if c.CRIEndpoint == "" {
		c.CRIEndpoint = os.Getenv("CONTAINER_RUNTIME_ENDPOINT")
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// backendFactories are filled by each backend's file, so that the set of
// runtimes is decided in one place per runtime.
var backendFactories []func(Config) []Backend

func registerBackend(f func(Config) []Backend) { backendFactories = append(backendFactories, f) }

// Open returns a Resolver over every runtime in cfg. Backends connect lazily:
// opening never blocks and never fails because a runtime is down.
func Open(cfg Config) *Resolver { return New(cfg.Options()) }

// Options are the resolver options for cfg, with the backends made on
// first use; the caller may set ProcRoot and NetnsDir before New.
func (c Config) Options() Options {
	cfg := c.FromEnv()
	return Options{
		OpenBackends: func() []Backend { return openBackends(cfg) },
		Timeout:      cfg.Timeout, HostRoot: cfg.HostRoot, BareWord: cfg.BareWord,
	}
}

func openBackends(cfg Config) []Backend {
	var bs []Backend
	for _, f := range backendFactories {
		for _, b := range f(cfg) {
			if !cfg.Disabled[b.Name()] {
				bs = append(bs, b)
			}
		}
	}
	// A fixed order (docker, podman, containerd, cri) keeps messages and
	// output stable whatever order the backend files registered in.
	rank := map[string]int{"docker": 0, "podman": 1, "containerd": 2, "cri": 3}
	sort.SliceStable(bs, func(i, j int) bool { return rank[bs[i].Name()] < rank[bs[j].Name()] })
	return bs
}
