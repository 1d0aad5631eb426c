package enter

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/procfs"
)

// topMountAt returns the visible (last stacked) mount at mount point real.
func topMountAt(ms []procfs.MountInfo, real string) (procfs.MountInfo, bool) {
	var at []procfs.MountInfo
	for _, m := range ms {
		if m.MountPoint == real {
			at = append(at, m)
		}
	}
	if len(at) == 0 {
		return procfs.MountInfo{}, false
	}
	// A mount stacked on another at the same point has it as parent; the
	// top is the one no other mount at that point sits on.
	for _, m := range at {
		covered := false
		for _, o := range at {
			if o.Parent == m.ID {
				covered = true
				break
			}
		}
		if !covered {
			return m, true
		}
	}
	return at[len(at)-1], true
}

// visibleMount returns the mount that path is on, as this process sees it
// (statx's mount ID): mountinfo alone cannot tell, since it also lists
// mounts that a later mount on a parent directory hides.
func visibleMount(ms []procfs.MountInfo, path string) (procfs.MountInfo, bool) {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &stx); err != nil || stx.Mask&unix.STATX_MNT_ID == 0 {
		return procfs.MountInfo{}, false
	}
	for _, m := range ms {
		if uint64(m.ID) == stx.Mnt_id {
			return m, true
		}
	}
	return procfs.MountInfo{}, false
}

// dirMount tells whether dir is itself a mount point, and which mount.
func dirMount(ms []procfs.MountInfo, dir, real string) (procfs.MountInfo, bool) {
	if m, ok := visibleMount(ms, dir); ok {
		return m, m.MountPoint == real
	}
	return topMountAt(ms, real) // kernels before 5.8: best effort
}

// makeShared prepares dir as iproute2 does: a shared mount point, so that
// links propagate to (and unmounts reach) other mount namespaces. made tells
// whether it turned dir into a mount point (undone if the link fails).
//
// iproute2 bind-mounts dir onto itself whenever it is not a mount point yet.
// nsdebug does not when dir already holds netns mounts (containerd's cni-*
// files): the runtime would later unmount only the copy on top and fail to
// remove the file ("Device or resource busy") while the original mount stays
// hidden underneath, holding the namespace forever. It links without the
// shared mount point instead, and says so.
func makeShared(dir, procRoot string) (made bool, warn string, err error) {
	real := realPath(dir)
	ms, err := procfs.ReadMountInfo(procRoot + "/self/mountinfo")
	if err != nil {
		return false, "", fmt.Errorf("read mountinfo: %w", err)
	}
	netnsMounts, _ := procfs.NetnsMounts(procRoot + "/self/mountinfo")

	if top, ok := dirMount(ms, dir, real); ok {
		var hidden []string
		for _, m := range netnsMounts {
			if filepath.Dir(m.MountPoint) == real && m.ParentID != top.ID && !m.Visible() {
				hidden = append(hidden, filepath.Base(m.MountPoint)+"="+m.ID.String())
			}
		}
		if len(hidden) > 0 {
			warn = fmt.Sprintf("%d netns mount(s) in %s are hidden under a later mount of %s (the /run/netns re-mount trap): %s; they cannot be reached by name (see 'nsdebug ls')", len(hidden), dir, dir, clipList(hidden))
		}
		if top.Shared {
			return false, warn, nil
		}
		err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil {
			return false, warn, nil
		}
		if !errors.Is(err, unix.EINVAL) {
			return false, warn, mountSetupError("mount --make-shared "+dir, err)
		}
		// EINVAL: not a mount point after all; go on as iproute2 does.
	}

	var below []string
	for _, m := range netnsMounts {
		if filepath.Dir(m.MountPoint) == real && m.Visible() {
			below = append(below, filepath.Base(m.MountPoint))
		}
	}
	if len(below) > 0 {
		warn = fmt.Sprintf("%s is not a mount point and already holds %d netns mount(s) (%s); nsdebug does not bind-mount it onto itself as ip netns would, because that would hide them under the new mount (the /run/netns re-mount trap): the link is made without a shared %s", dir, len(below), clipList(below), dir)
		return false, warn, nil
	}
	if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return false, "", mountSetupError("mount --rbind "+dir+" "+dir, err)
	}
	// As iproute2: private first, then shared, to get a peer group of its
	// own rather than joining the parent's.
	for _, fl := range []uintptr{unix.MS_PRIVATE | unix.MS_REC, unix.MS_SHARED | unix.MS_REC} {
		if err := unix.Mount("", dir, "none", fl, ""); err != nil {
			if uerr := unix.Unmount(dir, unix.MNT_DETACH); uerr != nil {
				err = fmt.Errorf("%w; undoing the self bind mount also failed (%v): umount %s", err, uerr, dir)
			}
			return false, "", mountSetupError("make "+dir+" a shared mount point", err)
		}
	}
	return true, "", nil
}

// undoSharedMount removes the self-bind mount makeShared made, unless
// something was mounted under it meanwhile.
func undoSharedMount(dir, procRoot string) error {
	ms, err := procfs.ReadMountInfo(procRoot + "/self/mountinfo")
	if err != nil {
		return err
	}
	top, ok := dirMount(ms, dir, realPath(dir))
	if !ok {
		return nil
	}
	for _, m := range ms {
		if m.Parent == top.ID {
			return nil // a netns mounted meanwhile would be hidden again
		}
	}
	return unix.Unmount(dir, unix.MNT_DETACH)
}

// sysError keeps errno text out of cobra's usage-error patterns ("invalid
// argument") and names the errno, which is what people search for.
type sysError struct {
	what string
	err  error
}

func (e *sysError) Error() string {
	var en unix.Errno
	if errors.As(e.err, &en) {
		msg := en.Error()
		if msg != "" {
			msg = strings.ToUpper(msg[:1]) + msg[1:]
		}
		return e.what + ": " + unix.ErrnoName(en) + " (" + msg + ")"
	}
	return e.what + ": " + e.err.Error()
}

func (e *sysError) Unwrap() error { return e.err }

func mountSetupError(what string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return nserr.Wrap(nserr.ErrPermission, err, "%s (needs CAP_SYS_ADMIN in the host's mount namespace)", what)
	}
	return &sysError{what, err}
}

func clipList(s []string) string {
	if len(s) > 5 {
		return strings.Join(s[:5], ", ") + fmt.Sprintf(" and %d more", len(s)-5)
	}
	return strings.Join(s, ", ")
}
