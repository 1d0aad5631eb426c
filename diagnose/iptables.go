package diagnose

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/nsdebug/nsdebug/enter"
	"github.com/nsdebug/nsdebug/internal/nsfs"
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

// readIPTables runs iptables-save for both backends in the host's netns
// (ns nil: nsdebug's own) or in a node namespace that forwards for targets:
// the legacy x_tables and the nf_tables compat rules can both be loaded,
// and Docker uses whichever its iptables binary is. Only forwarding
// namespaces' rules are read this way (once each per invocation);
// containers' rule counts come from inspect's kernel readers. A backend
// whose tool is missing is nil with the reason.
func readIPTables(ctx context.Context, ns *nsfs.Netns) (map[string]*Ruleset, map[string]string) {
	out := map[string]*Ruleset{}
	errs := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	// Both at once: each is a fork and exec, most of the host's read time.
	for _, b := range []struct{ name, tool string }{{"legacy", "iptables-legacy-save"}, {"nft", "iptables-nft-save"}} {
		if b.name == "legacy" && !legacyLoaded(ns) {
			// No legacy table in the host's netns: nothing to save, and
			// no fork for it.
			out[b.name] = &Ruleset{Backend: b.name, Tables: map[string]*IPTable{}}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs, err := runSave(ctx, ns, b.tool)
			mu.Lock()
			defer mu.Unlock()
			if err != "" {
				errs[b.name] = err
				return
			}
			rs.Backend = b.name
			out[b.name] = rs
		}()
	}
	wg.Wait()
	return out, errs
}

func runSave(ctx context.Context, ns *nsfs.Netns, tool string) (*Ruleset, string) {
	path, err := exec.LookPath(tool)
	if err != nil {
		return nil, tool + " not found"
	}
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if ns == nil {
		o, err := exec.CommandContext(c, path).Output()
		if err != nil {
			return nil, tool + ": " + err.Error()
		}
		return parseIPTablesSave("", string(o)), ""
	}
	// In a node namespace: forked from a thread inside it (enter.Start).
	var out, stderr bytes.Buffer
	p, err := enter.Start(enter.Spec{NS: ns, Path: path, Args: []string{tool}, Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, Stdout: &out, Stderr: &stderr})
	if err != nil {
		return nil, tool + ": " + err.Error()
	}
	stop := context.AfterFunc(c, func() { _ = p.Signal(os.Kill) })
	defer stop()
	st, err := p.Wait()
	if err == nil && !st.Success() {
		err = fmt.Errorf("%s: %s", st, strings.TrimSpace(stderr.String()))
	}
	if err != nil {
		return nil, tool + ": " + err.Error()
	}
	return parseIPTablesSave("", out.String()), ""
}

// legacyLoaded: some legacy x_tables table exists in ns (nil: this
// thread's), as iptables-legacy-save itself finds out.
func legacyLoaded(ns *nsfs.Netns) bool {
	loaded := false
	look := func() error {
		for _, f := range []string{"/proc/thread-self/net/ip_tables_names", "/proc/thread-self/net/ip6_tables_names"} {
			if b, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(b)) != "" {
				loaded = true
			}
		}
		return nil
	}
	if ns == nil {
		_ = look()
	} else if err := enter.Do(ns, look); err != nil {
		return true // unknown: let iptables-legacy-save say
	}
	return loaded
}
