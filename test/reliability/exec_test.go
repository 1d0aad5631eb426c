package reliability

// Issue 6 cases for nsdebug exec. Case 3 (the command outlives the thread
// that forked it: no per-thread Pdeathsig) is tested where the thread is
// visible, in enter: TestExecCommandOutlivesItsThread.

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// startExec starts `nsdebug exec ARGS` and returns it with the PID of its
// command once that runs.
func startExec(t *testing.T, args ...string) (*exec.Cmd, *strings.Builder, *strings.Builder, int) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"exec"}, args...)...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := strconv.Itoa(cmd.Process.Pid)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		tasks, _ := os.ReadDir("/proc/" + pid + "/task")
		for _, task := range tasks {
			b, _ := os.ReadFile("/proc/" + pid + "/task/" + task.Name() + "/children")
			if f := strings.Fields(string(b)); len(f) > 0 {
				child, _ := strconv.Atoi(f[0])
				return cmd, &o, &e, child
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nsdebug exec %v started no command (stderr %q)", args, e.String())
	return nil, nil, nil, 0
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// Case 6: the container is removed while `nsdebug exec X -- sleep 30` runs.
// The runtime's removal is not blocked (the command's private mount
// namespace is a slave of the host's, so the netns bind mount's removal
// propagates into it), nsdebug reports how the command ended, and no mount
// or process is left behind.
func TestCase06_ExecWhileContainerRemoved(t *testing.T) {
	testbed.Require(t)
	for _, tc := range []struct {
		name string
		argv []string
		// kill the command after the removal (how it ended: a signal)
		kill     bool
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"killed afterwards", []string{"sleep", "30"}, true, 137, "", "nsdebug: sleep was killed by signal 9 (SIGKILL)\n"},
		// Exits by itself; the netns lives on (the command holds it) but
		// Docker has taken its eth0 away.
		{"ends by itself", []string{"sh", "-c", "sleep 3; ls /sys/class/net; exit 4"}, false, 4, "lo\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "nsdbg-rel-exec"})
			cmd, stdout, stderr, child := startExec(t, append([]string{c.Name, "--"}, tc.argv...)...)
			childNS, _ := os.Readlink("/proc/" + strconv.Itoa(child) + "/ns/net")

			start := time.Now()
			if out, err := testbed.Run("docker", "rm", "-f", c.Name); err != nil {
				t.Fatalf("docker rm -f while exec runs: %v %s", err, out)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("docker rm took %v", d)
			}
			// Docker unmounts the netns at once (it deletes the empty file
			// later, in a periodic sweep).
			if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), c.SandboxKey) {
				t.Errorf("the container's netns %s is still mounted on the host", c.SandboxKey)
			}
			// The removal reached the command's own mount namespace too.
			if mi, err := os.ReadFile("/proc/" + strconv.Itoa(child) + "/mountinfo"); err == nil && strings.Contains(string(mi), c.SandboxKey) {
				t.Errorf("the command's mount namespace still holds %s", c.SandboxKey)
			}
			// The command still runs, still in the container's (now
			// ownerless) netns.
			if now, _ := os.Readlink("/proc/" + strconv.Itoa(child) + "/ns/net"); now != childNS {
				t.Errorf("command's netns changed: %s -> %s", childNS, now)
			}
			if tc.kill {
				syscall.Kill(child, syscall.SIGKILL)
			}
			err := cmd.Wait()
			if code := exitCode(err); code != tc.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.wantCode, stderr.String())
			}
			if stdout.String() != tc.wantOut || stderr.String() != tc.wantErr {
				t.Errorf("stdout %q stderr %q, want %q %q", stdout.String(), stderr.String(), tc.wantOut, tc.wantErr)
			}
			if _, err := os.Stat("/proc/" + strconv.Itoa(child)); err == nil {
				t.Errorf("command %d outlived nsdebug", child)
			}
			mi, _ := os.ReadFile("/proc/self/mountinfo")
			if strings.Contains(string(mi), c.SandboxKey) || strings.Contains(string(mi), c.ID) {
				t.Errorf("a mount of the removed container is left on the host")
			}
		})
	}
}
