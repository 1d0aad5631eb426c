package cmd

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// pluginHome is a HOME whose ~/.docker/cli-plugins holds nsdebug as
// docker-nsdebug (a symlink, as make install makes it).
func pluginHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	dir := filepath.Join(home, ".docker", "cli-plugins")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(nsdebugBinary(t), filepath.Join(dir, DockerPluginName)); err != nil {
		t.Fatal(err)
	}
	return home
}

// dockerCLI runs the real docker CLI with HOME=home and extra environment.
func dockerCLI(t *testing.T, home string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command("docker", args...)
	cmd.Env = append(append(os.Environ(), "HOME="+home), env...)
	cmd.Dir = home
	return runProcess(cmd)
}

// The real docker CLI finds nsdebug as a plugin, and `docker nsdebug` talks
// to the daemon the CLI would: -H, --context, DOCKER_HOST, DOCKER_CONTEXT and
// the current context each choose it; a bare word is a Docker container even
// where a pod has the same name.
func TestDockerCLIPlugin(t *testing.T) {
	testbed.Require(t)
	home := pluginHome(t)

	// The protocol: metadata, then the plugin listed as valid.
	meta := exec.Command(filepath.Join(home, ".docker", "cli-plugins", DockerPluginName), "docker-cli-plugin-metadata")
	stdout, stderr, code := runProcess(meta)
	var md map[string]string
	if code != 0 || json.Unmarshal([]byte(stdout), &md) != nil || md["SchemaVersion"] != "0.1.0" || md["Vendor"] == "" || md["Version"] == "" || md["ShortDescription"] == "" || md["URL"] == "" || len(md) != 5 {
		t.Fatalf("docker-cli-plugin-metadata: exit %d %q %q", code, stdout, stderr)
	}
	stdout, stderr, code = dockerCLI(t, home, nil, "info", "--format", `{{range .ClientInfo.Plugins}}{{.Name}}|{{.Version}}|{{.Err}}{{"\n"}}{{end}}`)
	if code != 0 || !strings.Contains(stdout, "nsdebug|"+md["Version"]+"|<nil>") {
		t.Errorf("docker info does not list a valid nsdebug plugin: exit %d %q %q", code, stdout, stderr)
	}
	stdout, stderr, code = dockerCLI(t, home, nil, "nsdebug", "version")
	if code != 0 || !strings.HasPrefix(stdout, "nsdebug ") {
		t.Errorf("docker nsdebug version: exit %d %q %q", code, stdout, stderr)
	}

	// A Docker container and a pod of the same name: bare, nsdebug finds
	// both (ambiguous); as a Docker plugin, the container.
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "plug"})
	testbed.RunPod(t, testbed.PodOptions{Name: c.Name})
	want := inodeOf(t, "/proc/"+itoa(c.PID)+"/ns/net")
	if _, stderr, code := run(t, "resolve", c.Name); code != 4 {
		t.Fatalf("nsdebug resolve %s (container and pod): exit %d %q, want 4", c.Name, code, stderr)
	}
	var res struct {
		Runtime, Target string
		Netns           struct{ Inode uint64 }
	}
	stdout, stderr, code = dockerCLI(t, home, nil, "nsdebug", "resolve", c.Name, "-o", "json")
	if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil || res.Runtime != "docker" || res.Target != "docker:"+c.Name || res.Netns.Inode != want {
		t.Errorf("docker nsdebug resolve %s: exit %d %q %q (want docker, net:[%d])", c.Name, code, stdout, stderr, want)
	}
	if out, _, code := dockerCLI(t, home, nil, "nsdebug", "exec", c.Name, "--", "cat", "/sys/class/net/eth0/address"); code != 0 || !strings.Contains(testbed.MustRun(t, "docker", "inspect", "-f", "{{.NetworkSettings.MacAddress}}", c.Name), strings.TrimSpace(out)) || strings.TrimSpace(out) == "" {
		t.Errorf("docker nsdebug exec: exit %d %q", code, out)
	}

	// The daemon is the CLI's: a context (or -H, or DOCKER_HOST) at a
	// socket that never answers makes the lookup fail there, exit 8.
	sock := testbed.SilentSocket(t)
	if _, stderr, code := dockerCLI(t, home, nil, "context", "create", "silent", "--docker", "host=unix://"+sock); code != 0 {
		t.Fatalf("docker context create: %d %s", code, stderr)
	}
	if _, stderr, code := dockerCLI(t, home, nil, "context", "create", "real", "--docker", "host=unix:///run/docker.sock"); code != 0 {
		t.Fatalf("docker context create: %d %s", code, stderr)
	}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"--context", nil, []string{"--context", "silent"}},
		{"-H", nil, []string{"-H", "unix://" + sock}},
		{"DOCKER_HOST", []string{"DOCKER_HOST=unix://" + sock}, nil},
		{"DOCKER_CONTEXT", []string{"DOCKER_CONTEXT=silent"}, nil},
		{"--context over DOCKER_HOST", []string{"DOCKER_HOST=unix:///run/docker.sock"}, []string{"--context", "silent"}},
	} {
		args := append(append([]string{}, tc.args...), "--log-level", "error", "nsdebug", "--timeout", "500ms", "resolve", c.Name)
		_, stderr, code := dockerCLI(t, home, tc.env, args...)
		if code != 8 || !strings.Contains(stderr, sock) {
			t.Errorf("%s: docker %q: exit %d %q, want 8 naming %s", tc.name, args, code, stderr, sock)
		}
	}
	// The current context, and one that reaches the real daemon.
	if _, stderr, code := dockerCLI(t, home, nil, "context", "use", "silent"); code != 0 {
		t.Fatal(stderr)
	}
	if _, stderr, code := dockerCLI(t, home, nil, "nsdebug", "--timeout", "500ms", "resolve", c.Name); code != 8 || !strings.Contains(stderr, sock) {
		t.Errorf("current context silent: exit %d %q", code, stderr)
	}
	if out, stderr, code := dockerCLI(t, home, nil, "--context", "real", "nsdebug", "resolve", c.Name); code != 0 || !strings.Contains(out, "docker:"+c.Name) {
		t.Errorf("--context real: exit %d %q %q", code, out, stderr)
	}
	// nsdebug's own --docker-host still wins.
	if out, stderr, code := dockerCLI(t, home, nil, "nsdebug", "--docker-host", "unix:///var/run/docker.sock", "resolve", c.Name); code != 0 || !strings.Contains(out, "docker:"+c.Name) {
		t.Errorf("--docker-host over the current context: exit %d %q %q", code, out, stderr)
	}
	if _, stderr, code := dockerCLI(t, home, nil, "context", "use", "default"); code != 0 {
		t.Fatal(stderr)
	}

	// Completion through the docker CLI (it runs the plugin's __complete).
	out, _, code := dockerCLI(t, home, nil, "__complete", "nsdebug", "exec", c.Name[:len(c.Name)-1])
	if code != 0 || !strings.Contains(out, c.Name+"\t") {
		t.Errorf("docker __complete nsdebug exec <prefix>: exit %d %q", code, out)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
