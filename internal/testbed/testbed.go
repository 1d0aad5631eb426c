// Package testbed gates integration tests on the real test bed (root, dockerd,
// containerd with CRI, podman's API service; see scripts/testbed.sh) and gives them throwaway
// network namespaces that are always removed.
//
// Outside CI a missing test bed skips the test with a clear message; with
// CI=true it fails the test: CI must never pass by skipping.
package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Sockets of the test bed's runtimes.
const (
	ContainerdSock       = "/run/containerd/containerd.sock"
	DockerContainerdSock = "/var/run/docker/containerd/containerd.sock"
	DockerSock           = "/var/run/docker.sock"
	// Image is the busybox image the test bed builds (docker name) and
	// imports into containerd (CtrdImage) in namespaces k8s.io and nsdebug-test.
	Image     = "bb:local"
	CtrdImage = "docker.io/library/bb:local"
	// CtrdNamespace is the containerd namespace for plain containerd fixtures.
	CtrdNamespace = "nsdebug-test"
)

// InCI reports whether CI=true.
func InCI() bool { return os.Getenv("CI") == "true" }

// A bed is one part of the test bed that tests gate on. It is checked once
// per test binary; a test that needs it and finds it missing fails (CI) or
// skips (elsewhere), saying what is missing and what brings it up.
type bed struct {
	name, setUp string
	check       func() error
	once        sync.Once
	err         error
}

func (b *bed) require(t testing.TB) {
	t.Helper()
	b.once.Do(func() { b.err = b.check() })
	if b.err != nil {
		b.missing(t, b.err.Error())
	}
}

func (b *bed) missing(t testing.TB, why string) {
	t.Helper()
	msg := b.name + " not available: " + why + " (run: " + b.setUp + ")"
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

var runtimesBed = &bed{name: "integration test bed", setUp: "sudo make testbed", check: check}

// Require fails (CI) or skips (elsewhere) t unless the whole test bed is up.
func Require(t testing.TB) {
	t.Helper()
	runtimesBed.require(t)
}

// RequireRoot fails (CI) or skips unless running as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		runtimesBed.missing(t, "needs root")
	}
}

func check() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root")
	}
	for _, s := range []string{DockerSock, ContainerdSock, PodmanSock} {
		if _, err := os.Stat(s); err != nil {
			return fmt.Errorf("%s missing", s)
		}
	}
	if out, err := Run("docker", "image", "inspect", Image); err != nil {
		return fmt.Errorf("docker image %s: %v %s", Image, err, out)
	}
	if out, err := Run("ctr", "--address", ContainerdSock, "-n", "k8s.io", "images", "ls", "-q"); err != nil || !strings.Contains(out, CtrdImage) {
		return fmt.Errorf("containerd image %s in k8s.io: %v", CtrdImage, err)
	}
	if out, err := Run("podman", "image", "exists", PodmanImage); err != nil {
		return fmt.Errorf("podman image %s: %v %s", PodmanImage, err, out)
	}
	return nil
}

// Run runs a command and returns its combined output.
func Run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// MustRun runs a command and fails t if it fails; returns trimmed stdout+stderr.
func MustRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := Run(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

// UniqueName returns a name for a fixture that no other test run uses.
func UniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), time.Now().UnixNano()%1e9)
}

// NetNS is a named network namespace under /var/run/netns made with
// iproute2, removed by t.Cleanup.
type NetNS struct {
	Name string
	Path string
}

// NewNetNS creates a named netns and registers its removal.
func NewNetNS(t testing.TB, prefix string) *NetNS {
	t.Helper()
	RequireRoot(t)
	name := UniqueName(prefix)
	MustRun(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := Run("ip", "netns", "del", name); err != nil {
			t.Errorf("cleanup: ip netns del %s: %v %s", name, err, out)
		}
	})
	return &NetNS{Name: name, Path: "/var/run/netns/" + name}
}

// Exec runs a command inside the namespace (ip netns exec) and returns its output.
func (n *NetNS) Exec(t testing.TB, name string, args ...string) string {
	t.Helper()
	return MustRun(t, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// StartProcess starts a long-running process inside the namespace and kills
// it in t.Cleanup; returns its PID.
func (n *NetNS) StartProcess(t testing.TB, name string, args ...string) int {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s in %s: %v", name, n.Name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// ip netns exec switches only after it has started: until then the PID
	// is still in the caller's netns. Return once the process is inside.
	want, err := os.Stat(n.Path)
	if err != nil {
		t.Fatalf("stat %s: %v", n.Path, err)
	}
	nsPath := fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if got, err := os.Stat(nsPath); err == nil && os.SameFile(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s (PID %d) did not enter netns %s within 5s", name, cmd.Process.Pid, n.Name)
		}
	}
	return cmd.Process.Pid
}

// StressDuration is how long a stress test runs: $NSDEBUG_STRESS_SECONDS,
// else 10 s in CI and 3 s elsewhere.
func StressDuration() time.Duration {
	if s := os.Getenv("NSDEBUG_STRESS_SECONDS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			return time.Duration(n) * time.Second
		}
	}
	if InCI() {
		return 10 * time.Second
	}
	return 3 * time.Second
}
