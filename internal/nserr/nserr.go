// Package nserr holds nsdebug's error kinds and the one mapping from errors
// to process exit codes. Packages wrap a kind with New or fmt.Errorf("...%w");
// cmd maps the final error with ExitCode.
package nserr

import (
	"errors"
	"fmt"
)

// Error kinds. Each has a documented exit code (see ExitCode and README).
var (
	ErrUsage       = errors.New("invalid input")
	ErrNotFound    = errors.New("not found")
	ErrAmbiguous   = errors.New("ambiguous target")
	ErrNotRunning  = errors.New("not running")
	ErrNotNetns    = errors.New("not a network namespace")
	ErrPermission  = errors.New("insufficient privilege")
	ErrUnavailable = errors.New("runtime unavailable")
	ErrRefused     = errors.New("refused")
	ErrStale       = errors.New("target changed")
	ErrEnvironment = errors.New("wrong environment")
	// kubectl-nsdebug's own.
	ErrHelper    = errors.New("helper pod failed")
	ErrAdmission = errors.New("helper pod rejected")
	ErrProtocol  = errors.New("protocol mismatch")
)

// Exit codes for everything but exec/shell, which follow docker exec.
const (
	ExitOK          = 0
	ExitFailure     = 1
	ExitUsage       = 2
	ExitNotFound    = 3
	ExitAmbiguous   = 4
	ExitNotRunning  = 5
	ExitNotNetns    = 6
	ExitPermission  = 7
	ExitUnavailable = 8
	ExitRefused     = 9
	ExitStale       = 10
	ExitEnvironment = 11
	// kubectl-nsdebug: the helper pod did not come up (image pull failure,
	// node gone, evicted, failed) or died meanwhile.
	ExitHelper = 12
	// kubectl-nsdebug: the API server refused the helper pod (Pod Security
	// admission, another admission webhook, a quota).
	ExitAdmission = 13
	// the helper image's nsdebug speaks another protocol than the plugin.
	ExitProtocol = 14

	// exec and shell: the command's own status, or these.
	ExitExecFailed        = 125
	ExitExecNotExecutable = 126
	ExitExecNotFound      = 127
)

// kindError is an error with a complete, human message and a kind that
// errors.Is can find.
type kindError struct {
	kind error
	msg  string
	err  error // optional cause
}

func (e *kindError) Error() string { return e.msg }

func (e *kindError) Unwrap() []error {
	if e.err != nil {
		return []error{e.kind, e.err}
	}
	return []error{e.kind}
}

// New returns an error of the given kind whose message is exactly the
// formatted text (the kind's own text is not appended).
func New(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// Wrap is New with a cause that errors.Is/As can also see.
func Wrap(kind, cause error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...) + ": " + cause.Error(), err: cause}
}

// ExecError is the outcome of a command run by exec/shell: its exit status
// is nsdebug's exit status.
type ExecError struct{ Code int }

func (e *ExecError) Error() string { return fmt.Sprintf("command exited with status %d", e.Code) }

var table = []struct {
	kind error
	code int
}{
	{ErrUsage, ExitUsage},
	{ErrNotFound, ExitNotFound},
	{ErrAmbiguous, ExitAmbiguous},
	{ErrNotRunning, ExitNotRunning},
	{ErrNotNetns, ExitNotNetns},
	{ErrPermission, ExitPermission},
	{ErrUnavailable, ExitUnavailable},
	{ErrRefused, ExitRefused},
	{ErrStale, ExitStale},
	{ErrEnvironment, ExitEnvironment},
	{ErrHelper, ExitHelper},
	{ErrAdmission, ExitAdmission},
	{ErrProtocol, ExitProtocol},
}

// ExitCode maps err to nsdebug's exit status. With execStyle (exec, shell)
// every failure of nsdebug itself is 125, as in docker exec, and 126/127
// mean the command was found but not executable / not found.
func ExitCode(err error, execStyle bool) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExecError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if execStyle {
		return ExitExecFailed
	}
	for _, t := range table {
		if errors.Is(err, t.kind) {
			return t.code
		}
	}
	return ExitFailure
}
