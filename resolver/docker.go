package resolver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/nsdebug/nsdebug/internal/nserr"
)

func init() { registerBackend(newDockerBackends) }

// Where dockerd listens and keeps its state by default.
var (
	defaultDockerSocket = "/var/run/docker.sock"
	dockerStateDir      = "/var/run/docker"
)

func newDockerBackends(cfg Config) []Backend {
	// Like containerd's and CRI's default sockets, Docker is asked only
	// where it is installed: on a Kubernetes node without Docker an absent
	// socket is not an outage. A state directory without a socket is a
	// stopped dockerd, which is one (its containers may still run).
	if cfg.DockerHost == "" && !exists(defaultDockerSocket) && !exists(dockerStateDir) {
		return nil
	}
	return []Backend{&dockerBackend{runtime: "docker", host: cfg.DockerHost}}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// checkAPIVersionEnv refuses a DOCKER_API_VERSION that is not a version: the
// client would put it in every URL and the daemon answer 404, which reads as
// "no such container".
func checkAPIVersionEnv() error {
	v := os.Getenv("DOCKER_API_VERSION")
	if v == "" {
		return nil
	}
	major, minor, ok := strings.Cut(v, ".")
	if !ok || !isDigits(major) || !isDigits(minor) {
		return nserr.New(nserr.ErrUsage, "DOCKER_API_VERSION=%q is not a Docker API version such as 1.41", v)
	}
	return nil
}

// dockerBackend finds Docker containers through the Docker Engine API. The
// client follows the docker CLI's environment (DOCKER_HOST, DOCKER_API_VERSION,
// DOCKER_CERT_PATH, DOCKER_TLS_VERIFY) and negotiates the API version with
// the daemon unless DOCKER_API_VERSION pins it: down to the client's minimum,
// 1.40 (Docker 19.03), so Docker 20.10 (1.41) and Docker 29 (1.56) both work.
//
// Podman's Docker-compatible API is the same protocol: a dockerBackend with
// runtime "podman" (see podman.go) talks to it, ignoring the docker CLI's
// environment.
type dockerBackend struct {
	runtime string // "docker" or "podman": the word in targets and output
	host    string // --docker-host; "" = environment, then the default socket

	once sync.Once
	cli  *client.Client
	err  error
}

func (b *dockerBackend) Name() string { return b.runtime }

func (b *dockerBackend) Endpoint() string {
	if cli, err := b.client(); err == nil {
		return cli.DaemonHost()
	}
	if b.host != "" {
		return b.host
	}
	return client.DefaultDockerHost
}

// client is made on first use; making it does not connect.
func (b *dockerBackend) client() (*client.Client, error) {
	b.once.Do(func() {
		var opts []client.Opt
		if b.runtime == "podman" {
			// DOCKER_HOST and DOCKER_API_VERSION name Docker, not Podman;
			// the version is negotiated (podman 4.3 says 1.41).
			opts = []client.Opt{client.WithHost(b.host)}
		} else {
			if b.err = checkAPIVersionEnv(); b.err != nil {
				return
			}
			// client.New negotiates the version on the first call unless
			// FromEnv found DOCKER_API_VERSION, which pins it.
			opts = []client.Opt{client.FromEnv}
			if b.host != "" {
				opts = append(opts, client.WithHost(b.host))
			}
		}
		b.cli, b.err = client.New(opts...)
		if b.err != nil {
			b.err = nserr.Wrap(nserr.ErrUsage, b.err, "%s endpoint", b.runtime)
		}
	})
	return b.cli, b.err
}

func (b *dockerBackend) Close() error {
	if b.cli != nil {
		return b.cli.Close()
	}
	return nil
}

// Find asks the daemon to inspect q.Name first: one call resolves a name, a
// full ID or a unique ID prefix exactly as `docker inspect` does. Only an
// ambiguous prefix lists containers, so that every match is reported.
func (b *dockerBackend) Find(ctx context.Context, q Query) ([]Candidate, error) {
	cli, err := b.client()
	if err != nil {
		return nil, err
	}
	name := strings.TrimPrefix(q.Name, "/")
	if name == "" {
		return nil, nil
	}
	res, err := cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	switch {
	case err == nil:
		return []Candidate{b.candidate(ctx, cli, res.Container, true)}, nil
	case isAmbiguousPrefix(err):
		// Before IsNotFound: Podman answers an ambiguous prefix with a 404.
		return b.findByPrefix(ctx, cli, name)
	case cerrdefs.IsNotFound(err):
		return nil, nil
	}
	return nil, b.apiError(ctx, err)
}

// isAmbiguousPrefix recognises the daemon's answer to a prefix that matches
// several containers: Docker's "multiple IDs found with provided prefix"
// (400), Podman's "more than one result for container ID" (404).
func isAmbiguousPrefix(err error) bool {
	msg := strings.ToLower(err.Error())
	return cerrdefs.IsInvalidArgument(err) || strings.Contains(msg, "multiple ids found") || strings.Contains(msg, "more than one result")
}

func (b *dockerBackend) findByPrefix(ctx context.Context, cli *client.Client, prefix string) ([]Candidate, error) {
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return nil, b.apiError(ctx, err)
	}
	var ids []string
	for _, c := range list.Items {
		if strings.HasPrefix(c.ID, prefix) {
			ids = append(ids, c.ID)
		}
	}
	return b.inspectAll(ctx, cli, ids, false)
}

// List returns every running container.
func (b *dockerBackend) List(ctx context.Context) ([]Candidate, error) {
	cli, err := b.client()
	if err != nil {
		return nil, err
	}
	list, err := runningContainers(ctx, cli)
	if err != nil {
		return nil, b.apiError(ctx, err)
	}
	ids := make([]string, len(list))
	for i, c := range list {
		ids[i] = c.ID
	}
	return b.inspectAll(ctx, cli, ids, false)
}

// ListBrief lists running containers in one call, without PID or SandboxKey.
func (b *dockerBackend) ListBrief(ctx context.Context) ([]Candidate, error) {
	return b.listBrief(ctx, nil)
}

// ListBriefIDs is ListBrief for the containers with these IDs only (the
// daemon's id filter; an ID it does not know matches nothing).
func (b *dockerBackend) ListBriefIDs(ctx context.Context, ids []string) ([]Candidate, error) {
	return b.listBrief(ctx, ids)
}

func (b *dockerBackend) listBrief(ctx context.Context, ids []string) ([]Candidate, error) {
	cli, err := b.client()
	if err != nil {
		return nil, err
	}
	list, err := runningContainers(ctx, cli, ids...)
	if err != nil {
		return nil, b.apiError(ctx, err)
	}
	out := make([]Candidate, 0, len(list))
	for _, s := range list {
		c := Candidate{Owner: Owner{Runtime: b.runtime, ID: s.ID, NetworkMode: s.HostConfig.NetworkMode}, Running: true, State: string(s.State)}
		if c.NetworkMode == "default" {
			c.NetworkMode = "bridge"
		}
		if len(s.Names) > 0 {
			c.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		c.HostNetwork = container.NetworkMode(c.NetworkMode).IsHost()
		if name := s.Labels["io.kubernetes.pod.name"]; name != "" {
			c.Pod = &PodRef{Namespace: s.Labels["io.kubernetes.pod.namespace"], Name: name, UID: s.Labels["io.kubernetes.pod.uid"]}
		}
		out = append(out, c)
	}
	return out, nil
}

// runningContainers lists the running containers, or only those of ids.
func runningContainers(ctx context.Context, cli *client.Client, ids ...string) ([]container.Summary, error) {
	f := make(client.Filters).Add("status", "running")
	if len(ids) > 0 {
		f = f.Add("id", ids...)
	}
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{Filters: f})
	return res.Items, err
}

// Complete inspects the given containers for their PID and SandboxKey.
func (b *dockerBackend) Complete(ctx context.Context, cands []Candidate) ([]Candidate, error) {
	cli, err := b.client()
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(cands))
	for i, c := range cands {
		ids[i] = c.ID
	}
	return b.inspectAll(ctx, cli, ids, false)
}

// inspectWorkers bounds concurrent inspect calls: enough to hide the
// daemon's per-call latency, few enough not to load a busy daemon.
const inspectWorkers = 8

// inspectAll inspects ids concurrently; containers removed meanwhile are
// left out.
func (b *dockerBackend) inspectAll(ctx context.Context, cli *client.Client, ids []string, peerNames bool) ([]Candidate, error) {
	out := make([]*Candidate, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, inspectWorkers)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, id string) {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
			if err != nil {
				if !cerrdefs.IsNotFound(err) {
					errs[i] = err
				}
				return
			}
			c := b.candidate(ctx, cli, res.Container, peerNames)
			out[i] = &c
		}(i, id)
	}
	wg.Wait()
	var cands []Candidate
	for i, c := range out {
		if errs[i] != nil {
			return nil, b.apiError(ctx, errs[i])
		}
		if c != nil {
			cands = append(cands, *c)
		}
	}
	return cands, nil
}

func (b *dockerBackend) candidate(ctx context.Context, cli *client.Client, info container.InspectResponse, peerNames bool) Candidate {
	c := Candidate{Owner: Owner{Runtime: b.runtime, ID: info.ID, Name: strings.TrimPrefix(info.Name, "/")}}
	if info.HostConfig != nil {
		c.NetworkMode = string(info.HostConfig.NetworkMode)
	}
	if info.State != nil {
		c.State = string(info.State.Status)
		// Only a running container has a netns; a paused one keeps it.
		c.Running = info.State.Running || info.State.Paused
		if c.Running {
			c.PID = info.State.Pid
		}
	}
	if c.Running && info.NetworkSettings != nil {
		c.NetnsPath = info.NetworkSettings.SandboxKey
	}
	if c.NetworkMode == "default" {
		c.NetworkMode = "bridge" // what "default" means on Linux
	}
	mode := container.NetworkMode(c.NetworkMode)
	c.HostNetwork = mode.IsHost()
	if mode.IsContainer() {
		// The container's own process is in the other's netns; its
		// SandboxKey is empty. Name the other container for people.
		c.NetnsPath = ""
		if peerNames {
			if other, err := cli.ContainerInspect(ctx, mode.ConnectedContainer(), client.ContainerInspectOptions{}); err == nil {
				c.NetworkMode = "container:" + strings.TrimPrefix(other.Container.Name, "/")
			}
		}
	}
	if c.Running {
		c.ResolvConf, c.Hosts = info.ResolvConfPath, info.HostsPath
		if info.NetworkSettings != nil {
			c.Net = dockerNetConfig(info.NetworkSettings.Ports, info.NetworkSettings.Networks)
		}
	}
	if info.Config != nil {
		l := info.Config.Labels
		if name := l["io.kubernetes.pod.name"]; name != "" {
			c.Pod = &PodRef{Namespace: l["io.kubernetes.pod.namespace"], Name: name, UID: l["io.kubernetes.pod.uid"]}
		}
	}
	return c
}

// apiError classifies a failed Docker API call: a daemon that is absent or
// silent is ErrUnavailable naming the endpoint; a refused socket permission
// is ErrPermission.
func (b *dockerBackend) apiError(ctx context.Context, err error) error {
	host := b.Endpoint()
	if ctx.Err() != nil {
		return nserr.Wrap(nserr.ErrUnavailable, ctx.Err(), "%s did not answer at %s", b.runtime, host)
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "permission denied"):
		return nserr.New(nserr.ErrPermission, "cannot connect to %s at %s: permission denied", b.runtime, host)
	case client.IsErrConnectionFailed(err), strings.Contains(msg, "connection refused"), strings.Contains(msg, "no such file or directory"):
		return nserr.New(nserr.ErrUnavailable, "%s is not answering at %s", b.runtime, host)
	case cerrdefs.IsUnavailable(err), errors.Is(err, context.DeadlineExceeded):
		return nserr.New(nserr.ErrUnavailable, "%s is not answering at %s: %s", b.runtime, host, firstLine(msg))
	}
	return fmt.Errorf("%s at %s: %s", b.runtime, host, firstLine(msg))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
