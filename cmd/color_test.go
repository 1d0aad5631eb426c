package cmd

import (
	"os"
	"testing"
)

// Colour only on a terminal, never with NO_COLOR (set, even empty:
// https://no-color.org) and never on a dumb terminal.
func TestIOStreamsColor(t *testing.T) {
	ptr := func(s string) *string { return &s }
	cases := []struct {
		name    string
		tty     bool
		noColor *string
		term    string
		want    bool
	}{
		{"terminal", true, nil, "xterm-256color", true},
		{"terminal without TERM", true, nil, "", true},
		{"pipe", false, nil, "xterm-256color", false},
		{"NO_COLOR=1", true, ptr("1"), "xterm", false},
		{"NO_COLOR empty", true, ptr(""), "xterm", false},
		{"TERM=dumb", true, nil, "dumb", false},
		{"pipe with NO_COLOR", false, ptr("1"), "xterm", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("TERM", c.term)
			t.Setenv("NO_COLOR", "") // registers the restore of the caller's value
			if c.noColor == nil {
				os.Unsetenv("NO_COLOR")
			} else {
				os.Setenv("NO_COLOR", *c.noColor)
			}
			if got := (IOStreams{OutTTY: c.tty}).Color(); got != c.want {
				t.Errorf("Color() = %v, want %v", got, c.want)
			}
		})
	}
}
