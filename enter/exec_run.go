package enter

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/nsfs"
)

// ExecOptions is one nsdebug exec or shell run: the resolved target and how
// the command should see it.
type ExecOptions struct {
	NS       *nsfs.Netns // the pinned target
	PID      int         // a process in it, if known (stale check, --pid, /proc/PID/root files)
	ProcRoot string      // normally /proc
	Label    string      // the target as the user should see it (NSDEBUG_TARGET)
	// ResolvConf and Hosts are the runtime's own files for the container
	// (Docker's ResolvConfPath/HostsPath, the CRI sandbox's); "" if unknown.
	ResolvConf, Hosts string
	// EtcNetns is /etc/netns/NAME for netns:NAME targets, whose files
	// ip netns exec would bind-mount too; "" otherwise.
	EtcNetns string

	Argv    []string
	Env     []string // extra KEY=VALUE (or KEY: copied from nsdebug's environment)
	Workdir string
	User    string // NAME, UID, NAME:GROUP or UID:GID
	JoinPID bool
	HostDNS bool // keep the host's /etc/resolv.conf and /etc/hosts
	NoSysfs bool
	// NodeRoot runs the command with the node's filesystem as its root
	// (kubectl nsdebug --host-tools): a private copy of the mount namespace
	// of the node's kubelet, else of PID 1, with the same /sys, resolv.conf
	// and hosts overlays as any exec.
	NodeRoot bool

	ExtraFiles []*os.File // shell: the bash rcfile
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer // also gets nsdebug's own warnings and messages
}

// Exec runs o.Argv inside o.NS and returns nil if it exited 0, an
// *nserr.ExecError with its status otherwise (128+N if killed by signal N),
// or nsdebug's own failure. 126/127 failures are ExecErrors too; their
// message is printed here, on o.Stderr.
func Exec(o ExecOptions) error {
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	// When Stderr is not a file, os/exec copies the command's stderr into it
	// from a goroutine (bytes.Buffer.ReadFrom even rewrites the buffer as a
	// whole): our own lines must be serialized with that copy.
	if _, isFile := o.Stderr.(*os.File); !isFile {
		o.Stderr = &lockedWriter{w: o.Stderr}
	}
	warn := func(format string, args ...any) {
		fmt.Fprintf(o.Stderr, "nsdebug: warning: "+format+"\n", args...)
	}
	if len(o.Argv) == 0 || o.Argv[0] == "" {
		return nserr.New(nserr.ErrUsage, "no command given")
	}
	env, err := buildEnv(o)
	if err != nil {
		return err
	}
	var node *nodeRoot
	stat := os.Stat
	users := hostUsers
	if o.NodeRoot {
		if node, err = openNodeRoot(o.ProcRoot); err != nil {
			return err
		}
		defer node.close()
		stat = node.stat
		// The command runs with the node's files: its user names are the
		// node's, not those of the image nsdebug runs from.
		users = node.users()
	}
	cred, userEnv, err := credential(o.User, users)
	if err != nil {
		return err
	}
	// Later entries win (os/exec keeps the last of duplicate keys), so
	// -e overrides the user's HOME and our own NSDEBUG_ variables.
	env = append(append(baseEnv(o), userEnv...), env...)
	if o.Workdir != "" {
		if fi, err := stat(o.Workdir); err != nil || !fi.IsDir() {
			return nserr.New(nserr.ErrUsage, "--workdir %s: not a directory", shown(o.Workdir))
		}
	}
	// Look the command up before switching: host binaries are used, and
	// "not found"/"not executable" must not cost a namespace switch.
	path, err := lookPath(o.Argv[0], envValue(env, "PATH"), stat)
	if err != nil {
		var se *StartError
		if errors.As(err, &se) {
			fmt.Fprintf(o.Stderr, "nsdebug: %s\n", se.Err)
			return &nserr.ExecError{Code: se.Code}
		}
		return err
	}

	// Prove the target process is still the one resolved, and pin what
	// else we need from it, before anything runs.
	pin, err := pinProcess(o.ProcRoot, o.PID, o.NS.ID, o.JoinPID, !o.HostDNS)
	if err != nil {
		return err
	}
	defer pin.close()

	spec := Spec{
		NS: o.NS, PidNS: pin.pidns, Path: path, Args: o.Argv, Env: env, Dir: o.Workdir,
		Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr, ExtraFiles: o.ExtraFiles,
		Cred: cred, Sysfs: !o.NoSysfs,
	}
	if node != nil {
		spec.MountNS = node.mntns
	}
	resolvContent := []byte(nil)
	if !o.HostDNS {
		files := containerFiles(o, pin.root)
		for _, n := range files.notes {
			warn("%s", n)
		}
		for _, b := range []*Bind{files.resolv, files.hosts} {
			if b == nil {
				continue
			}
			// A bind needs something to cover (following a symlink).
			if _, err := stat(b.Dst); err != nil {
				warn("the host has no %s to cover with the target's (%v); the command sees none", b.Dst, unwrapPath(err))
				continue
			}
			if node != nil && b.Path != "" {
				// A file of nsdebug's mount namespace cannot be bound into
				// the node's: the command gets a copy.
				data, err := os.ReadFile(b.Path)
				if err != nil {
					warn("cannot read %s for %s (%v); the command sees the node's", b.Path, b.Dst, unwrapPath(err))
					continue
				}
				*b = Bind{Data: data, Dst: b.Dst}
			}
			spec.Binds = append(spec.Binds, *b)
			if b == files.resolv {
				resolvContent = b.Data
				if b.Path != "" {
					resolvContent, _ = os.ReadFile(b.Path)
				}
			}
		}
	}
	if resolvContent == nil && node != nil {
		resolvContent, _ = readInRoot(node.root, "etc/resolv.conf")
	} else if resolvContent == nil {
		resolvContent, _ = os.ReadFile("/etc/resolv.conf")
	}
	if stubs := loopbackNameservers(resolvContent); len(stubs) > 0 {
		spec.Inside = func() []string { return missingStubs(stubs) }
	}

	// Catch the terminal's and a supervisor's signals for as long as the
	// command runs: nsdebug must outlive its command and report its status.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
	defer signal.Stop(sigs)
	fromTTY := foregroundOfTTY()

	p, err := Start(spec)
	if err != nil {
		var se *StartError
		if errors.As(err, &se) {
			// The child's chdir and execve fail with the same errno; blame
			// the directory when the user plainly cannot enter it.
			if errors.Is(se.Err, unix.EACCES) && o.Workdir != "" && cred != nil {
				if dir, denied := unsearchableBy(o.Workdir, cred); denied {
					fmt.Fprintf(o.Stderr, "nsdebug: --workdir %s: user %d cannot enter %s (permission denied); nothing was run\n", shown(o.Workdir), cred.Uid, shown(dir))
					return &nserr.ExecError{Code: nserr.ExitExecFailed}
				}
			}
			fmt.Fprintf(o.Stderr, "nsdebug: %s\n", se.Err)
			return &nserr.ExecError{Code: se.Code}
		}
		return err
	}
	for _, n := range p.Notes {
		warn("%s", n)
	}
	done := make(chan struct{})
	go func() {
		detached := p.Detached
		for {
			select {
			case <-done:
				return
			case notes := <-detached:
				for _, n := range notes {
					warn("%s", n)
				}
				detached = nil // delivered once, then closed
			case s := <-sigs:
				// The terminal sends Ctrl-C and Ctrl-\ to its whole
				// foreground process group, the command included: do not
				// deliver them twice. Everything else is passed on.
				if fromTTY && (s == unix.SIGINT || s == unix.SIGQUIT) {
					continue
				}
				_ = p.Signal(s) // fails only once the command has gone, which Wait reports
			}
		}
	}()
	st, err := p.Wait()
	close(done)
	if err != nil && st == nil {
		return fmt.Errorf("wait for %s: %w", shown(o.Argv[0]), err)
	}
	return exitStatus(st, o.Argv[0], o.Stderr)
}

// exitStatus turns the command's end into nsdebug's result.
func exitStatus(st *os.ProcessState, name string, stderr io.Writer) error {
	ws, ok := st.Sys().(syscall.WaitStatus)
	switch {
	case ok && ws.Signaled():
		sig := ws.Signal()
		// Shells stay quiet about these two; say how anything else ended.
		if sig != unix.SIGINT && sig != unix.SIGPIPE {
			fmt.Fprintf(stderr, "nsdebug: %s was killed by signal %d (%s)\n", shown(name), int(sig), unix.SignalName(sig))
		}
		return &nserr.ExecError{Code: 128 + int(sig)}
	case st.ExitCode() == 0:
		return nil
	}
	return &nserr.ExecError{Code: st.ExitCode()}
}

// foregroundOfTTY reports whether nsdebug runs in the foreground process
// group of its controlling terminal, i.e. whether the terminal's own
// signals reach the command without our help.
func foregroundOfTTY() bool {
	fd, err := unix.Open("/dev/tty", unix.O_RDONLY|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	pgrp, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}

// baseEnv is nsdebug's own environment (host tools need the host's PATH,
// TERM, ...) plus variables naming the target.
func baseEnv(o ExecOptions) []string {
	return append(os.Environ(),
		"NSDEBUG_TARGET="+o.Label,
		"NSDEBUG_NETNS="+o.NS.ID.String(),
	)
}

// buildEnv checks -e entries: KEY=VALUE, or KEY to copy nsdebug's value
// (skipped when unset, as docker does).
func buildEnv(o ExecOptions) ([]string, error) {
	var env []string
	for _, e := range o.Env {
		k, v, hasValue := strings.Cut(e, "=")
		if k == "" || strings.ContainsAny(k, "\x00") {
			return nil, nserr.New(nserr.ErrUsage, "--env %q: want KEY=VALUE or KEY", e)
		}
		if !hasValue {
			var ok bool
			if v, ok = os.LookupEnv(k); !ok {
				continue
			}
		}
		env = append(env, k+"="+v)
	}
	return env, nil
}

func envValue(env []string, key string) string {
	v := ""
	for _, e := range env {
		if k, val, ok := strings.Cut(e, "="); ok && k == key {
			v = val // last wins, as in os/exec
		}
	}
	return v
}

// userDB looks users and groups up: the host's (os/user), or the node's
// files for --node-root.
type userDB struct {
	lookup      func(name string) (*user.User, error)
	lookupID    func(uid string) (*user.User, error)
	lookupGroup func(name string) (*user.Group, error)
	groupIDs    func(u *user.User) ([]string, error)
}

var hostUsers = userDB{
	lookup: user.Lookup, lookupID: user.LookupId, lookupGroup: user.LookupGroup,
	groupIDs: func(u *user.User) ([]string, error) { return u.GroupIds() },
}

// credential parses --user. A user name gets its primary group,
// supplementary groups and HOME/USER/LOGNAME from db; a bare UID unknown
// there gets GID = UID (never root's group by accident).
func credential(spec string, db userDB) (*syscall.Credential, []string, error) {
	if spec == "" {
		return nil, nil, nil
	}
	name, group, hasGroup := strings.Cut(spec, ":")
	bad := func(format string, args ...any) error {
		return nserr.New(nserr.ErrUsage, "--user %s: "+format, append([]any{spec}, args...)...)
	}
	var (
		uid, gid uint64
		groups   []uint32
		env      []string
		err      error
	)
	u, lookErr := db.lookup(name)
	if lookErr != nil {
		u, lookErr = db.lookupID(name)
	}
	if lookErr == nil {
		uid, _ = strconv.ParseUint(u.Uid, 10, 32)
		gid, _ = strconv.ParseUint(u.Gid, 10, 32)
		if ids, err := db.groupIDs(u); err == nil {
			for _, g := range ids {
				if n, err := strconv.ParseUint(g, 10, 32); err == nil {
					groups = append(groups, uint32(n))
				}
			}
		}
		env = []string{"HOME=" + u.HomeDir, "USER=" + u.Username, "LOGNAME=" + u.Username}
	} else {
		if uid, err = strconv.ParseUint(name, 10, 32); err != nil {
			return nil, nil, bad("no such user")
		}
		gid = uid
	}
	if hasGroup {
		if g, err := db.lookupGroup(group); err == nil {
			gid, _ = strconv.ParseUint(g.Gid, 10, 32)
		} else if gid, err = strconv.ParseUint(group, 10, 32); err != nil {
			return nil, nil, bad("no such group %q", group)
		}
		groups = nil // an explicit group replaces the user's groups, as in docker
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}, env, nil
}

// shown is a name the user gave (a command, a directory) as an error
// message shows it: as given, or quoted when it holds anything unprintable
// (a newline would break the one-line rule; flattened, it would hide what
// was given).
func shown(s string) string {
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return strconv.Quote(s)
	}
	return s
}

// LookPath finds file in pathList (PATH) like a shell does, telling "not
// found" (127) from "found but not executable" (126) as a *StartError.
func LookPath(file, pathList string) (string, error) {
	return lookPath(file, pathList, os.Stat)
}

// lookPath is LookPath with the files seen through stat (the node's root
// for --node-root).
func lookPath(file, pathList string, stat func(string) (fs.FileInfo, error)) (string, error) {
	name := shown(file)
	check := func(p string) error {
		fi, err := stat(p)
		switch {
		case err != nil && errors.Is(err, fs.ErrNotExist):
			return &StartError{Code: 127, Err: fmt.Errorf("%s: command not found", name)}
		case err != nil:
			return &StartError{Code: 126, Err: fmt.Errorf("%s: %w", name, unwrapPath(err))}
		case fi.IsDir():
			return &StartError{Code: 126, Err: fmt.Errorf("%s: is a directory", name)}
		case fi.Mode()&0o111 == 0:
			return &StartError{Code: 126, Err: fmt.Errorf("%s: permission denied (not executable)", name)}
		}
		return nil
	}
	if strings.Contains(file, "/") {
		if err := check(file); err != nil {
			return "", err
		}
		return file, nil
	}
	var firstErr error
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		err := check(p)
		if err == nil {
			return p, nil
		}
		var se *StartError
		if firstErr == nil && errors.As(err, &se) && se.Code == 126 {
			firstErr = err
		}
	}
	if firstErr != nil {
		return "", firstErr
	}
	return "", &StartError{Code: 127, Err: fmt.Errorf("%s: command not found in PATH", name)}
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// lockedWriter serializes writes. It has no ReadFrom, so io.Copy writes
// through it in chunks.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// unsearchableBy names the first directory on the way to dir that cred may
// not search by its permission bits (ACLs are not read: this only explains
// a failure the kernel already reported).
func unsearchableBy(dir string, cred *syscall.Credential) (string, bool) {
	p := "/"
	for _, part := range append([]string{""}, strings.Split(strings.Trim(filepath.Clean(dir), "/"), "/")...) {
		p = filepath.Join(p, part)
		var st unix.Stat_t
		if unix.Stat(p, &st) != nil {
			return "", false
		}
		if !searchable(st, cred) {
			return p, true
		}
	}
	return "", false
}

func searchable(st unix.Stat_t, cred *syscall.Credential) bool {
	switch {
	case cred.Uid == 0:
		return true
	case st.Uid == cred.Uid:
		return st.Mode&0o100 != 0
	case st.Gid == cred.Gid || slices.Contains(cred.Groups, st.Gid):
		return st.Mode&0o010 != 0
	}
	return st.Mode&0o001 != 0
}
