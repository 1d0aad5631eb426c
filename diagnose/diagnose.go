// Package diagnose runs the checks an SRE runs by hand on a container's
// network namespace and on the host, and gives each a verdict with the
// evidence it saw and a fix.
//
// Evidence is gathered once per namespace (Gather: inspect's readers, the
// namespace's own counters read twice an interval apart, its resolv.conf
// and hosts) and once per invocation for the host (GatherHost). Checks are
// pure functions over that evidence, so they are tested table-driven
// without root, and each is also broken for real on the test bed.
package diagnose

import (
	"sort"
	"strings"
	"time"
)

// SchemaVersion is the JSON schema's version; bump it when a field changes
// meaning or goes away (adding fields does not).
const SchemaVersion = 1

// Status is a check's verdict.
type Status string

// Verdicts, from best to worst; SKIP says why the check did not run.
const (
	Pass Status = "PASS"
	Warn Status = "WARN"
	Fail Status = "FAIL"
	Skip Status = "SKIP"
)

// Evidence is one fact a check looked at: where it came from, what it was,
// and what the check expected.
type Evidence struct {
	Source   string `json:"source"`
	Key      string `json:"key"`
	Value    string `json:"value"`
	Expected string `json:"expected"`
}

// Fix is what to do about a WARN or FAIL.
type Fix struct {
	Summary  string   `json:"summary"`
	Commands []string `json:"commands"`
}

// Result is one check's outcome.
type Result struct {
	ID          string     `json:"id"`
	Category    string     `json:"category"`
	Status      Status     `json:"status"`
	Title       string     `json:"title"`
	Evidence    []Evidence `json:"evidence"`
	Explanation string     `json:"explanation"`
	Fix         *Fix       `json:"fix"`
	DependsOn   []string   `json:"depends_on"`
	Probe       bool       `json:"probe"`
	DurationMS  float64    `json:"duration_ms"`
}

// Outcome is what a check function returns; Run adds the rest.
type Outcome struct {
	Status      Status
	Evidence    []Evidence
	Explanation string
	Fix         *Fix
}

// Scope says which evidence a check looks at.
type Scope int

const (
	// ScopeNetns checks run once per container namespace.
	ScopeNetns Scope = iota
	// ScopeHost checks run once per invocation, on the host.
	ScopeHost
)

// Check is one unit: an id, what it reads, and a pure function over the
// evidence.
type Check struct {
	ID       string
	Category string
	Title    string
	Scope    Scope
	// Inputs names the evidence the check reads (for --help and the README).
	Inputs []string
	// DependsOn: if any of these FAILed or was skipped, this one is SKIP.
	DependsOn []string
	// Probe: the check sends packets; it runs only with --probe.
	Probe bool
	Run   func(f *Facts) Outcome
}

// Checks returns the registered checks in their output order.
func Checks() []Check { return registry }

// Lookup finds a check by id.
func Lookup(id string) (Check, bool) {
	for _, c := range registry {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}

// Selection chooses which checks run.
type Selection struct {
	Only  []string // --check; nil = all
	Skip  []string // --skip
	Probe bool     // --probe: also the checks that send packets
}

// selected reports whether c runs, and if not why (the SKIP reason), or ""
// to leave it out of the output (not asked for).
func (s Selection) selected(c Check) (run bool, skipWhy string) {
	if len(s.Only) > 0 && !contains(s.Only, c.ID) {
		return false, ""
	}
	if contains(s.Skip, c.ID) {
		return false, ""
	}
	if c.Probe && !s.Probe {
		return false, "sends packets: run with --probe"
	}
	return true, ""
}

// Evaluate runs every selected check of scope over f, in registry order, so
// that a dependency's verdict is known before its dependents run.
func Evaluate(f *Facts, scope Scope, sel Selection) []Result {
	out := []Result{}
	done := map[string]Status{}
	for _, c := range registry {
		if c.Scope != scope {
			continue
		}
		run, why := sel.selected(c)
		if !run && why == "" {
			continue
		}
		r := Result{ID: c.ID, Category: c.Category, Title: c.Title, DependsOn: append([]string{}, c.DependsOn...), Probe: c.Probe, Evidence: []Evidence{}}
		if !run {
			r.Status, r.Explanation = Skip, why
			out = append(out, r)
			done[c.ID] = Skip
			continue
		}
		var blocked []string
		for _, d := range c.DependsOn {
			if st, ok := done[d]; ok && (st == Fail || st == Skip) {
				blocked = append(blocked, d+" "+strings.ToLower(string(st)))
			}
		}
		if len(blocked) > 0 {
			r.Status, r.Explanation = Skip, "precondition not met: "+strings.Join(blocked, ", ")
			out = append(out, r)
			done[c.ID] = Skip
			continue
		}
		start := time.Now()
		o := c.Run(f)
		r.DurationMS = float64(time.Since(start).Microseconds()) / 1000
		r.Status, r.Explanation, r.Fix = o.Status, o.Explanation, o.Fix
		if o.Evidence != nil {
			r.Evidence = o.Evidence
		}
		if r.Status == "" {
			r.Status = Pass
		}
		out = append(out, r)
		done[c.ID] = r.Status
	}
	return out
}

// Summary counts verdicts.
type Summary struct {
	Pass int `json:"pass"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
	Skip int `json:"skip"`
}

func (s *Summary) add(rs []Result) {
	for _, r := range rs {
		switch r.Status {
		case Pass:
			s.Pass++
		case Warn:
			s.Warn++
		case Fail:
			s.Fail++
		case Skip:
			s.Skip++
		}
	}
}

// TargetReport is one namespace's checks.
type TargetReport struct {
	Target  string   `json:"target"`
	Netns   string   `json:"netns"`
	Summary Summary  `json:"summary"`
	Checks  []Result `json:"checks"`
	// Warnings: evidence that could not be read (checks that needed it
	// SKIP naming it).
	Warnings []string `json:"warnings"`
}

// NodeReport is the host checks of a namespace other than the host's that
// holds targets' veth peers (a kind node, a nested setup's node netns).
type NodeReport struct {
	TargetReport
	// Forwards: the targets it forwards for.
	Forwards []string `json:"forwards"`
}

// Report is `nsdebug diagnose -o json`; field names pinned by a test.
type Report struct {
	SchemaVersion int          `json:"schema_version"`
	Interval      string       `json:"interval"`
	Probe         bool         `json:"probe"`
	Summary       Summary      `json:"summary"`
	Host          TargetReport `json:"host"`
	// Nodes: the host checks again for each namespace other than the
	// host's that holds targets' veth peers (kind nodes, nested setups).
	Nodes   []NodeReport   `json:"nodes"`
	Targets []TargetReport `json:"targets"`
}

// Finish fills the summaries.
func (r *Report) Finish() {
	r.Host.Summary = Summary{}
	r.Host.Summary.add(r.Host.Checks)
	r.Summary = r.Host.Summary
	for i := range r.Nodes {
		n := &r.Nodes[i]
		n.Summary = Summary{}
		n.Summary.add(n.Checks)
		r.Summary.Pass += n.Summary.Pass
		r.Summary.Warn += n.Summary.Warn
		r.Summary.Fail += n.Summary.Fail
		r.Summary.Skip += n.Summary.Skip
	}
	for i := range r.Targets {
		t := &r.Targets[i]
		t.Summary = Summary{}
		t.Summary.add(t.Checks)
		r.Summary.Pass += t.Summary.Pass
		r.Summary.Warn += t.Summary.Warn
		r.Summary.Fail += t.Summary.Fail
		r.Summary.Skip += t.Summary.Skip
	}
	sort.SliceStable(r.Targets, func(i, j int) bool { return r.Targets[i].Target < r.Targets[j].Target })
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ev is shorthand for one evidence entry.
func ev(source, key, value, expected string) Evidence {
	return Evidence{Source: source, Key: key, Value: value, Expected: expected}
}

func pass(e ...Evidence) Outcome { return Outcome{Status: Pass, Evidence: e} }

func skip(why string, e ...Evidence) Outcome {
	return Outcome{Status: Skip, Explanation: why, Evidence: e}
}
