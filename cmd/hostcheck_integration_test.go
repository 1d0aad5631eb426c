package cmd

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// Issue 6 case 14: inside a PID namespace that is not the host's (with its
// own /proc, or with the host's /proc), nsdebug explains and refuses instead
// of following PIDs that name other processes.
func TestRefusesOutsideTheHostPIDNamespace(t *testing.T) {
	testbed.RequireRoot(t)
	bin := nsdebugBinary(t)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"own /proc", []string{"unshare", "--pid", "--fork", "--mount-proc", bin, "ls"}, "not in the host's PID namespace"},
		{"host /proc", []string{"unshare", "--pid", "--fork", bin, "resolve", "pid:1"}, "belongs to another PID namespace"},
	} {
		cmd := exec.Command(c.args[0], c.args[1:]...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 11 || !strings.Contains(stderr.String(), c.want) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%s: %v, stderr %q; want exit 11 and %q", c.name, err, stderr.String(), c.want)
		}
	}
}
