package cmd

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsdebug/nsdebug/enter"
	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/output"
	"github.com/nsdebug/nsdebug/resolver"
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

// staleRuntimeMinAge spares a runtime's netns files (cni-*, Docker's) while a
// pod or container may still be starting: the file is made before the
// runtime lists its owner.
const staleRuntimeMinAge = time.Minute

func newUnlinkCmd(env *Env) *cobra.Command {
	opts := unlinkOptions{}
	c := &cobra.Command{
		Use:   "unlink NAME... | --stale",
		Short: "Remove netns links from /var/run/netns (unmount, then remove)",
		Long: `Removes /var/run/netns/NAME as 'ip netns del' does: the bind mount is
detached, then the file removed. Empty placeholders and symlinks are removed
too; any other file is refused, and so is a running pod's own netns file
(containerd's cni-*) unless --force.

With --stale, removes what something that is gone left behind: empty
placeholders (older than 10s), dangling symlinks, CNI netns files (cni-*) of
pods no CRI runtime knows, Docker netns files (/var/run/docker/netns) of
containers Docker does not know, and links made by 'nsdebug link' whose
container or pod was removed (link records them under /var/run/nsdebug/links).
A namespace that a process uses, a runtime knows or another mount holds is
kept, and so is every namespace made by 'ip netns add' or another tool, even
with nothing but loopback in it: removing it takes its name. Nothing holding a
namespace is removed while a runtime does not answer. Every entry kept is
listed with the reason (-o json: "kept"). --dry-run changes nothing.`,
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
	c.ValidArgsFunction = completeLinkNames(env)
	completeOutput(c, "text", "json")
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
	uo := enter.UnlinkOptions{Dir: env.NetnsDir, ProcRoot: env.ProcRoot, DryRun: opts.DryRun, StateDir: env.LinkStateDir}
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
			paths = enter.RuntimeKnowledge(ctx, env.Resolver()).Paths
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
	k := enter.RuntimeKnowledge(ctx, r)
	for _, n := range k.Notes {
		env.Warn("%s; namespaces no process uses are kept", n)
	}
	rep, err := enter.UnlinkStale(enter.StaleOptions{
		UnlinkOptions: uo, Known: k.Known, KnownPaths: k.Paths, RuntimesComplete: k.Complete,
		CRIAnswered: k.Answered["cri"], DockerAnswered: k.Answered["docker"] && dockerIsDefault(r),
		DockerNetnsDir: dockerNetnsDir(env), MinAge: staleMinAge, RuntimeMinAge: orDuration(env.StaleRuntimeMinAge, staleRuntimeMinAge),
		OwnerExists: func(o enter.LinkOwner) (bool, error) { return ownerExists(ctx, r, o) },
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
		fmt.Fprintf(env.IO.Out, "no stale entries in %s\n", orDefaultDir(env.NetnsDir))
	}
	for _, kp := range rep.Kept {
		fmt.Fprintf(env.IO.Out, "kept %s: %s\n", kp.Path, kp.Reason)
	}
	return nil
}

// dockerNetnsDir is Docker's netns directory, unless a test moved the netns
// directory (then only the test's own, if it gives one).
func dockerNetnsDir(env *Env) string {
	if env.DockerNetnsDir != "" || env.NetnsDir != "" {
		return env.DockerNetnsDir
	}
	return "/var/run/docker/netns"
}

// dockerIsDefault: the daemon asked is the one whose state is under
// /var/run/docker (another daemon's answer says nothing about those files).
func dockerIsDefault(r *resolver.Resolver) bool {
	for _, b := range r.Backends() {
		if b.Name() == "docker" {
			ep := strings.TrimPrefix(b.Endpoint(), "unix://")
			return ep == "/var/run/docker.sock" || ep == "/run/docker.sock"
		}
	}
	return false
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

func orDuration(d, def time.Duration) time.Duration {
	if d != 0 {
		return d
	}
	return def
}

// ownerExists asks o's runtime (every endpoint of it) whether the container
// or pod with o's ID still exists, running or not. A runtime that is not
// configured on this host any more knows nothing: the owner is gone.
func ownerExists(ctx context.Context, r *resolver.Resolver, o enter.LinkOwner) (bool, error) {
	var errs []error
	for _, b := range r.Backends() {
		if b.Name() != o.Runtime {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, r.Timeout())
		cands, err := b.Find(cctx, resolver.Query{Name: o.ID, Namespace: o.Namespace})
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, c := range cands {
			if c.ID == o.ID {
				return true, nil
			}
		}
	}
	if len(errs) > 0 {
		return false, errs[0]
	}
	return false, nil
}
