package cmd

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/nsdebug/nsdebug/internal/version"
)

func init() { addCommand(newVersionCmd) }

func newVersionCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print nsdebug's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v, commit, date := version.Info()
			fmt.Fprintf(env.IO.Out, "nsdebug %s (commit %s, built %s, %s %s/%s)\n", v, orDash(commit), orDash(date), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
