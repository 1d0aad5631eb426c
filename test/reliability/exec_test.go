package reliability

// Issue 6 cases for nsdebug exec. Case 3 (the command outlives the thread
// that forked it: no per-thread Pdeathsig) is tested where the thread is
// visible, in enter: TestExecCommandOutlivesItsThread.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// startExec starts `nsdebug exec ARGS` and returns it with the PID of its
// command once that runs: a child whose argv[0] is the one after "--" (Go's
// os/exec may fork a short-lived probe child first).
func startExec(t *testing.T, args ...string) (*exec.Cmd, *strings.Builder, *strings.Builder, int) {
	t.Helper()
	want := ""
	for i, a := range args {
		if a == "--" && i+1 < len(args) {
			want = args[i+1]
			break
		}
	}
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
			for _, f := range strings.Fields(string(b)) {
				argv, _ := os.ReadFile("/proc/" + f + "/cmdline")
				if a0, _, _ := strings.Cut(string(argv), "\x00"); a0 == want {
					child, _ := strconv.Atoi(f)
					return cmd, &o, &e, child
				}
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

// netnsRoot is a process's network namespace as mountinfo names an nsfs
// mount of it ("net:[INODE]").
func netnsRoot(t *testing.T, pid int) string {
	t.Helper()
	ns, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// nsfsMounts lists the nsfs mounts ("net:[INODE] /mount/point") in the
// mount namespace of process pid.
func nsfsMounts(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if f := strings.Fields(pre); ok && len(f) > 4 && strings.HasPrefix(post, "nsfs ") {
			out = append(out, f[3]+" "+f[4])
		}
	}
	return out
}

// mountedIn reports the mounts of namespace ns ("net:[INODE]") in process
// pid's mount namespace.
func mountedIn(t *testing.T, pid int, ns string) []string {
	t.Helper()
	var out []string
	for _, m := range nsfsMounts(t, pid) {
		if strings.HasPrefix(m, ns+" ") {
			out = append(out, m)
		}
	}
	return out
}

// mountedInAfter is mountedIn once nsdebug has had up to 2 s to detach the
// command's copies of namespace mounts, which it does just after the fork.
func mountedInAfter(t *testing.T, pid int, ns string) []string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		m := mountedIn(t, pid, ns)
		if len(m) == 0 || time.Now().After(deadline) {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Case 6: the container is removed while `nsdebug exec X -- sleep 30` runs.
// The runtime's removal is not blocked, nsdebug reports how the command
// ended, and no mount or process is left behind: not on the host, and not
// in the command's own private mount namespace either (where a copy of the
// container's netns mount would keep the namespace alive, invisible, as
// long as the command runs; Docker's /run/docker/netns mounts are private
// on most hosts, so the host's unmount never reaches such a copy). Mounts
// are found by namespace inode: mountinfo shows /run/docker/netns/X where
// Docker's SandboxKey says /var/run/docker/netns/X.
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
			ns := netnsRoot(t, c.PID)
			if len(mountedIn(t, os.Getpid(), ns)) == 0 {
				t.Fatalf("the container's netns %s is not mounted on the host (Docker's SandboxKey %s)", ns, c.SandboxKey)
			}
			cmd, stdout, stderr, child := startExec(t, append([]string{c.Name, "--"}, tc.argv...)...)

			start := time.Now()
			if out, err := testbed.Run("docker", "rm", "-f", c.Name); err != nil {
				t.Fatalf("docker rm -f while exec runs: %v %s", err, out)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("docker rm took %v", d)
			}
			// Docker unmounts the netns at once (it deletes the empty file
			// later, in a periodic sweep).
			if m := mountedIn(t, os.Getpid(), ns); len(m) > 0 {
				t.Errorf("the container's netns is still mounted on the host: %v", m)
			}
			// Nor does the command's own mount namespace hold a copy.
			if m := mountedInAfter(t, child, ns); len(m) > 0 {
				t.Errorf("the command's mount namespace still holds the removed container's netns: %v", m)
			}
			// The command still runs, still in the container's (now
			// ownerless) netns.
			if now := netnsRoot(t, child); now != ns {
				t.Errorf("command's netns changed: %s -> %s", ns, now)
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
			if m := mountedIn(t, os.Getpid(), ns); len(m) > 0 {
				t.Errorf("a mount of the removed container is left on the host: %v", m)
			}
			mi, _ := os.ReadFile("/proc/self/mountinfo")
			if strings.Contains(string(mi), c.ID) {
				t.Errorf("a mount naming the removed container's ID is left on the host")
			}
		})
	}
}

// Case 6, the other containers: one removed while an exec into ANOTHER
// container runs must not live on in that command's mount namespace (it
// would stay alive, invisible to the host, to lsns and to nsdebug ls, for
// as long as the command, hours for a shell). Mounts that do get the
// host's unmounts (/run/netns, shared) stay, so ip netns exec still works
// inside; that is checked in enter (TestExecDetachesUnpropagatedNetnsMounts).
func TestCase06_ExecKeepsNoOtherContainerAlive(t *testing.T) {
	testbed.Require(t)
	victim := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "nsdbg-rel-victim"})
	other := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "nsdbg-rel-other"})
	ns := netnsRoot(t, victim.PID)
	if len(mountedIn(t, os.Getpid(), ns)) == 0 {
		t.Fatalf("the victim's netns %s is not mounted on the host", ns)
	}
	cmd, _, stderr, child := startExec(t, other.Name, "--", "sleep", "30")
	testbed.MustRun(t, "docker", "rm", "-f", victim.Name)
	if m := mountedIn(t, os.Getpid(), ns); len(m) > 0 {
		t.Errorf("the removed container's netns is still mounted on the host: %v", m)
	}
	if m := mountedInAfter(t, child, ns); len(m) > 0 {
		t.Errorf("nsdebug exec %s keeps the removed container %s's netns alive in its mount namespace: %v", other.Name, victim.Name, m)
	}
	syscall.Kill(child, syscall.SIGTERM)
	if code := exitCode(cmd.Wait()); code != 143 {
		t.Errorf("exit %d, want 143 (stderr %q)", code, stderr.String())
	}
}

// Errors are one line on stderr (README), also when they name the user's
// command: a name with a newline in it is shown quoted, for the 127 (not
// found), 126 (not executable) and killed-by-signal messages.
func TestExecNamesOddCommandsOnOneLine(t *testing.T) {
	testbed.RequireRoot(t)
	ns := testbed.NewNetNS(t, "rel-oddname")
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not\nexec")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	killer := filepath.Join(dir, "kills\nitself")
	if err := os.WriteFile(killer, []byte("#!/bin/sh\nkill -TERM $$\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		argv0 string
		code  int
		want  string
	}{
		{"no\nsuch", 127, `nsdebug: "no\nsuch": command not found in PATH` + "\n"},
		{"/no/where/x\ny", 127, `nsdebug: "/no/where/x\ny": command not found` + "\n"},
		{notExec, 126, `nsdebug: "` + dir + `/not\nexec": permission denied (not executable)` + "\n"},
		{killer, 143, `nsdebug: "` + dir + `/kills\nitself" was killed by signal 15 (SIGTERM)` + "\n"},
	} {
		r := nsdebug(t, "exec", "netns:"+ns.Name, "--", tc.argv0)
		r.oneLine(t, "exec "+printable(tc.argv0), tc.code)
		if r.stderr != tc.want {
			t.Errorf("exec %s: stderr %q, want %q", printable(tc.argv0), r.stderr, tc.want)
		}
	}
	// So is a --workdir that is not there (flattened, it would hide what
	// was given).
	r := nsdebug(t, "exec", "-w", "/no\nwhere", "netns:"+ns.Name, "--", "true")
	r.oneLine(t, "exec -w /no\\nwhere", 125)
	if want := `nsdebug: --workdir "/no\nwhere": not a directory` + "\n"; r.stderr != want {
		t.Errorf("exec -w /no\\nwhere: stderr %q, want %q", r.stderr, want)
	}
	// Plain names stay as they are (README's examples).
	r = nsdebug(t, "exec", "netns:"+ns.Name, "--", "no-such-tool")
	if r.code != 127 || r.stderr != "nsdebug: no-such-tool: command not found in PATH\n" {
		t.Errorf("exec no-such-tool: exit %d, stderr %q", r.code, r.stderr)
	}
}
