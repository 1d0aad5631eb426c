// Package cmd holds nsdebug's cobra commands. Commands stay thin: they parse
// flags into an options struct and call the package that does the work
// (resolver, enter, inspect), writing to the injected IO streams.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/nsdebug/nsdebug/internal/hostcheck"
	"github.com/nsdebug/nsdebug/internal/kubelet"
	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/resolver"
)

// IOStreams are the streams a command reads and writes; tests inject buffers.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// OutTTY: Out is a terminal (tables may use colour unless NO_COLOR).
	OutTTY bool
}

// SystemStreams are the process's own streams.
func SystemStreams() IOStreams {
	return IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, OutTTY: term.IsTerminal(int(os.Stdout.Fd()))}
}

// Color reports whether output may be coloured.
func (s IOStreams) Color() bool {
	_, noColor := os.LookupEnv("NO_COLOR")
	return s.OutTTY && !noColor && os.Getenv("TERM") != "dumb"
}

// Env is what every command shares: streams, global flags, and a resolver
// opened on first use.
type Env struct {
	IO  IOStreams
	Cfg resolver.Config
	// ProcRoot/NetnsDir override /proc and /var/run/netns (tests only).
	ProcRoot string
	NetnsDir string
	// LinkStateDir overrides where link records live; DockerNetnsDir is
	// Docker's netns directory for unlink --stale (tests only; with
	// NetnsDir moved and DockerNetnsDir empty, Docker's is not looked at).
	LinkStateDir   string
	DockerNetnsDir string
	// StaleRuntimeMinAge overrides how old a runtime's netns file must be
	// before unlink --stale may remove it (tests only; 0 = a minute).
	StaleRuntimeMinAge time.Duration
	// SkipPrivCheck is for unit tests that run without root.
	SkipPrivCheck bool

	res *resolver.Resolver
	// dockerHostDefault replaces --docker-host's default (the Docker CLI
	// plugin's daemon); an explicit --docker-host still wins.
	dockerHostDefault string
	// execStyle: this command reports nsdebug's own failures as 125 (exec, shell).
	execStyle bool
}

// Resolver opens the runtimes' clients on first use.
func (e *Env) Resolver() *resolver.Resolver {
	if e.res == nil {
		opts := e.Cfg.Options()
		opts.ProcRoot, opts.NetnsDir = e.ProcRoot, e.NetnsDir
		e.res = resolver.New(opts)
	}
	return e.res
}

// Close releases the runtime clients.
func (e *Env) Close() {
	if e.res != nil {
		e.res.Close()
	}
}

// resolveTarget is the step every single-target command shares once its
// own input is checked: the privilege check, resolution (which pins the
// namespace) and the resolver's warnings. The caller closes the result.
func (e *Env) resolveTarget(ctx context.Context, t resolver.Target) (*resolver.Result, error) {
	if err := requireRoot(e); err != nil {
		return nil, err
	}
	res, err := e.Resolver().Resolve(ctx, t)
	if err != nil {
		return nil, err
	}
	for _, w := range res.Warnings {
		e.Warn("%s", w)
	}
	return res, nil
}

// Warn prints one warning line on stderr.
func (e *Env) Warn(format string, args ...any) {
	fmt.Fprintf(e.IO.ErrOut, "nsdebug: warning: "+format+"\n", args...)
}

// commands are added by each command's file.
var commands []func(*Env) *cobra.Command

func addCommand(f func(*Env) *cobra.Command) { commands = append(commands, f) }

// NewRootCmd builds the command tree over env.
func NewRootCmd(env *Env) *cobra.Command {
	var timeout time.Duration
	root := &cobra.Command{
		Use:   "nsdebug",
		Short: "Find any container's network namespace and work inside it with the host's tools",
		Long: `nsdebug finds the network namespace of a Docker, Podman or containerd container, a
Kubernetes pod or a process, and lets you work inside it with the host's own
tools: run commands, link it for 'ip netns', inspect it, tune its sysctls.

Targets:
  docker:NAME|ID              Docker container (unique ID prefixes accepted)
  podman:NAME|ID              Podman container (through its API service's socket)
  containerd:[NAMESPACE/]ID   containerd container (all namespaces searched)
  pod:[NAMESPACE/]NAME[/CTR]  Kubernetes pod through CRI (namespace: default)
  pid:N, N                    a process
  netns:NAME                  a name under /var/run/netns
  /path/to/netns              a netns file (/var/run/docker/netns/..., /run/netns/cni-..., /run/netns/netns-...)
  WORD                        a container name, ID prefix or pod name in any runtime`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if timeout <= 0 {
				return nserr.New(nserr.ErrUsage, "--timeout must be a positive duration such as 3s or 500ms (got %s)", timeout)
			}
			env.Cfg.Timeout = timeout
			return useKubelet(env)
		},
	}
	root.SetIn(env.IO.In)
	root.SetOut(env.IO.Out)
	root.SetErr(env.IO.ErrOut)
	pf := root.PersistentFlags()
	pf.DurationVar(&timeout, "timeout", resolver.DefaultTimeout, "bound on each call to a container runtime")
	pf.StringVar(&env.Cfg.DockerHost, "docker-host", "", "Docker daemon socket (default $DOCKER_HOST or unix:///var/run/docker.sock)")
	if env.dockerHostDefault != "" {
		env.Cfg.DockerHost = env.dockerHostDefault
	}
	pf.StringVar(&env.Cfg.PodmanHost, "podman-host", "", "Podman API socket (default $CONTAINER_HOST, else unix:///run/podman/podman.sock and every rootless /run/user/UID/podman/podman.sock)")
	pf.StringVar(&env.Cfg.ContainerdAddress, "containerd-address", "", "containerd socket (default $CONTAINERD_ADDRESS, else every default socket)")
	pf.StringVar(&env.Cfg.CRIEndpoint, "cri-endpoint", "", "CRI runtime endpoint (default $CONTAINER_RUNTIME_ENDPOINT, else containerd's and CRI-O's sockets); \"kubelet\": the one the node's kubelet uses")
	pf.StringVar(&env.Cfg.HostRoot, "host-root", "", "the node's root directory as seen from here, for paths the runtimes report (kubectl-nsdebug's helper pod)")
	_ = pf.MarkHidden("host-root")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return nserr.New(nserr.ErrUsage, "%v (see '%s --help')", err, c.CommandPath())
	})
	for _, f := range commands {
		root.AddCommand(f(env))
	}
	return root
}

// useKubelet turns --cri-endpoint kubelet into the endpoint the node's
// kubelet was given, reached through kubelet's root in procfs, so that it
// works from a helper pod with only hostPID; the runtime's paths (netns
// files, resolv.conf) are read below that root too.
func useKubelet(env *Env) error {
	if env.Cfg.CRIEndpoint != "kubelet" {
		return nil
	}
	procRoot := env.ProcRoot
	if procRoot == "" {
		procRoot = "/proc"
	}
	k, err := kubelet.Find(procRoot)
	if err != nil {
		return err
	}
	// Paths are kubelet's: its runtime is normally in its mount namespace
	// (both on the host, or both in a kind node). Not PID 1's root: some
	// hosts refuse even root with CAP_SYS_PTRACE access to it.
	root := env.Cfg.HostRoot
	if root == "" {
		root = k.Root
	}
	ep, err := kubelet.EndpointUnder(k.Root, k.Endpoint)
	if err != nil {
		return err
	}
	env.Cfg.CRIEndpoint, env.Cfg.HostRoot = ep, root
	// Only kubelet's runtime: other runtimes' sockets on the node are not
	// the cluster's.
	env.Cfg.Disabled = map[string]bool{"docker": true, "podman": true, "containerd": true}
	if env.NetnsDir == "" {
		env.NetnsDir = root + "/var/run/netns"
	}
	return nil
}

// requireRoot is the privilege check every namespace-touching command runs
// first: one clear line instead of a cascade of EPERMs.
func requireRoot(env *Env) error {
	if env.SkipPrivCheck {
		return nil
	}
	if os.Geteuid() != 0 {
		// A rootless Podman user can reach their own containers as root
		// of their user namespace.
		if _, err := os.Stat(fmt.Sprintf("/run/user/%d/podman/podman.sock", os.Geteuid())); err == nil {
			return nserr.New(nserr.ErrPermission, "nsdebug must run as root (it reads other processes' namespaces and talks to the runtimes' sockets); try: sudo nsdebug ..., or for your own rootless Podman containers: podman unshare nsdebug ...")
		}
		return nserr.New(nserr.ErrPermission, "nsdebug must run as root (it reads other processes' namespaces and talks to the runtimes' sockets); try: sudo nsdebug ...")
	}
	var missing []string
	eff, known := effectiveCaps()
	for _, c := range []struct {
		bit  uint
		name string
	}{{unix.CAP_SYS_ADMIN, "CAP_SYS_ADMIN"}, {unix.CAP_SYS_PTRACE, "CAP_SYS_PTRACE"}} {
		// Unreadable status: let the operation itself fail.
		if known && eff&(1<<c.bit) == 0 {
			missing = append(missing, c.name)
		}
	}
	if len(missing) > 0 {
		return nserr.New(nserr.ErrPermission, "nsdebug needs %s (missing from this process's effective capabilities)", strings.Join(missing, " and "))
	}
	procRoot := env.ProcRoot
	if procRoot == "" {
		procRoot = "/proc"
	}
	return hostcheck.Check(procRoot)
}

// effectiveCaps is this thread's CapEff mask, read once for every bit
// requireRoot checks; known is false when it cannot be read.
func effectiveCaps() (mask uint64, known bool) {
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%x", &mask); err != nil {
				return 0, false
			}
			return mask, true
		}
	}
	return 0, false
}

// Main runs nsdebug with args and returns the process exit status. It is the
// process's entry point; tests call Run.
func Main(args []string, streams IOStreams) int {
	return runMain(&Env{IO: streams}, args, true)
}

// shortLivedHeapLimit bounds a read-only command's memory with the collector
// off: past it, the collector runs as usual (ls with 5000 namespaces keeps
// about 40 MB).
const shortLivedHeapLimit = 256 << 20

// Run runs nsdebug over env (tests set its overrides: a fake /proc, another
// netns directory) and returns the exit status; errors go to env's stderr.
func Run(env *Env, args []string) int {
	return runMain(env, args, false)
}

func runMain(env *Env, args []string, process bool) int {
	streams := env.IO
	defer env.Close()
	root := NewRootCmd(env)
	root.SetArgs(args)
	ctx := context.Background()
	readOnly := !needsSignals(root, args)
	if !readOnly {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	} else if process && os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		// A read-only command lives a fraction of a second and keeps
		// little: it runs without the garbage collector unless its heap
		// reaches the limit. The collector's cycles were 15-30% of ls's
		// CPU time with 500 namespaces (issue 13).
		debug.SetGCPercent(-1)
		debug.SetMemoryLimit(shortLivedHeapLimit)
	}
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *nserr.ExecError
	if !errors.As(err, &ee) {
		fmt.Fprintf(streams.ErrOut, "nsdebug: %s\n", oneLine(err.Error()))
	}
	if isCobraUsageError(err) {
		return nserr.ExitCode(nserr.New(nserr.ErrUsage, "%v", err), env.execStyle)
	}
	return nserr.ExitCode(err, env.execStyle)
}

// readOnlyCommands change nothing on the host and hold nothing that must be
// released: killed by Ctrl-C or SIGTERM, they leave nothing behind, so they
// skip signal.NotifyContext, whose signal thread is a measurable part of
// nsdebug's start-up (issue 13). Every other command, including any added
// later, keeps it: interrupted, it cancels its context and cleans up.
var readOnlyCommands = map[string]bool{
	"version": true, "help": true, "completion": true, "targets": true, "exit-codes": true,
	"ls": true, "resolve": true, "inspect": true, "whois": true, "graph": true,
}

// needsSignals reports whether the command args name is one that must turn
// an interrupt into a cancelled context.
func needsSignals(root *cobra.Command, args []string) bool {
	c, _, err := root.Find(args)
	if err != nil || c == nil || c == root {
		// cobra adds help and completion only when it executes.
		for _, a := range args {
			if !strings.HasPrefix(a, "-") {
				return !readOnlyCommands[a]
			}
		}
		return true
	}
	for p := c; p != nil && p != root; p = p.Parent() {
		if p.Parent() == root {
			return !readOnlyCommands[p.Name()]
		}
	}
	return true
}

// oneLine keeps errors to one line whatever a library put in them.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r", " ")
	return strings.ReplaceAll(s, "\n", " ")
}

// isCobraUsageError recognises cobra's own argument errors (unknown command,
// wrong arg count), which carry no kind.
func isCobraUsageError(err error) bool {
	if errors.Is(err, nserr.ErrUsage) {
		return false
	}
	s := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "requires at most", "invalid argument", "flag needs an argument"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}
