package enter

// Starting commands inside a network namespace (nsdebug exec and shell).
//
// This is the only place where a command is started after a namespace
// switch. The rules, on top of the package's:
//
//   - the command is forked with os/exec from the locked, switched thread:
//     a child inherits the namespaces of the thread that forks it, not the
//     process's;
//   - that thread is never restored: after the fork its goroutine returns
//     still locked, and the Go runtime destroys the thread (its private mount
//     namespace goes with it; the child keeps its own reference);
//   - in that private mount namespace, the copies of namespace (nsfs) mounts
//     that the host's unmounts would not reach are detached (exec_mounts.go),
//     by the same thread just after the fork so the command starts at once:
//     they would keep a removed container's netns alive for as long as the
//     command runs;
//   - no Pdeathsig: in Go it fires when the forking *thread* exits, which
//     here is at once, so it would kill every command;
//   - the nsdebug process is never replaced with execve.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/nsfs"
)

// Bind is a file bind-mounted over Dst in the command's private mount
// namespace: the host file Path (live: a runtime's later edits show), or a
// copy of Data (files read from inside a container: the kernel refuses to
// bind-mount from another mount namespace, so they cannot be mounted from an
// fd). Binding onto a symlink (systemd-resolved's /etc/resolv.conf) follows
// it, which is what we want: the mount namespace is private, the link's
// target is only covered there.
type Bind struct {
	Path string
	Data []byte
	Dst  string
}

// Spec is a command to start inside a network namespace.
type Spec struct {
	NS *nsfs.Netns
	// PidNS, if set, is a PID namespace file the command is started in
	// (only children enter a PID namespace; the thread stays where it is).
	PidNS *os.File
	// Path is the executable, looked up on the host before the switch so
	// that "not found" and "not executable" are known without switching.
	Path       string
	Args       []string // argv; Args[0] is the name as given
	Env        []string
	Dir        string
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
	ExtraFiles []*os.File
	Cred       *syscall.Credential
	// Sysfs remounts /sys so that /sys/class/net shows the namespace's own
	// interfaces (as ip netns exec does).
	Sysfs bool
	Binds []Bind
	// MountNS, if set, is a mount namespace (the node's, for --node-root)
	// whose private copy the command runs in, instead of a copy of
	// nsdebug's own: Path, Dir and every Bind's Dst are paths there, and
	// Binds carry Data (a Path of nsdebug's namespace cannot be bound there).
	MountNS *os.File
	// Inside runs on the switched thread after the mounts and before the
	// fork (the DNS stub check). Its error is only reported, through Notes.
	Inside func() []string
}

// Process is a started command.
type Process struct {
	cmd *exec.Cmd
	// Notes are Spec.Inside's findings.
	Notes []string
	// Detached delivers, once, what could not be detached of the namespace
	// mounts in the command's private mount namespace (usually nothing),
	// then is closed; closed without a value when the command ended before
	// detaching was due. Nil when the command got no private mount
	// namespace. See detachDelay.
	Detached <-chan []string
	detached chan []string
	exited   chan struct{} // closed by Wait
	waitOnce sync.Once
	// tid is the thread that forked the command (tests check that it is
	// gone while the command lives on).
	tid int
}

// Pid is the command's PID as the host sees it.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the command.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits for the command (from any thread: the child belongs to the
// thread group, not to the thread that forked it) and copies its IO.
func (p *Process) Wait() (*os.ProcessState, error) {
	err := p.cmd.Wait()
	p.waitOnce.Do(func() { close(p.exited) })
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ProcessState, nil
	}
	return p.cmd.ProcessState, err
}

// StartError is a failure to start the command itself (after the switch),
// with the exec-style status it maps to: 126 found but not runnable, 127
// not found, 125 anything else.
type StartError struct {
	Code int
	Err  error
}

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// detachDelay is how long a command runs before the copies of namespace
// mounts in its private mount namespace are detached. Each umount costs the
// kernel an expedited RCU grace period, which disturbs every CPU: on a host
// with 50 containers, detaching before the fork made every exec 5 ms
// slower, and detaching just after it delayed nsdebug's own exit as much.
// A command that ends sooner (exec -- curl ...) holds the copies no longer
// than it runs; a shell or a long command has them detached after this.
const detachDelay = 250 * time.Millisecond

// Start switches a fresh, locked OS thread into s.NS (and a private mount
// namespace when s.Sysfs or s.Binds ask for one), forks the command from it
// and returns; the thread is then discarded (after detaching namespace
// mounts, for a command that runs longer than detachDelay). The caller's
// thread never changes namespace.
func Start(s Spec) (*Process, error) {
	type result struct {
		p   *Process
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Locked for good: every exit path below leaves the goroutine locked,
		// so the runtime destroys this thread instead of reusing it.
		runtime.LockOSThread()
		p, err := startOnThisThread(s)
		ch <- result{p, err}
		if err == nil && p.detached != nil {
			// Still in the command's mount namespace (the child shares it).
			defer close(p.detached)
			select {
			case <-p.exited:
			case <-time.After(detachDelay):
				p.detached <- detachPinnedNamespaces()
			}
		}
	}()
	r := <-ch
	return r.p, r.err
}

func startOnThisThread(s Spec) (*Process, error) {
	if err := unix.Setns(s.NS.Fd(), unix.CLONE_NEWNET); err != nil {
		return nil, setnsError(s.NS, err)
	}
	// Prove it by inode: a command must never run in a wrong namespace.
	if now, err := nsfs.StatID(threadNetns); err != nil || now != s.NS.ID {
		return nil, fmt.Errorf("enter network namespace %s: thread is in %s (%v)", s.NS.ID, now, err)
	}
	if s.PidNS != nil {
		// Sets the PID namespace of this thread's future children only.
		if err := unix.Setns(int(s.PidNS.Fd()), unix.CLONE_NEWPID); err != nil {
			return nil, fmt.Errorf("enter PID namespace: %w", err)
		}
	}
	p := &Process{tid: unix.Gettid(), exited: make(chan struct{})}
	if s.Sysfs || len(s.Binds) > 0 || s.MountNS != nil {
		if err := privateMounts(s); err != nil {
			return nil, err
		}
		p.detached = make(chan []string, 1)
		p.Detached = p.detached
	}
	if s.Inside != nil {
		p.Notes = append(p.Notes, s.Inside()...)
	}
	cmd := &exec.Cmd{
		Path:       s.Path,
		Args:       s.Args,
		Env:        s.Env,
		Dir:        s.Dir,
		Stdin:      s.Stdin,
		Stdout:     s.Stdout,
		Stderr:     s.Stderr,
		ExtraFiles: s.ExtraFiles,
		// No Pdeathsig (see the file comment); no Setpgid/Setsid: the
		// command stays in the terminal's foreground process group and
		// gets Ctrl-C from the terminal itself.
		SysProcAttr: &syscall.SysProcAttr{Credential: s.Cred},
	}
	if err := cmd.Start(); err != nil {
		return nil, startError(s.Args[0], err)
	}
	p.cmd = cmd
	return p, nil
}

// privateMounts gives this thread a mount namespace of its own, in which
// nothing propagates back to the host, and sets up /sys and the binds in it.
// Where the host's mounts are not shared (a private /, and with it Docker's
// /run/docker/netns/*), the copies of namespace mounts that unshare made
// would keep those namespaces alive after their container is removed, for
// as long as the command runs: Start detaches them once the command runs.
func privateMounts(s Spec) error {
	if s.MountNS != nil {
		if err := enterMountNS(s.MountNS); err != nil {
			return err
		}
	}
	// CLONE_NEWNS implies CLONE_FS, which unshare allows per thread even in
	// a multi-threaded process.
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare mount namespace: %w", err)
	}
	// Slave, not private: our own mounts never propagate out, and the
	// host's mounts and unmounts still propagate in where the host's mounts
	// are shared (/run/netns, as iproute2 makes it).
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	return setupMounts(s)
}

// setupMounts mounts /sys and the binds in the private mount namespace.
func setupMounts(s Spec) error {
	if s.Sysfs {
		// As iproute2's ip netns exec: sysfs shows the network devices of
		// the netns of the task that mounts it.
		var flags uintptr
		var st unix.Statfs_t
		if unix.Statfs("/sys", &st) == nil && st.Flags&unix.ST_RDONLY != 0 {
			flags = unix.MS_RDONLY
		}
		if err := unix.Unmount("/sys", unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount /sys: %w", err)
		}
		if err := unix.Mount("sysfs", "/sys", "sysfs", flags|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("mount sysfs on /sys: %w", err)
		}
	}
	var copies []Bind
	for _, b := range s.Binds {
		if b.Path == "" {
			copies = append(copies, b)
			continue
		}
		if err := unix.Mount(b.Path, b.Dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount %s over %s: %w", b.Path, b.Dst, err)
		}
	}
	if len(copies) > 0 {
		return bindCopies(copies)
	}
	return nil
}

// copyStages are where copies are written: a tmpfs mounted over one of
// them in the private namespace only, and detached again once the copies
// are bound, so the command sees the host's directory there. The first that
// holds no destination (also through symlinks) is used.
var copyStages = []string{"/tmp", "/mnt", "/var/tmp", "/media", "/srv", "/opt"}

func bindCopies(bs []Bind) error {
	copyStage := ""
	for _, dir := range copyStages {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		clash := false
		for _, b := range bs {
			real, _ := filepath.EvalSymlinks(b.Dst)
			for _, d := range []string{b.Dst, real} {
				if d != "" && strings.HasPrefix(d, dir+"/") {
					clash = true
				}
			}
		}
		if !clash {
			copyStage = dir
			break
		}
	}
	if copyStage == "" {
		return fmt.Errorf("no directory to stage copies of the target's files in")
	}
	if err := unix.Mount("nsdebug", copyStage, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0755,size=4m"); err != nil {
		return fmt.Errorf("mount tmpfs for copies: %w", err)
	}
	// The stage only has to be gone from view; it lives in the command's
	// private mount namespace, which dies with it anyway.
	defer func() { _ = unix.Unmount(copyStage, unix.MNT_DETACH) }()
	for i, b := range bs {
		p := copyStage + "/" + strconv.Itoa(i)
		if err := os.WriteFile(p, b.Data, 0o644); err != nil {
			return fmt.Errorf("copy for %s: %w", b.Dst, err)
		}
		if err := unix.Mount(p, b.Dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount the target's copy over %s: %w", b.Dst, err)
		}
	}
	return nil
}

func startError(name string, err error) error {
	code := 125
	switch {
	case errors.Is(err, fs.ErrNotExist):
		code = 127
	case errors.Is(err, fs.ErrPermission), errors.Is(err, unix.ENOEXEC), errors.Is(err, unix.EISDIR), errors.Is(err, unix.ETXTBSY):
		code = 126
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &StartError{Code: code, Err: fmt.Errorf("cannot run %s: %w", shown(name), err)}
}
