package cmd

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/nsdebug/nsdebug/internal/output"
	"github.com/nsdebug/nsdebug/internal/version"
)

func init() { addCommand(newVersionCmd) }

// VersionInfo is `nsdebug version -o json`; kubectl-nsdebug reads Protocol
// from it. Field names are pinned by a test.
type VersionInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Date     string `json:"date"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
	Protocol int    `json:"protocol"`
}

// CurrentVersion describes this binary.
func CurrentVersion() VersionInfo {
	v, commit, date := version.Info()
	return VersionInfo{Version: v, Commit: commit, Date: date, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH, Protocol: version.Protocol}
}

func newVersionCmd(env *Env) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "version",
		Short: "Print nsdebug's version",
		Long: `Print nsdebug's version. -o json adds "protocol": the version of the contract
between kubectl-nsdebug and the nsdebug in its helper pod.

JSON fields: version, commit, date, go, platform, protocol.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := output.ParseFormat(out, "text", "json")
			if err != nil {
				return err
			}
			vi := CurrentVersion()
			if format == "json" {
				return output.JSON(env.IO.Out, vi)
			}
			fmt.Fprintf(env.IO.Out, "nsdebug %s (commit %s, built %s, %s %s, protocol %d)\n", vi.Version, orDash(vi.Commit), orDash(vi.Date), vi.Go, vi.Platform, vi.Protocol)
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "text", "output format: text or json")
	return c
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
