package cmd

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nsdebug/nsdebug/inspect"
	"github.com/nsdebug/nsdebug/internal/output"
)

func init() { addCommand(newLsCmd) }

type lsOptions struct {
	Output string
}

func newLsCmd(env *Env) *cobra.Command {
	opts := lsOptions{}
	c := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List every network namespace on the host with its owners and interfaces",
		Example: `  nsdebug ls
  nsdebug ls -o wide
  nsdebug ls -o json | jq '.[] | select(.orphaned)'`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error { return runLs(cmd, env, opts) },
	}
	c.Flags().StringVarP(&opts.Output, "output", "o", "table", "output format: table, wide or json")
	completeOutput(c, "table", "wide", "json")
	return c
}

func runLs(cmd *cobra.Command, env *Env, opts lsOptions) error {
	format, err := output.ParseFormat(opts.Output, "table", "wide", "json")
	if err != nil {
		return err
	}
	if err := requireRoot(env); err != nil {
		return err
	}
	inv, err := inspect.ListNetns(cmd.Context(), env.Resolver(), inspect.ListOptions{Wiring: format == "wide"})
	if err != nil {
		return err
	}
	for _, w := range inv.Warnings {
		env.Warn("%s", w)
	}
	if format == "json" {
		if inv.Rows == nil {
			inv.Rows = []inspect.NetnsRow{}
		}
		return output.JSON(env.IO.Out, inv.Rows)
	}
	color := env.IO.Color()
	header := []string{"NETNS", "FLAGS", "PIDS", "OWNERS", "INTERFACES"}
	if format == "wide" {
		header = append(header, "HOST-VETH", "PATH")
	}
	tb := output.NewTable(env.IO.Out, color, header...)
	for _, r := range inv.Rows {
		cells := []string{strconv.FormatUint(r.Netns.Inode, 10), flags(r), strconv.Itoa(len(r.PIDs)), owners(r), interfaces(r)}
		if format == "wide" {
			cells = append(cells, hostVeths(r), dash(r.Netns.Path))
		}
		code := ""
		switch {
		case r.Host:
			code = output.Green
		case r.Orphaned:
			code = output.Yellow
		}
		tb.RowColored(code, cells...)
	}
	return tb.Flush()
}

func flags(r inspect.NetnsRow) string {
	var f []string
	if r.Host {
		f = append(f, "host")
	}
	if r.Orphaned {
		f = append(f, "orphaned")
	}
	for _, m := range r.Mounts {
		if m.Hidden {
			f = append(f, "hidden-mount")
			break
		}
	}
	return dash(strings.Join(f, ","))
}

func owners(r inspect.NetnsRow) string {
	var refs []string
	seen := map[string]bool{}
	for _, o := range r.Owners {
		// containerd's moby/k8s.io entries mirror docker and pods: show them
		// only when nothing more specific owns the namespace.
		if o.Runtime == "containerd" && (o.Namespace == "moby" || o.Namespace == "k8s.io") && len(refs) > 0 {
			continue
		}
		ref := o.Ref()
		if !seen[ref] {
			seen[ref] = true
			refs = append(refs, ref)
		}
	}
	if len(refs) == 0 && !r.Host {
		for _, m := range r.Mounts {
			refs = append(refs, m.Path)
		}
	}
	return dash(strings.Join(refs, ","))
}

// interfaces summarises a row's interfaces for the table: those with a
// global address, then how many others there are (loopback, link-local-only
// veths...). -o json has them all.
func interfaces(r inspect.NetnsRow) string {
	if r.Error != "" && len(r.Interfaces) == 0 {
		return "(" + r.Error + ")"
	}
	var parts []string
	others := 0
	for _, i := range r.Interfaces {
		var global []string
		for _, a := range i.Addresses {
			if ip, _, err := net.ParseCIDR(a); err == nil && !ip.IsLinkLocalUnicast() && !ip.IsLoopback() {
				global = append(global, a)
			}
		}
		if len(global) == 0 {
			if i.Name != "lo" {
				others++
			}
			continue
		}
		parts = append(parts, i.Name+" "+strings.Join(global, ","))
	}
	if others > 0 {
		parts = append(parts, fmt.Sprintf("+%d without address", others))
	}
	return dash(strings.Join(parts, "; "))
}

func hostVeths(r inspect.NetnsRow) string {
	var parts []string
	for _, v := range r.HostVeths {
		s := v.Name
		if v.Bridge != "" {
			s += "@" + v.Bridge
		}
		parts = append(parts, s)
	}
	return dash(strings.Join(parts, ","))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
