package cmd

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/enter"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

// persistNetns makes a new network namespace with nothing but loopback in
// it, bind-mounted at path, as `ip netns add` does (iproute2 cannot be
// pointed at another directory; util-linux unshare can).
func persistNetns(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	testbed.MustRun(t, "unshare", "--net="+path, "true")
	t.Cleanup(func() {
		for i := 0; i < 8 && syscall.Unmount(path, syscall.MNT_DETACH) == nil; i++ {
		}
		os.Remove(path)
	})
}

// The cases for --stale: an operator's namespace (loopback only,
// used by no process) survives; a cni-* file of a removed CRI pod, an old
// placeholder, a dangling symlink, a nsdebug link of a removed container
// and a Docker netns file no container has go. Everything kept is listed
// with its reason.
func TestUnlinkStaleKeepsOperatorNamespaces(t *testing.T) {
	testbed.Require(t)
	dir := newLinkDir(t)
	dockerDir := newLinkDir(t)
	stateDir := filepath.Join(t.TempDir(), "links")
	runStale := func(args ...string) (string, string, int) {
		return runEnv(t, func(e *Env) {
			e.NetnsDir, e.DockerNetnsDir, e.LinkStateDir = dir, dockerDir, stateDir
			e.StaleRuntimeMinAge = time.Nanosecond
		}, args...)
	}

	// An operator's namespace, and a Docker-style file of no container.
	persistNetns(t, filepath.Join(dir, "blue"))
	persistNetns(t, filepath.Join(dockerDir, "0123456789ab"))
	persistNetns(t, filepath.Join(dockerDir, "default"))

	// A pod's netns file that outlived its pod: bind-mounted beside the
	// runtime's own, then the pod removed (the runtime unmounts its file,
	// ours keeps the namespace, as a crashed teardown would).
	pod := testbed.RunPod(t, testbed.PodOptions{})
	cni := filepath.Join(dir, filepath.Base(pod.NetnsPath))
	if err := os.WriteFile(cni, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	removeLinkOnCleanup(t, cni)
	testbed.MustRun(t, "mount", "--bind", pod.NetnsPath, cni)
	pod.Remove(t)

	// A nsdebug link whose container is gone.
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "stale-gone"})
	if stdout, stderr, code := runStale("link", c.Name, "gone"); code != 0 {
		t.Fatalf("link: %d %q %q", code, stdout, stderr)
	}
	rec := filepath.Join(stateDir, "gone.json")
	b, err := os.ReadFile(rec)
	if err != nil || !strings.Contains(string(b), c.ID) {
		t.Fatalf("link wrote no record naming %s: %v %s", c.ID, err, b)
	}
	testbed.MustRun(t, "docker", "rm", "-f", c.Name)

	old := time.Now().Add(-time.Hour)
	os.WriteFile(filepath.Join(dir, "old-placeholder"), nil, 0o644)
	os.Chtimes(filepath.Join(dir, "old-placeholder"), old, old)
	os.Symlink("/nowhere", filepath.Join(dir, "dangling"))
	// A record whose link someone removed by hand (ip netns del).
	orphan := filepath.Join(stateDir, "orphan.json")
	os.WriteFile(orphan, []byte(`{"name":"orphan"}`), 0o600)

	// The dry run names them and changes nothing.
	before := dirEntries(t, dir)
	stdout, stderr, code := runStale("unlink", "--stale", "--dry-run")
	if code != 0 || strings.Count(stdout, "would remove") != 5 || !strings.Contains(stdout, "kept "+filepath.Join(dir, "blue")+": ") {
		t.Errorf("--stale --dry-run: exit %d\n%s%s", code, stdout, stderr)
	}
	if after := dirEntries(t, dir); after != before {
		t.Errorf("--dry-run changed %s: %s -> %s", dir, before, after)
	}

	stdout, stderr, code = runStale("unlink", "--stale", "-o", "json")
	var rep enter.StaleReport
	if code != 0 || json.Unmarshal([]byte(stdout), &rep) != nil {
		t.Fatalf("--stale -o json: exit %d %q %q", code, stdout, stderr)
	}
	var removed []string
	for _, r := range rep.Removed {
		removed = append(removed, r.Name)
		t.Logf("removed %s: %s", r.Path, r.Reason)
	}
	sort.Strings(removed)
	want := []string{"0123456789ab", filepath.Base(cni), "dangling", "gone", "old-placeholder"}
	sort.Strings(want)
	if strings.Join(removed, " ") != strings.Join(want, " ") {
		t.Errorf("removed %v, want %v", removed, want)
	}
	reasons := map[string]string{}
	for _, k := range rep.Kept {
		reasons[k.Path] = k.Reason
	}
	if r := reasons[filepath.Join(dir, "blue")]; !strings.Contains(r, "operator") {
		t.Errorf("blue is not kept as an operator's namespace: %q (kept: %v)", r, reasons)
	}
	if _, ok := reasons[filepath.Join(dockerDir, "default")]; !ok {
		t.Errorf("Docker's default file is not listed as kept: %v", reasons)
	}
	if got := dirEntries(t, dir); got != "blue" {
		t.Errorf("left %q in %s, want only blue", got, dir)
	}
	if got := dirEntries(t, dockerDir); got != "default" {
		t.Errorf("left %q in %s, want only default", got, dockerDir)
	}
	// blue is still a namespace with its loopback (iproute2 as ground truth).
	if out, err := exec.Command("nsenter", "--net="+filepath.Join(dir, "blue"), "ip", "-br", "link").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "lo ") {
		t.Errorf("blue after --stale: %v %s", err, out)
	}
	if len(linkMounts(t, filepath.Join(dir, "gone"))) != 0 || len(linkMounts(t, cni)) != 0 {
		t.Errorf("mounts left at the removed entries")
	}
	if _, err := os.Stat(rec); !os.IsNotExist(err) {
		t.Errorf("the link record %s is still there: %v", rec, err)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("the record of a link that is gone is still there: %v", err)
	}
}

// On the host's own /var/run/netns: a namespace made by `ip netns add`
// (loopback only, no process) is kept, with its reason. A dry run, so that
// other tests' entries on this shared host are not touched.
func TestUnlinkStaleKeepsIPNetnsAdd(t *testing.T) {
	testbed.Require(t)
	ns := testbed.NewNetNS(t, "op")
	stdout, stderr, code := run(t, "unlink", "--stale", "--dry-run", "-o", "json")
	var rep enter.StaleReport
	if code != 0 || json.Unmarshal([]byte(stdout), &rep) != nil {
		t.Fatalf("--stale --dry-run -o json: exit %d %q %q", code, stdout, stderr)
	}
	for _, r := range rep.Removed {
		if r.Name == ns.Name {
			t.Fatalf("--stale would remove %s, made by ip netns add a moment ago: %s", ns.Name, r.Reason)
		}
	}
	found := false
	for _, k := range rep.Kept {
		if k.Name == ns.Name {
			found = strings.Contains(k.Reason, "ip netns add")
			t.Logf("kept %s: %s", k.Name, k.Reason)
		}
	}
	if !found {
		t.Errorf("--stale does not list %s as kept with its reason: %s", ns.Name, stdout)
	}
	// Removing it by name still works.
	if _, stderr, code := run(t, "unlink", "--dry-run", ns.Name); code != 0 {
		t.Errorf("unlink --dry-run %s: %d %s", ns.Name, code, stderr)
	}
}

// link records what it linked; unlink NAME removes the record with the link.
func TestLinkRecordRemovedByUnlink(t *testing.T) {
	testbed.RequireRoot(t)
	dir := newLinkDir(t)
	self := "pid:" + strconv.Itoa(os.Getpid())
	if _, stderr, code := runDir(t, dir, "link", self, "me"); code != 0 {
		t.Fatalf("link: %d %s", code, stderr)
	}
	rec := dir + ".nsdebug-links/me.json"
	var r enter.LinkRecord
	b, err := os.ReadFile(rec)
	if err != nil || json.Unmarshal(b, &r) != nil || r.Inode != inodeOf(t, filepath.Join(dir, "me")) || len(r.Owners) != 1 || r.Owners[0].Runtime != "pid" {
		t.Fatalf("record %s: %v %s", rec, err, b)
	}
	if _, stderr, code := runDir(t, dir, "unlink", "me"); code != 0 {
		t.Fatalf("unlink: %d %s", code, stderr)
	}
	if _, err := os.Stat(rec); !os.IsNotExist(err) {
		t.Errorf("record still there after unlink: %v", err)
	}
}
