package enter

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/kubelet"
	"github.com/nsdebug/nsdebug/internal/nserr"
)

// nodeRoot is the node's filesystem for exec --node-root (kubectl nsdebug
// --host-tools): the mount namespace the command gets a private copy of,
// and that namespace's root, to look paths up in before the switch.
//
// It is a mount namespace, not a chroot into PROC/PID/root: that directory
// belongs to another mount namespace, on which the kernel refuses to mount,
// so /sys and the target's resolv.conf and hosts could not be laid over it.
// In a private copy of the node's namespace they are mounted as for any
// other exec.
type nodeRoot struct {
	mntns *os.File
	root  *os.File // O_PATH, for openat2(RESOLVE_IN_ROOT)
	from  string   // "kubelet (PID N)" or "PID 1"
}

func (n *nodeRoot) close() {
	if n != nil {
		n.mntns.Close()
		n.root.Close()
	}
}

// openNodeRoot finds the node's root as kubelet's (the process whose paths
// the runtime reports), else PID 1's when readable: PID 1 of a node often
// holds capabilities root lacks, so ptrace rules refuse its root even to
// CAP_SYS_PTRACE.
func openNodeRoot(procRoot string) (*nodeRoot, error) {
	type cand struct {
		pid  int
		from string
	}
	var cands []cand
	var why []string
	if k, err := kubelet.Find(procRoot); err == nil {
		cands = append(cands, cand{k.PID, fmt.Sprintf("kubelet (PID %d)", k.PID)})
	} else {
		why = append(why, "no kubelet process")
	}
	if len(cands) == 0 || cands[0].pid != 1 {
		cands = append(cands, cand{1, "PID 1"})
	}
	for _, c := range cands {
		dir := filepath.Join(procRoot, strconv.Itoa(c.pid))
		mntns, err := os.Open(dir + "/ns/mnt")
		if err != nil {
			why = append(why, fmt.Sprintf("%s: %v", c.from, unwrapPath(err)))
			continue
		}
		fd, err := unix.Open(dir+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			mntns.Close()
			why = append(why, fmt.Sprintf("%s: root: %v", c.from, err))
			continue
		}
		return &nodeRoot{mntns: mntns, root: os.NewFile(uintptr(fd), dir+"/root"), from: c.from}, nil
	}
	return nil, nserr.New(nserr.ErrEnvironment, "--node-root: cannot reach the node's root (%s); run in the node's PID namespace (hostPID) with CAP_SYS_PTRACE", strings.Join(why, "; "))
}

// stat looks name up in the node's root as the command will see it
// (absolute symlinks such as Debian's /sbin/ip -> /bin/ip stay inside).
func (n *nodeRoot) stat(name string) (fs.FileInfo, error) {
	fd, err := unix.Openat2(int(n.root.Fd()), name, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: errnoToFS(err)}
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return f.Stat()
}

func errnoToFS(err error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return fs.ErrNotExist
	}
	return err
}

// enterMountNS moves this thread (which must be locked and never reused)
// into ns: its root and working directory become that namespace's root.
// setns(CLONE_NEWNS) needs a thread that shares no fs_struct, which unshare
// gives per thread.
func enterMountNS(ns *os.File) error {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare fs: %w", err)
	}
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("enter the node's mount namespace: %w", err)
	}
	return nil
}

// users is the node's user database: its /etc/passwd and /etc/group, read
// through the node's root. os/user would read nsdebug's own files, which in
// kubectl nsdebug's helper are the image's (busybox: root only), so -u NAME
// would name no user of the node, or the wrong one.
func (n *nodeRoot) users() userDB {
	passwd, _ := readInRoot(n.root, "etc/passwd") // none: no names, UIDs still work
	group, _ := readInRoot(n.root, "etc/group")
	return filesUserDB(passwd, group)
}

// filesUserDB answers from the text of a passwd and a group file (the
// format os/user's pure-Go lookups read: name:x:uid:gid:gecos:home:shell
// and name:x:gid:member,member).
func filesUserDB(passwd, group []byte) userDB {
	var users []*user.User
	for _, f := range colonLines(passwd, 7) {
		users = append(users, &user.User{Username: f[0], Uid: f[2], Gid: f[3], Name: f[4], HomeDir: f[5]})
	}
	type grp struct {
		g       *user.Group
		members []string
	}
	var groups []grp
	for _, f := range colonLines(group, 4) {
		groups = append(groups, grp{&user.Group{Name: f[0], Gid: f[2]}, strings.Split(f[3], ",")})
	}
	find := func(match func(*user.User) bool, err error) (*user.User, error) {
		for _, u := range users {
			if match(u) {
				return u, nil
			}
		}
		return nil, err
	}
	return userDB{
		lookup: func(name string) (*user.User, error) {
			return find(func(u *user.User) bool { return u.Username == name }, user.UnknownUserError(name))
		},
		lookupID: func(uid string) (*user.User, error) {
			return find(func(u *user.User) bool { return u.Uid == uid }, user.UnknownUserIdError(0))
		},
		lookupGroup: func(name string) (*user.Group, error) {
			for _, g := range groups {
				if g.g.Name == name {
					return g.g, nil
				}
			}
			return nil, user.UnknownGroupError(name)
		},
		// The primary group first, then every group listing the user, as
		// os/user and initgroups(3) give them.
		groupIDs: func(u *user.User) ([]string, error) {
			ids := []string{u.Gid}
			for _, g := range groups {
				if g.g.Gid != u.Gid && slices.Contains(g.members, u.Username) {
					ids = append(ids, g.g.Gid)
				}
			}
			return ids, nil
		},
	}
}

// colonLines are the lines of a passwd-style file with at least n fields
// (comments, blank lines and NIS "+" entries skipped).
func colonLines(b []byte, n int) [][]string {
	var out [][]string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < n {
			continue
		}
		out = append(out, f)
	}
	return out
}
