package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

func statIno(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func resolveT(t *testing.T, r *Resolver, target string) (*Result, error) {
	t.Helper()
	tg, err := ParseTarget(target)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Resolve(context.Background(), tg)
	if err == nil {
		t.Cleanup(func() { res.Close() })
	}
	return res, err
}

func TestDockerNetworkModes(t *testing.T) {
	testbed.Require(t)
	r := Open(Config{})
	defer r.Close()
	userNet := testbed.NewDockerNetwork(t, "nsdbg-net")
	bridge := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "br"})
	user := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "usr", Network: userNet})
	joined := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "join", Network: "container:" + bridge.Name})
	host := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "host", Network: "host"})
	none := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "none", Network: "none"})
	hostIno := statIno(t, "/proc/2/ns/net") // kthreadd: always the initial netns

	cases := []struct {
		c       *testbed.Container
		wantIno uint64
		host    bool
		mode    string
		sandbox bool
	}{
		{bridge, statIno(t, fmt.Sprintf("/proc/%d/ns/net", bridge.PID)), false, "bridge", true},
		{user, statIno(t, fmt.Sprintf("/proc/%d/ns/net", user.PID)), false, userNet, true},
		{joined, statIno(t, fmt.Sprintf("/proc/%d/ns/net", bridge.PID)), false, "container:" + bridge.Name, false},
		{host, hostIno, true, "host", true},
		{none, statIno(t, fmt.Sprintf("/proc/%d/ns/net", none.PID)), false, "none", true},
	}
	for _, c := range cases {
		for _, target := range []string{"docker:" + c.c.Name, c.c.Name, "docker:" + c.c.ID[:12], "docker:" + c.c.ID} {
			res, err := resolveT(t, r, target)
			if err != nil {
				t.Errorf("%s: %v", target, err)
				continue
			}
			if res.Netns.Inode != c.wantIno {
				t.Errorf("%s: netns %d, want %d", target, res.Netns.Inode, c.wantIno)
			}
			if res.Host != c.host {
				t.Errorf("%s: host=%v, want %v", target, res.Host, c.host)
			}
			if res.Runtime != "docker" || res.ID != c.c.ID || res.Name != c.c.Name || res.PID != c.c.PID {
				t.Errorf("%s: %s %s %s pid %d", target, res.Runtime, res.ID, res.Name, res.PID)
			}
			if res.NetworkMode != c.mode {
				t.Errorf("%s: network mode %q, want %q", target, res.NetworkMode, c.mode)
			}
			if c.sandbox && !c.host && statIno(t, c.c.SandboxKey) != res.Netns.Inode {
				t.Errorf("%s: SandboxKey %s is another netns", target, c.c.SandboxKey)
			}
			if res.ResolvConf == "" || res.Hosts == "" {
				t.Errorf("%s: no resolv.conf/hosts paths", target)
			}
		}
	}
	// The joined container shares the bridge container's netns: as a bare
	// word each resolves alone; its owners include both in ls (elsewhere).
}

func TestDockerStoppedAndUnknown(t *testing.T) {
	testbed.Require(t)
	r := Open(Config{})
	defer r.Close()
	stopped := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "stop", Stopped: true})
	for _, target := range []string{"docker:" + stopped.Name, stopped.Name} {
		_, err := resolveT(t, r, target)
		if !errors.Is(err, nserr.ErrNotRunning) || !strings.Contains(err.Error(), "not running") || !strings.Contains(err.Error(), "exited") {
			t.Errorf("%s: %v, want not running (exited)", target, err)
		}
	}
	_, err := resolveT(t, r, "docker:nsdebug-no-such-container")
	if !errors.Is(err, nserr.ErrNotFound) || !strings.Contains(err.Error(), "looked in docker") {
		t.Errorf("unknown: %v", err)
	}
	_, err = resolveT(t, r, "nsdebug-no-such-anything")
	if !errors.Is(err, nserr.ErrNotFound) || !strings.Contains(err.Error(), "docker (") || !strings.Contains(err.Error(), "cri (") {
		t.Errorf("unknown bare word: %v, want a message naming every runtime asked", err)
	}
}

func TestDockerAmbiguousPrefix(t *testing.T) {
	testbed.Require(t)
	r := Open(Config{})
	defer r.Close()
	// Make containers until two share a first hex digit (at most 17 needed).
	byFirst := map[byte]*testbed.Container{}
	var pair [2]*testbed.Container
	for i := 0; i < 17 && pair[0] == nil; i++ {
		c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "amb"})
		if o := byFirst[c.ID[0]]; o != nil {
			pair = [2]*testbed.Container{o, c}
		}
		byFirst[c.ID[0]] = c
	}
	prefix := pair[0].ID[:1]
	// Grow the prefix while both still share it: the error must list both.
	for n := 2; n < 12 && pair[1].ID[:n] == pair[0].ID[:n]; n++ {
		prefix = pair[0].ID[:n]
	}
	_, err := resolveT(t, r, "docker:"+prefix)
	if !errors.Is(err, nserr.ErrAmbiguous) || !strings.Contains(err.Error(), "docker:"+pair[0].Name) || !strings.Contains(err.Error(), "docker:"+pair[1].Name) {
		t.Fatalf("docker:%s: %v, want ambiguity listing %s and %s", prefix, err, pair[0].Name, pair[1].Name)
	}
}

func TestDockerDaemonDown(t *testing.T) {
	testbed.Require(t)
	dir := t.TempDir()

	// No listener at all.
	start := time.Now()
	r := Open(Config{DockerHost: "unix://" + filepath.Join(dir, "absent.sock"), Timeout: 500 * time.Millisecond})
	_, err := resolveT(t, r, "docker:web")
	r.Close()
	if !errors.Is(err, nserr.ErrUnavailable) || !strings.Contains(err.Error(), "absent.sock") {
		t.Errorf("missing socket: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("missing socket took %s", d)
	}

	// A listener that accepts and never answers.
	sock := filepath.Join(dir, "silent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start = time.Now()
	r = Open(Config{DockerHost: "unix://" + sock, Timeout: 500 * time.Millisecond})
	defer r.Close()
	_, err = resolveT(t, r, "docker:web")
	if !errors.Is(err, nserr.ErrUnavailable) {
		t.Errorf("silent daemon: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("silent daemon held resolution for %s (timeout 500ms)", d)
	}
	// The other runtimes still answer for a bare word: a real pod/container
	// name is not needed, the error must list them as asked.
	_, err = resolveT(t, r, "nsdebug-nothing-here")
	if err == nil || !strings.Contains(err.Error(), "containerd (") {
		t.Errorf("bare word with docker down: %v", err)
	}
}

func TestDockerAPIVersionFromEnv(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "apiv"})
	t.Setenv("DOCKER_API_VERSION", "1.41")
	r := Open(Config{})
	defer r.Close()
	res, err := resolveT(t, r, "docker:"+c.Name)
	if err != nil || res.PID != c.PID {
		t.Fatalf("DOCKER_API_VERSION=1.41: %v", err)
	}
	b := r.Backends()[0].(*dockerBackend)
	cli, _ := b.client()
	if v := cli.ClientVersion(); v != "1.41" {
		t.Errorf("client API version %s, want 1.41 from DOCKER_API_VERSION", v)
	}
	// An API version the daemon cannot speak is an error, not a hang.
	t.Setenv("DOCKER_API_VERSION", "9.99")
	r2 := Open(Config{})
	defer r2.Close()
	if _, err := resolveT(t, r2, "docker:"+c.Name); err == nil {
		t.Error("DOCKER_API_VERSION=9.99 accepted")
	}
	_ = os.Getpid
}

func TestDockerList(t *testing.T) {
	testbed.Require(t)
	a := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "lst"})
	stopped := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "lststop", Stopped: true})
	b := &dockerBackend{runtime: "docker"}
	defer b.Close()
	cands, err := b.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, c := range cands {
		if c.ID == stopped.ID {
			t.Errorf("stopped container listed")
		}
		if c.ID == a.ID {
			found = true
			if c.PID != a.PID || !c.Running || c.NetnsPath != a.SandboxKey {
				t.Errorf("listed %+v, want PID %d SandboxKey %s", c, a.PID, a.SandboxKey)
			}
		}
	}
	if !found {
		t.Error("running container not listed")
	}
}
