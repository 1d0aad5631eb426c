package cmd

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nsdebug/nsdebug/inspect"
	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/output"
	"github.com/nsdebug/nsdebug/resolver"
	"github.com/nsdebug/nsdebug/sysctl"
)

func init() { addCommand(newSysctlCmd) }

type sysctlOptions struct {
	Target string
	Args   []string // KEY or KEY=VALUE, in order
	Output string
	Diff   bool
	DryRun bool
	Force  bool
}

func newSysctlCmd(env *Env) *cobra.Command {
	opts := sysctlOptions{}
	c := &cobra.Command{
		Use:   "sysctl TARGET [KEY[=VALUE]...]",
		Short: "Read and write the net.* sysctls of a target's network namespace",
		Long: `Read and write the net.* sysctls of the target's network namespace from the
host, without touching the host's own values.

With no KEY, every net.* sysctl that exists in that namespace is listed.
KEY reads (a group such as net.ipv4.conf.eth0 lists the keys below it),
KEY=VALUE writes; several are applied in order, and a failed write stops the
list. Keys take sysctl(8)'s forms: net.ipv4.tcp_keepalive_time,
net/ipv4/tcp_keepalive_time, and net.ipv4.conf.eth0/100.rp_filter for the
VLAN interface eth0.100.

Only net.* keys that exist in the target's namespace are accepted. Every key
and value is checked before anything is written, in a dry run too: a key
whose value is integers (somaxconn, ip_local_port_range) takes only
integers the kernel reads (decimal, 0x hex, 0 octal, optional '-'), and no
more of them than it holds. Other values are checked by the kernel when
written. If the kernel keeps part of a value anyway, the key is shown
applied with the value it kept, and the list stops (exit 2).

Writing when the target is the host's own namespace (host network mode,
hostNetwork pods, PID 1), or may be (nsdebug cannot read the host's
namespace, /proc/1/ns/net and /proc/2/ns/net, and the target is not its
own), is refused unless --force.

--diff compares the target's keys with the host's. Per-interface keys
(net.ipv4.conf.IF.*, net.ipv6.conf.IF.*, net.ipv4.neigh.IF.*,
net.ipv6.neigh.IF.*) are compared only for all, default and lo: other
interfaces are other devices in each namespace, even with the same name.

Output: reads as "key = value", writes as "key: old -> new". JSON: a read-only
run is an object key -> value; a run with writes is
{"dry_run": bool, "reads": {key: value}, "writes": [{"key", "old", "new", "applied"}]},
a write also with "partial" and "requested" when the kernel kept part of the
value and "read_back_error" when it could not be read back; a run stopped by
a failure adds "failed": {"key", "error"} and "not_attempted": [keys];
--diff is [{"key", "target", "host"}].`,
		Example: `  nsdebug sysctl web
  nsdebug sysctl web net.core.somaxconn
  nsdebug sysctl web net.core.somaxconn=4096 net.ipv4.tcp_keepalive_time=600
  nsdebug sysctl pod:shop/cart net.ipv4.ip_local_port_range="32768 60999" --dry-run
  nsdebug sysctl web --diff`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 {
				return nserr.New(nserr.ErrUsage, "%s takes TARGET [KEY[=VALUE]...] (got no target); see '%s --help'", cmd.CommandPath(), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Target, opts.Args = args[0], args[1:]
			return runSysctl(cmd, env, opts)
		},
	}
	f := c.Flags()
	f.StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	f.BoolVar(&opts.Diff, "diff", false, "show only keys whose value differs from the host's, side by side")
	f.BoolVar(&opts.DryRun, "dry-run", false, "validate and show what would change; write nothing")
	f.BoolVar(&opts.Force, "force", false, "allow writes when the target is the host's own network namespace")
	c.ValidArgsFunction = targetThen(env, completeSysctlKeys(env))
	completeOutput(c, "text", "json")
	return c
}

func runSysctl(cmd *cobra.Command, env *Env, opts sysctlOptions) error {
	format, err := output.ParseFormat(opts.Output, "text", "json")
	if err != nil {
		return err
	}
	t, err := resolver.ParseTarget(opts.Target)
	if err != nil {
		return err
	}
	// Every key and value is checked before anything is resolved or opened.
	ops, err := sysctl.ParseOps(opts.Args)
	if err != nil {
		return err
	}
	writes := sysctl.HasWrites(ops)
	if opts.Diff && writes {
		return nserr.New(nserr.ErrUsage, "--diff only reads: drop the KEY=VALUE arguments or --diff")
	}
	if opts.Diff {
		for _, o := range ops {
			if dev, other := sysctl.OtherDevice(o.Key.Name); other {
				return nserr.New(nserr.ErrUsage, "--diff does not compare %s: %s in the target and %s on the host are different devices (read it with 'nsdebug sysctl TARGET %s')", o.Key.Name, dev, dev, o.Key.Name)
			}
		}
	}
	// Without privilege, that is the answer, before any refusal.
	if err := requireRoot(env); err != nil {
		return err
	}
	// PID 1 is the host's init (hostcheck guarantees the host's PID
	// namespace): refuse before trying to open its namespace, which ptrace
	// rules may forbid anyway.
	if writes && !opts.Force && t.Kind == resolver.KindPID && t.PID == 1 {
		return refuseHost(t.String(), "PID 1 is the host's init")
	}
	res, err := env.resolveTarget(cmd.Context(), t)
	if err != nil {
		return err
	}
	defer res.Close()
	r := env.Resolver()
	if writes && !opts.Force {
		if err := refuseHostWrite(r, res); err != nil {
			return err
		}
	}

	if opts.Diff {
		return sysctlDiff(env, r, res, ops, format)
	}
	var steps []sysctl.Step
	var runErr error
	if len(ops) == 0 {
		vals, err := sysctl.Read(res.NS, nil, false)
		if err != nil {
			return err
		}
		steps = []sysctl.Step{{Reads: vals}}
	} else {
		steps, runErr = sysctl.Run(res.NS, ops, opts.DryRun)
	}
	// What was applied before a failure in the list is still shown on
	// stdout (in JSON with the failure); a failure before anything was
	// attempted (a missing key, a bad value) prints no document.
	var stop *sysctl.RunError
	if runErr != nil && format == "json" && !errors.As(runErr, &stop) {
		return runErr
	}
	if err := writeSysctlSteps(env.IO.Out, format, steps, writes, opts.DryRun, stop); err != nil {
		return err
	}
	return runErr
}

func refuseHost(target, why string) error {
	return nserr.New(nserr.ErrRefused, "refusing to write sysctls of %s: %s, so this would change the host's own values (use --force)", target, why)
}

// refuseHostWrite refuses writes to a target that is, or may be, the
// host's netns: the kernel's word (same netns as the host's witnesses), the
// runtime's (host network mode, hostNetwork pods), or no word at all when
// the host's netns cannot be read and the target is not nsdebug's own.
func refuseHostWrite(r *resolver.Resolver, res *resolver.Result) error {
	switch {
	case res.Pod != nil && res.NetworkMode == "host":
		return refuseHost(res.Target, "it is a hostNetwork pod")
	case res.NetworkMode == "host":
		return refuseHost(res.Target, "it runs in host network mode")
	case res.Host:
		return refuseHost(res.Target, "it is in the host's network namespace")
	case res.HostUncertain:
		p := r.ProcRoot()
		why := fmt.Sprintf("%s/1/ns/net and %s/2/ns/net are unreadable", p, p)
		if _, _, err := r.Host(); err != nil {
			why += fmt.Sprintf(", and so is nsdebug's own (%v)", err)
		}
		return nserr.New(nserr.ErrRefused, "refusing to write sysctls: cannot tell whether %s is the host's network namespace: %s; use --force if you know it is not", res.Target, why)
	}
	return nil
}

// sysctlFailure is the JSON form of the failure that stopped a list.
type sysctlFailure struct {
	Key   string `json:"key"`
	Error string `json:"error"`
}

func writeSysctlSteps(w io.Writer, format output.Format, steps []sysctl.Step, writes, dryRun bool, stop *sysctl.RunError) error {
	if format == "json" {
		reads := map[string]string{}
		changes := []sysctl.Change{}
		for _, s := range steps {
			for _, v := range s.Reads {
				reads[v.Key] = v.Value
			}
			if s.Write != nil {
				changes = append(changes, *s.Write)
			}
		}
		if !writes {
			return output.JSON(w, reads)
		}
		doc := struct {
			DryRun       bool              `json:"dry_run"`
			Reads        map[string]string `json:"reads"`
			Writes       []sysctl.Change   `json:"writes"`
			Failed       *sysctlFailure    `json:"failed,omitempty"`
			NotAttempted *[]string         `json:"not_attempted,omitempty"`
		}{DryRun: dryRun, Reads: reads, Writes: changes}
		if stop != nil {
			doc.Failed = &sysctlFailure{Key: stop.Key, Error: stop.Err.Error()}
			doc.NotAttempted = &stop.NotAttempted
		}
		return output.JSON(w, doc)
	}
	for _, s := range steps {
		for _, v := range s.Reads {
			if _, err := fmt.Fprintf(w, "%s = %s\n", v.Key, v.Value); err != nil {
				return err
			}
		}
		if c := s.Write; c != nil {
			var notes []string
			switch {
			case !c.Applied:
				notes = append(notes, "dry run: not written")
			case c.Partial:
				notes = append(notes, fmt.Sprintf("partly applied: the kernel did not take all of %q", c.Requested))
			case c.ReadBackError != "":
				notes = append(notes, "written")
			}
			if c.ReadBackError != "" {
				notes = append(notes, "could not read it back: "+c.ReadBackError)
			}
			suffix := ""
			if len(notes) > 0 {
				suffix = " (" + strings.Join(notes, "; ") + ")"
			}
			line := fmt.Sprintf("%s: %s -> %s%s\n", c.Key, c.Old, c.New, suffix)
			if c.WriteOnly {
				line = fmt.Sprintf("%s = %s (write-only key)%s\n", c.Key, c.New, suffix)
			}
			if _, err := io.WriteString(w, line); err != nil {
				return err
			}
		}
	}
	return nil
}

// sysctlDiff reads the same keys in the target and in the host's namespace
// (through its pin, not nsdebug's own thread, which need not be the host's).
func sysctlDiff(env *Env, r *resolver.Resolver, res *resolver.Result, ops []sysctl.Op, format output.Format) error {
	keys := make([]sysctl.Key, len(ops))
	for i, o := range ops {
		keys[i] = o.Key
	}
	target, err := sysctl.Read(res.NS, keys, false)
	if err != nil {
		return err
	}
	host, err := inspect.OpenHost(r)
	if err != nil {
		return fmt.Errorf("open the host network namespace to compare with: %w", err)
	}
	if host == nil { // no witness opened as the host's ID
		return fmt.Errorf("open the host network namespace to compare with: none of %s/1, %s/2 and nsdebug itself is in it", r.ProcRoot(), r.ProcRoot())
	}
	defer host.Close()
	hostVals, err := sysctl.Read(host, keys, true)
	if err != nil {
		return err
	}
	diff := sysctl.Diff(target, hostVals)
	if format == "json" {
		if diff == nil {
			diff = []sysctl.DiffEntry{}
		}
		return output.JSON(env.IO.Out, diff)
	}
	if len(diff) == 0 {
		if res.Host {
			_, err := fmt.Fprintln(env.IO.Out, "(no differences: the target is in the host's network namespace)")
			return err
		}
		_, err := fmt.Fprintln(env.IO.Out, "(no differences from the host)")
		return err
	}
	tb := output.NewTable(env.IO.Out, env.IO.Color(), "KEY", "TARGET", "HOST")
	for _, d := range diff {
		// Multi-value sysctls are tab-separated; tabs would break the columns.
		tb.Row(d.Key, strings.ReplaceAll(d.Target, "\t", " "), strings.ReplaceAll(d.Host, "\t", " "))
	}
	return tb.Flush()
}
