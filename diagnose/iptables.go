package diagnose

import (
	"context"
	"os/exec"
	"strings"
	"time"
)

// Ruleset is one iptables backend's rules as iptables-save prints them.
type Ruleset struct {
	Backend string // legacy or nft
	Tables  map[string]*IPTable
}

// IPTable is one table's chains.
type IPTable struct {
	Chains map[string]*IPChain
}

// IPChain is a chain's policy ("-" for a user chain) and its rules
// without the "-A CHAIN " prefix.
type IPChain struct {
	Policy string
	Rules  []string
}

// Rules in a table and chain; nil if there is none.
func (r *Ruleset) chain(table, chain string) *IPChain {
	if r == nil {
		return nil
	}
	t := r.Tables[table]
	if t == nil {
		return nil
	}
	return t.Chains[chain]
}

// ruleCount counts the rules of every chain.
func (r *Ruleset) ruleCount() int {
	if r == nil {
		return 0
	}
	n := 0
	for _, t := range r.Tables {
		for _, c := range t.Chains {
			n += len(c.Rules)
		}
	}
	return n
}

// parseIPTablesSave reads iptables-save output.
func parseIPTablesSave(backend, s string) *Ruleset {
	rs := &Ruleset{Backend: backend, Tables: map[string]*IPTable{}}
	var cur *IPTable
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "*"):
			cur = &IPTable{Chains: map[string]*IPChain{}}
			rs.Tables[l[1:]] = cur
		case cur == nil:
		case strings.HasPrefix(l, ":"):
			f := strings.Fields(l[1:])
			if len(f) >= 2 {
				cur.Chains[f[0]] = &IPChain{Policy: f[1]}
			}
		case strings.HasPrefix(l, "-A "):
			name, rule, _ := strings.Cut(l[3:], " ")
			c := cur.Chains[name]
			if c == nil {
				c = &IPChain{Policy: "-"}
				cur.Chains[name] = c
			}
			c.Rules = append(c.Rules, rule)
		}
	}
	return rs
}

// readIPTables runs iptables-save for both backends in the host's netns:
// the legacy x_tables and the nf_tables compat rules can both be loaded,
// and Docker uses whichever its iptables binary is. Only the host's rules
// are read this way (once per invocation); containers' rule counts come
// from inspect's kernel readers. A backend whose tool is missing is nil
// with the reason.
func readIPTables(ctx context.Context) (map[string]*Ruleset, map[string]string) {
	out := map[string]*Ruleset{}
	errs := map[string]string{}
	for _, b := range []struct{ name, tool string }{{"legacy", "iptables-legacy-save"}, {"nft", "iptables-nft-save"}} {
		path, err := exec.LookPath(b.tool)
		if err != nil {
			errs[b.name] = b.tool + " not found"
			continue
		}
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		o, err := exec.CommandContext(c, path).Output()
		cancel()
		if err != nil {
			errs[b.name] = b.tool + ": " + err.Error()
			continue
		}
		out[b.name] = parseIPTablesSave(b.name, string(o))
	}
	return out, errs
}
