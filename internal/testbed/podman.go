package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Podman's side of the test bed: Debian's podman with its API service
// (rootful) and the test bed image loaded under PodmanImage.
const (
	PodmanSock  = "/run/podman/podman.sock"
	PodmanImage = "localhost/bb:local"
)

// RunPodman starts a busybox container with podman (podman run -d) and
// removes it in t.Cleanup. Network is "" (podman's default bridge), "host"
// or "none". It is never pulled: --pull=never, a localhost/ image (a pull
// would look up an outside name).
func RunPodman(t testing.TB, o ContainerOpts) *Container {
	t.Helper()
	Require(t)
	prefix := o.Prefix
	if prefix == "" {
		prefix = "nsdbg-pm"
	}
	name := UniqueName(prefix)
	args := []string{"run", "-d", "--pull=never", "--name", name, "--label", "nsdebug-test=1"}
	if o.Network != "" {
		args = append(args, "--network", o.Network)
	}
	args = append(args, o.Args...)
	args = append(args, PodmanImage)
	args = append(args, o.Cmd...)
	MustRun(t, "podman", args...)
	t.Cleanup(func() { Run("podman", "rm", "-f", "-t", "0", name) })
	if o.Stopped {
		MustRun(t, "podman", "stop", "-t", "0", name)
	}
	return InspectPodman(t, name)
}

// InspectPodman reads a container's state with podman inspect (podman's
// own view, not its Docker-compatible API's).
func InspectPodman(t testing.TB, name string) *Container {
	t.Helper()
	return inspectWith(t, "podman", "inspect", "--type", "container", name)
}

// RootlessUser is the test bed's rootless Podman user (scripts/testbed.sh
// makes it, with subordinate IDs and the image in its storage). Its
// containers use --network none: slirp4netns needs /dev/net/tun, which only
// root may open on these machines.
const RootlessUser = "nsdbg-rootless"

var rootlessBed = &bed{name: "rootless podman test bed", setUp: "sudo make testbed", check: func() error {
	if _, err := user.Lookup(RootlessUser); err != nil {
		return fmt.Errorf("user %s: %w", RootlessUser, err)
	}
	if out, err := AsRootless("podman", "image", "exists", PodmanImage).CombinedOutput(); err != nil {
		return fmt.Errorf("podman image %s of %s: %v %s", PodmanImage, RootlessUser, err, out)
	}
	return nil
}}

// RequireRootlessPodman fails (CI) or skips unless the rootless user and
// its image are there.
func RequireRootlessPodman(t testing.TB) {
	t.Helper()
	Require(t)
	rootlessBed.require(t)
}

// RootlessUID is RootlessUser's UID.
func RootlessUID(t testing.TB) string {
	t.Helper()
	u, err := user.Lookup(RootlessUser)
	if err != nil {
		t.Fatal(err)
	}
	return u.Uid
}

// AsRootless is a command run as RootlessUser, in its home and runtime
// directory, with nothing of the caller's environment.
func AsRootless(name string, args ...string) *exec.Cmd {
	u, err := user.Lookup(RootlessUser)
	uid, gid := "65534", "65534"
	if err == nil {
		uid, gid = u.Uid, u.Gid
	}
	argv := append([]string{"--reuid", uid, "--regid", gid, "--init-groups",
		"env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/home/" + RootlessUser, "USER=" + RootlessUser,
		"XDG_RUNTIME_DIR=/run/user/" + uid, name}, args...)
	cmd := exec.Command("setpriv", argv...)
	cmd.Dir = "/"
	return cmd
}

// MustRunRootless runs a command as RootlessUser and fails t if it fails.
func MustRunRootless(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := AsRootless(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("as %s: %s %s: %v\n%s", RootlessUser, name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// RootlessPodmanService starts RootlessUser's API service at its usual
// place, /run/user/UID/podman/podman.sock, and stops it (with the pause
// process holding the user's namespace) in t.Cleanup. Returns the socket.
func RootlessPodmanService(t testing.TB) string {
	t.Helper()
	RequireRootlessPodman(t)
	uid := RootlessUID(t)
	sock := "/run/user/" + uid + "/podman/podman.sock"
	// One service at that place at a time: test packages run side by side.
	lock, err := os.OpenFile("/run/user/"+uid+"/nsdebug-test.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() }) // runs last: after the service stopped
	MustRunRootless(t, "mkdir", "-p", filepath.Dir(sock))
	cmd := AsRootless("podman", "system", "service", "--time=0", "unix://"+sock)
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start rootless podman service: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		os.Remove(sock)
		if b, err := os.ReadFile("/run/user/" + uid + "/libpod/tmp/pause.pid"); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err := AsRootless("podman", "--remote", "--url", "unix://"+sock, "version").Run(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rootless podman service did not answer at %s: %s", sock, log.String())
		}
	}
	return sock
}

// RunRootlessPodman starts a busybox container as RootlessUser (network
// none, see RootlessUser) and removes it in t.Cleanup.
func RunRootlessPodman(t testing.TB, prefix string) *Container {
	t.Helper()
	RequireRootlessPodman(t)
	name := UniqueName(prefix)
	MustRunRootless(t, "podman", "run", "-d", "--pull=never", "--network", "none", "--name", name, "--label", "nsdebug-test=1", PodmanImage)
	t.Cleanup(func() { AsRootless("podman", "rm", "-f", "-t", "0", name).Run() })
	out := MustRunRootless(t, "podman", "inspect", "--type", "container", "--format", "{{.Id}} {{.State.Pid}}", name)
	f := strings.Fields(out)
	if len(f) != 2 {
		t.Fatalf("podman inspect %s: %q", name, out)
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil || pid <= 0 {
		t.Fatalf("podman inspect %s: pid %q", name, f[1])
	}
	return &Container{Name: name, ID: f[0], PID: pid}
}
