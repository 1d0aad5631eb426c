package cmd

import (
	"github.com/spf13/cobra"

	"github.com/nsdebug/nsdebug/inspect"
	"github.com/nsdebug/nsdebug/internal/output"
)

func init() { addCommand(newGraphCmd) }

type graphOptions struct {
	Output string
}

func newGraphCmd(env *Env) *cobra.Command {
	opts := graphOptions{}
	c := &cobra.Command{
		Use:   "graph",
		Short: "Draw the host's wiring: namespaces, veth pairs, bridges, uplinks",
		Example: `  nsdebug graph
  nsdebug graph -o dot | dot -Tsvg > wiring.svg`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error { return runGraph(cmd, env, opts) },
	}
	c.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text (a tree) or dot (Graphviz)")
	completeOutput(c, "text", "dot")
	return c
}

func runGraph(cmd *cobra.Command, env *Env, opts graphOptions) error {
	format, err := output.ParseFormat(opts.Output, "text", "dot")
	if err != nil {
		return err
	}
	if err := requireRoot(env); err != nil {
		return err
	}
	g, err := inspect.BuildGraph(cmd.Context(), env.Resolver())
	if err != nil {
		return err
	}
	for _, w := range g.Warnings {
		env.Warn("%s", w)
	}
	if format == "dot" {
		return g.WriteDot(env.IO.Out)
	}
	return g.WriteText(env.IO.Out)
}
