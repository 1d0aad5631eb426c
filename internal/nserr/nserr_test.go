package nserr

import (
	"errors"
	"fmt"
	"testing"
)

func TestExitCode(t *testing.T) {
	cases := []struct {
		name string
		err  error
		exec bool
		want int
	}{
		{"nil", nil, false, 0},
		{"plain", errors.New("x"), false, ExitFailure},
		{"usage", New(ErrUsage, "bad"), false, ExitUsage},
		{"wrapped twice", fmt.Errorf("outer: %w", New(ErrNotRunning, "stopped")), false, ExitNotRunning},
		{"ambiguous", New(ErrAmbiguous, "two"), false, ExitAmbiguous},
		{"stale", New(ErrStale, "gone"), false, ExitStale},
		{"exec own failure", New(ErrNotFound, "no such container"), true, ExitExecFailed},
		{"exec command status", &ExecError{Code: 3}, true, 3},
		{"exec not found", &ExecError{Code: ExitExecNotFound}, true, 127},
	}
	for _, c := range cases {
		if got := ExitCode(c.err, c.exec); got != c.want {
			t.Errorf("%s: ExitCode = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestMessageIsExact(t *testing.T) {
	err := New(ErrNotFound, "no container %q", "web")
	if err.Error() != `no container "web"` {
		t.Fatalf("message %q", err.Error())
	}
	cause := errors.New("connection refused")
	w := Wrap(ErrUnavailable, cause, "docker")
	if !errors.Is(w, cause) || !errors.Is(w, ErrUnavailable) {
		t.Fatal("Wrap loses kind or cause")
	}
}
