package cmd

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/nsdebug/nsdebug/enter"
	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/internal/output"
	"github.com/nsdebug/nsdebug/resolver"
)

func init() { addCommand(newLinkCmd) }

type linkOptions struct {
	Target string
	Name   string // "" = derived from the container or pod name
	Force  bool
	Output string
}

// linkOutput is link's -o json document.
type linkOutput struct {
	enter.LinkResult
	Target string `json:"target"`
}

func newLinkCmd(env *Env) *cobra.Command {
	opts := linkOptions{}
	c := &cobra.Command{
		Use:   "link TARGET [NAME]",
		Short: "Make a target's network namespace visible to 'ip netns' as /var/run/netns/NAME",
		Long: `Bind-mounts the target's network namespace onto /var/run/netns/NAME, as
'ip netns attach' does, so that 'ip netns exec NAME ...' and 'ip -n NAME ...'
work. The mount holds the namespace itself: it stays valid when the container's
processes exit, until 'nsdebug unlink NAME'. NAME defaults to the container or
pod name. Linking the same namespace under the same name again is a no-op; a
name that links another namespace is refused unless --force.`,
		Example: `  nsdebug link web
  nsdebug link pod:shop/cart cart
  ip netns exec cart ss -tlnp
  nsdebug unlink cart`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return nserr.New(nserr.ErrUsage, "%s takes TARGET [NAME] (got %d argument(s)); see '%s --help'", cmd.CommandPath(), len(args), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Target = args[0]
			if len(args) == 2 {
				opts.Name = args[1]
			}
			return runLink(cmd, env, opts, len(args) == 2)
		},
	}
	c.Flags().BoolVarP(&opts.Force, "force", "f", false, "replace a link of another namespace, an empty placeholder or a symlink under NAME")
	c.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	c.ValidArgsFunction = completeTarget(env)
	completeOutput(c, "text", "json")
	return c
}

func runLink(cmd *cobra.Command, env *Env, opts linkOptions, named bool) error {
	format, err := output.ParseFormat(opts.Output, "text", "json")
	if err != nil {
		return err
	}
	t, err := resolver.ParseTarget(opts.Target)
	if err != nil {
		return err
	}
	if named {
		if err := enter.ValidateName(opts.Name); err != nil {
			return err
		}
	}
	res, err := env.resolveTarget(cmd.Context(), t)
	if err != nil {
		return err
	}
	defer res.Close()
	if !named {
		opts.Name = defaultLinkName(res)
		if opts.Name == "" {
			return nserr.New(nserr.ErrUsage, "%s has no container or pod name to use as the netns name; give one: nsdebug link %s NAME", res.Target, opts.Target)
		}
	}
	lr, err := enter.Link(res.NS, enter.LinkOptions{
		Name: opts.Name, Force: opts.Force, Dir: env.NetnsDir, ProcRoot: env.ProcRoot,
		StateDir: env.LinkStateDir, Target: res.Target, Owners: linkOwners(env, res),
	})
	if err != nil {
		return err
	}
	for _, w := range lr.Warnings {
		env.Warn("%s", w)
	}
	if format == "json" {
		return output.JSON(env.IO.Out, linkOutput{LinkResult: *lr, Target: res.Target})
	}
	switch {
	case !lr.Changed:
		fmt.Fprintf(env.IO.Out, "%s (net:[%d]) is already linked as %s\n", res.Target, lr.Inode, lr.Path)
	case lr.Replaced != "":
		fmt.Fprintf(env.IO.Out, "linked %s (net:[%d]) as %s, replacing a %s\n", res.Target, lr.Inode, lr.Path, lr.Replaced)
	default:
		fmt.Fprintf(env.IO.Out, "linked %s (net:[%d]) as %s\n", res.Target, lr.Inode, lr.Path)
	}
	fmt.Fprintf(env.IO.Out, "try: ip netns exec %s ip -br addr; remove with: nsdebug unlink %s\n", lr.Name, lr.Name)
	return nil
}

// defaultLinkName is the pod's or container's name made safe; a netns:
// target keeps its own name (so linking it again is a no-op).
func defaultLinkName(res *resolver.Result) string {
	if res.Pod != nil && res.Pod.Name != "" {
		return enter.SafeName(res.Pod.Name)
	}
	return enter.SafeName(res.Name)
}

// linkOwners is who the link is for, as recorded for unlink --stale: every
// runtime owner (a Docker container is also containerd's moby task), else
// the process or the netns file the target named.
func linkOwners(env *Env, res *resolver.Result) []enter.LinkOwner {
	var owners []enter.LinkOwner
	for _, o := range res.Owners {
		owners = append(owners, enter.LinkOwner{Runtime: o.Runtime, ID: o.ID, Namespace: o.Namespace, Ref: o.Ref()})
	}
	if len(owners) > 0 {
		return owners
	}
	switch res.Runtime {
	case "pid":
		procRoot := env.ProcRoot
		if procRoot == "" {
			procRoot = "/proc"
		}
		st, _ := nsfs.StartTime(procRoot, res.PID)
		return []enter.LinkOwner{{Runtime: "pid", ID: strconv.Itoa(res.PID), Ref: res.Target, StartTime: st}}
	default: // netns:NAME, a path
		return []enter.LinkOwner{{Runtime: res.Runtime, ID: res.Netns.Path, Ref: res.Target}}
	}
}
