package capture

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/inspect"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/resolver"
)

// FromResult makes the capture target of a resolved nsdebug target. The
// result keeps the netns pinned; the caller closes it after the capture.
func FromResult(res *resolver.Result, procRoot string) *Target {
	owners := make([]string, 0, len(res.Owners))
	for _, o := range res.Owners {
		owners = append(owners, o.Ref())
	}
	t := &Target{NS: res.NS, Name: res.Target, Description: strings.Join(owners, ", ")}
	t.Alive = aliveFunc(procRoot, res.NS.ID, res.PID, res.Netns.Path)
	return t
}

// aliveFunc tells whether the target still uses netns id: its process is
// still in it, or (a bind-mounted netns without a process) the mount is
// still there. The kernel keeps the netns itself alive while nsdebug's
// sockets hold it, so "gone" means its owner left it.
func aliveFunc(procRoot string, id nsfs.ID, pid int, path string) func() bool {
	if procRoot == "" {
		procRoot = "/proc"
	}
	switch {
	case pid > 0:
		p := procRoot + "/" + strconv.Itoa(pid) + "/ns/net"
		return func() bool { return sameNetns(p, id) }
	case path != "" && !strings.HasPrefix(path, procRoot+"/"):
		return func() bool { return sameNetns(path, id) }
	}
	return nil
}

// sameNetns stats path with a raw system call: the check runs four times
// a second during a capture, and a scheduler-visible call would wake the
// runtime's monitor thread into 20 us polling each time (see rawFile). A
// stat of a /proc or nsfs file does not block.
func sameNetns(path string, id nsfs.ID) bool {
	fdcwd := unix.AT_FDCWD // a variable: the constant is negative

	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return false
	}
	// statx: one system call number on every architecture.
	var st unix.Statx_t
	_, _, e := unix.RawSyscall6(unix.SYS_STATX, uintptr(fdcwd), uintptr(unsafe.Pointer(p)), 0, unix.STATX_INO, uintptr(unsafe.Pointer(&st)), 0)
	if e != 0 {
		return e != unix.ENOENT && e != unix.ESRCH
	}
	return st.Ino == id.Inode && unix.Mkdev(st.Dev_major, st.Dev_minor) == id.Dev
}

// Discoverer lists the container and pod namespaces for --all (and the
// host's with host), from inspect's inventory.
func Discoverer(r *resolver.Resolver, host bool) func(context.Context) ([]*Target, error) {
	// A container seen only through containerd's moby or k8s.io namespace
	// is one that Docker or CRI has not reported yet (it is starting):
	// wait a few rounds for its real name rather than label it by ID.
	waited := map[nsfs.ID]int{}
	return func(ctx context.Context) ([]*Target, error) {
		inv, err := inspect.ListNetns(ctx, r, inspect.ListOptions{})
		if err != nil {
			return nil, err
		}
		var out []*Target
		for _, row := range inv.Rows {
			if row.Host && !host {
				continue
			}
			if !row.Host && len(row.Owners) == 0 {
				continue // not a container's or pod's
			}
			id := nsfs.ID{Inode: row.Netns.Inode, Dev: row.Netns.Dev}
			if !row.Host && onlyLowLevel(row.Owners) && waited[id] < 3 {
				waited[id]++
				continue
			}
			t, err := rowTarget(r.ProcRoot(), row)
			if err != nil {
				continue // exited meanwhile
			}
			out = append(out, t)
		}
		return out, nil
	}
}

func rowTarget(procRoot string, row inspect.NetnsRow) (*Target, error) {
	id := nsfs.ID{Inode: row.Netns.Inode, Dev: row.Netns.Dev}
	ns, err := nsfs.Open(row.Netns.Path)
	if err != nil {
		return nil, err
	}
	if ns.ID != id {
		ns.Close()
		return nil, fmt.Errorf("%s is now another namespace", row.Netns.Path)
	}
	label := "host"
	var refs []string
	for _, o := range row.Owners {
		refs = append(refs, o.Ref())
	}
	if !row.Host {
		label = ownerLabel(row.Owners)
	}
	pid := 0
	if len(row.PIDs) > 0 {
		pid = row.PIDs[0]
	}
	path := ""
	if pid == 0 && len(row.Mounts) > 0 {
		path = row.Mounts[0].Path
	}
	desc := strings.Join(refs, ", ")
	if row.Host {
		desc = "the host"
	}
	return &Target{Label: label, Description: desc, NS: ns, Alive: aliveFunc(procRoot, id, pid, path)}, nil
}

// ownerLabel names a netns by its owner: a pod (without its sandbox's
// name) before a container, docker:web, pod:shop/cart.
func ownerLabel(owners []resolver.Owner) string {
	for _, o := range owners {
		if o.Pod != nil {
			return "pod:" + o.Pod.Namespace + "/" + o.Pod.Name
		}
	}
	for _, o := range owners {
		if o.Runtime == "docker" {
			return o.Ref()
		}
	}
	return owners[0].Ref()
}

func onlyLowLevel(owners []resolver.Owner) bool {
	for _, o := range owners {
		if o.Runtime != "containerd" || (o.Namespace != "moby" && o.Namespace != "k8s.io") {
			return false
		}
	}
	return true
}
