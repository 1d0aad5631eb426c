package cmd

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/nsdebug/nsdebug/enter"
)

func init() { addCommand(newShellCmd) }

func newShellCmd(env *Env) *cobra.Command {
	opts := execOptions{}
	c := &cobra.Command{
		Use:   "shell [flags] TARGET",
		Short: "Open an interactive shell inside a target's network namespace",
		Long: `Open $SHELL (else /bin/sh) inside the target's network namespace, set up as
for 'nsdebug exec' (remounted /sys, the target's resolv.conf and hosts). The
prompt starts with [nsdebug TARGET] and NSDEBUG_TARGET names the target, so it
is always clear where a terminal is. Exit status as for exec.`,
		Example: `  nsdebug shell web
  nsdebug shell pod:shop/cart-7d9f
  nsdebug shell --host-dns netns:blue`,
		Args: func(cmd *cobra.Command, args []string) error {
			env.execStyle = true
			return exactArgs(1, "TARGET")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Target = args[0]
			return runShell(cmd, env, opts)
		},
	}
	addExecFlags(c, env, &opts)
	c.ValidArgsFunction = completeTarget(env)
	return c
}

func runShell(cmd *cobra.Command, env *Env, opts execOptions) error {
	t, res, err := env.resolveArg(cmd.Context(), opts.Target)
	if err != nil {
		return err
	}
	defer res.Close()
	root := os.Geteuid() == 0 && (opts.User == "" || opts.User == "root" || opts.User == "0")
	req := execRequest(env, res, t, opts)
	sh, err := enter.NewShellCommand(os.Getenv("SHELL"), req.Label, root)
	if err != nil {
		return err
	}
	defer sh.Close()
	req.Argv = sh.Argv
	// The prompt goes first: the user's -e PS1=... still wins.
	req.Env = append(sh.Env, opts.Env...)
	req.ExtraFiles = sh.Files
	return enter.Exec(req)
}
