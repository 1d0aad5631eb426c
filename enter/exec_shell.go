package enter

import (
	"fmt"
	"os"
	"path/filepath"
)

// ShellCommand is what nsdebug shell runs: $SHELL (else /bin/sh) with a
// prompt that names the target, so an operator never forgets where a
// terminal is. Every shell also gets NSDEBUG_TARGET (see baseEnv).
type ShellCommand struct {
	Argv  []string
	Env   []string // KEY=VALUE
	Files []*os.File
}

// Close releases the files once the shell has started (or failed to).
func (s *ShellCommand) Close() {
	for _, f := range s.Files {
		f.Close()
	}
}

// NewShellCommand picks the shell from shellEnv ($SHELL) for target label.
func NewShellCommand(shellEnv, label string, root bool) (*ShellCommand, error) {
	sh := shellEnv
	if sh == "" {
		sh = "/bin/sh"
	} else if _, err := LookPath(sh, os.Getenv("PATH")); err != nil {
		sh = "/bin/sh" // a $SHELL that does not exist here (e.g. set by ssh for another host)
	}
	mark := "$ "
	if root {
		mark = "# "
	}
	tag := "[nsdebug " + label + "]"
	// Shells that read PS1 from the environment (sh, dash, busybox, ksh,
	// zsh without an rc overriding it) show the tag from it.
	sc := &ShellCommand{Argv: []string{sh}, Env: []string{"PS1=" + tag + " " + mark}}
	if filepath.Base(sh) == "bash" {
		// bash resets PS1 in its rc files, so give it an rc file of our own
		// that reads the user's and then prefixes the prompt. It arrives on
		// a pipe as fd 3: nothing is written to disk, nothing to clean up.
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("shell rc pipe: %w", err)
		}
		rc := `[ -f /etc/bash.bashrc ] && . /etc/bash.bashrc
[ -f ~/.bashrc ] && . ~/.bashrc
PS1='\[\e[1;33m\][nsdebug ${NSDEBUG_TARGET}]\[\e[0m\] '"${PS1:-\\$ }"
exec 3<&-
`
		// Far below a pipe's buffer: the write cannot block.
		_, err = w.WriteString(rc)
		w.Close()
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("shell rc pipe: %w", err)
		}
		sc.Files = []*os.File{r}
		sc.Argv = []string{sh, "--rcfile", "/dev/fd/3"}
	}
	return sc, nil
}
