package cmd

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// run executes nsdebug in-process with captured streams.
func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runEnv(t, nil, args...)
}

// runEnv is run over an Env that mod (if not nil) adjusts first: a fake
// ProcRoot, another netns directory.
func runEnv(t *testing.T, mod func(*Env), args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := &Env{IO: IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}}
	if mod != nil {
		mod(env)
	}
	code = Run(env, args)
	return out.String(), errOut.String(), code
}

func TestUsageErrorsAreOneLineWithExitCode2(t *testing.T) {
	cases := [][]string{
		{"bogus"},
		{"resolve"},
		{"resolve", "a", "b"},
		{"resolve", ""},
		{"resolve", "docker:"},
		{"resolve", "pid:0"},
		{"resolve", "netns:../etc"},
		{"resolve", "web", "-o", "yaml"},
		{"ls", "-o", "yaml"},
		{"ls", "--no-such-flag"},
		{"ls", "extra"},
		{"--timeout", "0", "ls"},
		{"--timeout", "-1s", "resolve", "web"},
		{"--timeout", "soon", "ls"},
	}
	for _, args := range cases {
		stdout, stderr, code := run(t, args...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", args, code, stderr)
		}
		if stdout != "" {
			t.Errorf("%q: wrote to stdout: %q", args, stdout)
		}
		if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "nsdebug: ") {
			t.Errorf("%q: stderr is not one 'nsdebug: ' line: %q", args, stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	stdout, _, code := run(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "nsdebug ") {
		t.Fatalf("version: %d %q", code, stdout)
	}
}

// runProcess runs cmd (nsdebug as another process: under setpriv, in a
// container) and returns what it printed and its exit status.
func runProcess(cmd *exec.Cmd) (stdout, stderr string, code int) {
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return out.String(), errOut.String(), code
}
