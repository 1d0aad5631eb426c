package enter

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
