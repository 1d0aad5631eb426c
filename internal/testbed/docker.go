package testbed

import (
	"encoding/json"
	"strings"
	"testing"
)

// Container is a Docker container made by RunContainer.
type Container struct {
	Name       string
	ID         string
	PID        int
	SandboxKey string
	IPs        []string // per network, in CIDR-less form
}

// ContainerOpts choose how RunContainer starts a container.
type ContainerOpts struct {
	Prefix  string
	Network string // "", "host", "none", "container:NAME", or a network made by NewDockerNetwork
	Stopped bool   // create and stop it again
	Cmd     []string
	Args    []string // extra docker run arguments
}

// RunContainer starts a busybox container (docker run -d) and removes it in
// t.Cleanup.
func RunContainer(t testing.TB, o ContainerOpts) *Container {
	t.Helper()
	Require(t)
	prefix := o.Prefix
	if prefix == "" {
		prefix = "nsdbg"
	}
	name := UniqueName(prefix)
	args := []string{"run", "-d", "--name", name, "--label", "nsdebug-test=1"}
	if o.Network != "" {
		args = append(args, "--network", o.Network)
	}
	args = append(args, o.Args...)
	args = append(args, Image)
	args = append(args, o.Cmd...)
	MustRun(t, "docker", args...)
	t.Cleanup(func() { Run("docker", "rm", "-f", name) })
	if o.Stopped {
		MustRun(t, "docker", "stop", "-t", "0", name)
	}
	return InspectContainer(t, name)
}

// InspectContainer reads a container's state with docker inspect.
func InspectContainer(t testing.TB, name string) *Container {
	t.Helper()
	return inspectWith(t, "docker", "inspect", name)
}

// inspectWith runs a docker-like inspect command (docker's or podman's own
// view, whose fields match by name: encoding/json ignores case, so podman's
// "Id" is docker's "ID") and reads the one container it describes.
func inspectWith(t testing.TB, tool string, args ...string) *Container {
	t.Helper()
	out := MustRun(t, tool, args...)
	var info []struct {
		ID              string
		Name            string
		State           struct{ Pid int }
		NetworkSettings struct {
			SandboxKey string
			Networks   map[string]struct{ IPAddress string }
		}
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil || len(info) != 1 {
		t.Fatalf("%s %s: %v %s", tool, strings.Join(args, " "), err, out)
	}
	c := &Container{Name: strings.TrimPrefix(info[0].Name, "/"), ID: info[0].ID, PID: info[0].State.Pid, SandboxKey: info[0].NetworkSettings.SandboxKey}
	for _, n := range info[0].NetworkSettings.Networks {
		if n.IPAddress != "" {
			c.IPs = append(c.IPs, n.IPAddress)
		}
	}
	return c
}

// NewDockerNetwork makes a user-defined bridge network, removed in t.Cleanup
// (after the containers on it, which were registered later).
func NewDockerNetwork(t testing.TB, prefix string) string {
	t.Helper()
	Require(t)
	name := UniqueName(prefix)
	MustRun(t, "docker", "network", "create", "--label", "nsdebug-test=1", name)
	t.Cleanup(func() { Run("docker", "network", "rm", name) })
	return name
}
