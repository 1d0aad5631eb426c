package cmd

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// execOut runs nsdebug exec in-process and fails t unless it exits 0.
func execOut(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, code := run(t, append([]string{"exec"}, args...)...)
	if code != 0 {
		t.Fatalf("exec %q: exit %d, stderr %q, stdout %q", args, code, stderr, stdout)
	}
	return stdout, stderr
}

// addrsOf parses `ip -j addr` output into ifname -> local addresses.
func addrsOf(t *testing.T, out string) map[string][]string {
	t.Helper()
	var links []ipAddr
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		t.Fatalf("ip -j addr: %v\n%s", err, out)
	}
	m := map[string][]string{}
	for _, l := range links {
		m[l.Ifname] = []string{}
		for _, a := range l.AddrInfo {
			m[l.Ifname] = append(m[l.Ifname], a.Local)
		}
	}
	return m
}

// linkNames is iproute2's word (netlink, not sysfs) on the interfaces of a netns.
func linkNames(t *testing.T, nsPath string) string {
	t.Helper()
	var links []ipLink
	nsJSON(t, nsPath, &links, "ip", "-j", "link")
	var names []string
	for _, l := range links {
		names = append(names, l.Ifname)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// sysClassNet is what the command sees in /sys/class/net.
func sysClassNet(t *testing.T, target string, extra ...string) string {
	t.Helper()
	out, _ := execOut(t, append(append(extra, target, "--"), "ls", "/sys/class/net")...)
	names := strings.Fields(out)
	sort.Strings(names)
	return strings.Join(names, " ")
}

// Done-when: exec sees the container's interfaces and IPs (vs docker
// inspect), /sys/class/net matches netlink, DNS comes from the container
// (Docker's embedded DNS resolves a container name), on the default bridge
// and on a user-defined network, by name and by pid:.
func TestExecDockerContainer(t *testing.T) {
	testbed.Require(t)
	userNet := testbed.NewDockerNetwork(t, "nsdbg-exec")
	web := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "nsdbg-exec-web", Network: userNet})
	db := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "nsdbg-exec-db", Network: userNet})
	plain := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "nsdbg-exec-plain"})

	for _, c := range []*testbed.Container{web, plain} {
		for _, target := range []string{c.Name, "docker:" + c.Name, "pid:" + strconv.Itoa(c.PID)} {
			out, _ := execOut(t, target, "--", "ip", "-j", "addr")
			addrs := addrsOf(t, out)
			if len(c.IPs) != 1 || !slices.Contains(addrs["eth0"], c.IPs[0]) {
				t.Errorf("exec %s: eth0 addresses %v, docker inspect says %v", target, addrs["eth0"], c.IPs)
			}
			if !slices.Contains(addrs["lo"], "127.0.0.1") || len(addrs) != 2 {
				t.Errorf("exec %s: interfaces %v, want lo and eth0 only", target, addrs)
			}
			want := linkNames(t, c.SandboxKey)
			if got := sysClassNet(t, target); got != want {
				t.Errorf("exec %s: /sys/class/net = %q, netlink says %q", target, got, want)
			}
		}
	}

	// Docker's embedded DNS at 127.0.0.11 resolves the other container's
	// name, as inside the container; by name (the runtime's files) and by
	// pid: (the files read from the process's own root).
	for _, target := range []string{web.Name, "pid:" + strconv.Itoa(web.PID)} {
		out, stderr := execOut(t, target, "--", "getent", "hosts", db.Name)
		if f := strings.Fields(out); len(f) < 2 || f[0] != db.IPs[0] {
			t.Errorf("exec %s getent hosts %s = %q, want %s", target, db.Name, out, db.IPs[0])
		}
		if stderr != "" {
			t.Errorf("exec %s: unexpected stderr %q (the 127.0.0.11 stub exists in this netns)", target, stderr)
		}
		out, _ = execOut(t, target, "--", "cat", "/etc/resolv.conf")
		if !strings.Contains(out, "nameserver 127.0.0.11") {
			t.Errorf("exec %s: resolv.conf is not the container's: %q", target, out)
		}
		out, _ = execOut(t, target, "--", "cat", "/etc/hosts")
		if !strings.Contains(out, web.IPs[0]) {
			t.Errorf("exec %s: /etc/hosts is not the container's: %q", target, out)
		}
	}

	// --host-dns keeps the host's files; --no-sysfs the host's /sys.
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	if out, _ := execOut(t, "--host-dns", web.Name, "--", "cat", "/etc/resolv.conf"); out != string(hostResolv) {
		t.Errorf("--host-dns: resolv.conf %q, host has %q", out, hostResolv)
	}
	if got, host := sysClassNet(t, web.Name, "--no-sysfs"), linkNames(t, "/proc/self/ns/net"); got != host {
		t.Errorf("--no-sysfs: /sys/class/net = %q, want the host's %q", got, host)
	}

	// Nothing of the private mount namespace reaches the host.
	b, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(b), " /etc/resolv.conf ") || strings.Contains(string(b), " /etc/hosts ") {
		t.Errorf("a bind mount over /etc reached the host's mount table")
	}
}

// Done-when: on a CRI pod, exec sees the pod IP and its /sys/class/net.
func TestExecCRIPod(t *testing.T) {
	testbed.Require(t)
	pod := testbed.RunPod(t, testbed.PodOptions{Namespace: "nsdbg-exec", Containers: []string{"app"}})
	for _, target := range []string{pod.Ref(), pod.Ref() + "/app", pod.Name} {
		out, _ := execOut(t, target, "--", "ip", "-j", "addr")
		if addrs := addrsOf(t, out); !slices.Contains(addrs["eth0"], pod.IP) {
			t.Errorf("exec %s: eth0 %v, CRI pod IP %s", target, addrs["eth0"], pod.IP)
		}
		if got, want := sysClassNet(t, target), linkNames(t, pod.NetnsPath); got != want {
			t.Errorf("exec %s: /sys/class/net = %q, netlink says %q", target, got, want)
		}
		out, _ = execOut(t, target, "--", "sh", "-c", "echo $NSDEBUG_TARGET")
		if !strings.HasPrefix(strings.TrimSpace(out), "pod:nsdbg-exec/"+pod.Name) {
			t.Errorf("exec %s: NSDEBUG_TARGET=%q", target, out)
		}
	}
}

// A plain containerd container has no runtime resolver files: exec takes
// the process root's /etc/resolv.conf, resolving a symlink there inside the
// container's root (an absolute link that means nothing on the host).
func TestExecContainerdSymlinkedResolvConf(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunCtrdContainer(t, testbed.CtrdNamespace, testbed.UniqueName("nsdbg-exec"))
	root := "/proc/" + strconv.Itoa(c.PID) + "/root"
	os.MkdirAll(root+"/etc", 0o755)
	os.MkdirAll(root+"/run/resolve", 0o755)
	want := "nameserver 192.0.2.53\nsearch nsdebug.test\n"
	if err := os.WriteFile(root+"/run/resolve/stub.conf", []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(root + "/etc/resolv.conf")
	if err := os.Symlink("/run/resolve/stub.conf", root+"/etc/resolv.conf"); err != nil {
		t.Fatal(err)
	}
	out, _ := execOut(t, c.Ref(), "--", "cat", "/etc/resolv.conf")
	if out != want {
		t.Errorf("resolv.conf = %q, want the container's %q", out, want)
	}
}

// A netns: target with a loopback stub nameserver that nothing serves in
// that netns (/etc/netns/NAME/resolv.conf, as ip netns exec uses) warns.
func TestExecWarnsMissingLoopbackStub(t *testing.T) {
	testbed.RequireRoot(t)
	ns := testbed.NewNetNS(t, "nsdbg-exec")
	dir := "/etc/netns/" + ns.Name
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.WriteFile(dir+"/resolv.conf", []byte("nameserver 127.0.0.53\n"), 0o644)
	out, stderr := execOut(t, "netns:"+ns.Name, "--", "cat", "/etc/resolv.conf")
	if out != "nameserver 127.0.0.53\n" {
		t.Errorf("resolv.conf = %q, want /etc/netns/NAME's", out)
	}
	if !strings.Contains(stderr, "warning: nameserver 127.0.0.53 is a loopback stub") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr = %q, want one warning about 127.0.0.53", stderr)
	}
	// With a server on the stub, no warning.
	ns.Exec(t, "ip", "link", "set", "lo", "up")
	ns.StartProcess(t, "python3", "-c", "import socket,time; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.53', 53)); time.sleep(600)")
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, stderr = execOut(t, "netns:"+ns.Name, "--", "true")
		if stderr == "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if stderr != "" {
		t.Errorf("a listening stub still warns: %q", stderr)
	}
}

// Done-when: exit codes (the command's own, 125/126/127), closed stdin,
// --user/--env/--workdir, --pid.
func TestExecStatusAndOptions(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "nsdbg-exec-st"})
	private, err := os.MkdirTemp("", "nsdbg-private-") // 0700, root's: nobody cannot enter it
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(private)
	for _, tc := range []struct {
		args []string
		code int
		msg  string // on stderr; "" = stderr empty
	}{
		{[]string{c.Name, "--", "true"}, 0, ""},
		{[]string{c.Name, "--", "sh", "-c", "exit 7"}, 7, ""},
		{[]string{c.Name, "--", "sh", "-c", "kill -TERM $$"}, 143, "killed by signal 15 (SIGTERM)"},
		{[]string{c.Name, "--", "no-such-command-nsdebug"}, 127, "command not found"},
		{[]string{c.Name, "--", "/no/such/file"}, 127, "command not found"},
		{[]string{c.Name, "--", "/etc/passwd"}, 126, "not executable"},
		{[]string{c.Name, "--", "/etc"}, 126, "is a directory"},
		{[]string{"nsdbg-no-such-container", "--", "true"}, 125, "no container or pod matches"},
		{[]string{"pid:4194000", "--", "true"}, 125, "no process"},
		{[]string{c.Name}, 125, "no command given"},
		{[]string{"--", "true"}, 125, "no TARGET"},
		{[]string{c.Name, "extra", "--", "true"}, 125, "only TARGET goes before"},
		{[]string{c.Name, "ls", "-l"}, 125, "go after \"--\""},
		{[]string{"--bogus", c.Name, "--", "true"}, 125, "unknown flag"},
		{[]string{"-u", "no-such-user-nsdebug", c.Name, "--", "true"}, 125, "no such user"},
		{[]string{"-w", "/no/such/dir", c.Name, "--", "true"}, 125, "not a directory"},
		{[]string{"-u", "nobody", "-w", private, c.Name, "--", "true"}, 125, "user 65534 cannot enter /"}, // private, or a parent $TMPDIR keeps closed
		{[]string{"-e", "=x", c.Name, "--", "true"}, 125, "want KEY=VALUE"},
	} {
		stdout, stderr, code := run(t, append([]string{"exec"}, tc.args...)...)
		if code != tc.code {
			t.Errorf("exec %q: exit %d, want %d (stderr %q)", tc.args, code, tc.code, stderr)
		}
		if tc.msg == "" && stderr != "" || tc.msg != "" && (!strings.Contains(stderr, tc.msg) || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "nsdebug: ")) {
			t.Errorf("exec %q: stderr %q, want one line with %q", tc.args, stderr, tc.msg)
		}
		if stdout != "" {
			t.Errorf("exec %q: stdout %q", tc.args, stdout)
		}
	}

	// nsdebug's flags before or after TARGET; the command's after "--".
	out, _ := execOut(t, "-u", "nobody", "-e", "FOO=bar", c.Name, "-w", "/usr", "--", "sh", "-c", `echo "$(id -u) $FOO $(pwd) $HOME"`)
	if out != "65534 bar /usr /nonexistent\n" {
		t.Errorf("--user/--env/--workdir: %q", out)
	}
	out, _ = execOut(t, "--pid", c.Name, "--", "readlink", "/proc/self/ns/pid")
	want, _ := os.Readlink("/proc/" + strconv.Itoa(c.PID) + "/ns/pid")
	if strings.TrimSpace(out) != want {
		t.Errorf("--pid: command in %q, container in %q", out, want)
	}
	out, _ = execOut(t, c.Name, "--", "readlink", "/proc/self/ns/pid")
	if self, _ := os.Readlink("/proc/self/ns/pid"); strings.TrimSpace(out) != self {
		t.Errorf("without --pid: command in %q, want the host's %q", out, self)
	}
	// Only the netns changes: mount (a private child of the host's), UTS
	// and user namespaces stay the host's.
	for _, ns := range []string{"uts", "user", "ipc"} {
		out, _ = execOut(t, c.Name, "--", "readlink", "/proc/self/ns/"+ns)
		if self, _ := os.Readlink("/proc/self/ns/" + ns); strings.TrimSpace(out) != self {
			t.Errorf("%s namespace: %q, want the host's %q", ns, out, self)
		}
	}

	// Through the binary: stdin closed, stdin a pipe, and stdin passed on.
	bin := nsdebugBinary(t)
	sh := func(script string) (string, int) {
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = append(os.Environ(), "NSD="+bin, "C="+c.Name)
		o, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(o), code
	}
	if o, code := sh(`"$NSD" exec "$C" -- cat <&-; echo "rc=$?"`); o != "rc=0\n" || code != 0 {
		t.Errorf("closed stdin: %q", o)
	}
	if o, _ := sh(`echo hello | "$NSD" exec "$C" -- cat`); o != "hello\n" {
		t.Errorf("stdin through a pipe: %q", o)
	}
	if o, _ := sh(`printf 'echo in-$NSDEBUG_TARGET; exit 5\n' | "$NSD" shell "$C"; echo "rc=$?"`); o != "in-docker:"+c.Name+"\nrc=5\n" {
		t.Errorf("shell with commands on stdin: %q", o)
	}
}

// Done-when: signals reach the command. A terminal's Ctrl-C goes to the
// whole foreground process group: the command stops, nsdebug reports 130
// after it. A SIGTERM sent to nsdebug alone is passed on; nsdebug exits
// only once its command is gone.
func TestExecSignals(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "nsdbg-exec-sig"})
	bin := nsdebugBinary(t)
	for _, tc := range []struct {
		name  string
		group bool
		sig   syscall.Signal
		code  int
	}{
		{"ctrl-c to the process group", true, syscall.SIGINT, 130},
		{"SIGTERM to nsdebug", false, syscall.SIGTERM, 143},
		{"SIGHUP to nsdebug", false, syscall.SIGHUP, 129},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, "exec", c.Name, "--", "sleep", "30")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			child := waitChild(t, cmd.Process.Pid)
			start := time.Now()
			pid := cmd.Process.Pid
			if tc.group {
				pid = -pid
			}
			syscall.Kill(pid, tc.sig)
			err := cmd.Wait()
			if time.Since(start) > 10*time.Second {
				t.Errorf("nsdebug took %v to end", time.Since(start))
			}
			code := -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, stderr.String())
			}
			if _, err := os.Stat("/proc/" + strconv.Itoa(child)); err == nil {
				t.Errorf("the command (PID %d) outlived nsdebug", child)
				syscall.Kill(child, syscall.SIGKILL)
			}
		})
	}
}

// waitChild returns the PID of nsdebug's child (the command), once it runs.
func waitChild(t *testing.T, pid int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
		for _, task := range tasks {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + task.Name() + "/children")
			if f := strings.Fields(string(b)); len(f) > 0 {
				child, _ := strconv.Atoi(f[0])
				if comm, _ := os.ReadFile("/proc/" + f[0] + "/comm"); strings.TrimSpace(string(comm)) == "sleep" {
					return child
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nsdebug %d started no command", pid)
	return 0
}

// Done-when: the terminal passes through (bash is interactive, the shell's
// prompt names the target) and a Ctrl-C typed in it stops the command, not
// nsdebug alone. script(1) gives nsdebug a real pseudo-terminal.
func TestExecTerminal(t *testing.T) {
	testbed.Require(t)
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) not installed")
	}
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "nsdbg-exec-tty"})
	bin := nsdebugBinary(t)
	// The terminal is driven by what it prints, not by sleeps: on a slow
	// machine bash may start after input was typed, and readline then
	// redraws the line scrolled so the prompt never appears whole.
	inTTY := func(command string, drive func(t *ttySession)) (string, int, time.Duration) {
		t.Helper()
		cmd := exec.Command("script", "-qec", "stty cols 1000 2>/dev/null; "+command, "/dev/null")
		cmd.Env = append(os.Environ(), "SHELL=/bin/bash", "TERM=dumb")
		stdin, _ := cmd.StdinPipe()
		s := &ttySession{t: t, in: stdin, cmd: cmd}
		cmd.Stdout, cmd.Stderr = &s.out, &s.out
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		drive(s)
		err := cmd.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return s.out.String(), code, time.Since(start)
	}

	out, code, _ := inTTY(bin+" exec "+c.Name+" -- sh -c 'test -t 0 && test -t 1 && echo on-a-tty'", func(*ttySession) {})
	if code != 0 || !strings.Contains(out, "on-a-tty") {
		t.Errorf("exec in a terminal: exit %d, %q", code, out)
	}

	out, code, _ = inTTY(bin+" shell "+c.Name, func(s *ttySession) {
		s.waitFor("[nsdebug docker:" + c.Name + "]")
		s.write("echo in $NSDEBUG_TARGET; ls /sys/class/net | tr '\\n' ' '; echo\n")
		s.waitFor("in docker:" + c.Name + "\r\n")
		s.write("exit 6\n")
	})
	if code != 6 || !strings.Contains(out, "[nsdebug docker:"+c.Name+"]") || !strings.Contains(out, "in docker:"+c.Name) || !strings.Contains(out, "eth0 lo") {
		t.Errorf("interactive shell: exit %d, output %q", code, out)
	}

	// Ctrl-C goes to the terminal's foreground process group only once the
	// command runs; "started" is printed by the command itself.
	out, code, took := inTTY(bin+" exec "+c.Name+" -- sh -c 'echo started; exec sleep 30'", func(s *ttySession) {
		s.waitFor("started")
		s.write("\x03") // Ctrl-C: the terminal signals its foreground process group
	})
	if code != 130 || took > 10*time.Second {
		t.Errorf("Ctrl-C: exit %d after %v, want 130 at once (output %q)", code, took, out)
	}
}

// ttySession is the typing side of a script(1) terminal: what it printed so
// far, and a way to wait for a string before typing more.
type ttySession struct {
	t   *testing.T
	in  io.Writer
	cmd *exec.Cmd
	out testbed.SyncBuffer // written by exec's copy goroutine
}

func (s *ttySession) write(text string) { s.in.Write([]byte(text)) }

func (s *ttySession) waitFor(want string) {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(s.out.String(), want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Errorf("terminal never printed %q; it printed %q", want, s.out.String())
	s.cmd.Process.Kill() // the failure is reported; don't wait on a shell that waits on us
}
