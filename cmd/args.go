package cmd

import (
	"github.com/spf13/cobra"

	"github.com/nsdebug/nsdebug/internal/nserr"
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
