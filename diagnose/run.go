package diagnose

import (
	"context"
	"net"
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
	host, err := inspect.OpenHost(r)
	if err != nil {
		warnings = append(warnings, "cannot open the host network namespace (host-side checks skip): "+err.Error())
	} else {
		defer host.Close()
	}
	targets := make([]Target, len(results))
	netCache := map[string]*resolver.NetworkInfo{}
	var describer resolver.NetworkDescriber
	for _, b := range r.Backends() {
		if d, ok := b.(resolver.NetworkDescriber); ok && b.Name() == "docker" {
			describer = d
		}
	}
	var subnets []SubnetOwner
	for i, res := range results {
		targets[i] = Target{Res: res, Networks: map[string]*resolver.NetworkInfo{}}
		if res.Runtime != "docker" || res.Net == nil || describer == nil {
			continue
		}
		for _, n := range res.Net.Networks {
			key := n.ID
			if key == "" {
				key = n.Name
			}
			ni, ok := netCache[key]
			if !ok {
				ni, err = describer.DescribeNetwork(ctx, key)
				if err != nil {
					warnings = append(warnings, "docker network "+n.Name+": "+err.Error())
				}
				netCache[key] = ni
				if ni != nil {
					for _, s := range ni.Subnets {
						subnets = append(subnets, SubnetOwner{Network: ni.Name, Subnet: s, Bridge: ni.Bridge})
					}
				}
			}
			if ni != nil {
				targets[i].Networks[n.Name] = ni
			}
		}
	}
	// The other namespaces' addresses (address conflicts) are listed
	// while the targets are read.
	var holding net.IP
	if len(results) == 1 && results[0].Net != nil {
		// One target: only the namespaces holding its address matter
		// (whois's fast path) instead of every namespace's addresses.
		for _, n := range results[0].Net.Networks {
			if ip := net.ParseIP(n.IP); ip != nil && holding == nil {
				holding = ip
			}
		}
	}
	type peerList struct {
		peers []PeerAddrs
		err   error
	}
	peersDone := make(chan peerList, 1)
	go func() {
		p, err := listPeers(ctx, r, holding)
		peersDone <- peerList{p, err}
	}()
	facts, hf := Gather(ctx, targets, GatherOptions{Interval: opts.Interval, Probe: opts.Selection.Probe, ProcRoot: opts.ProcRoot, HostNS: host, HostFacts: true})
	hf.Subnets = subnets
	if pl := <-peersDone; pl.err != nil {
		warnings = append(warnings, "listing namespaces for address conflicts: "+pl.err.Error())
	} else {
		hf.Peers = pl.peers
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

// listPeers reads every namespace's addresses and the bridge of its host
// veths (nsdebug ls -o wide's reader).
func listPeers(ctx context.Context, r *resolver.Resolver, holding net.IP) ([]PeerAddrs, error) {
	inv, err := inspect.ListNetns(ctx, r, inspect.ListOptions{Wiring: true, HoldingIP: holding})
	if err != nil {
		return nil, err
	}
	peers := []PeerAddrs{}
	for _, rw := range inv.Rows {
		if rw.Host {
			continue
		}
		label := rw.Netns.Path
		if len(rw.Owners) > 0 {
			label = rw.Owners[0].Ref()
		}
		for _, hv := range rw.HostVeths {
			p := PeerAddrs{Netns: rw.Netns.Inode, Label: label, Bridge: hv.Bridge}
			for _, itf := range rw.Interfaces {
				if itf.Name == hv.Peer {
					p.Addrs = append(p.Addrs, itf.Addresses...)
				}
			}
			peers = append(peers, p)
		}
	}
	return peers, nil
}

// Failed reports whether the report has a FAIL (or, with warnIsFail, a
// WARN).
func (r *Report) Failed(warnIsFail bool) bool {
	return r.Summary.Fail > 0 || (warnIsFail && r.Summary.Warn > 0)
}
