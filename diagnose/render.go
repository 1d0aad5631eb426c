package diagnose

import (
	"fmt"
	"io"
	"strings"

	"github.com/nsdebug/nsdebug/internal/output"
)

const red = "\x1b[31m"

var marks = map[Status]struct{ mark, color string }{
	Pass: {"[✓]", output.Green},
	Warn: {"[!]", output.Yellow},
	Fail: {"[✗]", red},
	Skip: {"[-]", output.Dim},
}

// WriteText prints the report as flutter doctor does: a line per check,
// evidence, explanation and fix under each WARN and FAIL (and evidence
// under every check with verbose), a summary at the end.
func (r *Report) WriteText(w io.Writer, color, verbose bool) error {
	var b strings.Builder
	section := func(t TargetReport, forwards []string) {
		head := t.Target
		if t.Netns != "" {
			head += "  " + t.Netns
		}
		if len(forwards) > 0 {
			head += "  (forwards for " + strings.Join(forwards, ", ") + ")"
		}
		b.WriteString(output.Paint(color, output.Bold, head) + "\n")
		width := 0
		for _, c := range t.Checks {
			width = max(width, len(c.ID))
		}
		for _, c := range t.Checks {
			m := marks[c.Status]
			title := c.Title
			if c.Probe {
				title += " [probe]"
			}
			fmt.Fprintf(&b, "%s %-*s  %s", output.Paint(color, m.color, m.mark), width, c.ID, title)
			if c.Status == Skip {
				fmt.Fprintf(&b, output.Paint(color, output.Dim, " (skipped: %s)"), c.Explanation)
			}
			b.WriteString("\n")
			if c.Status == Warn || c.Status == Fail || (verbose && c.Status == Pass) {
				for _, e := range c.Evidence {
					line := fmt.Sprintf("    • %s: %s = %s", e.Source, e.Key, e.Value)
					if e.Expected != "" && (c.Status != Pass) {
						line += " (expected " + e.Expected + ")"
					}
					b.WriteString(line + "\n")
				}
			}
			if c.Status == Warn || c.Status == Fail {
				if c.Explanation != "" {
					b.WriteString("    " + c.Explanation + "\n")
				}
				if c.Fix != nil {
					b.WriteString("    fix: " + c.Fix.Summary + "\n")
					for _, cmd := range c.Fix.Commands {
						b.WriteString("      " + output.Paint(color, output.Bold, cmd) + "\n")
					}
				}
			}
		}
		for _, wn := range t.Warnings {
			b.WriteString(output.Paint(color, output.Dim, "    note: "+wn) + "\n")
		}
		b.WriteString("\n")
	}
	if len(r.Host.Checks) > 0 {
		section(r.Host, nil)
	}
	for _, n := range r.Nodes {
		section(n.TargetReport, n.Forwards)
	}
	for _, t := range r.Targets {
		section(t, nil)
	}
	s := r.Summary
	fmt.Fprintf(&b, "%d passed, %d warnings, %d failed, %d skipped (%d targets, counters over %s)\n", s.Pass, s.Warn, s.Fail, s.Skip, len(r.Targets), r.Interval)
	_, err := io.WriteString(w, b.String())
	return err
}
