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

// Case 14 for real: nsdebug run inside a Docker container without the host's
// PID namespace, with the capabilities it wants and the host's /proc
// mounted in, as an operator might try. It must refuse with exit 11, one line, whichever /proc
// it reads, for every kind of command.
func TestRefusesInsideAContainer(t *testing.T) {
	testbed.Require(t)
	bin := nsdebugBinary(t)
	for _, c := range []struct {
		name   string
		docker []string
		args   []string
	}{
		{"its own /proc", nil, []string{"ls"}},
		{"its own /proc, pid:1", nil, []string{"resolve", "pid:1"}},
		{"the host's /proc mounted in", []string{"-v", "/proc:/host/proc"}, []string{"resolve", "1"}},
		{"exec", nil, []string{"exec", "pid:1", "--", "true"}},
	} {
		args := append([]string{"run", "--rm", "--cap-add", "SYS_ADMIN", "--cap-add", "SYS_PTRACE", "--label", "nsdebug-test=1", "-v", bin + ":/nsdebug:ro"}, c.docker...)
		args = append(args, testbed.Image, "/nsdebug")
		args = append(args, c.args...)
		stdout, stderr, code := runProcess(exec.Command("docker", args...))
		want := 11
		if c.args[0] == "exec" {
			want = 125 // exec reports its own failures as 125
		}
		if code != want || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "PID namespace") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d and one line about the PID namespace", c.name, code, stdout, stderr, want)
		}
	}
}
