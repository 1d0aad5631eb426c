package cmd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// nsdebugBinary is the binary under test: $NSDEBUG_BIN (make test sets it)
// or one built once for this test run.
func nsdebugBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NSDEBUG_BIN"); p != "" {
		return p
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nsdebug-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "nsdebug")
		// Static and with the Makefile's TAGS, as make build makes it: case 14
		// runs it inside a container that has no C library.
		build := exec.Command("go", "build", "-tags", "grpcnotrace", "-o", binPath, "./nsdebug")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := build.CombinedOutput()
		if err != nil {
			binErr = err
			t.Logf("%s", out)
		}
	})
	if binErr != nil {
		t.Fatalf("build nsdebug: %v", binErr)
	}
	return binPath
}

// Every command that touches namespaces refuses to run without root,
// without CAP_SYS_ADMIN or without CAP_SYS_PTRACE: one line naming what is
// missing, exit 7 (125 for exec and shell).
func TestEveryCommandNamesMissingPrivilege(t *testing.T) {
	testbed.RequireRoot(t)
	bin := nsdebugBinary(t)
	// node-helper only idles in kubectl nsdebug's helper pod until the plugin
	// execs the real command; it opens no namespace.
	noRoot := []string{"version", "help", "completion", "targets", "exit-codes", "node-helper"}
	env := &Env{IO: IOStreams{}}
	root := NewRootCmd(env)
	var tried int
	for _, c := range root.Commands() {
		name := c.Name()
		if contains2(noRoot, name) {
			continue
		}
		args := []string{name}
		switch name {
		case "ls", "graph":
		case "unlink":
			args = append(args, "nsdebug-priv-test")
		case "whois":
			args = append(args, "127.0.0.1")
		case "exec":
			args = append(args, "pid:1", "--", "true")
		default:
			args = append(args, "pid:1")
		}
		for _, how := range []struct {
			name   string
			prefix []string
			want   string
		}{
			{"as nobody", []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}, "root"},
			{"without CAP_SYS_ADMIN", []string{"setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin"}, "CAP_SYS_ADMIN"},
			// Needed to open other processes' /proc/PID/ns/net.
			{"without CAP_SYS_PTRACE", []string{"setpriv", "--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace"}, "CAP_SYS_PTRACE"},
		} {
			cmd := exec.Command(how.prefix[0], append(append(how.prefix[1:], bin), args...)...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			wantCode := 7
			if name == "exec" || name == "shell" {
				wantCode = 125
			}
			if code != wantCode || strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), how.want) {
				t.Errorf("%s %v: exit %d (want %d), stderr %q", how.name, args, code, wantCode, stderr.String())
			}
			tried++
		}
	}
	if tried < 3*8 {
		t.Fatalf("only %d privilege checks ran", tried)
	}
}

func contains2(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
