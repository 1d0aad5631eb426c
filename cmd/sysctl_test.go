package cmd

import (
	"strings"
	"testing"
)

// Every bad key, value or flag combination is refused before the target is
// resolved: one line, exit 2, nothing on stdout; no root or runtime needed.
func TestSysctlUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"sysctl"}, "takes TARGET"},
		{[]string{"sysctl", "docker:"}, ""},
		{[]string{"sysctl", "web", "kernel.core_pattern"}, "not a network sysctl"},
		{[]string{"sysctl", "web", "fs.file-max=1"}, "not a network sysctl"},
		{[]string{"sysctl", "web", "net.ipv4.conf.eth0/../../../kernel/core_pattern=x"}, `contains ".."`},
		{[]string{"sysctl", "web", "net/ipv4/../../kernel/core_pattern"}, `contains ".."`},
		{[]string{"sysctl", "web", "net.core.somaxconn=1\n2"}, "newline"},
		{[]string{"sysctl", "web", "net.core.somaxconn=" + strings.Repeat("1", 4097)}, "too long"},
		{[]string{"sysctl", "web", "net.core.somaxconn=1", "--diff"}, "--diff only reads"},
		{[]string{"sysctl", "web", "-o", "yaml"}, "unknown output format"},
		{[]string{"sysctl", "web", "--no-such-flag"}, "unknown flag"},
	}
	for _, c := range cases {
		stdout, stderr, code := run(t, c.args...)
		if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "nsdebug: ") || !strings.Contains(stderr, c.msg) {
			t.Errorf("%q: exit %d stdout %q stderr %q; want 2 and one line with %q", c.args, code, stdout, stderr, c.msg)
		}
	}
}
