// Package kube is kubectl-nsdebug: it runs nsdebug on a pod's node through
// the Kubernetes API alone. For each node it creates one short-lived helper
// pod (hostPID, nodeName set), runs nsdebug in it over the pods/exec
// subresource (WebSocket, falling back to SPDY), and deletes it on every way
// out. All client-go code of the project lives here, so that the nsdebug
// binary links none of it.
package kube

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/klog/v2"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/version"
)

// Streams are the plugin's standard streams.
type Streams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// Environment variables the plugin reads.
const (
	EnvImage      = "KUBECTL_NSDEBUG_IMAGE"
	EnvPullPolicy = "KUBECTL_NSDEBUG_IMAGE_PULL_POLICY"
)

// DefaultImage is the helper image: any image holding a static nsdebug of the
// same protocol in its PATH works (see README, Kubernetes).
func DefaultImage() string {
	v := version.Version
	if v == "" || v == "dev" {
		v = "latest"
	}
	return "docker.io/nsdebug/nsdebug:" + v
}

// DefaultHelperNamespace is where helper pods are made: the target pod's own
// namespace often forbids privileged pods through Pod Security admission,
// while kube-system allows them on a cluster set up by any installer.
const DefaultHelperNamespace = "kube-system"

// Options are the plugin's own flags (kubectl's are in Config).
type Options struct {
	Config       *genericclioptions.ConfigFlags
	Image        string
	PullPolicy   string
	HelperNS     string
	Timeout      time.Duration
	StartTimeout time.Duration
	Selector     string
	Node         string
	Container    string
	HostTools    bool
	Stdin        bool
	TTY          bool
	MaxParallel  int
	// gc
	All bool
	// rbac
	User, Group, ServiceAccount string
	RBACName                    string
	// DeadlineSlack: activeDeadlineSeconds is Timeout plus this (tests
	// shorten it).
	DeadlineSlack time.Duration
}

// invocation is one parsed command line.
type invocation struct {
	sub    string   // exec, shell, resolve, inspect, sysctl, diagnose, capture, whois, ls, graph, gc, rbac, version, help
	target string   // POD[/CONTAINER], pod/POD[/CONTAINER] or node/NAME
	thing  string   // whois THING
	pass   []string // nsdebug's own arguments, unchanged
}

// podCommands take a pod target; nodeCommands a node (or a pod's node).
var (
	podCommands  = map[string]bool{"exec": true, "shell": true, "resolve": true, "inspect": true, "sysctl": true, "diagnose": true, "capture": true}
	nodeCommands = map[string]bool{"ls": true, "graph": true, "whois": true}
	ownCommands  = map[string]bool{"gc": true, "rbac": true, "version": true, "help": true}
)

// execStyle commands report the plugin's own failures as 125, as nsdebug exec
// and docker exec do: every other status is the command's.
func (iv invocation) execStyle() bool { return iv.sub == "exec" || iv.sub == "shell" }

func newFlags(o *Options) *pflag.FlagSet {
	fs := pflag.NewFlagSet("kubectl-nsdebug", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.SetOutput(io.Discard)
	o.Config = genericclioptions.NewConfigFlags(true)
	o.Config.AddFlags(fs)
	img := os.Getenv(EnvImage)
	if img == "" {
		img = DefaultImage()
	}
	fs.StringVar(&o.Image, "image", img, "helper image holding nsdebug (env "+EnvImage+")")
	pull := os.Getenv(EnvPullPolicy)
	if pull == "" {
		pull = "IfNotPresent"
	}
	fs.StringVar(&o.PullPolicy, "image-pull-policy", pull, "helper image pull policy: Always, IfNotPresent or Never (env "+EnvPullPolicy+")")
	fs.StringVar(&o.HelperNS, "helper-namespace", DefaultHelperNamespace, "namespace of the helper pods (it must admit hostPID pods with added capabilities)")
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Minute, "longest a command may run; the helper pod ends itself 1m later, the API server 2m later")
	fs.DurationVar(&o.StartTimeout, "start-timeout", 90*time.Second, "longest wait for a helper pod to start")
	fs.StringVarP(&o.Selector, "selector", "l", "", "run for every running pod matching this label selector (one helper per node)")
	fs.StringVar(&o.Node, "node", "", "node to run ls, graph or whois on")
	fs.StringVarP(&o.Container, "container", "c", "", "container of the pod (its netns is the pod's; with -l, the prefix names it)")
	fs.BoolVar(&o.HostTools, "host-tools", false, "run the command with the node's own binaries and files instead of the helper image's")
	fs.BoolVarP(&o.Stdin, "stdin", "i", false, "pass stdin to the command (the default when stdin is not a terminal)")
	fs.BoolVarP(&o.TTY, "tty", "t", false, "allocate a TTY for exec (shell gets one whenever stdin is a terminal)")
	fs.IntVar(&o.MaxParallel, "max-parallel", 8, "with -l: nodes worked on at once")
	fs.BoolVar(&o.All, "all", false, "gc: delete every helper pod, not only those past their deadline")
	fs.StringVar(&o.User, "for-user", "", "rbac: bind to this user")
	fs.StringVar(&o.Group, "for-group", "", "rbac: bind to this group")
	fs.StringVar(&o.ServiceAccount, "for-serviceaccount", "", "rbac: bind to this NAMESPACE:NAME service account")
	fs.StringVar(&o.RBACName, "rbac-name", RBACName, "rbac: name of the roles and bindings")
	fs.DurationVar(&o.DeadlineSlack, "deadline-slack", DeadlineSlack, "how long past --timeout the API server ends a helper pod")
	_ = fs.MarkHidden("deadline-slack")
	return fs
}

// parse reads the plugin's flags, then the subcommand (exec if none), then
// the plugin's flags again, then the target; what follows the target is
// nsdebug's and is passed through as it is.
func parse(args []string, o *Options) (invocation, error) {
	fs := newFlags(o)
	iv := invocation{sub: "exec"}
	if err := fs.Parse(args); err != nil {
		return iv, flagError(iv, err)
	}
	rest := fs.Args()
	dash := fs.ArgsLenAtDash()
	if len(rest) > 0 && dash != 0 {
		if s := rest[0]; podCommands[s] || nodeCommands[s] || ownCommands[s] {
			iv.sub = s
			if err := fs.Parse(rest[1:]); err != nil {
				return iv, flagError(iv, err)
			}
			rest, dash = fs.Args(), fs.ArgsLenAtDash()
		}
	}
	if iv.sub == "help" || iv.sub == "version" {
		iv.pass = rest
		return iv, nil
	}
	if ownCommands[iv.sub] {
		if len(rest) > 0 {
			return iv, usage(iv, "%s takes no arguments (got %q)", iv.sub, rest)
		}
		return iv, nil
	}
	if o.MaxParallel < 1 {
		return iv, usage(iv, "--max-parallel must be at least 1")
	}
	if o.Timeout <= 0 || o.StartTimeout <= 0 {
		return iv, usage(iv, "--timeout and --start-timeout must be positive durations")
	}
	switch o.PullPolicy {
	case "Always", "IfNotPresent", "Never":
	default:
		return iv, usage(iv, "--image-pull-policy %q: want Always, IfNotPresent or Never", o.PullPolicy)
	}
	// "--" ends the plugin's flags with no target before it (-l, --node).
	takeTarget := func() {
		if len(rest) > 0 && dash != 0 && !strings.HasPrefix(rest[0], "-") {
			iv.target, rest = rest[0], rest[1:]
			if dash > 0 {
				dash--
			}
		}
	}
	restWithDash := func() []string {
		if dash == 0 && iv.sub == "exec" { // pflag ate the "--" before the command
			return append([]string{"--"}, rest...)
		}
		if dash > 0 {
			return append(append(append([]string{}, rest[:dash]...), "--"), rest[dash:]...)
		}
		return rest
	}
	switch {
	case iv.sub == "whois":
		if len(rest) == 0 || dash == 0 {
			return iv, usage(iv, "whois needs THING (an IP, MAC, interface or PID) and a pod or node/NAME: kubectl nsdebug whois THING POD|node/NAME")
		}
		iv.thing, rest = rest[0], rest[1:]
		if dash > 0 {
			dash--
		}
		if o.Node == "" && o.Selector == "" {
			takeTarget()
		}
	case o.Selector != "":
		if iv.sub != "exec" && !podCommands[iv.sub] {
			return iv, usage(iv, "-l works with pod commands (exec, shell, resolve, inspect, sysctl, diagnose, capture), not %s", iv.sub)
		}
		if iv.sub == "shell" {
			return iv, usage(iv, "shell opens one terminal: name one pod, not -l")
		}
		if iv.sub == "capture" && writesFile(rest) {
			return iv, usage(iv, "capture -l prints each pod's packets as lines prefixed with the pod: -w would interleave several pods' files in one stream; capture one pod with -w")
		}
		if len(rest) > 0 && dash != 0 && !strings.HasPrefix(rest[0], "-") {
			return iv, usage(iv, "give a pod or -l SELECTOR, not both (got %q)", rest[0])
		}
	case nodeCommands[iv.sub] && o.Node != "":
	default:
		takeTarget()
	}
	iv.pass = restWithDash()
	nodeGiven := nodeCommands[iv.sub] && o.Node != ""
	if iv.target == "" && o.Selector == "" && !nodeGiven {
		switch {
		case nodeCommands[iv.sub]:
			return iv, usage(iv, "%s needs a node: --node NAME, node/NAME or a pod (its node)", iv.sub)
		case iv.sub == "exec":
			return iv, usage(iv, "no pod given; usage: kubectl nsdebug [-n NAMESPACE] POD[/CONTAINER] -- CMD [ARGS...]")
		default:
			return iv, usage(iv, "%s needs a pod: kubectl nsdebug %s [-n NAMESPACE] POD[/CONTAINER] [nsdebug flags]", iv.sub, iv.sub)
		}
	}
	if o.Selector != "" && iv.target != "" {
		return iv, usage(iv, "give a pod or -l SELECTOR, not both (got %q)", iv.target)
	}
	if iv.sub == "exec" {
		if n := len(iv.pass); n == 0 || iv.pass[0] != "--" && !hasDash(iv.pass) || iv.pass[n-1] == "--" {
			return iv, usage(iv, "no command given; usage: kubectl nsdebug [-n NAMESPACE] POD[/CONTAINER] -- CMD [ARGS...]")
		}
	}
	if strings.HasPrefix(iv.target, "node/") && podCommands[iv.sub] {
		return iv, usage(iv, "%s needs a pod, not %s", iv.sub, iv.target)
	}
	return iv, nil
}

func hasDash(a []string) bool {
	for _, s := range a {
		if s == "--" {
			return true
		}
	}
	return false
}

func flagError(iv invocation, err error) error {
	if errors.Is(err, pflag.ErrHelp) {
		return err
	}
	return usage(iv, "%v (the plugin's flags go before the target, nsdebug's after it; see 'kubectl nsdebug help')", err)
}

func usage(iv invocation, format string, args ...any) error {
	_ = iv
	return nserr.New(nserr.ErrUsage, format, args...)
}

// Main runs the plugin and returns its exit status.
func Main(args []string, st Streams) int {
	// client-go logs what it cannot return (a stream copy that failed when
	// the connection went) through klog, as lines of its own on stderr: the
	// plugin reports every failure itself, in one line.
	klog.SetLogger(logr.Discard())
	o := &Options{}
	iv, err := parse(args, o)
	if errors.Is(err, pflag.ErrHelp) {
		return exit(st, iv, help(st, nil))
	}
	if err == nil {
		err = run(o, iv, st)
	}
	return exit(st, iv, err)
}

func exit(st Streams, iv invocation, err error) int {
	if err == nil {
		return 0
	}
	var ee *nserr.ExecError
	if errors.As(err, &ee) {
		return ee.Code
	}
	var se *signalError
	if errors.As(err, &se) {
		fmt.Fprintf(st.ErrOut, "kubectl-nsdebug: %s\n", oneLine(err.Error()))
		return se.code
	}
	fmt.Fprintf(st.ErrOut, "kubectl-nsdebug: %s\n", oneLine(err.Error()))
	return nserr.ExitCode(err, iv.execStyle())
}

// signalError: the user interrupted; the status is 128+N as a shell's.
type signalError struct {
	sig  syscall.Signal
	code int
	left *notDeletedError // the helper could not be deleted
}

func (e *signalError) Error() string {
	if e.left != nil {
		return fmt.Sprintf("interrupted by %v; %s", e.sig, e.left)
	}
	return fmt.Sprintf("interrupted by %v; the helper pod was deleted", e.sig)
}

func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

func run(o *Options, iv invocation, st Streams) error {
	switch iv.sub {
	case "help":
		return help(st, iv.pass)
	case "version":
		fmt.Fprintf(st.Out, "kubectl-nsdebug %s (protocol %d, default image %s)\n", version.Version, version.Protocol, DefaultImage())
		return nil
	case "rbac":
		return printRBAC(st.Out, o)
	}
	ctx, stop := signalContext()
	defer stop()
	k, err := newClient(o)
	if err != nil {
		return err
	}
	k.signals = ctx
	var runErr error
	switch {
	case iv.sub == "gc":
		runErr = k.gc(ctx.ctx, st)
	case o.Selector != "":
		runErr = k.fanOut(ctx.ctx, iv, st)
	default:
		runErr = k.single(ctx.ctx, iv, st)
	}
	if s := ctx.received(); s != 0 && !ctx.passedOn() {
		se := &signalError{sig: s, code: 128 + int(s)}
		_ = errors.As(runErr, &se.left)
		return se
	}
	return runErr
}

// writesFile reports whether nsdebug capture arguments hold -w or --write
// (also in a group of short flags: -Uw FILE, -pwFILE).
func writesFile(args []string) bool {
	for _, a := range args {
		switch {
		case a == "--":
			return false
		case a == "--write" || strings.HasPrefix(a, "--write="):
			return true
		case strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--"):
			for _, c := range a[1:] {
				if c == 'w' {
					return true
				}
				if strings.ContainsRune("icsB", c) {
					break // the rest is that flag's value
				}
			}
		}
	}
	return false
}
