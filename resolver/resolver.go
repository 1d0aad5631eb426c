// Package resolver maps targets (containers, pods, PIDs, netns names and
// paths) to pinned network namespaces. Each container runtime is a Backend;
// the Resolver asks every backend that a target may concern, pins what they
// answer, and merges answers that are the same namespace.
package resolver

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/internal/procfs"
)

// DefaultTimeout bounds every call to one runtime.
const DefaultTimeout = 3 * time.Second

// Options configure a Resolver.
type Options struct {
	ProcRoot string        // "/proc" unless testing
	NetnsDir string        // "/var/run/netns" unless testing
	Timeout  time.Duration // per runtime call; DefaultTimeout if 0
	Backends []Backend
	// OpenBackends, if set, makes the backends on first use instead
	// (Backends is ignored): a pid:, netns: or path target never asks a
	// runtime, so it does not pay for constructing their clients.
	OpenBackends func() []Backend
	// HostRoot (see Config.HostRoot) is cut from the netns paths shown, so
	// that they read as on the node.
	HostRoot string
	// BareWord, if set, is what a bare WORD target names instead of a
	// lookup in every runtime (KindDocker when nsdebug runs as a Docker CLI
	// plugin).
	BareWord Kind
}

// Resolver resolves targets. It is safe for concurrent use.
type Resolver struct {
	opts Options

	backendsOnce sync.Once
	backends     []Backend

	hostOnce sync.Once
	hostID   nsfs.ID
	hostSrc  nsfs.HostSource
	hostErr  error
}

// New returns a Resolver over the given backends.
func New(opts Options) *Resolver {
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.NetnsDir == "" {
		opts.NetnsDir = "/var/run/netns"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	return &Resolver{opts: opts}
}

// Backends returns the configured backends, making them on first use.
func (r *Resolver) Backends() []Backend {
	r.backendsOnce.Do(func() {
		r.backends = r.opts.Backends
		if r.opts.OpenBackends != nil {
			r.backends = r.opts.OpenBackends()
		}
	})
	return r.backends
}

// ProcRoot is the /proc the resolver reads.
func (r *Resolver) ProcRoot() string { return r.opts.ProcRoot }

// NetnsDir is where named namespaces live (/var/run/netns).
func (r *Resolver) NetnsDir() string { return r.opts.NetnsDir }

// Timeout is the per-runtime call bound.
func (r *Resolver) Timeout() time.Duration { return r.opts.Timeout }

// Close closes every backend that was made, all at once: closing a gRPC
// connection waits for its goroutines, about 0.3 ms each (issue 13).
func (r *Resolver) Close() error {
	r.backendsOnce.Do(func() {}) // none made yet: none will be
	errs := make([]error, len(r.backends))
	var wg sync.WaitGroup
	for i, b := range r.backends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.Close()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Host returns the host's netns ID and how it was found.
func (r *Resolver) Host() (nsfs.ID, nsfs.HostSource, error) {
	r.hostOnce.Do(func() { r.hostID, r.hostSrc, r.hostErr = nsfs.HostID(r.opts.ProcRoot) })
	return r.hostID, r.hostSrc, r.hostErr
}

// Resolve pins the network namespace that t names.
func (r *Resolver) Resolve(ctx context.Context, t Target) (*Result, error) {
	var (
		res *Result
		err error
	)
	if t.Kind == KindAuto && r.opts.BareWord != "" {
		t.Kind = r.opts.BareWord
	}
	switch t.Kind {
	case KindPID:
		res, err = r.resolvePID(t)
	case KindNetns:
		res, err = r.resolvePath(t, filepath.Join(r.opts.NetnsDir, t.Name), "netns")
	case KindPath:
		res, err = r.resolvePath(t, filepath.Clean(t.Path), "path")
	default:
		res, err = r.resolveRuntime(ctx, t)
	}
	if err != nil {
		return nil, err
	}
	res.Target = t.String()
	host, src, herr := r.Host()
	switch {
	case herr != nil:
		res.HostUncertain = true
		res.Warnings = append(res.Warnings, fmt.Sprintf("cannot tell whether this is the host's network namespace: %v", herr))
	default:
		res.Host = res.NS.ID == host
		if src == nsfs.HostFromSelf && !res.Host {
			res.HostUncertain = true
			res.Warnings = append(res.Warnings, "could not read /proc/1/ns/net or /proc/2/ns/net; assuming nsdebug runs in the host network namespace")
		}
	}
	// When /proc cannot tell, the runtime's own word (host network mode, a
	// hostNetwork pod) is the witness left.
	if res.HostUncertain && res.NetworkMode == "host" {
		res.Host, res.HostUncertain = true, false
	}
	return res, nil
}

func (r *Resolver) resolvePID(t Target) (*Result, error) {
	ns, err := nsfs.OpenPID(r.opts.ProcRoot, t.PID)
	if err != nil {
		return nil, err
	}
	return &Result{
		Runtime: "pid", ID: fmt.Sprint(t.PID), PID: t.PID, NS: ns,
		Netns: NetnsInfo{Path: ns.Path, Inode: ns.ID.Inode, Dev: ns.ID.Dev},
	}, nil
}

func (r *Resolver) resolvePath(t Target, path, runtime string) (*Result, error) {
	ns, err := nsfs.Open(path)
	if err != nil {
		if errors.Is(err, nserr.ErrNotNetns) {
			real, err := filepath.EvalSymlinks(path)
			if err != nil {
				real = path
			}
			if hidden := procfs.HiddenNetnsMountAt(r.opts.ProcRoot, path, real); hidden != "" {
				return nil, nserr.New(nserr.ErrNotNetns, "%s is not a network namespace any more as seen from here: the nsfs mount of %s at that path is hidden under a later mount of %s (the /run/netns re-mount trap); the namespace still exists: see 'nsdebug ls', or umount the covering mount", path, hidden, filepath.Dir(path))
			}
		}
		if errors.Is(err, nserr.ErrNotNetns) && runtime == "netns" {
			return nil, nserr.New(nserr.ErrNotNetns, "%s is not a network namespace: an empty placeholder whose bind mount is gone, or hidden under a later mount of %s (see 'nsdebug ls')", path, r.opts.NetnsDir)
		}
		if errors.Is(err, nserr.ErrNotFound) && runtime == "netns" {
			return nil, nserr.New(nserr.ErrNotFound, "no network namespace named %q in %s", t.Name, r.opts.NetnsDir)
		}
		return nil, err
	}
	name := ""
	if runtime == "netns" {
		name = t.Name
	}
	return &Result{
		Runtime: runtime, Name: name, NS: ns,
		Netns: NetnsInfo{Path: path, Inode: ns.ID.Inode, Dev: ns.ID.Dev},
	}, nil
}

// backendAnswer is one backend's reply to a query.
type backendAnswer struct {
	backend Backend
	cands   []Candidate
	err     error
	// askedAt is CLOCK_BOOTTIME before the question: the processes the
	// answer names were running then (see nsfs.OpenReportedPID).
	askedAt time.Duration
}

// findAll asks the backends relevant to t, concurrently, each bounded by the
// timeout. Unanswered backends become notes, not failures.
func (r *Resolver) findAll(ctx context.Context, t Target) []backendAnswer {
	q := Query{Name: t.Name, Namespace: t.Namespace, Container: t.Container}
	var want func(Backend) bool
	switch t.Kind {
	case KindDocker:
		want = func(b Backend) bool { return b.Name() == "docker" }
	case KindPodman:
		want = func(b Backend) bool { return b.Name() == "podman" }
	case KindContainerd:
		want = func(b Backend) bool { return b.Name() == "containerd" }
	case KindPod:
		want = func(b Backend) bool { return b.Name() == "cri" }
	default:
		want = func(Backend) bool { return true }
	}
	var answers []backendAnswer
	var mu sync.Mutex
	var wg sync.WaitGroup
	backends := r.Backends()
	for _, b := range backends {
		if !want(b) {
			continue
		}
		wg.Add(1)
		go func(b Backend) {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
			defer cancel()
			askedAt := nsfs.Boottime()
			cands, err := b.Find(cctx, q)
			if err != nil && cctx.Err() == context.DeadlineExceeded {
				err = nserr.New(nserr.ErrUnavailable, "%s did not answer within %s at %s", b.Name(), r.opts.Timeout, b.Endpoint())
			}
			mu.Lock()
			answers = append(answers, backendAnswer{b, cands, err, askedAt})
			mu.Unlock()
		}(b)
	}
	wg.Wait()
	// Deterministic order: the order backends were configured in.
	order := map[Backend]int{}
	for i, b := range backends {
		order[b] = i
	}
	sort.Slice(answers, func(i, j int) bool { return order[answers[i].backend] < order[answers[j].backend] })
	return answers
}

// runtimeRank orders owners of one namespace: the most specific first.
func runtimeRank(o Owner) int {
	switch {
	case o.Runtime == "docker", o.Runtime == "podman":
		return 0
	case o.Runtime == "cri" && !o.Sandbox:
		return 1
	case o.Runtime == "cri":
		return 2
	case o.Runtime == "containerd" && o.Namespace != "moby" && o.Namespace != "k8s.io":
		return 3
	}
	return 4
}

type group struct {
	ns    *nsfs.Netns
	cands []Candidate
}

func (r *Resolver) resolveRuntime(ctx context.Context, t Target) (*Result, error) {
	answers := r.findAll(ctx, t)
	if len(answers) == 0 {
		return nil, noRuntimeFor(t.Kind)
	}
	var (
		notes      []string
		stopped    []Candidate
		groups     []*group
		pinErrs    []error
		notFound   []error // runtimes that answered "no such thing" with details
		looked     []string
		unanswered int
	)
	for _, a := range answers {
		looked = append(looked, a.backend.Name()+" ("+a.backend.Endpoint()+")")
		if a.err != nil {
			if errors.Is(a.err, nserr.ErrNotFound) {
				// An answer, not an outage: e.g. the pod has no container of that name.
				notFound = append(notFound, a.err)
				continue
			}
			if errors.Is(a.err, nserr.ErrUsage) {
				// The user's configuration is wrong (DOCKER_API_VERSION...):
				// say so rather than report an outage or a miss.
				return nil, a.err
			}
			unanswered++
			notes = append(notes, a.err.Error())
			continue
		}
		for _, c := range a.cands {
			if !c.Running {
				stopped = append(stopped, c)
				continue
			}
			ns, err := r.pin(c, a.askedAt)
			if err != nil {
				pinErrs = append(pinErrs, fmt.Errorf("%s: %w", c.Ref(), err))
				continue
			}
			merged := false
			for _, g := range groups {
				if g.ns.ID == ns.ID {
					g.cands = append(g.cands, c)
					ns.Close()
					merged = true
					break
				}
			}
			if !merged {
				groups = append(groups, &group{ns: ns, cands: []Candidate{c}})
			}
		}
	}
	closeGroups := func() {
		for _, g := range groups {
			g.ns.Close()
		}
	}

	switch {
	case len(groups) == 1:
		return r.resultFor(groups[0], notes), nil
	case len(groups) > 1:
		closeGroups()
		var refs []string
		for _, g := range groups {
			sortOwners(g.cands)
			refs = append(refs, g.cands[0].Ref()+" ("+g.ns.ID.String()+")")
		}
		return nil, nserr.New(nserr.ErrAmbiguous, "%q matches %d network namespaces: %s", t.Raw, len(groups), strings.Join(refs, ", "))
	case len(pinErrs) > 0:
		return nil, pinErrs[0]
	case len(stopped) > 0:
		c := stopped[0]
		state := c.State
		if state == "" {
			state = "stopped"
		}
		return nil, nserr.New(nserr.ErrNotRunning, "%s (%s) is not running (state: %s); it has no network namespace", c.Ref(), shortID(c.ID), state)
	case len(notFound) > 0 && t.Kind != KindAuto:
		// A bare word gets the general message below, which says where it looked.
		return nil, notFound[0]
	case unanswered == len(answers):
		return nil, nserr.New(nserr.ErrUnavailable, "cannot look up %q: %s", t.Raw, strings.Join(notes, "; "))
	case unanswered > 0:
		// "Not found" would be a guess: the runtime that did not answer
		// may well have it. Scripts must not read this as "gone".
		return nil, nserr.New(nserr.ErrUnavailable, "no runtime that answered knows %q (looked in %s), but it may belong to one that did not: %s", t.Raw, strings.Join(looked, ", "), strings.Join(notes, "; "))
	}
	return nil, nserr.New(nserr.ErrNotFound, "no container or pod matches %q (looked in %s)", t.Raw, strings.Join(looked, ", "))
}

// noRuntimeFor explains why a runtime's targets cannot be looked up at all:
// none of its sockets exists here.
func noRuntimeFor(k Kind) error {
	switch k {
	case KindDocker:
		return nserr.New(nserr.ErrUnavailable, "docker is not running here: no %s and no %s (set DOCKER_HOST or --docker-host)", defaultDockerSocket, dockerStateDir)
	case KindPodman:
		return nserr.New(nserr.ErrUnavailable, "podman's API service is not running here: no %s and no rootless socket %s (start 'podman system service', or set CONTAINER_HOST or --podman-host)", defaultPodmanSocket, rootlessPodmanGlob)
	case KindContainerd:
		return nserr.New(nserr.ErrUnavailable, "containerd is not running here: none of %s exists (set CONTAINERD_ADDRESS or --containerd-address)", strings.Join(DefaultContainerdSockets, ", "))
	case KindPod:
		return nserr.New(nserr.ErrUnavailable, "no CRI runtime is running here: none of %s exists (set CONTAINER_RUNTIME_ENDPOINT or --cri-endpoint)", strings.Join(DefaultCRISockets, ", "))
	}
	return nserr.New(nserr.ErrUnavailable, "no container runtime is running here (no Docker, Podman, containerd or CRI socket found)")
}

// pin opens the candidate's namespace: the runtime's netns file first (a bind
// mount cannot be reused by another process), the PID second (pidfd-pinned,
// and refused if that process started after the runtime was asked).
func (r *Resolver) pin(c Candidate, askedAt time.Duration) (*nsfs.Netns, error) {
	var pathErr error
	if c.NetnsPath != "" {
		open := c.NetnsPath
		root := strings.TrimRight(r.opts.HostRoot, "/")
		if rest, ok := strings.CutPrefix(open, root+"/"); ok && root != "" {
			open = InRoot(root, rest)
		}
		ns, err := nsfs.Open(open)
		if err == nil {
			ns.Path = c.NetnsPath
			return ns, nil
		}
		pathErr = err
	}
	if c.PID > 0 {
		return nsfs.OpenReportedPID(r.opts.ProcRoot, c.PID, askedAt)
	}
	if pathErr != nil {
		return nil, nserr.Wrap(nserr.ErrStale, pathErr, "its network namespace file is stale")
	}
	return nil, nserr.New(nserr.ErrNotRunning, "the runtime reports no process and no network namespace for it")
}

func sortOwners(cs []Candidate) {
	sort.SliceStable(cs, func(i, j int) bool { return runtimeRank(cs[i].Owner) < runtimeRank(cs[j].Owner) })
}

func (r *Resolver) resultFor(g *group, notes []string) *Result {
	sortOwners(g.cands)
	c := g.cands[0]
	res := &Result{
		Runtime:     c.Runtime,
		ID:          c.ID,
		Name:        c.Name,
		Pod:         c.Pod,
		PID:         c.PID,
		NS:          g.ns,
		NetworkMode: c.NetworkMode,
		ResolvConf:  c.ResolvConf,
		Hosts:       c.Hosts,
		Warnings:    notes,
		Netns:       NetnsInfo{Path: r.shownPath(g.ns.Path), Inode: g.ns.ID.Inode, Dev: g.ns.ID.Dev},
	}
	seen := map[string]bool{}
	for _, o := range g.cands {
		if o.PID != 0 && res.PID == 0 {
			res.PID = o.PID
		}
		if res.ResolvConf == "" {
			res.ResolvConf, res.Hosts = o.ResolvConf, o.Hosts
		}
		if res.Net == nil {
			res.Net = o.Net
		}
		if !seen[o.Ref()] {
			seen[o.Ref()] = true
			res.Owners = append(res.Owners, o.Owner)
		}
	}
	return res
}

// shownPath is p as the node names it.
func (r *Resolver) shownPath(p string) string {
	if r.opts.HostRoot != "" {
		if rest, ok := strings.CutPrefix(p, strings.TrimRight(r.opts.HostRoot, "/")+"/"); ok {
			return "/" + rest
		}
	}
	return p
}

// HostRoot is Options.HostRoot.
func (r *Resolver) HostRoot() string { return r.opts.HostRoot }

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
