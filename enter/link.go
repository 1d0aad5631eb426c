package enter

// Links make a pinned network namespace visible to iproute2 (`ip netns exec
// NAME`, `ip -n NAME`) as /var/run/netns/NAME, the way `ip netns attach`
// does: an empty file with the namespace bind-mounted onto it. A bind mount
// holds the namespace itself; a symlink to /proc/PID/ns/net would dangle when
// the process exits and, after PID reuse, name someone else's namespace.
//
// Mounting is not a namespace switch: nothing here calls setns or unshare.
//
// Locking: iproute2 (since 5.7, Debian bug 949235) takes flock(LOCK_EX) on
// the /var/run/netns directory itself while it turns the directory into a
// shared mount point, because parallel `ip netns add` runs stacked recursive
// self-bind mounts until the host locked up. nsdebug takes the same lock, so
// it and iproute2 exclude each other during that set-up, and holds it for
// its whole check-create-mount (or check-unmount-remove) sequence, so that
// concurrent nsdebug link/unlink calls never see each other's half-made
// entries. flock on the directory needs no extra lock file (which `ip netns
// list` would show as a namespace) and locks the inode, so it holds across
// the self-bind of the directory.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/internal/procfs"
	"github.com/nsdebug/nsdebug/resolver"
)

// DefaultNetnsDir is where iproute2 looks for named namespaces.
const DefaultNetnsDir = "/var/run/netns"

// LinkOptions say where and how to link.
type LinkOptions struct {
	Name     string
	Force    bool   // replace a link of another namespace, a placeholder or a symlink
	Dir      string // DefaultNetnsDir if ""
	ProcRoot string // "/proc" if ""
	// StateDir holds the link records (see stateDirFor).
	StateDir string
	// Target and Owners are recorded with the link, so that unlink --stale
	// knows it for nsdebug's and whose it was.
	Target string
	Owners []LinkOwner
}

func (o LinkOptions) dir() string      { return orDefault(o.Dir, DefaultNetnsDir) }
func (o LinkOptions) procRoot() string { return orDefault(o.ProcRoot, "/proc") }

// stateDirFor is where the records of links in dir live: DefaultLinkStateDir
// for the host's netns directory, a sibling of any other (tests), never
// inside dir itself, where `ip netns list` would show it.
func stateDirFor(stateDir, dir string) string {
	switch {
	case stateDir != "":
		return stateDir
	case dir == "" || dir == DefaultNetnsDir:
		return DefaultLinkStateDir
	}
	return filepath.Clean(dir) + ".nsdebug-links"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// LinkResult is what Link did.
type LinkResult struct {
	Name  string `json:"name"`
	Path  string `json:"path"`
	Inode uint64 `json:"inode"`
	// Changed is false when the name already linked this namespace.
	Changed bool `json:"changed"`
	// Replaced says what --force replaced, if anything.
	Replaced string   `json:"replaced,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// ValidateName applies iproute2's rules for netns names (see
// resolver.ValidateNetnsName): one path element, 1-255 bytes.
func ValidateName(name string) error { return resolver.ValidateNetnsName(name) }

// SafeName turns a container or pod name into a valid netns name: '/' and
// control characters become '-', invalid UTF-8 is dropped, and it is cut to
// 255 bytes on a character boundary. "" means nothing usable was left.
func SafeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			continue
		case r == '/' || r < 0x20 || r == 0x7f:
			b.WriteByte('-')
		default:
			if b.Len()+utf8.RuneLen(r) > resolver.MaxNameLen {
				return finishSafe(b.String())
			}
			b.WriteRune(r)
		}
		if b.Len() >= resolver.MaxNameLen {
			break
		}
	}
	return finishSafe(b.String())
}

func finishSafe(s string) string {
	s = strings.Trim(s, "-")
	if s == "." || s == ".." || resolver.ValidateNetnsName(s) != nil {
		return ""
	}
	return s
}

// Link bind-mounts the pinned namespace ns onto DIR/NAME. A failed Link
// leaves DIR as it was (no placeholder, no new mount point), except that a
// --force replacement removes the old link before mounting the new one.
func Link(ns *nsfs.Netns, o LinkOptions) (*LinkResult, error) {
	if err := ValidateName(o.Name); err != nil {
		return nil, err
	}
	dir := o.dir()
	path := filepath.Join(dir, o.Name)
	res := &LinkResult{Name: o.Name, Path: path, Inode: ns.ID.Inode}

	madeDir, err := mkdirNetnsDir(dir)
	if err != nil {
		return nil, err
	}
	lk, err := lockDir(dir)
	if err != nil {
		undoDir(dir, madeDir)
		return nil, err
	}
	defer lk.unlock()

	// What is there already? reuse: an existing file to mount onto.
	reuse := false
	removeSymlink := false
	var st unix.Stat_t
	switch err := unix.Lstat(path, &st); {
	case errors.Is(err, unix.ENOENT):
	case err != nil:
		undoDir(dir, madeDir)
		return nil, fmt.Errorf("stat %s: %w", path, err)
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		target, _ := os.Readlink(path)
		if !o.Force {
			return nil, nserr.New(nserr.ErrRefused, "%s is a symlink to %s, not a link made by nsdebug or ip netns; use --force to replace it", path, target)
		}
		removeSymlink, res.Replaced = true, "symlink to "+target
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, nserr.New(nserr.ErrNotNetns, "%s exists and is a %s, not a network namespace link; not touching it", path, nsfs.FileKind(st.Mode))
	default:
		cur, oerr := nsfs.Open(path)
		if oerr == nil {
			id := cur.ID
			cur.Close()
			if id == ns.ID {
				return res, nil // already linked: idempotent
			}
			if !o.Force {
				return nil, nserr.New(nserr.ErrRefused, "netns name %q is already used by another network namespace (%s); choose another name, or use --force to replace that link", o.Name, id)
			}
			reuse, res.Replaced = true, "link to "+id.String()
			break
		}
		if hidden := procfs.HiddenNetnsMountAt(o.procRoot(), path, realPath(path)); hidden != "" {
			return nil, nserr.New(nserr.ErrRefused, "%s is a mount point of %s hidden under a later mount of %s (the /run/netns re-mount trap); nsdebug cannot link over it; choose another name", path, hidden, dir)
		}
		if st.Size != 0 {
			return nil, nserr.New(nserr.ErrNotNetns, "%s exists and is a regular file of %d bytes, not a network namespace link; not touching it", path, st.Size)
		}
		if !o.Force {
			return nil, nserr.New(nserr.ErrRefused, "%s exists as an empty placeholder (a link being made right now, or one whose mount is gone); use --force to reuse it, or 'nsdebug unlink %s'", path, o.Name)
		}
		reuse, res.Replaced = true, "empty placeholder"
	}

	madeMount, warn, err := makeShared(dir, o.procRoot())
	if warn != "" {
		res.Warnings = append(res.Warnings, warn)
	}
	if err != nil {
		undoDir(dir, madeDir)
		return nil, err
	}
	// undo reverses the directory set-up; a failure to do so is added to
	// the error the caller returns, so nothing is left behind unreported.
	undo := func(err error) error {
		if madeMount {
			if uerr := undoSharedMount(dir, o.procRoot()); uerr != nil {
				err = fmt.Errorf("%w (and undoing the shared mount of %s failed: %v; umount %s)", err, dir, uerr, dir)
			}
		}
		undoDir(dir, madeDir)
		return err
	}

	if removeSymlink {
		if err := os.Remove(path); err != nil {
			return nil, undo(fmt.Errorf("remove symlink %s: %w", path, err))
		}
	}
	if reuse {
		// --force over another namespace's link: detach every stacked mount.
		if err := unmountAll(path); err != nil {
			return nil, err
		}
	} else {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, unix.EEXIST) {
				// Someone not taking the lock (a runtime) made it meanwhile.
				return nil, undo(nserr.New(nserr.ErrRefused, "%s appeared while linking (made by another program); try again", path))
			}
			return nil, undo(&sysError{"create " + path, err})
		}
		unix.Close(fd)
	}

	// The pinned fd is the source: no PID (that could be reused) is involved.
	src := "/proc/self/fd/" + strconv.Itoa(ns.Fd())
	if err := bindMount(src, path); err != nil {
		if !reuse {
			os.Remove(path)
		}
		return nil, undo(mountError(path, err))
	}
	if id, err := nsfs.StatID(path); err != nil || id != ns.ID {
		if uerr := unix.Unmount(path, unix.MNT_DETACH); uerr != nil {
			// Leave the path for the operator to see rather than remove a
			// file that still has a mount on it.
			return nil, fmt.Errorf("link %s: after the bind mount the path shows %v, not %s, and undoing the mount failed (%v): remove it with umount %s", path, id, ns.ID, uerr, path)
		}
		if !reuse {
			os.Remove(path)
		}
		return nil, undo(fmt.Errorf("link %s: after the bind mount the path shows %v, not %s", path, id, ns.ID))
	}
	rec := LinkRecord{Name: o.Name, Path: path, Dev: ns.ID.Dev, Inode: ns.ID.Inode, Target: o.Target, Owners: o.Owners, LinkedAt: time.Now().UTC()}
	if err := writeRecord(stateDirFor(o.StateDir, dir), rec); err != nil {
		// A link without its record would look like an operator's
		// namespace to --stale forever: undo the link instead.
		if uerr := unmountAll(path); uerr != nil {
			return nil, fmt.Errorf("%w (and undoing the link failed: %v; umount %s)", err, uerr, path)
		}
		os.Remove(path)
		return nil, undo(err)
	}
	res.Changed = true
	return res, nil
}

// testHookBind lets tests make the bind mount fail (nil in production).
var testHookBind func() error

func bindMount(src, path string) error {
	if testHookBind != nil {
		if err := testHookBind(); err != nil {
			return err
		}
	}
	return unix.Mount(src, path, "none", unix.MS_BIND, "")
}

func mountError(path string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return nserr.Wrap(nserr.ErrPermission, err, "bind-mount the network namespace onto %s (needs CAP_SYS_ADMIN in the host's mount namespace)", path)
	}
	return &sysError{"bind-mount the network namespace onto " + path, err}
}

// mkdirNetnsDir is `mkdir -p` with iproute2's mode; made tells whether it
// created the last element (so that a failure can remove it again).
func mkdirNetnsDir(dir string) (made bool, err error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return false, fmt.Errorf("create %s: %w", filepath.Dir(dir), err)
	}
	err = unix.Mkdir(dir, 0o755)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, unix.EEXIST) {
		return false, &sysError{"create " + dir, err}
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false, nserr.New(nserr.ErrRefused, "%s exists but is not a directory", dir)
	}
	return false, nil
}

func undoDir(dir string, made bool) {
	if made {
		_ = unix.Rmdir(dir) // fails harmlessly if something else appeared in it
	}
}

type dirLock struct{ fd int }

// lockDir takes iproute2's lock: flock(LOCK_EX) on the directory.
func lockDir(dir string) (*dirLock, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return &dirLock{fd}, nil
}

func (l *dirLock) unlock() {
	// Closing the only fd releases the lock even if LOCK_UN failed.
	_ = unix.Flock(l.fd, unix.LOCK_UN)
	unix.Close(l.fd)
}

// unmountAll detaches every mount stacked on path.
func unmountAll(path string) error {
	for i := 0; i < 64; i++ {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) {
			return nil // not a mount point (any more)
		}
		if err != nil {
			if errors.Is(err, unix.EPERM) {
				return nserr.Wrap(nserr.ErrPermission, err, "unmount %s", path)
			}
			return &sysError{"unmount " + path, err}
		}
	}
	return fmt.Errorf("unmount %s: still a mount point after 64 unmounts", path)
}

// realPath resolves symlinks (/var/run -> /run) as mountinfo shows paths.
func realPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	// The last element may not exist yet: resolve its directory.
	if r, err := filepath.EvalSymlinks(filepath.Dir(p)); err == nil {
		return filepath.Join(r, filepath.Base(p))
	}
	return p
}
