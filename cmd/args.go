package cmd

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/resolver"
)

// exactArgs is cobra.ExactArgs with a usage-kind error that names what is
// missing.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return nserr.New(nserr.ErrUsage, "%s takes %s (got %d argument(s)); see '%s --help'", cmd.CommandPath(), names, len(args), cmd.CommandPath())
		}
		return nil
	}
}

// resolveArg parses a command's TARGET argument and resolves it
// (resolveTarget); commands that check nothing of their own between the two
// use it. The caller closes the result.
func (e *Env) resolveArg(ctx context.Context, arg string) (resolver.Target, *resolver.Result, error) {
	t, err := resolver.ParseTarget(arg)
	if err != nil {
		return t, nil, err
	}
	res, err := e.resolveTarget(ctx, t)
	return t, res, err
}
