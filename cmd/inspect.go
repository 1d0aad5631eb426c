package cmd

import (
	"github.com/spf13/cobra"

	"github.com/nsdebug/nsdebug/inspect"
	"github.com/nsdebug/nsdebug/internal/output"
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

Sections: links, addrs (or addresses), routes, rules, neigh (or neighbors),
sockets, sysctls, firewall.

` + inspectJSONHelp,
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
	c.ValidArgsFunction = completeTarget(env)
	completeOutput(c, "text", "json")
	_ = c.RegisterFlagCompletionFunc("section", completeSections)
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
	_, res, err := env.resolveArg(cmd.Context(), opts.Target)
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

// inspectJSONHelp documents inspect -o json (inspect.Report). Its field
// names are pinned by TestInspectJSONFieldNames.
const inspectJSONHelp = `JSON (-o json) field names are stable. A section not asked for with --section
is null; one asked for and empty is []. Keys marked ? are left out when empty.
  target        the target as given (a bare word stays bare: web, not docker:web)
  netns         {path, inode, dev}
  host          true for the host's own network namespace
  owners[]      {runtime, id, name, namespace?, pod, container?, network_mode?,
                sandbox?}; pod is {namespace, name, uid?} or null
  links[]       {name, index, type, state, mtu, mac, master?, link_netnsid,
                peer?, lower?}; peer (a veth's other end) and lower (the device
                a macvlan, ipvlan, vlan... sits on) are {name, index, bridge?,
                netns {inode?, path?, host, same, owners[]?}}; link_netnsid is
                the kernel's id of the other end's namespace, -1 for none or
                this one
  addresses[]   {ifname, index, family, address (CIDR), scope}
  routes[]      {table, type, family, dst ("default" or CIDR), gateway?, dev?,
                src?, protocol?, scope, metric?, nexthops[]?}; a multipath
                route has no gateway or dev, its nexthops[] are
                {gateway?, dev?, weight}
  rules[]       {priority, family, table?, src?, dst?, iif?, oif?, fwmark?,
                fwmask?, action, goto?, not?}; action is lookup (of table),
                goto (of priority goto), nop, blackhole, unreachable or
                prohibit; fwmask is left out when all ones; not: the selector
                is inverted
  neighbors[]   {ip, mac?, dev, state}, as ip neigh lists them (NOARP-only
                entries left out)
  sockets[]     {proto, family, state, local, remote, recv_q, send_q, inode,
                uid, processes[] {pid, command}}; local and remote as ss
                prints them (ip:port, [ip6]:port, * for port 0)
  sysctls       {"net.ipv4.ip_forward": "1", ...}; a sysctl missing in the
                namespace is absent
  conntrack     {count, max}; null when conntrack is not loaded or the
                sysctls section was not asked for
  firewall      {nftables[], iptables_legacy[]}, both lists of tables
                {family, name, chains[] {name, hook?, rules}}
  warnings[]?   what could not be read, one line each`
