package reliability

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dockerclient "github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// Case 12: each runtime in turn absent or silent, and containerd and CRI
// down together (as when the standalone containerd stops: its CRI plugin
// goes with it): bounded by --timeout, the others still answer, and ls
// still lists every netns from the kernel side, the down runtime's
// containers' and pods' included, with a warning.
func TestCase12_RuntimeFaults(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "rel-fault"})
	pod := testbed.RunPod(t, testbed.PodOptions{Namespace: "relfault", Containers: []string{"app"}})
	ns := testbed.NewNetNS(t, "rel-fault")
	silent := testbed.SilentSocket(t)
	absent := filepath.Join(t.TempDir(), "absent.sock")
	// Every netns ls must list whatever runtime is down, by inode.
	want := map[string]uint64{
		"docker:" + c.Name: realInode(t, "/proc/"+itoa(c.PID)+"/ns/net"),
		pod.Ref():          realInode(t, "/proc/"+itoa(pod.SandboxPID)+"/ns/net"),
		"netns:" + ns.Name: realInode(t, ns.Path),
	}

	for _, fault := range []struct {
		down []string // runtimes that must be warned about
		args []string
		// a target that another runtime must still resolve
		other string
	}{
		{[]string{"docker"}, []string{"--docker-host", "unix://" + silent}, pod.Ref()},
		{[]string{"docker"}, []string{"--docker-host", "unix://" + absent}, pod.Ref()},
		{[]string{"containerd"}, []string{"--containerd-address", silent}, "docker:" + c.Name},
		{[]string{"containerd"}, []string{"--containerd-address", absent}, "docker:" + c.Name},
		{[]string{"cri"}, []string{"--cri-endpoint", "unix://" + silent}, "docker:" + c.Name},
		{[]string{"cri"}, []string{"--cri-endpoint", "unix://" + absent}, "docker:" + c.Name},
		// The standalone containerd stopped: containerd and CRI at once.
		{[]string{"containerd", "cri"}, []string{"--containerd-address", absent, "--cri-endpoint", "unix://" + absent}, "docker:" + c.Name},
		{[]string{"containerd", "cri"}, []string{"--containerd-address", silent, "--cri-endpoint", "unix://" + silent}, "docker:" + c.Name},
	} {
		what := strings.Join(fault.args, " ")
		start := time.Now()
		r := nsdebug(t, append(fault.args, "--timeout", "700ms", "ls", "-o", "json")...)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: ls took %s with --timeout 700ms", what, d)
		}
		if r.code != 0 {
			t.Errorf("%s: ls exit %d, stderr %q", what, r.code, r.stderr)
			continue
		}
		for _, rt := range fault.down {
			if !strings.Contains(r.stderr, "nsdebug: warning: "+rt+": ") {
				t.Errorf("%s: no warning about %s: %q", what, rt, r.stderr)
			}
		}
		listed := lsInodes(t, what, r.stdout)
		for target, ino := range want {
			if !listed[ino] {
				t.Errorf("%s: ls does not list the netns of %s (net:[%d])", what, target, ino)
			}
		}
		start = time.Now()
		r = nsdebug(t, append(fault.args, "--timeout", "700ms", "resolve", fault.other)...)
		if r.code != 0 || time.Since(start) > 5*time.Second {
			t.Errorf("%s: resolve %s: exit %d after %s: %s", what, fault.other, r.code, time.Since(start), r.stderr)
		}
	}

	// The default --timeout (3s) bounds ls too, with both containerd and
	// CRI silent (they are asked side by side).
	start := time.Now()
	r := nsdebug(t, "--containerd-address", silent, "--cri-endpoint", "unix://"+silent, "ls", "-o", "json")
	if d := time.Since(start); d > 6*time.Second || r.code != 0 {
		t.Errorf("ls with containerd and CRI silent, default --timeout: exit %d after %s (want 0 within 2 x 3s): %s", r.code, d, r.stderr)
	}
	listed := lsInodes(t, "default timeout", r.stdout)
	for target, ino := range want {
		if !listed[ino] {
			t.Errorf("default timeout: ls does not list the netns of %s (net:[%d])", target, ino)
		}
	}
}

func lsInodes(t *testing.T, what, stdout string) map[uint64]bool {
	t.Helper()
	var rows []lsRow
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	out := map[uint64]bool{}
	for _, row := range rows {
		out[row.Netns.Inode] = true
	}
	return out
}

// dockerProxy forwards a unix socket to the real Docker socket and records
// the request paths (/v1.41/containers/...): which API version is used.
func dockerProxy(t *testing.T) (string, func() []string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker-proxy.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var paths []string
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			mu.Lock()
			paths = append(paths, r.In.URL.Path)
			mu.Unlock()
			r.Out.URL.Scheme, r.Out.URL.Host = "http", "docker"
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", testbed.DockerSock)
		}},
	}
	srv := &http.Server{Handler: proxy}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "unix://" + sock, func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := paths
		paths = nil
		return out
	}
}

// Case 12, Docker's API version: the test bed's Docker (20.10: API 1.41;
// 29: 1.56) is asked at the version the client negotiates (the lower of the
// daemon's and the client's newest), DOCKER_API_VERSION is honoured (an
// older valid one is what every request uses, down to 1.40), and one the
// daemon does not have is exit 8 naming it, while ls still lists the
// container's netns from the kernel side with a warning.
func TestCase12_DockerAPIVersion(t *testing.T) {
	v := testbed.LiveVersions(t)
	negotiated := v.DockerAPI
	if versions.LessThan(dockerclient.MaxAPIVersion, negotiated) {
		negotiated = dockerclient.MaxAPIVersion
	}
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "rel-apiver"})
	ino := realInode(t, "/proc/"+itoa(c.PID)+"/ns/net")
	host, paths := dockerProxy(t)
	run := func(version string, args ...string) result {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--docker-host", host}, args...)...)
		cmd.Env = os.Environ()
		for i, e := range cmd.Env {
			if strings.HasPrefix(e, "DOCKER_API_VERSION=") {
				cmd.Env[i] = "NSDEBUG_UNSET_DOCKER_API_VERSION=1"
			}
		}
		if version != "" {
			cmd.Env = append(cmd.Env, "DOCKER_API_VERSION="+version)
		}
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		return result{o.String(), e.String(), exitCode(err)}
	}
	versioned := func(what, want string) {
		t.Helper()
		ps := paths()
		if len(ps) == 0 {
			t.Errorf("%s: no request reached Docker", what)
		}
		for _, p := range ps {
			if p != "/_ping" && !strings.HasPrefix(p, "/v"+want+"/") {
				t.Errorf("%s: request %s, want API version %s", what, p, want)
			}
		}
	}

	for _, v := range []struct{ env, want string }{{"", negotiated}, {"1.41", "1.41"}, {"1.40", "1.40"}} {
		r := run(v.env, "resolve", "docker:"+c.Name, "-o", "json")
		if r.code != 0 || !strings.Contains(r.stdout, c.ID) {
			t.Errorf("DOCKER_API_VERSION=%q: exit %d %s", v.env, r.code, r.stderr)
		}
		versioned("DOCKER_API_VERSION="+v.env, v.want)
	}

	r := run("1.99", "resolve", "docker:"+c.Name)
	r.oneLine(t, "DOCKER_API_VERSION=1.99", 8)
	if !strings.Contains(r.stderr, "1.99") {
		t.Errorf("DOCKER_API_VERSION=1.99: the error does not name the version: %q", r.stderr)
	}
	versioned("DOCKER_API_VERSION=1.99", "1.99")

	r = run("1.99", "ls", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stderr, "nsdebug: warning: docker: ") || !lsInodes(t, "ls with 1.99", r.stdout)[ino] {
		t.Errorf("ls with DOCKER_API_VERSION=1.99: exit %d, stderr %q; want the container's net:[%d] listed with a warning", r.code, r.stderr, ino)
	}
}

// Case 5: a stopped container or pod, a SandboxKey whose bind mount is gone,
// and an empty /run/netns placeholder: each a specific error from every
// command that takes a target (resolve, exec, link, sysctl, inspect), never
// a setns into whatever is there, nothing run or created.
func TestCase05_StaleState(t *testing.T) {
	testbed.Require(t)
	stopped := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "rel-stop", Stopped: true})
	badTargetEverywhere(t, "docker:"+stopped.Name, 5)
	// A stopped pod (kubelet stops the sandbox before removing it).
	pod := testbed.RunPod(t, testbed.PodOptions{Namespace: "relstale", Containers: []string{"app"}})
	pod.Stop(t)
	badTargetEverywhere(t, pod.Ref(), 5)

	// A running container whose SandboxKey lost its bind mount: the file is
	// an empty placeholder. As a path it is not a netns; by name, the
	// container's process (pinned by pidfd) still leads to the right one,
	// for every command.
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "rel-sbk"})
	want := realInode(t, "/proc/"+itoa(c.PID)+"/ns/net")
	testbed.MustRun(t, "umount", c.SandboxKey)
	badTargetEverywhere(t, c.SandboxKey, 6)
	r := nsdebug(t, "resolve", "docker:"+c.Name, "-o", "json")
	var res struct {
		Netns struct{ Inode uint64 } `json:"netns"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil || res.Netns.Inode != want {
		t.Errorf("container with a stale SandboxKey: exit %d %s %s (want inode %d)", r.code, r.stdout, r.stderr, want)
	}
	wantNS := "net:[" + fmtInt(int(want)) + "]"
	if r := nsdebug(t, "exec", "docker:"+c.Name, "--", "readlink", "/proc/self/ns/net"); r.code != 0 || strings.TrimSpace(r.stdout) != wantNS {
		t.Errorf("exec in a container with a stale SandboxKey: exit %d, ran in %q, want %s (%s)", r.code, r.stdout, wantNS, r.stderr)
	}
	if r := nsdebug(t, "inspect", "docker:"+c.Name, "-o", "json"); r.code != 0 || !strings.Contains(r.stdout, fmtInt(int(want))) {
		t.Errorf("inspect a container with a stale SandboxKey: exit %d %s", r.code, r.stderr)
	}
	name := testbed.UniqueName("rel-sbk")
	if r := nsdebug(t, "link", "docker:"+c.Name, name); r.code != 0 || realInode(t, "/var/run/netns/"+name) != want {
		t.Errorf("link a container with a stale SandboxKey: exit %d %s", r.code, r.stderr)
	}
	if r := nsdebug(t, "unlink", name); r.code != 0 {
		t.Errorf("unlink %s: %+v", name, r)
	}

	// An empty /run/netns placeholder (its bind mount gone).
	ns := testbed.NewNetNS(t, "rel-ghost")
	testbed.MustRun(t, "umount", ns.Path)
	r = nsdebug(t, "resolve", "netns:"+ns.Name)
	if !strings.Contains(r.stderr, "placeholder") {
		t.Errorf("placeholder message: %q", r.stderr)
	}
	badTargetEverywhere(t, "netns:"+ns.Name, 6)
	badTargetEverywhere(t, ns.Path, 6)
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
