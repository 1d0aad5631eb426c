// Package nsfs opens network namespace files and proves, with the kernel's
// help, that they are network namespaces. An opened *Netns pins the namespace:
// it stays valid (and the same namespace) however the path or the process it
// came from changes afterwards.
package nsfs

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/nserr"
)

// ID identifies a namespace: the nsfs device and inode, as stat(2) reports
// them for /proc/PID/ns/net and for bind mounts of it.
type ID struct {
	Dev   uint64 `json:"dev"`
	Inode uint64 `json:"inode"`
}

func (id ID) String() string { return "net:[" + strconv.FormatUint(id.Inode, 10) + "]" }

// Zero reports whether id is unset.
func (id ID) Zero() bool { return id.Inode == 0 }

// Netns is an open, verified network namespace file descriptor. It holds a
// plain descriptor rather than an *os.File: an nsfs file is never read, and
// os.File would try to register it with the network poller on every open
// (two wasted system calls per namespace when ls opens hundreds).
type Netns struct {
	fd     int
	closed bool
	ID     ID
	Path   string // where it was opened from, for messages
}

// Fd returns the descriptor; valid until Close.
func (n *Netns) Fd() int { return n.fd }

// Close releases the pin. Closing twice is harmless.
func (n *Netns) Close() error {
	if n == nil || n.closed {
		return nil
	}
	n.closed = true
	return unix.Close(n.fd)
}

// Dup returns an independent pin of the same namespace.
func (n *Netns) Dup() (*Netns, error) {
	fd, err := unix.FcntlInt(uintptr(n.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &Netns{fd: fd, ID: n.ID, Path: n.Path}, nil
}

// Open opens path and checks that it is a network namespace. A regular file
// (for example an empty /run/netns placeholder whose bind mount is gone), a
// directory, a FIFO or another namespace type gives ErrNotNetns.
func Open(path string) (*Netns, error) {
	// O_PATH would not let the ioctl through; O_RDONLY on a FIFO would block,
	// so refuse anything that is not a regular file (nsfs files stat as
	// regular files) before opening.
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil, openError(path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, nserr.New(nserr.ErrNotNetns, "%s is not a network namespace (it is a %s)", path, FileKind(st.Mode))
	}
	// O_NONBLOCK: should the path become a FIFO after the check above,
	// opening it must not hang.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, openError(path, err)
	}
	n, err := FromFd(fd, path)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return n, nil
}

// OpenKnown opens path, which was just seen (stat, or /proc/PID/ns/net) to
// be the network namespace want, and checks by fstat that it still is: the
// identity check stands for Open's type checks, since only a namespace has
// a namespace's device and inode. For callers that already hold the ID
// (ls visiting hundreds of namespaces): one lookup instead of two, and no
// ioctl.
func OpenKnown(path string, want ID) (*Netns, error) {
	// O_NONBLOCK: should the path have become a FIFO since it was seen,
	// opening it must not hang.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, openError(path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if got := (ID{Dev: st.Dev, Inode: st.Ino}); got != want {
		unix.Close(fd)
		return nil, nserr.New(nserr.ErrNotNetns, "%s now holds another namespace", path)
	}
	return &Netns{fd: fd, ID: want, Path: path}, nil
}

// FromFd verifies fd and takes ownership of it on success.
func FromFd(fd int, path string) (*Netns, error) {
	typ, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return nil, nserr.New(nserr.ErrNotNetns, "%s is not a network namespace", path)
	}
	if typ != unix.CLONE_NEWNET {
		return nil, nserr.New(nserr.ErrNotNetns, "%s is a namespace, but not a network namespace", path)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	return &Netns{fd: fd, ID: ID{Dev: st.Dev, Inode: st.Ino}, Path: path}, nil
}

func openError(path string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return nserr.New(nserr.ErrNotFound, "%s does not exist", path)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		if hint := UserNSHint(); hint != "" {
			return nserr.New(nserr.ErrPermission, "cannot open %s: permission denied: %s", path, hint)
		}
		if strings.HasSuffix(path, "/ns/net") {
			return nserr.New(nserr.ErrPermission, "cannot open %s: permission denied (ptrace access rules: that process holds privileges nsdebug lacks, e.g. capabilities outside its bounding set)", path)
		}
		return nserr.New(nserr.ErrPermission, "cannot open %s: permission denied", path)
	}
	return fmt.Errorf("open %s: %w", path, err)
}

// FileKind names a file type for messages ("directory", "FIFO", ...).
func FileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFIFO:
		return "FIFO"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFLNK:
		return "symlink"
	}
	return "file"
}

// StatID returns the namespace ID that path points to without opening it
// (stat follows /proc/PID/ns/net). Cheap; used to scan /proc.
func StatID(path string) (ID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return ID{}, err
	}
	return ID{Dev: st.Dev, Inode: st.Ino}, nil
}

// Test hooks: run between pinning the process and opening its namespace (to
// stage a PID reuse), and force the /proc path for kernels before 6.11.
var (
	testHookAfterPidfd func(pid int)
	testNoPidfdIoctl   bool
)

// pidfdGetNetNamespace is PIDFD_GET_NET_NAMESPACE, _IO(0xFF, 4), Linux 6.11+.
const pidfdGetNetNamespace = 0xFF04

// OpenPID pins the network namespace of process pid without a PID-reuse race:
// the process is first pinned with a pidfd; the namespace comes from the pidfd
// itself where the kernel can (6.11+), otherwise from /proc/PID/ns/net, after
// which the pidfd proves the process is still the one that was pinned.
// procRoot is normally "/proc".
func OpenPID(procRoot string, pid int) (*Netns, error) {
	return openPID(procRoot, pid, nil)
}

// OpenReportedPID is OpenPID for a PID that a container runtime reported,
// where the reuse race starts before nsdebug holds anything: the process may
// die and its PID go to another process between the runtime's answer and
// pidfd_open. askedAt is CLOCK_BOOTTIME just before the runtime was asked;
// the runtime's process already ran then, so a pinned process that started
// later is a stranger with a reused PID and is refused (exit 10).
func OpenReportedPID(procRoot string, pid int, askedAt time.Duration) (*Netns, error) {
	return openPID(procRoot, pid, func() error {
		started, err := StartTime(procRoot, pid)
		if err != nil {
			return nil // gone: the pidfd check after opening says so
		}
		// Start times have clock-tick granularity: allow one tick.
		if started > askedAt+clockTick {
			return nserr.New(nserr.ErrStale, "process %d started after the runtime reported it (%.3fs > %.3fs after boot): its PID was reused by another process", pid, started.Seconds(), askedAt.Seconds())
		}
		return nil
	})
}

// clockTick is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// architecture Linux ships today.
const clockTick = 10 * time.Millisecond

// Boottime is CLOCK_BOOTTIME, the clock of process start times.
func Boottime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// StartTime is when process pid started, as time since boot (field 22 of
// /proc/PID/stat).
func StartTime(procRoot string, pid int) (time.Duration, error) {
	b, err := os.ReadFile(procRoot + "/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStartTime(string(b))
}

// parseStartTime reads starttime from a stat line. The command name (field
// 2) may hold spaces and parentheses, so fields are counted after the last ')'.
func parseStartTime(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat line")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state), so field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("malformed stat line: %d fields", len(f)+2)
	}
	ticks, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed stat starttime %q", f[19])
	}
	return time.Duration(ticks) * clockTick, nil
}

func openPID(procRoot string, pid int, check func() error) (*Netns, error) {
	if pid <= 0 {
		return nil, nserr.New(nserr.ErrUsage, "invalid PID %d", pid)
	}
	path := procRoot + "/" + strconv.Itoa(pid) + "/ns/net"
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, nserr.New(nserr.ErrNotFound, "no process with PID %d", pid)
		}
		if !errors.Is(err, unix.ENOSYS) {
			return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
		}
		// Kernel without pidfds: fall back to the path (racy, as nsenter).
		return Open(path)
	}
	defer unix.Close(pidfd)
	if testHookAfterPidfd != nil {
		testHookAfterPidfd(pid)
	}
	// The pidfd holds the process it names from here on, so a check of what
	// /proc says about pid is about that process if the pidfd is still alive
	// afterwards, which the path below proves at its end.
	if check != nil {
		if err := check(); err != nil {
			return nil, err
		}
	}

	fd, err := unix.IoctlRetInt(pidfd, pidfdGetNetNamespace)
	if testNoPidfdIoctl {
		err = unix.ENOTTY
	}
	if err == nil {
		n, err := FromFd(fd, path)
		if err != nil {
			unix.Close(fd)
		}
		return n, err
	} else if errors.Is(err, unix.ESRCH) {
		return nil, nserr.New(nserr.ErrStale, "process %d exited", pid)
	}
	n, err := Open(path)
	if err != nil {
		if errors.Is(err, nserr.ErrNotFound) {
			return nil, nserr.New(nserr.ErrStale, "process %d exited", pid)
		}
		return nil, err
	}
	if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil && errors.Is(err, unix.ESRCH) {
		n.Close()
		return nil, nserr.New(nserr.ErrStale, "process %d exited while its network namespace was opened", pid)
	}
	return n, nil
}

// HostSource tells how the host's netns was found.
type HostSource string

const (
	HostFromInit     HostSource = "/proc/1/ns/net"
	HostFromKthreadd HostSource = "/proc/2/ns/net (kthreadd)"
	HostFromSelf     HostSource = "nsdebug's own network namespace"
)

// HostID finds the host's (initial) network namespace. PID 1 is the usual
// answer, but on hardened hosts even root may not read /proc/1/ns/net
// (ptrace access rules: PID 1 holds capabilities the caller lacks). Kernel
// threads always live in the initial namespace, so kthreadd (PID 2) is the
// next witness; failing both, nsdebug's own namespace is used and the caller
// is told so.
func HostID(procRoot string) (ID, HostSource, error) {
	if id, err := StatID(procRoot + "/1/ns/net"); err == nil {
		return id, HostFromInit, nil
	}
	if comm, err := os.ReadFile(procRoot + "/2/comm"); err == nil && strings.TrimSpace(string(comm)) == "kthreadd" {
		if id, err := StatID(procRoot + "/2/ns/net"); err == nil {
			return id, HostFromKthreadd, nil
		}
	}
	id, err := StatID(procRoot + "/thread-self/ns/net")
	if err != nil {
		return ID{}, "", fmt.Errorf("cannot find the host network namespace: %w", err)
	}
	return id, HostFromSelf, nil
}
