package reliability

import (
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// silentSocket listens on a unix socket, accepts, and never answers.
func silentSocket(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "silent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return sock
}

// Case 12: each runtime in turn absent or silent: bounded by --timeout, the
// others still answer, and ls still lists every netns from the kernel side
// with a warning.
func TestCase12_RuntimeFaults(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "rel-fault"})
	pod := testbed.RunPod(t, testbed.PodOptions{Namespace: "relfault", Containers: []string{"app"}})
	ns := testbed.NewNetNS(t, "rel-fault")
	silent := silentSocket(t)
	absent := filepath.Join(t.TempDir(), "absent.sock")

	for _, fault := range []struct {
		runtime string
		flag    string
		addr    string
		// a target that another runtime must still resolve
		other string
	}{
		{"docker", "--docker-host", "unix://" + silent, "pod:relfault/" + pod.Name},
		{"docker", "--docker-host", "unix://" + absent, "pod:relfault/" + pod.Name},
		{"containerd", "--containerd-address", silent, "docker:" + c.Name},
		{"cri", "--cri-endpoint", "unix://" + silent, "docker:" + c.Name},
		{"cri", "--cri-endpoint", "unix://" + absent, "docker:" + c.Name},
	} {
		what := fault.runtime + " at " + fault.addr
		start := time.Now()
		r := nsdebug(t, fault.flag, fault.addr, "--timeout", "700ms", "ls", "-o", "json")
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: ls took %s with --timeout 700ms", what, d)
		}
		if r.code != 0 || !strings.Contains(r.stderr, "warning: "+fault.runtime) {
			t.Errorf("%s: ls exit %d, stderr %q", what, r.code, r.stderr)
			continue
		}
		var rows []lsRow
		if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		found := false
		for _, row := range rows {
			if row.Netns.Path == realpath(ns.Path) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: kernel-side netns %s missing", what, ns.Path)
		}
		start = time.Now()
		r = nsdebug(t, fault.flag, fault.addr, "--timeout", "700ms", "resolve", fault.other)
		if r.code != 0 || time.Since(start) > 5*time.Second {
			t.Errorf("%s: resolve %s: exit %d after %s: %s", what, fault.other, r.code, time.Since(start), r.stderr)
		}
	}

	// DOCKER_API_VERSION is honoured: 1.41 works against Docker 20.10.
	cmd := exec.Command(bin, "resolve", "docker:"+c.Name)
	cmd.Env = append(cmd.Environ(), "DOCKER_API_VERSION=1.41")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("DOCKER_API_VERSION=1.41: %v %s", err, out)
	}
}

func realpath(p string) string {
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return p
	}
	return r
}

// Case 5: a stopped container, a SandboxKey whose bind mount is gone, and an
// empty /run/netns placeholder: each a specific error, never a setns into
// whatever is there.
func TestCase05_StaleState(t *testing.T) {
	testbed.Require(t)
	stopped := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "rel-stop", Stopped: true})
	nsdebug(t, "resolve", "docker:"+stopped.Name).oneLine(t, "stopped container", 5)

	// A running container whose SandboxKey lost its bind mount: the file is
	// an empty placeholder. As a path it is not a netns; by name, the
	// container's process (pinned by pidfd) still leads to the right one.
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "rel-sbk"})
	want := realInode(t, "/proc/"+itoa(c.PID)+"/ns/net")
	testbed.MustRun(t, "umount", c.SandboxKey)
	nsdebug(t, "resolve", c.SandboxKey).oneLine(t, "unmounted SandboxKey", 6)
	r := nsdebug(t, "resolve", "docker:"+c.Name, "-o", "json")
	var res struct {
		Netns struct{ Inode uint64 } `json:"netns"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil || res.Netns.Inode != want {
		t.Errorf("container with a stale SandboxKey: exit %d %s %s (want inode %d)", r.code, r.stdout, r.stderr, want)
	}

	// An empty /run/netns placeholder (its bind mount gone).
	ns := testbed.NewNetNS(t, "rel-ghost")
	testbed.MustRun(t, "umount", ns.Path)
	r = nsdebug(t, "resolve", "netns:"+ns.Name)
	r.oneLine(t, "empty placeholder", 6)
	if !strings.Contains(r.stderr, "placeholder") {
		t.Errorf("placeholder message: %q", r.stderr)
	}
	// Put a netns back so that the fixture's `ip netns del` cleans up.
	testbed.MustRun(t, "ip", "netns", "del", ns.Name)
	testbed.MustRun(t, "ip", "netns", "add", ns.Name)
}

func realInode(t *testing.T, p string) uint64 {
	t.Helper()
	out := testbed.MustRun(t, "stat", "-L", "-c", "%i", p)
	var n uint64
	for _, ch := range out {
		n = n*10 + uint64(ch-'0')
	}
	return n
}

func itoa(n int) string {
	return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(n))
}

func fmtInt(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}
