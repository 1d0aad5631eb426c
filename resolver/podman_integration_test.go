package resolver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

// Done-when (issue 12): podman:NAME, podman:ID and a bare name resolve to
// the netns podman itself reports (podman inspect's SandboxKey, the inode
// of State.Pid's ns/net); a host-network container to the host's.
func TestPodmanResolve(t *testing.T) {
	testbed.Require(t)
	r := Open(Config{})
	defer r.Close()
	br := testbed.RunPodman(t, testbed.ContainerOpts{Prefix: "pmbr"})
	host := testbed.RunPodman(t, testbed.ContainerOpts{Prefix: "pmhost", Network: "host"})
	if !strings.HasPrefix(br.SandboxKey, "/run/netns/netns-") {
		t.Errorf("podman's SandboxKey is %q, expected /run/netns/netns-*: the backend's assumptions no longer hold", br.SandboxKey)
	}
	if host.SandboxKey != "" {
		t.Errorf("host-network container has SandboxKey %q, expected none (its netns is found through its PID)", host.SandboxKey)
	}
	brIno := statIno(t, fmt.Sprintf("/proc/%d/ns/net", br.PID))
	if got := statIno(t, br.SandboxKey); got != brIno {
		t.Fatalf("podman's SandboxKey %s is net:[%d] but its PID %d is in net:[%d]", br.SandboxKey, got, br.PID, brIno)
	}
	cases := []struct {
		c       *testbed.Container
		wantIno uint64
		path    string
		host    bool
		mode    string
	}{
		{br, brIno, br.SandboxKey, false, "bridge"},
		{host, statIno(t, "/proc/2/ns/net"), fmt.Sprintf("/proc/%d/ns/net", host.PID), true, "host"},
	}
	for _, c := range cases {
		for _, target := range []string{"podman:" + c.c.Name, c.c.Name, "podman:" + c.c.ID[:12], "podman:" + c.c.ID} {
			res, err := resolveT(t, r, target)
			if err != nil {
				t.Errorf("%s: %v", target, err)
				continue
			}
			if res.Runtime != "podman" || res.ID != c.c.ID || res.Name != c.c.Name || res.PID != c.c.PID {
				t.Errorf("%s: runtime %s id %s name %s pid %d, want podman %s %s %d", target, res.Runtime, res.ID, res.Name, res.PID, c.c.ID, c.c.Name, c.c.PID)
			}
			if res.Netns.Inode != c.wantIno || res.Netns.Path != c.path {
				t.Errorf("%s: netns %s net:[%d], want %s net:[%d]", target, res.Netns.Path, res.Netns.Inode, c.path, c.wantIno)
			}
			if res.Host != c.host || res.NetworkMode != c.mode {
				t.Errorf("%s: host=%v mode %q, want %v %q", target, res.Host, res.NetworkMode, c.host, c.mode)
			}
			if len(res.Owners) != 1 || res.Owners[0].Ref() != "podman:"+c.c.Name {
				t.Errorf("%s: owners %+v", target, res.Owners)
			}
		}
	}
	// The compat API's network data feeds diagnose like Docker's.
	res, err := resolveT(t, r, "podman:"+br.Name)
	if err != nil {
		t.Fatal(err)
	}
	if res.Net == nil || len(res.Net.Networks) != 1 || res.Net.Networks[0].IP != br.IPs[0] {
		t.Errorf("Net = %+v, want podman's network with %s", res.Net, br.IPs[0])
	}
	if res.ResolvConf == "" || !strings.Contains(res.ResolvConf, br.ID) {
		t.Errorf("ResolvConf %q is not podman's copy for %s", res.ResolvConf, br.ID)
	}
}

func TestPodmanPublishedPorts(t *testing.T) {
	testbed.Require(t)
	r := Open(Config{})
	defer r.Close()
	c := testbed.RunPodman(t, testbed.ContainerOpts{Prefix: "pmport", Args: []string{"-p", "127.0.0.1::8080/tcp"}})
	port := strings.TrimSpace(testbed.MustRun(t, "podman", "port", c.Name, "8080/tcp"))
	res, err := resolveT(t, r, "podman:"+c.Name)
	if err != nil {
		t.Fatal(err)
	}
	if res.Net == nil || len(res.Net.Ports) != 1 {
		t.Fatalf("ports %+v, podman port says %s", res.Net, port)
	}
	p := res.Net.Ports[0]
	if got := fmt.Sprintf("%s:%d", p.HostIP, p.HostPort); got != port || p.ContainerPort != 8080 || p.Proto != "tcp" {
		t.Errorf("port binding %+v, podman port says %s", p, port)
	}
}

func TestPodmanErrors(t *testing.T) {
	testbed.Require(t)
	r := Open(Config{})
	defer r.Close()
	stopped := testbed.RunPodman(t, testbed.ContainerOpts{Prefix: "pmstop", Stopped: true})
	_, err := resolveT(t, r, "podman:"+stopped.Name)
	if !errors.Is(err, nserr.ErrNotRunning) || !strings.Contains(err.Error(), "podman:"+stopped.Name) || !strings.Contains(err.Error(), "state: exited") {
		t.Errorf("stopped container: %v", err)
	}
	_, err = resolveT(t, r, "podman:"+testbed.UniqueName("nosuch"))
	if !errors.Is(err, nserr.ErrNotFound) || !strings.Contains(err.Error(), "podman (unix:///run/podman/podman.sock)") {
		t.Errorf("unknown container: %v", err)
	}
	// podman: asks podman only: a Docker container of that name is not it.
	d := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "pmdock"})
	if _, err := resolveT(t, r, "podman:"+d.Name); !errors.Is(err, nserr.ErrNotFound) {
		t.Errorf("podman:%s (a Docker container): %v, want not found", d.Name, err)
	}
}

// A bare name that Docker and Podman both use names two namespaces: the
// documented ambiguity error, naming both, and nothing is entered.
func TestPodmanDockerSameNameIsAmbiguous(t *testing.T) {
	testbed.Require(t)
	r := Open(Config{})
	defer r.Close()
	d := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "pmsame"})
	testbed.MustRun(t, "podman", "run", "-d", "--pull=never", "--name", d.Name, "--label", "nsdebug-test=1", testbed.PodmanImage)
	t.Cleanup(func() { testbed.Run("podman", "rm", "-f", "-t", "0", d.Name) })
	_, err := resolveT(t, r, d.Name)
	if !errors.Is(err, nserr.ErrAmbiguous) || !strings.Contains(err.Error(), "docker:"+d.Name+" (") || !strings.Contains(err.Error(), "podman:"+d.Name+" (") {
		t.Fatalf("bare %s: %v, want ambiguous between docker: and podman:", d.Name, err)
	}
	for _, target := range []string{"docker:" + d.Name, "podman:" + d.Name} {
		res, err := resolveT(t, r, target)
		if err != nil || res.Runtime != strings.Split(target, ":")[0] {
			t.Errorf("%s: %v %+v", target, err, res)
		}
	}
}

// Podman answers an ID prefix that several containers share with a 404
// ("more than one result"): that is an ambiguity, never "not found".
func TestPodmanAmbiguousIDPrefix(t *testing.T) {
	testbed.Require(t)
	r := Open(Config{})
	defer r.Close()
	// 17 IDs share a first hex digit by pigeonhole; a few usually do.
	seen := map[byte]*testbed.Container{}
	var pair [2]*testbed.Container
	for i := 0; i < 17 && pair[0] == nil; i++ {
		c := testbed.RunPodman(t, testbed.ContainerOpts{Prefix: "pmpfx"})
		if o := seen[c.ID[0]]; o != nil {
			pair = [2]*testbed.Container{o, c}
		}
		seen[c.ID[0]] = c
	}
	n := 1
	for n < len(pair[0].ID) && pair[0].ID[n] == pair[1].ID[n] {
		n++
	}
	prefix := pair[0].ID[:n]
	_, err := resolveT(t, r, "podman:"+prefix)
	if !errors.Is(err, nserr.ErrAmbiguous) || !strings.Contains(err.Error(), "podman:"+pair[0].Name) || !strings.Contains(err.Error(), "podman:"+pair[1].Name) {
		t.Errorf("podman:%s (shared by %s and %s): %v", prefix, pair[0].Name, pair[1].Name, err)
	}
}

// Podman's own convention, CONTAINER_HOST=unix://..., names the socket; with
// none of the default sockets present podman is simply not asked.
func TestPodmanSocketDiscovery(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunPodman(t, testbed.ContainerOpts{Prefix: "pmenv"})
	oldSock, oldGlob := defaultPodmanSocket, rootlessPodmanGlob
	t.Cleanup(func() { defaultPodmanSocket, rootlessPodmanGlob = oldSock, oldGlob })
	dir := t.TempDir()
	defaultPodmanSocket = filepath.Join(dir, "podman.sock")
	rootlessPodmanGlob = filepath.Join(dir, "user", "*", "podman", "podman.sock")
	t.Setenv("CONTAINER_HOST", "")

	r := Open(Config{})
	for _, b := range r.Backends() {
		if b.Name() == "podman" {
			t.Errorf("no podman socket exists, yet podman is asked at %s", b.Endpoint())
		}
	}
	_, err := resolveT(t, r, "podman:"+c.Name)
	if !errors.Is(err, nserr.ErrUnavailable) || !strings.Contains(err.Error(), "CONTAINER_HOST") {
		t.Errorf("podman: without podman: %v", err)
	}
	r.Close()

	t.Setenv("CONTAINER_HOST", "unix://"+testbed.PodmanSock)
	r = Open(Config{})
	defer r.Close()
	if res, err := resolveT(t, r, "podman:"+c.Name); err != nil || res.PID != c.PID {
		t.Errorf("CONTAINER_HOST=unix://%s: %v", testbed.PodmanSock, err)
	}

	// Rootless users' sockets are found by their place; each is a backend.
	for _, uid := range []string{"1000", "1001"} {
		p := filepath.Join(dir, "user", uid, "podman", "podman.sock")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("CONTAINER_HOST", "")
	r2 := Open(Config{})
	defer r2.Close()
	var eps []string
	for _, b := range r2.Backends() {
		if b.Name() == "podman" {
			eps = append(eps, b.Endpoint())
		}
	}
	want := []string{"unix://" + dir + "/user/1000/podman/podman.sock", "unix://" + dir + "/user/1001/podman/podman.sock"}
	if strings.Join(eps, " ") != strings.Join(want, " ") {
		t.Errorf("podman endpoints %q, want %q", eps, want)
	}
}

// A rootless user's Podman is found by its socket under /run/user/UID; its
// containers' netns (in that user's user namespace) through /proc/PID/ns/net.
func TestPodmanRootless(t *testing.T) {
	testbed.RequireRootlessPodman(t)
	sock := testbed.RootlessPodmanService(t)
	c := testbed.RunRootlessPodman(t, "pmrl")
	r := Open(Config{})
	defer r.Close()
	var eps []string
	for _, b := range r.Backends() {
		if b.Name() == "podman" {
			eps = append(eps, b.Endpoint())
		}
	}
	if !slices.Contains(eps, "unix://"+testbed.PodmanSock) || !slices.Contains(eps, "unix://"+sock) {
		t.Errorf("podman endpoints %q, want the rootful and %s's", eps, testbed.RootlessUser)
	}
	// Ground truth: the process podman names is in another user namespace.
	selfUser, _ := os.Readlink("/proc/self/ns/user")
	ctrUser, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", c.PID))
	if ctrUser == "" || ctrUser == selfUser {
		t.Fatalf("rootless container %s runs in user namespace %q, ours is %q", c.Name, ctrUser, selfUser)
	}
	for _, target := range []string{"podman:" + c.Name, c.Name, "podman:" + c.ID[:12]} {
		res, err := resolveT(t, r, target)
		if err != nil {
			t.Errorf("%s: %v", target, err)
			continue
		}
		want := fmt.Sprintf("/proc/%d/ns/net", c.PID)
		if res.Runtime != "podman" || res.ID != c.ID || res.PID != c.PID || res.Netns.Path != want || res.Netns.Inode != statIno(t, want) || res.Host {
			t.Errorf("%s: %+v, want podman %s pid %d netns %s", target, res, c.ID, c.PID, want)
		}
	}
}

// A Podman pod's containers share its infra container's netns (the compat
// API says network mode container:INFRA-ID): each resolves to that netns and
// names the infra container for people.
func TestPodmanPod(t *testing.T) {
	testbed.Require(t)
	r := Open(Config{})
	defer r.Close()
	pod := testbed.UniqueName("pmpod")
	testbed.MustRun(t, "podman", "pod", "create", "--label", "nsdebug-test=1", "--name", pod)
	t.Cleanup(func() { testbed.Run("podman", "pod", "rm", "-f", "-t", "0", pod) })
	c := testbed.RunPodman(t, testbed.ContainerOpts{Prefix: "pmpodc", Args: []string{"--pod", pod}})
	infraID := testbed.MustRun(t, "podman", "pod", "inspect", "--format", "{{.InfraContainerID}}", pod)
	infra := testbed.InspectPodman(t, infraID)
	if infra.SandboxKey == "" {
		t.Fatalf("pod %s's infra container has no netns file", pod)
	}
	want := statIno(t, infra.SandboxKey)
	if got := statIno(t, fmt.Sprintf("/proc/%d/ns/net", c.PID)); got != want {
		t.Fatalf("fixture: %s is in net:[%d], its pod's infra in net:[%d]", c.Name, got, want)
	}
	res, err := resolveT(t, r, "podman:"+c.Name)
	if err != nil {
		t.Fatal(err)
	}
	if res.Netns.Inode != want || res.NetworkMode != "container:"+infra.Name {
		t.Errorf("podman:%s: net:[%d] mode %q, want net:[%d] (%s) mode container:%s", c.Name, res.Netns.Inode, res.NetworkMode, want, infra.SandboxKey, infra.Name)
	}
	res, err = resolveT(t, r, "podman:"+infra.Name)
	if err != nil || res.Netns.Inode != want || res.Netns.Path != infra.SandboxKey {
		t.Errorf("podman:%s (infra): %v %+v", infra.Name, err, res)
	}
}
