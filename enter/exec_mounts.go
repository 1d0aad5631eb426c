package enter

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/procfs"
)

// Namespace mounts in the command's private mount namespace.
//
// unshare(CLONE_NEWNS) copies every mount of the host, nsfs mounts included:
// Docker's /run/docker/netns/*, /run/netns/*, anything a tool bind-mounted to
// pin a namespace. A copy pins its namespace as firmly as the original. It
// goes away when the host unmounts the original only if the unmount
// propagates into the copy, which it does when the copy's *parent* mount
// receives propagation from the host (a "master:" tag after the tree is
// made a slave). On a host whose / is private (and so Docker's
// /run/docker/netns), none does: every container removed while an exec or
// shell runs would keep its network namespace alive, invisible to the host,
// until the command ends. detachPinnedNamespaces detaches those copies when
// the command starts; copies the host's unmounts reach stay (/run/netns when
// it is shared, as iproute2 makes it), so ip netns exec works inside.

// nsfsMount is an nsfs mount of the private namespace that the host's
// unmounts would not reach.
type nsfsMount struct {
	id         int
	dev        uint64
	ino        uint64
	mountPoint string
}

// unpropagatedNsfsMounts parses a mountinfo file of the private namespace
// (after MS_SLAVE|MS_REC): the nsfs mounts whose parent mount receives no
// propagation, and the nsfs mounts stacked on those (detaching the lower
// one would take them anyway, and the one on top must go first for the
// lower to be reachable). Latest first: a mount stacked on another comes
// later in mountinfo.
func unpropagatedNsfsMounts(mountinfo []byte) []nsfsMount {
	type entry struct {
		nsfsMount
		parent int
	}
	receives := map[int]bool{}
	var all []entry
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		m, ok := procfs.ParseMountInfoLine(line)
		if !ok {
			continue
		}
		pre, _, _ := strings.Cut(line, " - ")
		receives[m.ID] = strings.Contains(pre, " master:")
		if m.FSType != "nsfs" {
			continue
		}
		// Root is "net:[4026532300]" (or mnt:, uts:, ...: any namespace a
		// copy would pin).
		open := strings.IndexByte(m.Root, '[')
		if open < 0 || !strings.HasSuffix(m.Root, "]") {
			continue
		}
		ino, err := strconv.ParseUint(m.Root[open+1:len(m.Root)-1], 10, 64)
		if err != nil {
			continue
		}
		all = append(all, entry{nsfsMount{id: m.ID, dev: m.Dev, ino: ino, mountPoint: m.MountPoint}, m.Parent})
	}
	detach := map[int]string{} // mount ID -> mount point
	for _, e := range all {
		if !receives[e.parent] {
			detach[e.id] = e.mountPoint
		}
	}
	for grew := true; grew; {
		grew = false
		for _, e := range all {
			if _, ok := detach[e.id]; ok {
				continue
			}
			if mp, ok := detach[e.parent]; ok && mp == e.mountPoint {
				detach[e.id] = e.mountPoint
				grew = true
			}
		}
	}
	var out []nsfsMount
	for i := len(all) - 1; i >= 0; i-- {
		if _, ok := detach[all[i].id]; ok {
			out = append(out, all[i].nsfsMount)
		}
	}
	return out
}

// detachPinnedNamespaces detaches (MNT_DETACH) every nsfs mount of this
// thread's private mount namespace that the host's unmounts would not reach.
// It reads mountinfo once. A mount is detached only through an fd that is
// proven to be that mount (statx's mount ID, else the namespace's inode),
// never by a path that may lead to another mount. Mounts hidden under a
// later mount on a parent directory cannot be reached by any path and stay
// (the host cannot unmount them either). It returns notes on what it could
// not detach for another reason.
func detachPinnedNamespaces() []string {
	mi, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return []string{fmt.Sprintf("cannot read the command's mountinfo (%v): namespaces mounted on the host stay alive while it runs", err)}
	}
	todo := unpropagatedNsfsMounts(mi)
	var failed []string
	// Stacked mounts: the one on top goes first, which uncovers the next.
	for len(todo) > 0 {
		var later []nsfsMount
		for _, m := range todo {
			switch err := detachMount(m); {
			case err == nil:
			case errors.Is(err, errCovered):
				later = append(later, m)
			default:
				failed = append(failed, fmt.Sprintf("%s (%v)", m.mountPoint, err))
			}
		}
		if len(later) == len(todo) {
			break // no progress: hidden under something else
		}
		todo = later
	}
	if len(failed) > 0 {
		return []string{fmt.Sprintf("could not detach %d namespace mounts in the command's mount namespace; those namespaces stay alive while it runs: %s", len(failed), strings.Join(failed, ", "))}
	}
	return nil
}

var errCovered = errors.New("covered by another mount")

func detachMount(m nsfsMount) error {
	fd, err := unix.Open(m.mountPoint, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			return errCovered // the path leads elsewhere
		}
		return err
	}
	defer unix.Close(fd)
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_INO|unix.STATX_MNT_ID, &stx); err != nil {
		return err
	}
	dev := unix.Mkdev(stx.Dev_major, stx.Dev_minor)
	switch {
	case stx.Mask&unix.STATX_MNT_ID != 0 && stx.Mnt_id != uint64(m.id):
		return errCovered
	case stx.Ino != m.ino || dev != m.dev:
		return errCovered
	}
	// The fd is the mount's root: unmount exactly that mount (the magic
	// link resolves to the fd's mount, not to whatever the path shows now).
	if err := unix.Unmount("/proc/thread-self/fd/"+strconv.Itoa(fd), unix.MNT_DETACH); err != nil {
		return err
	}
	return nil
}
