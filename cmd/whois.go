package cmd

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nsdebug/nsdebug/inspect"
	"github.com/nsdebug/nsdebug/internal/output"
)

func init() { addCommand(newWhoisCmd) }

type whoisOptions struct {
	Thing  string
	Output string
}

func newWhoisCmd(env *Env) *cobra.Command {
	opts := whoisOptions{}
	c := &cobra.Command{
		Use:   "whois THING",
		Short: "Say which container or pod owns an IP, a host interface, an ifindex, a netns inode or a PID",
		Long: `whois answers "whose is this?": the container or pod owning THING, its
network namespace and how it is wired to the host.

THING is an IP address, a host interface name (a veth: the namespace of its
peer; a bridge: every namespace on it), an ifindex on the host, a netns
inode, a PID or a thread ID. A bare number is tried as all three; pid:N,
ifindex:N and net:[N] pick one.

JSON (-o json) field names are stable. Keys marked ? are left out when empty.
  query         THING as given
  matches[]     every namespace THING points at: {reason, netns {inode, dev,
                path}, host, orphaned, owners[], pids[], mounts[] {path, hidden},
                interfaces[] {name, index, type, state, addresses[]},
                host_veths[]? {name, bridge?, peer?}, error?}; owners[] as in
                inspect; host_veths are the host ends of its veth pairs, peer
                the interface inside
  warnings[]?   what could not be read, one line each`,
		Example: `  nsdebug whois 172.17.0.3
  nsdebug whois veth3f2a1b
  nsdebug whois pid:4242 -o json`,
		Args: exactArgs(1, "THING"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Thing = args[0]
			return runWhois(cmd, env, opts)
		},
	}
	c.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	completeOutput(c, "text", "json")
	return c
}

func runWhois(cmd *cobra.Command, env *Env, opts whoisOptions) error {
	format, err := output.ParseFormat(opts.Output, "text", "json")
	if err != nil {
		return err
	}
	if err := inspect.CheckWhois(opts.Thing); err != nil {
		return err
	}
	if err := requireRoot(env); err != nil {
		return err
	}
	res, err := inspect.Whois(cmd.Context(), env.Resolver(), opts.Thing)
	if res != nil {
		for _, w := range res.Warnings {
			env.Warn("%s", w)
		}
	}
	if err != nil {
		return err
	}
	if format == "json" {
		return output.JSON(env.IO.Out, res)
	}
	color := env.IO.Color()
	for i, m := range res.Matches {
		if i > 0 {
			fmt.Fprintln(env.IO.Out)
		}
		fmt.Fprintln(env.IO.Out, output.Paint(color, output.Bold, m.Reason))
		tb := output.NewTable(env.IO.Out, false)
		owner := owners(m.NetnsRow)
		if m.Host {
			if owner == "-" {
				owner = "the host"
			} else {
				owner = "the host (host network: " + owner + ")"
			}
		}
		tb.Row("owner:", owner)
		tb.Row("netns:", fmt.Sprintf("%s (net:[%d])", dash(m.Netns.Path), m.Netns.Inode))
		pids := make([]string, 0, 5)
		for j, p := range m.PIDs {
			if j == 5 {
				pids = append(pids, fmt.Sprintf("+%d more", len(m.PIDs)-5))
				break
			}
			pids = append(pids, strconv.Itoa(p))
		}
		tb.Row("pids:", dash(strings.Join(pids, " ")))
		if !m.Host {
			tb.Row("interfaces:", interfaces(m.NetnsRow))
			tb.Row("host side:", hostVeths(m.NetnsRow))
		}
		if err := tb.Flush(); err != nil {
			return err
		}
	}
	return nil
}
