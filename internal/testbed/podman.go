package testbed

import (
	"encoding/json"
	"strings"
	"testing"
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
	out := MustRun(t, "podman", "inspect", "--type", "container", name)
	var info []struct {
		ID              string `json:"Id"`
		Name            string
		State           struct{ Pid int }
		NetworkSettings struct {
			SandboxKey string
			Networks   map[string]struct{ IPAddress string }
		}
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil || len(info) != 1 {
		t.Fatalf("podman inspect %s: %v %s", name, err, out)
	}
	c := &Container{Name: strings.TrimPrefix(info[0].Name, "/"), ID: info[0].ID, PID: info[0].State.Pid, SandboxKey: info[0].NetworkSettings.SandboxKey}
	for _, n := range info[0].NetworkSettings.Networks {
		if n.IPAddress != "" {
			c.IPs = append(c.IPs, n.IPAddress)
		}
	}
	return c
}
