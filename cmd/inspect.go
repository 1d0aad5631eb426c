package cmd

import (
	"github.com/spf13/cobra"

	"github.com/nsdebug/nsdebug/inspect"
	"github.com/nsdebug/nsdebug/internal/output"
	"github.com/nsdebug/nsdebug/resolver"
)

func init() { addCommand(newInspectCmd) }

type inspectOptions struct {
	Target   string
	Output   string
	Sections []string
}

func newInspectCmd(env *Env) *cobra.Command {
	opts := inspectOptions{}
	c := &cobra.Command{
		Use:   "inspect TARGET",
		Short: "Show a netns's links, addresses, routes, rules, neighbours, sockets, sysctls and firewall, from the host",
		Long: `inspect reads a network namespace through netlink sockets opened inside it:
no tool is needed in the container. For a veth it shows the peer: its name,
the namespace it lives in and the bridge it hangs on.

Sections: links, addrs, routes, rules, neigh, sockets, sysctls, firewall.`,
		Example: `  nsdebug inspect web
  nsdebug inspect pod:shop/cart --section links,sockets
  nsdebug inspect pid:4242 -o json | jq '.sockets[] | select(.state=="LISTEN")'`,
		Args: exactArgs(1, "TARGET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Target = args[0]
			return runInspect(cmd, env, opts)
		},
	}
	c.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	c.Flags().StringSliceVarP(&opts.Sections, "section", "s", nil, "sections to show (comma-separated; default all)")
	return c
}

func runInspect(cmd *cobra.Command, env *Env, opts inspectOptions) error {
	format, err := output.ParseFormat(opts.Output, "text", "json")
	if err != nil {
		return err
	}
	sections, err := inspect.ParseSections(opts.Sections)
	if err != nil {
		return err
	}
	t, err := resolver.ParseTarget(opts.Target)
	if err != nil {
		return err
	}
	res, err := env.resolveTarget(cmd.Context(), t)
	if err != nil {
		return err
	}
	defer res.Close()
	r := env.Resolver()
	host, err := inspect.OpenHost(r)
	if err != nil {
		env.Warn("cannot open the host network namespace (veth peers there are not named): %v", err)
	} else {
		defer host.Close()
	}
	rep, err := inspect.Inspect(cmd.Context(), res.NS, inspect.Options{Sections: sections, ProcRoot: r.ProcRoot(), Host: host})
	if err != nil {
		return err
	}
	for _, w := range inspect.NameOtherEnds(cmd.Context(), r, rep) {
		env.Warn("%s", w)
	}
	rep.Target = res.Target
	rep.Netns = res.Netns
	if res.Owners != nil {
		rep.Owners = res.Owners
	}
	if format == "json" {
		return output.JSON(env.IO.Out, rep)
	}
	return rep.WriteText(env.IO.Out, env.IO.Color())
}
