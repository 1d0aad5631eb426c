package cmd

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/version"
)

func init() { addCommand(newNodeHelperCmd) }

// node-helper is the idle command of kubectl-nsdebug's helper pod. It checks
// first that this nsdebug speaks the plugin's protocol (a mismatch ends the
// container at once with exit 14 and one line the plugin reports), then waits
// until --until, a backstop of its own besides activeDeadlineSeconds.
func newNodeHelperCmd(env *Env) *cobra.Command {
	var protocol int
	var until string
	c := &cobra.Command{
		Use:    "node-helper --protocol N [--until RFC3339]",
		Short:  "Idle command of kubectl-nsdebug's helper pod",
		Hidden: true,
		Args:   exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if protocol != version.Protocol {
				return nserr.New(nserr.ErrProtocol, "this image's nsdebug %s speaks protocol %d, kubectl-nsdebug speaks %d: use an image of the plugin's version (--image) or a kubectl-nsdebug of the image's", version.Version, version.Protocol, protocol)
			}
			fmt.Fprintf(env.IO.Out, "nsdebug %s node helper, protocol %d\n", version.Version, version.Protocol)
			wait := 24 * time.Hour
			if until != "" {
				t, err := time.Parse(time.RFC3339, until)
				if err != nil {
					return nserr.New(nserr.ErrUsage, "--until %q: want RFC3339 time", until)
				}
				wait = time.Until(t)
			}
			select {
			case <-cmd.Context().Done():
			case <-time.After(wait):
			}
			return nil
		},
	}
	c.Flags().IntVar(&protocol, "protocol", 0, "the protocol version kubectl-nsdebug speaks")
	c.Flags().StringVar(&until, "until", "", "exit at this time (RFC3339)")
	return c
}
