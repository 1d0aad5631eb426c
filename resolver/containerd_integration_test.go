package resolver

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

// resolveTarget parses and resolves s with a resolver over cfg.
func resolveTarget(t *testing.T, cfg Config, s string) (*Result, error) {
	t.Helper()
	tgt, err := ParseTarget(s)
	if err != nil {
		t.Fatalf("ParseTarget(%q): %v", s, err)
	}
	r := Open(cfg)
	t.Cleanup(func() { r.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := r.Resolve(ctx, tgt)
	if res != nil {
		t.Cleanup(func() { res.Close() })
	}
	return res, err
}

// mustResolve resolves s and fails t on error.
func mustResolve(t *testing.T, s string) *Result {
	t.Helper()
	res, err := resolveTarget(t, Config{}, s)
	if err != nil {
		t.Fatalf("resolve %s: %v", s, err)
	}
	return res
}

// statInode is the namespace inode that path (a netns file or
// /proc/PID/ns/net) points to, found with stat(2) alone.
func statInode(t *testing.T, path string) uint64 {
	t.Helper()
	id, err := nsfs.StatID(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return id.Inode
}

func procNet(pid int) string { return "/proc/" + strconv.Itoa(pid) + "/ns/net" }

func hasOwner(owners []Owner, match func(Owner) bool) bool {
	for _, o := range owners {
		if match(o) {
			return true
		}
	}
	return false
}

func TestContainerdResolveByID(t *testing.T) {
	testbed.Require(t)
	// A '.' in the ID: it ends the server-side filter (see idPrefixFilter).
	c := testbed.RunCtrdContainer(t, testbed.CtrdNamespace, testbed.UniqueName("nsdbg.ctrd"))
	want := statInode(t, procNet(c.PID))
	if host := statInode(t, "/proc/self/ns/net"); want == host {
		t.Fatalf("fixture container shares the test's netns; the default spec should give it its own")
	}
	for _, target := range []string{
		"containerd:" + c.Namespace + "/" + c.ID,
		"containerd:" + c.ID,
		"containerd:" + c.ID[:len(c.ID)-1], // a unique prefix
		"containerd:" + c.ID[:len("nsdbg.ctrd-")+3],
		c.ID, // a bare word
	} {
		t.Run(target, func(t *testing.T) {
			res := mustResolve(t, target)
			if res.Netns.Inode != want {
				t.Errorf("netns inode %d, want %d (stat %s)", res.Netns.Inode, want, procNet(c.PID))
			}
			if res.Runtime != "containerd" || res.ID != c.ID || res.PID != c.PID || res.Host {
				t.Errorf("got runtime=%s id=%s pid=%d host=%v, want containerd %s %d false", res.Runtime, res.ID, res.PID, res.Host, c.ID, c.PID)
			}
			if !hasOwner(res.Owners, func(o Owner) bool { return o.Ref() == c.Ref() }) {
				t.Errorf("owners %+v lack %s", res.Owners, c.Ref())
			}
		})
	}
	for _, target := range []string{
		"containerd:k8s.io/" + c.ID,           // wrong namespace
		"containerd:" + c.ID + "x",            // longer than the ID
		"containerd:" + strings.ToUpper(c.ID), // IDs are case-sensitive
		"containerd:nsdbg*ctrd",               // no ID can hold '*'
	} {
		t.Run(target, func(t *testing.T) {
			_, err := resolveTarget(t, Config{}, target)
			if !errors.Is(err, nserr.ErrNotFound) {
				t.Fatalf("got %v, want ErrNotFound", err)
			}
		})
	}
}

func TestContainerdSameIDInTwoNamespacesIsAmbiguous(t *testing.T) {
	testbed.Require(t)
	id := testbed.UniqueName("nsdbg-twin")
	a := testbed.RunCtrdContainer(t, testbed.CtrdNamespace, id)
	b := testbed.RunCtrdContainer(t, "k8s.io", id) // the other namespace with the image
	_, err := resolveTarget(t, Config{}, "containerd:"+id)
	if !errors.Is(err, nserr.ErrAmbiguous) {
		t.Fatalf("containerd:%s: got %v, want ErrAmbiguous", id, err)
	}
	for _, ref := range []string{a.Ref(), b.Ref()} {
		if !strings.Contains(err.Error(), ref) {
			t.Errorf("error %q does not list %s", err, ref)
		}
	}
	// Naming the namespace picks one.
	res := mustResolve(t, b.Ref())
	if want := statInode(t, procNet(b.PID)); res.Netns.Inode != want {
		t.Errorf("%s: inode %d, want %d", b.Ref(), res.Netns.Inode, want)
	}
}

func TestContainerdStoppedTaskIsNotRunning(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunCtrdContainer(t, testbed.CtrdNamespace, testbed.UniqueName("nsdbg-stop"))
	testbed.MustRun(t, "ctr", "--address", testbed.ContainerdSock, "-n", c.Namespace, "tasks", "kill", "-s", "KILL", c.ID)
	deadline := time.Now().Add(10 * time.Second)
	stopped := func() bool {
		out := testbed.MustRun(t, "ctr", "--address", testbed.ContainerdSock, "-n", c.Namespace, "tasks", "ls")
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == c.ID {
				return f[2] == "STOPPED"
			}
		}
		return false
	}
	for !stopped() {
		if time.Now().After(deadline) {
			t.Fatal("task did not stop")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, err := resolveTarget(t, Config{}, c.Ref())
	if !errors.Is(err, nserr.ErrNotRunning) || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("got %v, want ErrNotRunning (state: stopped)", err)
	}
}

func TestContainerdSeesDockerContainersInMoby(t *testing.T) {
	testbed.Require(t)
	name := testbed.UniqueName("nsdbg-moby")
	id := testbed.MustRun(t, "docker", "run", "-d", "--name", name, testbed.Image)
	t.Cleanup(func() {
		if out, err := testbed.Run("docker", "rm", "-f", name); err != nil {
			t.Errorf("cleanup: docker rm -f %s: %v %s", name, err, out)
		}
	})
	pid, err := strconv.Atoi(testbed.MustRun(t, "docker", "inspect", "-f", "{{.State.Pid}}", name))
	if err != nil {
		t.Fatal(err)
	}
	want := statInode(t, procNet(pid))

	res := mustResolve(t, "containerd:moby/"+id)
	if res.Netns.Inode != want || res.PID != pid {
		t.Errorf("containerd:moby/%s: inode %d pid %d, want %d %d", id, res.Netns.Inode, res.PID, want, pid)
	}

	// A bare ID is seen by docker and by containerd's moby namespace: one
	// namespace, so one match with both owners.
	res = mustResolve(t, id)
	if res.Netns.Inode != want {
		t.Errorf("%s: inode %d, want %d", id, res.Netns.Inode, want)
	}
	if !hasOwner(res.Owners, func(o Owner) bool { return o.Runtime == "containerd" && o.Namespace == "moby" && o.ID == id }) {
		t.Errorf("owners %+v lack containerd:moby/%s", res.Owners, id)
	}
	if hasBackend("docker") {
		if res.Runtime != "docker" || !hasOwner(res.Owners, func(o Owner) bool { return o.Runtime == "docker" && o.ID == id }) {
			t.Errorf("primary %s, owners %+v: want the docker owner first and both owners", res.Runtime, res.Owners)
		}
	} else {
		t.Log("no docker backend is registered; checked the containerd side only")
	}
}

func hasBackend(name string) bool {
	r := Open(Config{})
	defer r.Close()
	for _, b := range r.Backends() {
		if b.Name() == name {
			return true
		}
	}
	return false
}

func TestContainerdList(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunCtrdContainer(t, testbed.CtrdNamespace, testbed.UniqueName("nsdbg-list"))
	var b Backend
	for _, cand := range newContainerdBackends(Config{Timeout: 5 * time.Second}) {
		if cand.Endpoint() == testbed.ContainerdSock {
			b = cand
		}
	}
	if b == nil {
		t.Fatalf("no containerd backend for %s", testbed.ContainerdSock)
	}
	defer b.Close()
	cands, err := b.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, cand := range cands {
		if !cand.Running || cand.PID <= 0 {
			t.Errorf("List returned a candidate that is not running: %+v", cand)
		}
		if cand.Namespace == c.Namespace && cand.ID == c.ID {
			found = true
			if cand.PID != c.PID {
				t.Errorf("pid %d, want %d", cand.PID, c.PID)
			}
		}
	}
	if !found {
		js, _ := json.Marshal(cands)
		t.Errorf("List lacks %s: %s", c.Ref(), js)
	}
}
