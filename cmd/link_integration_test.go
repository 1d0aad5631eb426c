package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nsdebug/nsdebug/enter"
	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/internal/procfs"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

const hostNetnsDir = "/var/run/netns"

// runDir is run with the netns directory moved to dir ("" = /var/run/netns).
func runDir(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runEnv(t, func(e *Env) {
		if dir != "" {
			e.NetnsDir = dir
		}
	}, args...)
}

// linkMounts lists the namespaces (inodes) mounted at path, bottom first.
func linkMounts(t *testing.T, path string) []uint64 {
	t.Helper()
	real := path
	if r, err := filepath.EvalSymlinks(filepath.Dir(path)); err == nil {
		real = filepath.Join(r, filepath.Base(path))
	}
	ms, err := procfs.NetnsMounts("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, m := range ms {
		if m.MountPoint == real {
			out = append(out, m.ID.Inode)
		}
	}
	return out
}

// removeLinkOnCleanup makes sure a test's link is gone whatever happened.
func removeLinkOnCleanup(t *testing.T, path string) {
	t.Cleanup(func() {
		for i := 0; i < 8 && syscall.Unmount(path, syscall.MNT_DETACH) == nil; i++ {
		}
		os.Remove(path)
		if filepath.Dir(path) == hostNetnsDir {
			os.Remove(filepath.Join(enter.DefaultLinkStateDir, filepath.Base(path)+".json"))
		}
	})
}

// newLinkDir is a throwaway stand-in for /var/run/netns. link makes it a
// shared mount point (as it would /var/run/netns); cleanup undoes that.
func newLinkDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "netns")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if ms, err := procfs.NetnsMounts("/proc/self/mountinfo"); err == nil {
			for _, m := range ms {
				if strings.HasPrefix(m.MountPoint, dir+"/") {
					syscall.Unmount(m.MountPoint, syscall.MNT_DETACH)
				}
			}
		}
		for i := 0; i < 8 && syscall.Unmount(dir, syscall.MNT_DETACH) == nil; i++ {
		}
	})
	return dir
}

func netnsInode(t *testing.T, pid int) uint64 {
	t.Helper()
	return inodeOf(t, "/proc/"+strconv.Itoa(pid)+"/ns/net")
}

func oneErrLine(t *testing.T, what, stderr string, code, want int) {
	t.Helper()
	if code != want || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "nsdebug: ") {
		t.Errorf("%s: exit %d (want %d), stderr %q", what, code, want, stderr)
	}
}

// Done-when: link makes `ip netns exec NAME` work on a real Docker
// container, by a bind mount (not a symlink); idempotent; a name in use is
// refused unless --force; unlink cleans up.
func TestLinkDockerContainerForIPNetns(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "lnk"})
	other := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "lnk-other"})
	name := c.Name // the default NAME
	path := filepath.Join(hostNetnsDir, name)
	removeLinkOnCleanup(t, path)
	want := netnsInode(t, c.PID)

	stdout, stderr, code := run(t, "link", c.Name)
	if code != 0 || !strings.Contains(stdout, "linked "+c.Name+" (net:[") {
		t.Fatalf("link: exit %d %q %q", code, stdout, stderr)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Ino != want {
		t.Fatalf("%s: lstat %+v %v: want the bind-mounted netns (inode %d), not a symlink", path, st, err, want)
	}
	if m := linkMounts(t, path); len(m) != 1 || m[0] != want {
		t.Fatalf("mounts at %s: %v, want [%d]", path, m, want)
	}
	// iproute2 is the ground truth.
	if out := testbed.MustRun(t, "ip", "netns", "exec", name, "ip", "-br", "addr"); !strings.Contains(out, c.IPs[0]+"/") {
		t.Errorf("ip netns exec %s: %q lacks %s", name, out, c.IPs[0])
	}
	if out := testbed.MustRun(t, "ip", "-n", name, "-br", "addr"); !strings.Contains(out, c.IPs[0]+"/") {
		t.Errorf("ip -n %s: %q lacks %s", name, out, c.IPs[0])
	}
	if out := testbed.MustRun(t, "ip", "netns", "list"); !strings.Contains(out, name) {
		t.Errorf("ip netns list lacks %s: %q", name, out)
	}

	// Idempotent.
	stdout, stderr, code = run(t, "link", "docker:"+c.Name, name, "-o", "json")
	var lr enter.LinkResult
	if code != 0 || json.Unmarshal([]byte(stdout), &lr) != nil || lr.Changed || lr.Inode != want {
		t.Errorf("second link: exit %d %q %q", code, stdout, stderr)
	}
	if m := linkMounts(t, path); len(m) != 1 {
		t.Errorf("second link stacked mounts: %v", m)
	}
	// Another namespace under the same name: refused, nothing changed.
	_, stderr, code = run(t, "link", other.Name, name)
	oneErrLine(t, "link of another netns under a used name", stderr, code, nserr.ExitRefused)
	if m := linkMounts(t, path); len(m) != 1 || m[0] != want {
		t.Errorf("refused link changed the mounts: %v", m)
	}
	// --force replaces it.
	stdout, stderr, code = run(t, "link", "--force", other.Name, name)
	if code != 0 || !strings.Contains(stdout, "replacing") {
		t.Errorf("link --force: exit %d %q %q", code, stdout, stderr)
	}
	if m := linkMounts(t, path); len(m) != 1 || m[0] != netnsInode(t, other.PID) {
		t.Errorf("after --force: mounts %v, want [%d]", m, netnsInode(t, other.PID))
	}

	stdout, stderr, code = run(t, "unlink", name)
	if code != 0 || !strings.Contains(stdout, "removed "+path) {
		t.Errorf("unlink: exit %d %q %q", code, stdout, stderr)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) || len(linkMounts(t, path)) != 0 {
		t.Errorf("unlink left %s behind (%v, mounts %v)", path, err, linkMounts(t, path))
	}
	_, stderr, code = run(t, "unlink", name)
	oneErrLine(t, "unlink of a missing name", stderr, code, nserr.ExitNotFound)
}

// Done-when: the link holds the namespace when the container's main process,
// its only other holder, is gone (a plain containerd container: no runtime
// bind mount). --stale --dry-run then names it and changes nothing.
func TestLinkSurvivesMainProcessExit(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunCtrdContainer(t, testbed.CtrdNamespace, testbed.UniqueName("lnk"))
	name := testbed.UniqueName("lnk-ctrd")
	path := filepath.Join(hostNetnsDir, name)
	removeLinkOnCleanup(t, path)
	want := netnsInode(t, c.PID)
	if stdout, stderr, code := run(t, "link", c.Ref(), name); code != 0 {
		t.Fatalf("link: exit %d %q %q", code, stdout, stderr)
	}
	testbed.MustRun(t, "ip", "-n", name, "addr", "add", "192.0.2.77/32", "dev", "lo")

	syscall.Kill(c.PID, syscall.SIGKILL)
	for i := 0; ; i++ {
		if _, err := os.Stat("/proc/" + strconv.Itoa(c.PID) + "/ns/net"); os.IsNotExist(err) {
			break
		}
		if i > 100 {
			t.Fatalf("process %d did not exit", c.PID)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := inodeOf(t, path); got != want {
		t.Fatalf("after the process exited %s is inode %d, want %d", path, got, want)
	}
	if out := testbed.MustRun(t, "ip", "netns", "exec", name, "ip", "-br", "addr"); !strings.Contains(out, "192.0.2.77/32") {
		t.Errorf("ip netns exec after the process exited: %q lacks the address added through the link", out)
	}

	before := dirEntries(t, hostNetnsDir)
	// The container still exists (its task died): the link is what keeps
	// its namespace for the operator, so --stale keeps it and says why.
	stdout, stderr, code := run(t, "unlink", "--stale", "--dry-run", "-o", "json")
	var rep enter.StaleReport
	if code != 0 || json.Unmarshal([]byte(stdout), &rep) != nil || !strings.Contains(stdout, "linked by nsdebug for "+c.Ref()+", which still exists") {
		t.Errorf("unlink --stale --dry-run of a stopped container's link: exit %d %q %q", code, stdout, stderr)
	}
	for _, r := range rep.Removed {
		if r.Path == path {
			t.Errorf("--stale would remove the link of a container that still exists: %s", r.Reason)
		}
	}
	if after := dirEntries(t, hostNetnsDir); !strings.Contains(after, name) || len(linkMounts(t, path)) != 1 {
		t.Errorf("--dry-run changed %s: %s -> %s", hostNetnsDir, before, after)
	}
	if stdout, stderr, code := run(t, "unlink", name); code != 0 {
		t.Errorf("unlink: exit %d %q %q", code, stdout, stderr)
	}
	if len(linkMounts(t, path)) != 0 {
		t.Errorf("unlink left the mount")
	}
}

func dirEntries(t *testing.T, dir string) string {
	t.Helper()
	es, _ := os.ReadDir(dir)
	var s []string
	for _, e := range es {
		s = append(s, e.Name())
	}
	return strings.Join(s, " ")
}

// Done-when: link works on a CRI pod; the default name is the pod's.
func TestLinkPod(t *testing.T) {
	testbed.Require(t)
	p := testbed.RunPod(t, testbed.PodOptions{Containers: []string{"app"}})
	path := filepath.Join(hostNetnsDir, p.Name)
	removeLinkOnCleanup(t, path)
	stdout, stderr, code := run(t, "link", p.Ref())
	if code != 0 || !strings.Contains(stdout, path) {
		t.Fatalf("link %s: exit %d %q %q", p.Ref(), code, stdout, stderr)
	}
	if got, want := inodeOf(t, path), inodeOf(t, p.NetnsPath); got != want {
		t.Errorf("%s is inode %d, the pod's netns %s is %d", path, got, p.NetnsPath, want)
	}
	if out := testbed.MustRun(t, "ip", "netns", "exec", p.Name, "ip", "-br", "addr"); !strings.Contains(out, p.IP+"/") {
		t.Errorf("ip netns exec %s: %q lacks the pod IP %s", p.Name, out, p.IP)
	}
	// The pod's container resolves to the same netns: same link, no-op.
	if stdout, _, code := run(t, "link", p.Ref()+"/app", p.Name); code != 0 || !strings.Contains(stdout, "already linked") {
		t.Errorf("link of the pod's container under the pod's name: exit %d %q", code, stdout)
	}
	if _, stderr, code := run(t, "unlink", p.Name); code != 0 {
		t.Errorf("unlink: exit %d %q", code, stderr)
	}
	// The pod's own cni-* file is not unlink's to take (exit 9), and stays.
	_, stderr, code = run(t, "unlink", filepath.Base(p.NetnsPath))
	oneErrLine(t, "unlink of a running pod's own netns file", stderr, code, nserr.ExitRefused)
	if !strings.Contains(stderr, "is the netns file of "+p.Ref()) {
		t.Errorf("unlink of the pod's netns file: %q does not name the pod", stderr)
	}
	if ns, err := nsfs.Open(p.NetnsPath); err != nil {
		t.Errorf("the pod's netns file %s: %v", p.NetnsPath, err)
	} else {
		ns.Close()
	}
}

// Done-when: bad names and non-netns files are refused, with one line and
// the documented code, and nothing changes.
func TestLinkRefusesBadNamesAndNonNetnsFiles(t *testing.T) {
	testbed.RequireRoot(t)
	dir := newLinkDir(t)
	os.WriteFile(filepath.Join(dir, "notes"), []byte("not a netns\n"), 0o644)
	os.Mkdir(filepath.Join(dir, "subdir"), 0o755)
	os.WriteFile(filepath.Join(dir, "placeholder"), nil, 0o644)
	os.Symlink("/proc/1/ns/net", filepath.Join(dir, "symlink"))
	self := "pid:" + strconv.Itoa(os.Getpid())
	before := dirEntries(t, dir)

	cases := []struct {
		args []string
		code int
	}{
		{[]string{"link", self, ""}, 2},
		{[]string{"link", self, "."}, 2},
		{[]string{"link", self, ".."}, 2},
		{[]string{"link", self, "a/b"}, 2},
		{[]string{"link", self, "../x"}, 2},
		{[]string{"link", self, strings.Repeat("n", 256)}, 2},
		{[]string{"link", self, "new\nline"}, 2},
		{[]string{"link", self}, 2}, // a PID has no name to default to
		{[]string{"link", "/etc/passwd", "x"}, 6},
		{[]string{"link", "/proc/self/ns/mnt", "x"}, 6},
		{[]string{"link", self, "notes"}, 6},
		{[]string{"link", self, "subdir"}, 6},
		{[]string{"link", self, "placeholder"}, 9},
		{[]string{"link", self, "symlink"}, 9},
		{[]string{"unlink", "notes"}, 6},
		{[]string{"unlink", "subdir"}, 6},
		{[]string{"unlink", ".."}, 2},
		{[]string{"unlink", "ok", "a/b"}, 2},
		{[]string{"unlink"}, 2},
		{[]string{"unlink", "--stale", "x"}, 2},
	}
	for _, c := range cases {
		stdout, stderr, code := runDir(t, dir, c.args...)
		oneErrLine(t, fmt.Sprintf("%q", c.args), stderr, code, c.code)
		if stdout != "" {
			t.Errorf("%q: wrote %q to stdout", c.args, stdout)
		}
	}
	if after := dirEntries(t, dir); after != before {
		t.Errorf("refused commands changed %s: %s -> %s", dir, before, after)
	}
	ms, _ := procfs.NetnsMounts("/proc/self/mountinfo")
	for _, m := range ms {
		if strings.HasPrefix(m.MountPoint, dir) {
			t.Errorf("refused commands left a mount at %s", m.MountPoint)
		}
	}
	// --force reuses a placeholder and replaces a symlink.
	for _, n := range []string{"placeholder", "symlink"} {
		if stdout, stderr, code := runDir(t, dir, "link", "--force", self, n); code != 0 {
			t.Errorf("link --force over %s: exit %d %q %q", n, code, stdout, stderr)
		}
		if len(linkMounts(t, filepath.Join(dir, n))) != 1 {
			t.Errorf("%s: not linked", n)
		}
	}
}

// --stale removes placeholders, dangling symlinks and namespaces nothing
// uses; keeps namespaces a process uses or a runtime knows, young
// placeholders and other files. In a stand-in directory, so that the host's
// own `ip netns add` namespaces (which no process uses either) are spared.
func TestUnlinkStaleRemovesOnlyStale(t *testing.T) {
	testbed.Require(t)
	dir := newLinkDir(t)
	alive := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "lnk-alive"})
	dead := testbed.RunCtrdContainer(t, testbed.CtrdNamespace, testbed.UniqueName("lnk-dead"))
	for _, l := range [][2]string{{alive.Name, "alive"}, {dead.Ref(), "dead"}} {
		if stdout, stderr, code := runDir(t, dir, "link", l[0], l[1]); code != 0 {
			t.Fatalf("link %s: %d %q %q", l[0], code, stdout, stderr)
		}
	}
	deadIno := netnsInode(t, dead.PID)
	syscall.Kill(dead.PID, syscall.SIGKILL)
	for i := 0; i < 100; i++ {
		if _, err := os.Stat("/proc/" + strconv.Itoa(dead.PID)); os.IsNotExist(err) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	old := time.Now().Add(-time.Hour)
	os.WriteFile(filepath.Join(dir, "old-placeholder"), nil, 0o644)
	os.Chtimes(filepath.Join(dir, "old-placeholder"), old, old)
	os.WriteFile(filepath.Join(dir, "new-placeholder"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "notes"), []byte("x"), 0o644)
	os.Symlink("/nowhere", filepath.Join(dir, "dangling"))
	before := dirEntries(t, dir)

	stdout, stderr, code := runDir(t, dir, "unlink", "--stale", "--dry-run")
	if code != 0 || strings.Count(stdout, "would remove") != 2 || !strings.Contains(stdout, "kept "+filepath.Join(dir, "dead")+": net:["+strconv.FormatUint(deadIno, 10)+"] was linked by nsdebug for "+dead.Ref()+", which still exists") {
		t.Errorf("--stale --dry-run: exit %d\n%s%s", code, stdout, stderr)
	}
	if after := dirEntries(t, dir); after != before || len(linkMounts(t, filepath.Join(dir, "dead"))) != 1 {
		t.Errorf("--dry-run changed %s: %s -> %s", dir, before, after)
	}

	// A runtime's knowledge alone keeps a namespace.
	rep, err := enter.UnlinkStale(enter.StaleOptions{
		UnlinkOptions: enter.UnlinkOptions{Dir: dir, DryRun: true}, RuntimesComplete: true,
		Known: map[nsfs.ID]string{{Dev: nsfsDev(t, filepath.Join(dir, "dead")), Inode: deadIno}: "containerd:test/x"},
	})
	if err != nil || strings.Contains(fmt.Sprint(rep.Removed), "dead") || !strings.Contains(fmt.Sprint(rep.Kept), "known to containerd:test/x") {
		t.Errorf("known namespace: %+v %v", rep, err)
	}

	stdout, stderr, code = runDir(t, dir, "unlink", "--stale", "-o", "json")
	var got enter.StaleReport
	if code != 0 || json.Unmarshal([]byte(stdout), &got) != nil {
		t.Fatalf("--stale -o json: exit %d %q %q", code, stdout, stderr)
	}
	var removed []string
	for _, r := range got.Removed {
		removed = append(removed, r.Name)
	}
	if strings.Join(removed, " ") != "dangling old-placeholder" {
		t.Errorf("removed %v", removed)
	}
	if after := dirEntries(t, dir); after != "alive dead new-placeholder notes" {
		t.Errorf("left %q", after)
	}
	if len(linkMounts(t, filepath.Join(dir, "dead"))) != 1 {
		t.Errorf("the stopped container's link lost its mount")
	}
	if len(linkMounts(t, filepath.Join(dir, "alive"))) != 1 {
		t.Errorf("the live container's link was removed")
	}
}

func nsfsDev(t *testing.T, path string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Dev
}

// Concurrent link/unlink calls (iproute2's flock on the directory) never
// stack mounts, leave placeholders or fail spuriously.
func TestLinkConcurrent(t *testing.T) {
	testbed.RequireRoot(t)
	dir := newLinkDir(t)
	self := "pid:" + strconv.Itoa(os.Getpid())
	var wg sync.WaitGroup
	errs := make(chan string, 200)
	for i := 0; i < 100; i++ { // enough to collide without the lock
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			name := "same"
			if i%2 == 1 {
				name = "n" + strconv.Itoa(i)
			}
			if _, stderr, code := runDir(t, dir, "link", self, name); code != 0 {
				errs <- fmt.Sprintf("link %s: %d %s", name, code, stderr)
			}
			if i%2 == 1 {
				if _, stderr, code := runDir(t, dir, "unlink", name); code != 0 {
					errs <- fmt.Sprintf("unlink %s: %d %s", name, code, stderr)
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := dirEntries(t, dir); got != "same" {
		t.Errorf("left %q, want only 'same'", got)
	}
	if m := linkMounts(t, filepath.Join(dir, "same")); len(m) != 1 {
		t.Errorf("mounts at same: %v, want exactly one", m)
	}
}

// A pod whose processes all died is NOTREADY but keeps its netns file until
// it is stopped: the runtime still knows it and will tear it down, so
// --stale keeps it (no process uses it, yet it is not stale).
func TestUnlinkStaleKeepsANotReadyPodsNetns(t *testing.T) {
	testbed.Require(t)
	p := testbed.RunPod(t, testbed.PodOptions{Containers: []string{"app"}})
	want := inodeOf(t, p.NetnsPath)
	for _, pid := range []int{p.Containers["app"].PID, p.SandboxPID} {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	// Wait until nothing is left in the pod's netns.
	for i := 0; ; i++ {
		scan, err := procfs.ScanNetns("/proc")
		if err != nil {
			t.Fatal(err)
		}
		if !anyPIDIn(scan, want) {
			break
		}
		if i > 100 {
			t.Fatalf("processes still in the pod's netns %d", want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// And until the runtime itself says the pod is not ready.
	conn, rt := testbed.CRIClient(t)
	defer conn.Close()
	for i := 0; ; i++ {
		st, err := rt.PodSandboxStatus(context.Background(), &cri.PodSandboxStatusRequest{PodSandboxId: p.SandboxID})
		if err != nil {
			t.Fatal(err)
		}
		if st.GetStatus().GetState() != cri.PodSandboxState_SANDBOX_READY {
			break
		}
		if i > 200 {
			t.Fatal("the pod is still READY 10s after its processes were killed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if inodeOf(t, p.NetnsPath) != want {
		t.Fatalf("the runtime removed %s already; nothing to test", p.NetnsPath)
	}
	// containerd is asked only at Docker's socket (which does not know the
	// pod), so that CRI alone, as on a CRI-O host, must know the pod.
	stdout, stderr, code := run(t, "unlink", "--stale", "--dry-run", "-o", "json", "--containerd-address", testbed.DockerContainerdSock)
	if code != 0 {
		t.Fatalf("--stale --dry-run: exit %d %s", code, stderr)
	}
	var rep struct {
		Removed []struct{ Path string }
		Kept    []struct{ Name, Reason string }
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	for _, r := range rep.Removed {
		if r.Path == p.NetnsPath {
			t.Fatalf("--stale would remove the not-ready pod's netns file %s", p.NetnsPath)
		}
	}
	kept := false
	for _, k := range rep.Kept {
		if k.Name == filepath.Base(p.NetnsPath) && strings.Contains(k.Reason, p.Ref()) {
			kept = true
			t.Logf("kept %s: %s", k.Name, k.Reason)
		}
	}
	if !kept {
		t.Errorf("--stale does not say it keeps %s for %s: %s", p.NetnsPath, p.Ref(), stdout)
	}
}

func anyPIDIn(scan procfs.ScanResult, inode uint64) bool {
	for id, pids := range scan.PIDs {
		if id.Inode == inode && len(pids) > 0 {
			return true
		}
	}
	return false
}
