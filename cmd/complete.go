package cmd

// Shell completion of what is on the host now (cobra's dynamic completion:
// `nsdebug __complete ARGS... PREFIX`, which the bash, zsh, fish and
// PowerShell scripts of `nsdebug completion SHELL` call on every TAB).
//
// Completion must never print an error into the shell or hang it: every
// runtime is asked side by side with a short bound, what cannot be listed is
// said through cobra's ActiveHelp (a line the shell shows under the prompt,
// not a candidate), and candidates are only ever printed on stdout.
//
// Commands that take a target adopt it with completeTarget (first argument)
// or targetThen (first argument, then a completion of their own), and
// completeOutput for their -o formats:
//
//	c.ValidArgsFunction = completeTarget(env)
//	completeOutput(c, "text", "json")

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsdebug/nsdebug/inspect"
	"github.com/nsdebug/nsdebug/resolver"
	"github.com/nsdebug/nsdebug/sysctl"
)

const (
	// completeRuntimeTimeout bounds each runtime's listing; completeBound
	// the whole completion (a TAB that takes longer feels broken).
	completeRuntimeTimeout = 700 * time.Millisecond
	completeBound          = time.Second
)

// completeTarget completes the first argument as a target and nothing after it.
func completeTarget(env *Env) cobra.CompletionFunc {
	return targetThen(env, nil)
}

// targetThen completes the first argument as a target, and later ones with
// rest (nil: no completion).
func targetThen(env *Env, rest cobra.CompletionFunc) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return completeTargets(cmd.Context(), env, toComplete)
		}
		if rest != nil {
			return rest(cmd, args, toComplete)
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeOutput registers the -o/--output formats of c.
func completeOutput(c *cobra.Command, formats ...string) {
	_ = c.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
}

// completionContext bounds a completion, and the resolver's calls within it.
func completionContext(parent context.Context, env *Env) (context.Context, context.CancelFunc) {
	if env.res == nil && (env.Cfg.Timeout <= 0 || env.Cfg.Timeout > completeRuntimeTimeout) {
		env.Cfg.Timeout = completeRuntimeTimeout
	}
	if parent == nil {
		parent = context.Background()
	}
	return context.WithTimeout(parent, completeBound)
}

func completeTargets(parent context.Context, env *Env, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	switch {
	case strings.HasPrefix(toComplete, "/"):
		return nil, cobra.ShellCompDirectiveDefault // a netns file: the shell's own file completion
	case strings.HasPrefix(toComplete, "pid:"):
		return completePIDs(env, "pid:", toComplete), cobra.ShellCompDirectiveNoFileComp
	case toComplete != "" && strings.Trim(toComplete, "0123456789") == "":
		return completePIDs(env, "", toComplete), cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := completionContext(parent, env)
	defer cancel()
	names, failures := env.Resolver().Names(ctx)
	var out []cobra.Completion
	for _, n := range names {
		if strings.HasPrefix(n.Target, toComplete) {
			out = append(out, cobra.CompletionWithDesc(n.Target, n.Desc))
		}
		if n.Bare != "" && strings.HasPrefix(n.Bare, toComplete) {
			out = append(out, cobra.CompletionWithDesc(n.Bare, n.Target))
		}
	}
	if toComplete == "" || strings.HasPrefix("pid:", toComplete) {
		out = append(out, cobra.CompletionWithDesc("pid:", "a process: type pid:<TAB> for the list"))
	}
	if len(failures) > 0 {
		if os.Geteuid() != 0 {
			out = cobra.AppendActiveHelp(out, "nsdebug: not root: containers and pods cannot be listed (run as root); named netns and PIDs are")
		} else {
			for _, f := range failures {
				out = cobra.AppendActiveHelp(out, "nsdebug: cannot list "+oneLine(f))
			}
		}
	}
	dir := cobra.ShellCompDirectiveNoFileComp
	if len(out) == 1 && out[0] == "pid:\ta process: type pid:<TAB> for the list" {
		dir |= cobra.ShellCompDirectiveNoSpace
	}
	return out, dir
}

func completePIDs(env *Env, prefix, toComplete string) []cobra.Completion {
	procRoot := env.ProcRoot
	if procRoot == "" {
		procRoot = "/proc"
	}
	var out []cobra.Completion
	for _, p := range resolver.Processes(procRoot) {
		c := prefix + strconv.Itoa(p.PID)
		if strings.HasPrefix(c, toComplete) {
			out = append(out, cobra.CompletionWithDesc(c, p.Command))
		}
	}
	return out
}

// completeSysctlKeys completes sysctl's KEY arguments with the keys of the
// target's netns, one component at a time (net.ipv4.<TAB>: net.ipv4.conf.,
// net.ipv4.ip_forward, ...). Needs root: the target is resolved and its
// netns entered to read its /proc/sys/net.
func completeSysctlKeys(env *Env) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		const dir = cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
		if strings.Contains(toComplete, "=") {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		if requireRoot(env) != nil {
			return cobra.AppendActiveHelp(nil, "nsdebug: sysctl keys are listed only as root (they are read inside the target's netns)"), dir
		}
		t, err := resolver.ParseTarget(args[0])
		if err != nil {
			return cobra.AppendActiveHelp(nil, "nsdebug: "+oneLine(err.Error())), dir
		}
		ctx, cancel := completionContext(cmd.Context(), env)
		defer cancel()
		res, err := env.Resolver().Resolve(ctx, t)
		if err != nil {
			return cobra.AppendActiveHelp(nil, "nsdebug: "+oneLine(err.Error())), dir
		}
		defer res.Close()
		parent := "net"
		if i := strings.LastIndex(toComplete, "."); i > 0 {
			parent = toComplete[:i]
		}
		var keys []sysctl.Key
		if parent != "net" {
			k, err := sysctl.ParseKey(parent)
			if err != nil {
				return nil, dir
			}
			keys = []sysctl.Key{k}
		}
		vals, err := sysctl.Read(res.NS, keys, true)
		if err != nil {
			return cobra.AppendActiveHelp(nil, "nsdebug: "+oneLine(err.Error())), dir
		}
		seen := map[string]bool{}
		var out []cobra.Completion
		for _, v := range vals {
			rest, ok := strings.CutPrefix(v.Key, parent+".")
			if !ok {
				continue
			}
			c := v.Key
			if first, _, more := strings.Cut(rest, "."); more {
				c = parent + "." + first + "." // a group: complete further
			}
			if strings.HasPrefix(c, toComplete) && !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
		return out, dir
	}
}

// completeSections completes inspect's --section, comma-separated.
func completeSections(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	done, last := "", toComplete
	if i := strings.LastIndex(toComplete, ","); i >= 0 {
		done, last = toComplete[:i+1], toComplete[i+1:]
	}
	given := map[string]bool{}
	for _, s := range strings.Split(done, ",") {
		given[s] = true
	}
	var out []cobra.Completion
	for _, s := range inspect.Sections {
		if !given[s] && strings.HasPrefix(s, last) {
			out = append(out, done+s)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeLinkNames completes unlink's NAMEs: the entries of the netns
// directory not named yet. Reading it needs no privilege.
func completeLinkNames(env *Env) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if stale, _ := cmd.Flags().GetBool("stale"); stale {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		given := map[string]bool{}
		for _, a := range args {
			given[a] = true
		}
		ents, err := os.ReadDir(orDefaultDir(env.NetnsDir))
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, e := range ents {
			if n := e.Name(); !given[n] && strings.HasPrefix(n, toComplete) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
