package cmd

import "testing"

// Read-only commands skip signal.NotifyContext (and, as a process, the GC
// below a heap limit); everything else, and anything unknown, keeps it.
func TestNeedsSignals(t *testing.T) {
	root := NewRootCmd(&Env{})
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"version"}, false},
		{[]string{"ls", "-o", "json"}, false},
		{[]string{"--timeout", "2s", "ls"}, false},
		{[]string{"resolve", "pid:1"}, false},
		{[]string{"inspect", "docker:web", "-o", "json"}, false},
		{[]string{"whois", "10.0.0.1"}, false},
		{[]string{"graph"}, false},
		{[]string{"help", "exit-codes"}, false},
		{[]string{"exec", "pid:1", "--", "ls"}, true},
		{[]string{"shell", "pid:1"}, true},
		{[]string{"link", "pid:1", "x"}, true},
		{[]string{"unlink", "x"}, true},
		{[]string{"sysctl", "pid:1", "net.ipv4.ip_forward=1"}, true},
		{[]string{"no-such-command"}, true},
	} {
		if got := needsSignals(root, tc.args); got != tc.want {
			t.Errorf("needsSignals(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

// Every name in readOnlyCommands is a command nsdebug has: a renamed command
// must not silently keep (or lose) its place in the list.
func TestReadOnlyCommandsExist(t *testing.T) {
	root := NewRootCmd(&Env{})
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	have := map[string]bool{}
	for _, c := range root.Commands() {
		have[c.Name()] = true
	}
	for name := range readOnlyCommands {
		if !have[name] {
			t.Errorf("readOnlyCommands lists %q, which is not a command", name)
		}
	}
}
