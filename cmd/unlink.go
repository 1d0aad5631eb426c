package cmd

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsdebug/nsdebug/enter"
	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/output"
)

func init() { addCommand(newUnlinkCmd) }

type unlinkOptions struct {
	Names  []string
	Stale  bool
	DryRun bool
	Force  bool
	Output string
}

// staleMinAge spares placeholders that `ip netns add` or a runtime may be
// about to mount onto.
const staleMinAge = 10 * time.Second

func newUnlinkCmd(env *Env) *cobra.Command {
	opts := unlinkOptions{}
	c := &cobra.Command{
		Use:   "unlink NAME... | --stale",
		Short: "Remove netns links from /var/run/netns (unmount, then remove)",
		Long: `Removes /var/run/netns/NAME as 'ip netns del' does: the bind mount is
detached, then the file removed. Empty placeholders and symlinks are removed
too; any other file is refused, and so is a running pod's own netns file
(containerd's cni-*) unless --force.

With --stale, removes every entry under /var/run/netns that is an empty
placeholder (older than 10s), a dangling symlink, or a network namespace that
no process uses, no other mount holds, no container runtime knows and that
holds no interface but loopback (one an operator configured is kept). Entries
in doubt are kept (with -o json, the reason for each). --dry-run changes nothing.`,
		Example: `  nsdebug unlink web
  nsdebug unlink --stale --dry-run
  nsdebug unlink --stale -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Names = args
			return runUnlink(cmd.Context(), env, opts)
		},
	}
	c.Flags().BoolVar(&opts.Stale, "stale", false, "remove every stale entry instead of named ones")
	c.Flags().BoolVarP(&opts.Force, "force", "f", false, "also remove a running pod's own netns file (e.g. containerd's cni-*)")
	c.Flags().BoolVarP(&opts.DryRun, "dry-run", "n", false, "say what would be removed, change nothing")
	c.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	return c
}

func runUnlink(ctx context.Context, env *Env, opts unlinkOptions) error {
	format, err := output.ParseFormat(opts.Output, "text", "json")
	if err != nil {
		return err
	}
	switch {
	case opts.Stale && len(opts.Names) > 0:
		return nserr.New(nserr.ErrUsage, "nsdebug unlink takes either NAME... or --stale, not both")
	case !opts.Stale && len(opts.Names) == 0:
		return nserr.New(nserr.ErrUsage, "nsdebug unlink needs NAME... or --stale; see 'nsdebug unlink --help'")
	}
	// Every name is checked before anything is removed.
	for _, n := range opts.Names {
		if err := enter.ValidateName(n); err != nil {
			return err
		}
	}
	if err := requireRoot(env); err != nil {
		return err
	}
	uo := enter.UnlinkOptions{Dir: env.NetnsDir, ProcRoot: env.ProcRoot, DryRun: opts.DryRun}
	verb := "removed"
	if opts.DryRun {
		verb = "would remove"
	}
	if opts.Stale {
		return runUnlinkStale(ctx, env, uo, format, verb)
	}
	// Asked only when a name is a netns: the runtimes are not needed to
	// remove a link nsdebug or ip netns made.
	var paths map[string]string
	uo.Force = opts.Force
	uo.RuntimeFile = func(path string) string {
		if paths == nil {
			_, paths, _, _ = enter.RuntimeKnowledge(ctx, env.Resolver())
		}
		if who := paths[path]; who != "" {
			return who
		}
		real, _ := filepath.EvalSymlinks(path)
		return paths[real]
	}
	removed := []enter.Removed{}
	var failed error
	for _, n := range opts.Names {
		r, err := enter.Unlink(n, uo)
		if err != nil {
			failed = err // stop at the first failure: the rest stay as they were
			break
		}
		removed = append(removed, *r)
		if format == "text" {
			fmt.Fprintf(env.IO.Out, "%s %s (%s)\n", verb, r.Path, describeRemoved(*r))
		}
	}
	if format == "json" {
		if err := output.JSON(env.IO.Out, map[string]any{"removed": removed, "dry_run": opts.DryRun}); err != nil {
			return err
		}
	}
	return failed
}

func runUnlinkStale(ctx context.Context, env *Env, uo enter.UnlinkOptions, format output.Format, verb string) error {
	r := env.Resolver()
	known, paths, complete, notes := enter.RuntimeKnowledge(ctx, r)
	for _, n := range notes {
		env.Warn("%s; namespaces no process uses are kept", n)
	}
	rep, err := enter.UnlinkStale(enter.StaleOptions{
		UnlinkOptions: uo, Known: known, KnownPaths: paths, RuntimesComplete: complete, MinAge: staleMinAge,
	})
	if err != nil {
		return err
	}
	if format == "json" {
		return output.JSON(env.IO.Out, rep)
	}
	for _, rm := range rep.Removed {
		fmt.Fprintf(env.IO.Out, "%s %s (%s)\n", verb, rm.Path, rm.Reason)
	}
	if len(rep.Removed) == 0 {
		fmt.Fprintf(env.IO.Out, "no stale entries in %s (%d kept)\n", orDefaultDir(env.NetnsDir), len(rep.Kept))
	}
	return nil
}

func describeRemoved(r enter.Removed) string {
	switch r.Kind {
	case "netns":
		return fmt.Sprintf("net:[%d]", r.Inode)
	case "placeholder":
		return "empty placeholder"
	}
	return r.Kind
}

func orDefaultDir(d string) string {
	if d == "" {
		return enter.DefaultNetnsDir
	}
	return d
}
