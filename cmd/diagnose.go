package cmd

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/nsdebug/nsdebug/diagnose"
	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/output"
	"github.com/nsdebug/nsdebug/resolver"
)

func init() { addCommand(newDiagnoseCmd) }

type diagnoseOptions struct {
	Target   string
	All      bool
	Checks   []string
	Skip     []string
	Interval time.Duration
	Output   string
	Verbose  bool
	FailOn   string
	Probe    bool
}

// maxInterval bounds --interval: counters read further apart average an
// incident away, and nobody waits longer during one.
const maxInterval = time.Minute

func newDiagnoseCmd(env *Env) *cobra.Command {
	opts := diagnoseOptions{}
	c := &cobra.Command{
		Use:   "diagnose TARGET | --all",
		Short: "Run the network checks an SRE runs by hand: PASS/WARN/FAIL with evidence and a fix",
		Long: `diagnose reads a container's network namespace and the host (read-only, no
packet sent) and runs checks on what it saw: published ports without a
listener or a DNAT rule, a missing default route, DNS that cannot work, MTU
mismatches, a full conntrack table, overflowing listen queues, exhausted
ephemeral ports, retransmissions, the host's forwarding and firewall.
Counters are read twice, --interval apart (one interval for all namespaces).
--probe adds the checks that send packets (a DNS query for localhost. to the
container's nameservers, from inside its netns; two queries, 1 s at most).

Exit status: 0 no FAIL, 1 at least one FAIL (or WARN with --fail-on warn),
2 usage; the other codes as for every command (nsdebug help exit-codes).

` + diagnoseJSONHelp,
		Example: `  nsdebug diagnose web
  nsdebug diagnose pod:shop/cart --probe
  nsdebug diagnose --all --fail-on warn -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case opts.All && len(args) > 0:
				return nserr.New(nserr.ErrUsage, "diagnose takes TARGET or --all, not both")
			case !opts.All && len(args) != 1:
				return nserr.New(nserr.ErrUsage, "diagnose takes one TARGET or --all (got %d argument(s)); see 'nsdebug diagnose --help'", len(args))
			case len(args) == 1:
				opts.Target = args[0]
			}
			return runDiagnose(cmd, env, opts)
		},
	}
	f := c.Flags()
	f.BoolVar(&opts.All, "all", false, "every container and pod namespace (and the host's checks once)")
	f.StringSliceVar(&opts.Checks, "check", nil, "run only these checks (comma-separated ids)")
	f.StringSliceVar(&opts.Skip, "skip", nil, "leave these checks out (comma-separated ids)")
	f.DurationVar(&opts.Interval, "interval", time.Second, "time between the two counter reads")
	f.StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	f.BoolVarP(&opts.Verbose, "verbose", "v", false, "show the evidence of passing checks too")
	f.StringVar(&opts.FailOn, "fail-on", "fail", "exit 1 on: fail, or warn (WARN or FAIL)")
	f.BoolVar(&opts.Probe, "probe", false, "also run the checks that send packets (DNS queries from inside the netns)")
	c.ValidArgsFunction = completeTarget(env)
	completeOutput(c, "text", "json")
	_ = c.RegisterFlagCompletionFunc("fail-on", cobra.FixedCompletions([]cobra.Completion{"fail", "warn"}, cobra.ShellCompDirectiveNoFileComp))
	checkIDs := func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var ids []cobra.Completion
		for _, ch := range diagnose.Checks() {
			ids = append(ids, cobra.CompletionWithDesc(ch.ID, ch.Title))
		}
		return ids, cobra.ShellCompDirectiveNoFileComp
	}
	_ = c.RegisterFlagCompletionFunc("check", checkIDs)
	_ = c.RegisterFlagCompletionFunc("skip", checkIDs)
	return c
}

func runDiagnose(cmd *cobra.Command, env *Env, opts diagnoseOptions) error {
	format, err := output.ParseFormat(opts.Output, "text", "json")
	if err != nil {
		return err
	}
	if opts.Interval <= 0 || opts.Interval > maxInterval {
		return nserr.New(nserr.ErrUsage, "--interval must be between 1ms and %s (got %s)", maxInterval, opts.Interval)
	}
	if opts.FailOn != "fail" && opts.FailOn != "warn" {
		return nserr.New(nserr.ErrUsage, "--fail-on must be fail or warn (got %q)", opts.FailOn)
	}
	only, err := diagnose.ParseIDs(opts.Checks)
	if err != nil {
		return err
	}
	skip, err := diagnose.ParseIDs(opts.Skip)
	if err != nil {
		return err
	}
	var results []*resolver.Result
	// The host's rules are read while the targets are resolved.
	var pre *diagnose.HostPrefetch
	defer func() { pre.Close() }()
	if opts.All {
		if err := requireRoot(env); err != nil {
			return err
		}
		pre = diagnose.StartHostPrefetch(cmd.Context(), "")
		var warns []string
		results, warns, err = diagnose.ResolveAll(cmd.Context(), env.Resolver())
		if err != nil {
			return err
		}
		for _, w := range warns {
			env.Warn("%s", w)
		}
	} else {
		pre = diagnose.StartHostPrefetch(cmd.Context(), "")
		t, err := resolver.ParseTarget(opts.Target)
		if err != nil {
			return err
		}
		res, err := env.resolveTarget(cmd.Context(), t)
		if err != nil {
			return err
		}
		results = []*resolver.Result{res}
	}
	defer func() {
		for _, r := range results {
			r.Close()
		}
	}()
	rep, warns := diagnose.Run(cmd.Context(), env.Resolver(), results, diagnose.Options{
		Interval: opts.Interval, ProcRoot: env.Resolver().ProcRoot(), Prefetch: pre,
		Selection: diagnose.Selection{Only: only, Skip: skip, Probe: opts.Probe},
	})
	if err := cmd.Context().Err(); err != nil {
		return err
	}
	for _, w := range warns {
		env.Warn("%s", w)
	}
	if format == "json" {
		err = output.JSON(env.IO.Out, rep)
	} else {
		err = rep.WriteText(env.IO.Out, env.IO.Color(), opts.Verbose)
	}
	if err != nil {
		return err
	}
	if rep.Failed(opts.FailOn == "warn") {
		// The report said it all: exit 1 without another line on stderr.
		return &nserr.ExecError{Code: nserr.ExitFailure}
	}
	return nil
}

// diagnoseJSONHelp documents diagnose -o json (diagnose.Report). Its field
// names are pinned by TestDiagnoseJSONFieldNames.
const diagnoseJSONHelp = `JSON (-o json) field names are stable (schema_version 1):
  schema_version  1
  interval        time between the two counter reads ("1s")
  probe           whether --probe checks ran
  summary         {pass, warn, fail, skip}: counts over everything
  host            the host's checks, a target report with target "host"
  nodes[]         the host checks again for each namespace other than the
                  host's holding targets' veth peers and bridges (a kind
                  node, a nested setup): a target report named by its path,
                  plus forwards[] (the targets it forwards for)
  targets[]       one per namespace: {target, netns, summary, checks[],
                  warnings[]}; warnings are evidence that could not be read
  checks[]        {id, category, status (PASS, WARN, FAIL, SKIP), title,
                  evidence[] {source, key, value, expected}, explanation
                  (why it matters, or why skipped), fix {summary,
                  commands[]} or null, depends_on[], probe (sends packets),
                  duration_ms}`
