package cmd

import (
	"github.com/spf13/cobra"

	"github.com/nsdebug/nsdebug/enter"
	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/resolver"
)

func init() { addCommand(newExecCmd) }

// execOptions are the flags exec and shell share.
type execOptions struct {
	Target  string
	Argv    []string
	Env     []string
	Workdir string
	User    string
	PID     bool
	HostDNS bool
	NoSysfs bool
	// NodeRoot: kubectl nsdebug --host-tools.
	NodeRoot bool
}

func newExecCmd(env *Env) *cobra.Command {
	opts := execOptions{}
	c := &cobra.Command{
		Use:   "exec [flags] TARGET -- CMD [ARGS...]",
		Short: "Run a host command inside a target's network namespace",
		Long: `Run a host command inside the target's network namespace only: the mount,
PID, UTS and user namespaces stay the host's, so host binaries and files are
used. By default the command sees the target as its processes do, in a private
mount namespace that disappears with it: /sys is remounted so /sys/class/net
matches the namespace (as 'ip netns exec' does), and the target's own
/etc/resolv.conf and /etc/hosts (from the runtime, /etc/netns/NAME, or the
process's root) are bind-mounted over the host's.

The namespace is pinned when the target is resolved; if the target's process
exits or its PID is reused before the command starts, nothing runs.

Exit status: the command's own (128+N if killed by signal N); 125 when nsdebug
itself fails, 126 when the command cannot be run, 127 when it is not found.
The command gets NSDEBUG_TARGET and NSDEBUG_NETNS in its environment.`,
		Example: `  nsdebug exec web -- curl -sv localhost:8080/health
  nsdebug exec pod:shop/cart-7d9f -- tcpdump -ni eth0 port 53
  nsdebug exec docker:web -- getent hosts db        # through Docker's embedded DNS
  nsdebug exec --pid web -- ss -tnp
  nsdebug exec -u nobody -e LANG=C netns:blue -- ping -c1 10.0.0.1`,
		Args: func(cmd *cobra.Command, args []string) error {
			env.execStyle = true
			return execArgs(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Target, opts.Argv = args[0], args[1:]
			return runExec(cmd, env, opts)
		},
	}
	addExecFlags(c, env, &opts)
	c.ValidArgsFunction = targetThen(env, func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveDefault // the command: the shell's own completion
	})
	return c
}

func addExecFlags(c *cobra.Command, env *Env, opts *execOptions) {
	f := c.Flags()
	f.StringArrayVarP(&opts.Env, "env", "e", nil, "set an environment variable (KEY=VALUE, or KEY to pass nsdebug's value); repeatable")
	f.StringVarP(&opts.Workdir, "workdir", "w", "", "working directory of the command (a host path)")
	f.StringVarP(&opts.User, "user", "u", "", "run as this user after entering: NAME, UID, NAME:GROUP or UID:GID")
	f.BoolVar(&opts.PID, "pid", false, "also join the target's PID namespace (the command gets a PID there; /proc stays the host's)")
	f.BoolVar(&opts.HostDNS, "host-dns", false, "keep the host's /etc/resolv.conf and /etc/hosts")
	f.BoolVar(&opts.NoSysfs, "no-sysfs", false, "do not remount /sys (it then shows the host's interfaces)")
	f.BoolVar(&opts.NodeRoot, "node-root", false, "run with the node's filesystem as root (the kubelet's mount namespace, else PID 1's), as kubectl nsdebug --host-tools does from its helper pod")
	// Flag errors of exec and shell are nsdebug's own failures: 125.
	c.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		env.execStyle = true
		hint := ""
		if c.Name() == "exec" {
			hint = "the command and its flags go after \"--\"; "
		}
		return nserr.New(nserr.ErrUsage, "%v (%ssee '%s --help')", err, hint, c.CommandPath())
	})
}

// execArgs: TARGET, then the command, normally after "--" (cobra drops the
// "--" and reports where it was). nsdebug's flags may come before or after
// TARGET; everything after "--" is the command's.
func execArgs(cmd *cobra.Command, args []string) error {
	dash := cmd.ArgsLenAtDash()
	switch {
	case len(args) == 0 || dash == 0:
		return nserr.New(nserr.ErrUsage, "%s: no TARGET before the command; usage: %s [flags] TARGET -- CMD [ARGS...]", cmd.CommandPath(), cmd.CommandPath())
	case dash > 1:
		return nserr.New(nserr.ErrUsage, "%s: only TARGET goes before \"--\" (got %q); usage: %s [flags] TARGET -- CMD [ARGS...]", cmd.CommandPath(), args[:dash], cmd.CommandPath())
	case len(args) < 2:
		return nserr.New(nserr.ErrUsage, "%s: no command given; usage: %s [flags] TARGET -- CMD [ARGS...]", cmd.CommandPath(), cmd.CommandPath())
	}
	return nil
}

// runExec resolves the target and hands everything to enter.Exec.
func runExec(cmd *cobra.Command, env *Env, opts execOptions) error {
	t, res, err := env.resolveArg(cmd.Context(), opts.Target)
	if err != nil {
		return err
	}
	defer res.Close()
	return enter.Exec(execRequest(env, res, t, opts))
}

func execRequest(env *Env, res *resolver.Result, t resolver.Target, opts execOptions) enter.ExecOptions {
	// Name the target by its owner (docker:web, pod:shop/cart) when known:
	// that is what the operator will recognise in a prompt.
	label := res.Target
	if len(res.Owners) > 0 {
		label = res.Owners[0].Ref()
	}
	etcNetns := ""
	if t.Kind == resolver.KindNetns {
		etcNetns = "/etc/netns/" + t.Name
	}
	return enter.ExecOptions{
		NS: res.NS, PID: res.PID, ProcRoot: env.ProcRoot, Label: label,
		ResolvConf: res.ResolvConf, Hosts: res.Hosts, EtcNetns: etcNetns,
		Argv: opts.Argv, Env: opts.Env, Workdir: opts.Workdir, User: opts.User,
		JoinPID: opts.PID, HostDNS: opts.HostDNS, NoSysfs: opts.NoSysfs, NodeRoot: opts.NodeRoot,
		Stdin: env.IO.In, Stdout: env.IO.Out, Stderr: env.IO.ErrOut,
	}
}
