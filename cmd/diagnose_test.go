package cmd

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/nsdebug/nsdebug/diagnose"
)

// diagnoseSchema pins diagnose -o json's keys: every key of every object,
// all always present (empty lists are [], a missing fix is null).
var diagnoseSchema = map[string][]string{
	"report":   {"schema_version", "interval", "probe", "summary", "host", "nodes", "targets"},
	"summary":  {"pass", "warn", "fail", "skip"},
	"target":   {"target", "netns", "summary", "checks", "warnings"},
	"node":     {"target", "netns", "summary", "checks", "warnings", "forwards"},
	"check":    {"id", "category", "status", "title", "evidence", "explanation", "fix", "depends_on", "probe", "duration_ms"},
	"evidence": {"source", "key", "value", "expected"},
	"fix":      {"summary", "commands"},
}

func keysOf(t *testing.T, v any) []string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%T is not an object", v)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func wantKeys(t *testing.T, kind string, v any) map[string]any {
	t.Helper()
	want := append([]string{}, diagnoseSchema[kind]...)
	sort.Strings(want)
	if got := keysOf(t, v); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s keys: got %v, want %v", kind, got, want)
	}
	return v.(map[string]any)
}

func TestDiagnoseJSONFieldNames(t *testing.T) {
	rep := &diagnose.Report{SchemaVersion: diagnose.SchemaVersion, Interval: "1s",
		Host:  diagnose.TargetReport{Target: "host", Checks: []diagnose.Result{}, Warnings: []string{}},
		Nodes: []diagnose.NodeReport{{TargetReport: diagnose.TargetReport{Target: "/run/netns/node", Netns: "net:[2]", Checks: []diagnose.Result{}, Warnings: []string{}}, Forwards: []string{"netns:c"}}},
		Targets: []diagnose.TargetReport{{Target: "docker:web", Netns: "net:[1]", Warnings: []string{"x"}, Checks: []diagnose.Result{{
			ID: "mtu", Category: "wiring", Status: diagnose.Fail, Title: "t", Evidence: []diagnose.Evidence{{Source: "s", Key: "k", Value: "v", Expected: "e"}},
			Explanation: "why", Fix: &diagnose.Fix{Summary: "do", Commands: []string{"ip link"}}, DependsOn: []string{}, DurationMS: 0.1,
		}}}},
	}
	rep.Finish()
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	r := wantKeys(t, "report", v)
	if r["schema_version"] != float64(1) {
		t.Errorf("schema_version %v, want 1", r["schema_version"])
	}
	wantKeys(t, "summary", r["summary"])
	wantKeys(t, "target", r["host"])
	wantKeys(t, "node", r["nodes"].([]any)[0])
	tg := wantKeys(t, "target", r["targets"].([]any)[0])
	wantKeys(t, "summary", tg["summary"])
	c := wantKeys(t, "check", tg["checks"].([]any)[0])
	wantKeys(t, "evidence", c["evidence"].([]any)[0])
	wantKeys(t, "fix", c["fix"])
	// --help documents every key.
	for _, keys := range diagnoseSchema {
		for _, k := range keys {
			if !strings.Contains(diagnoseJSONHelp, k) {
				t.Errorf("diagnose --help does not document %q", k)
			}
		}
	}
}

func TestDiagnoseUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"diagnose"},
		{"diagnose", "a", "b"},
		{"diagnose", "web", "--all"},
		{"diagnose", "web", "--check", "nope"},
		{"diagnose", "web", "--skip", "mtu,nope"},
		{"diagnose", "web", "--interval", "0s"},
		{"diagnose", "web", "--interval", "2m"},
		{"diagnose", "web", "--fail-on", "pass"},
		{"diagnose", "web", "-o", "yaml"},
		{"diagnose", "docker:"},
	} {
		_, stderr, code := runEnv(t, func(e *Env) { e.SkipPrivCheck = true }, args...)
		if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "nsdebug: ") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line", args, code, stderr)
		}
	}
}
