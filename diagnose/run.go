package diagnose

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nsdebug/nsdebug/inspect"
	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/resolver"
)

// Options are the command's choices.
type Options struct {
	Interval  time.Duration
	Selection Selection
	ProcRoot  string
	// CNIConfDir: the CNI network configurations whose ranges the subnet
	// overlap check reads ("" is DefaultCNIConfDir).
	CNIConfDir string
	// Prefetch: StartHostPrefetch's reads, started before resolving (nil:
	// Run starts them itself).
	Prefetch *HostPrefetch
}

// ParseIDs checks a --check/--skip list against the registry.
func ParseIDs(in []string) ([]string, error) {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			if _, ok := Lookup(p); !ok {
				var ids []string
				for _, c := range registry {
					ids = append(ids, c.ID)
				}
				return nil, nserr.New(nserr.ErrUsage, "unknown check %q (checks: %s)", p, strings.Join(ids, ", "))
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// Run diagnoses the resolved targets (their namespaces stay the caller's to
// close) and the host.
func Run(ctx context.Context, r *resolver.Resolver, results []*resolver.Result, opts Options) (*Report, []string) {
	var warnings []string
	pre := opts.Prefetch
	if pre == nil {
		pre = StartHostPrefetch(ctx, opts.CNIConfDir)
		defer pre.Close()
	}
	host, err := inspect.OpenHost(r)
	if err != nil {
		warnings = append(warnings, "cannot open the host network namespace (host-side checks skip): "+err.Error())
	} else {
		defer host.Close()
	}
	targets := make([]Target, len(results))
	var describer resolver.NetworkDescriber
	for _, b := range r.Backends() {
		if d, ok := b.(resolver.NetworkDescriber); ok && b.Name() == "docker" {
			describer = d
		}
	}
	// Docker's networks are asked for while the namespaces are read.
	type described struct {
		subnets  []SubnetOwner
		warnings []string
	}
	desc := make(chan described, 1)
	for i, res := range results {
		targets[i] = Target{Res: res, Networks: map[string]*resolver.NetworkInfo{}}
	}
	go func() {
		var d described
		cache := map[string]*resolver.NetworkInfo{}
		for i, res := range results {
			if res.Runtime != "docker" || res.Net == nil || describer == nil {
				continue
			}
			for _, n := range res.Net.Networks {
				key := n.ID
				if key == "" {
					key = n.Name
				}
				ni, ok := cache[key]
				if !ok {
					var err error
					if ni, err = describer.DescribeNetwork(ctx, key); err != nil {
						d.warnings = append(d.warnings, "docker network "+n.Name+": "+err.Error())
					}
					cache[key] = ni
					if ni != nil {
						for _, s := range ni.Subnets {
							d.subnets = append(d.subnets, SubnetOwner{Network: ni.Name, Subnet: s, Bridge: ni.Bridge})
						}
					}
				}
				if ni != nil {
					targets[i].Networks[n.Name] = ni
				}
			}
		}
		desc <- d
	}()
	proxies := false
	for _, res := range results {
		proxies = proxies || (res.Runtime == "docker" && res.Net != nil && len(res.Net.Ports) > 0)
	}
	procRoot := opts.ProcRoot
	if procRoot == "" {
		procRoot = "/proc"
	}
	facts, hf, nodes := Gather(ctx, targets, GatherOptions{Interval: opts.Interval, Probe: opts.Selection.Probe, ProcRoot: procRoot, HostNS: host, HostFacts: true, DockerProxies: proxies, Prefetch: pre})
	d := <-desc
	hf.Subnets = d.subnets
	warnings = append(warnings, d.warnings...)
	p := pre.wait()
	hf.Subnets = append(hf.Subnets, p.cni...)
	warnings = append(warnings, p.cniWarn...)
	if hf.PeersErr != "" {
		warnings = append(warnings, "listing the namespaces on the bridges (address conflicts): "+hf.PeersErr)
	}
	rep := &Report{SchemaVersion: SchemaVersion, Interval: opts.Interval.String(), Probe: opts.Selection.Probe, Targets: []TargetReport{}}
	hostFacts := &Facts{Target: "host", Report: hf.Report, Host: hf, Interval: opts.Interval, Before: hf.Before, After: hf.After, Missing: map[string]string{}}
	rep.Host = TargetReport{Target: "host", Checks: Evaluate(hostFacts, ScopeHost, opts.Selection), Warnings: []string{}}
	if host != nil {
		rep.Host.Netns = host.ID.String()
	}
	for k, v := range hf.IPTablesErr {
		rep.Host.Warnings = append(rep.Host.Warnings, k+" iptables: "+v)
	}
	sort.Strings(rep.Host.Warnings)
	// Node namespaces forwarding for targets: the host checks once each,
	// on their own sysctls, rules and bridge ports.
	rep.Nodes = []NodeReport{}
	for _, n := range nodes {
		nf := &Facts{Target: n.Path, Report: n.Report, Host: n, Interval: opts.Interval, Missing: map[string]string{}}
		tr := TargetReport{Target: n.Path, Netns: fmt.Sprintf("net:[%d]", n.Inode), Checks: Evaluate(nf, ScopeHost, opts.Selection), Warnings: append([]string{}, n.Report.Warnings...)}
		for k, v := range n.IPTablesErr {
			tr.Warnings = append(tr.Warnings, k+" iptables: "+v)
		}
		sort.Strings(tr.Warnings)
		rep.Nodes = append(rep.Nodes, NodeReport{TargetReport: tr, Forwards: n.Forwards})
	}
	for i, f := range facts {
		tr := TargetReport{Target: f.Target, Netns: results[i].NS.ID.String(), Checks: Evaluate(f, ScopeNetns, opts.Selection), Warnings: []string{}}
		for _, m := range f.Missing {
			tr.Warnings = append(tr.Warnings, m)
		}
		sort.Strings(tr.Warnings)
		rep.Targets = append(rep.Targets, tr)
	}
	rep.Finish()
	return rep, warnings
}

// Failed reports whether the report has a FAIL (or, with warnIsFail, a
// WARN).
func (r *Report) Failed(warnIsFail bool) bool {
	return r.Summary.Fail > 0 || (warnIsFail && r.Summary.Warn > 0)
}
