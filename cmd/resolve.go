package cmd

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nsdebug/nsdebug/internal/output"
	"github.com/nsdebug/nsdebug/resolver"
)

func init() { addCommand(newResolveCmd) }

type resolveOptions struct {
	Target string
	Output string
}

func newResolveCmd(env *Env) *cobra.Command {
	opts := resolveOptions{}
	c := &cobra.Command{
		Use:   "resolve TARGET",
		Short: "Print the network namespace a target resolves to",
		Example: `  nsdebug resolve web
  nsdebug resolve docker:3f2a1b -o json
  nsdebug resolve pod:shop/cart-7d9f
  nsdebug resolve pid:4242`,
		Args: exactArgs(1, "TARGET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Target = args[0]
			return runResolve(cmd, env, opts)
		},
	}
	c.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	c.ValidArgsFunction = completeTarget(env)
	completeOutput(c, "text", "json")
	return c
}

func runResolve(cmd *cobra.Command, env *Env, opts resolveOptions) error {
	format, err := output.ParseFormat(opts.Output, "text", "json")
	if err != nil {
		return err
	}
	_, res, err := env.resolveArg(cmd.Context(), opts.Target)
	if err != nil {
		return err
	}
	defer res.Close()
	if format == "json" {
		if res.Owners == nil {
			res.Owners = []resolver.Owner{}
		}
		return output.JSON(env.IO.Out, res)
	}
	tb := output.NewTable(env.IO.Out, false)
	kv := func(k, v string) { tb.Row(output.Paint(env.IO.Color(), output.Bold, k+":"), v) }
	kv("target", res.Target)
	kv("runtime", res.Runtime)
	if res.ID != "" {
		kv("id", res.ID)
	}
	if res.Name != "" {
		kv("name", res.Name)
	}
	if res.Pod != nil {
		kv("pod", res.Pod.Namespace+"/"+res.Pod.Name)
	}
	if res.NetworkMode != "" {
		kv("network mode", res.NetworkMode)
	}
	kv("pid", pidText(res.PID))
	kv("host", strconv.FormatBool(res.Host))
	kv("netns", fmt.Sprintf("%s (net:[%d])", res.Netns.Path, res.Netns.Inode))
	if len(res.Owners) > 0 {
		refs := make([]string, len(res.Owners))
		for i, o := range res.Owners {
			refs[i] = o.Ref()
		}
		kv("owners", strings.Join(refs, ", "))
	}
	return tb.Flush()
}

func pidText(pid int) string {
	if pid == 0 {
		return "-"
	}
	return strconv.Itoa(pid)
}
