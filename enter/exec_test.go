package enter

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

// ---- unit tests (no root) ----

func TestLookPathTellsNotFoundFromNotExecutable(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tool"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "data"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "data"), []byte("#!/bin/sh\n"), 0o755)
	for _, tc := range []struct {
		file, path string
		want       string // path found, or "" for an error
		code       int
	}{
		{"tool", dir, filepath.Join(dir, "tool"), 0},
		{"tool", "/nonexistent:" + dir, filepath.Join(dir, "tool"), 0},
		{"data", dir, "", 126},
		{"data", dir + ":" + other, filepath.Join(other, "data"), 0}, // a later executable wins, as in shells
		{"sub", dir, "", 126},
		{"nothere", dir, "", 127},
		{"nothere", "", "", 127},
		{filepath.Join(dir, "tool"), "", filepath.Join(dir, "tool"), 0},
		{filepath.Join(dir, "data"), "", "", 126},
		{filepath.Join(dir, "sub"), "", "", 126},
		{filepath.Join(dir, "nothere"), "", "", 127},
	} {
		got, err := LookPath(tc.file, tc.path)
		var se *StartError
		switch {
		case tc.want != "" && (err != nil || got != tc.want):
			t.Errorf("LookPath(%q, %q) = %q, %v; want %q", tc.file, tc.path, got, err, tc.want)
		case tc.want == "" && (!errors.As(err, &se) || se.Code != tc.code):
			t.Errorf("LookPath(%q, %q) = %q, %v; want status %d", tc.file, tc.path, got, err, tc.code)
		}
	}
}

func TestShownNamesAreOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"curl":        "curl",
		"/usr/bin/ip": "/usr/bin/ip",
		"my tool":     "my tool",
		"café":        "café",
		"no\nsuch":    `"no\nsuch"`,
		"cr\rx":       `"cr\rx"`,
		"tab\tx":      `"tab\tx"`,
		"esc\x1b[2J":  `"esc\x1b[2J"`,
		"bad\xffutf8": `"bad\xffutf8"`,
	} {
		if got := shown(in); got != want {
			t.Errorf("shown(%q) = %s, want %s", in, got, want)
		}
	}
	if _, err := LookPath("no\nsuch", t.TempDir()); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("LookPath error %q", err)
	}
}

func TestLoopbackNameservers(t *testing.T) {
	conf := "# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nnameserver ::1\nnameserver fe80::1%eth0\nnameserver ::ffff:127.0.0.11\nsearch x\nnameserver bogus\n"
	got := loopbackNameservers([]byte(conf))
	want := []netip.Addr{netip.MustParseAddr("127.0.0.53"), netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.11")}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("got %v, want %v", got, want)
		}
	}
}

func TestParseProcNetUDPAndStubs(t *testing.T) {
	// As the kernel prints them: 127.0.0.11:41234, 0.0.0.0:53, [::1]:5353.
	udp := "  sl  local_address rem_address   st\n" +
		"   1: 0B00007F:A112 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0\n" +
		"   2: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0\n"
	udp6 := "  sl  local_address                         remote_address\n" +
		"   3: 00000000000000000000000001000000:14E9 00000000000000000000000000000000:0000 07\n"
	got := append(parseProcNetUDP([]byte(udp)), parseProcNetUDP([]byte(udp6))...)
	want := []string{"127.0.0.11:41234", "0.0.0.0:53", "[::1]:5353"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("entry %d = %s, want %s", i, got[i], want[i])
		}
	}
}

func TestCredential(t *testing.T) {
	if c, env, err := credential(""); c != nil || env != nil || err != nil {
		t.Errorf("no --user: %v %v %v", c, env, err)
	}
	c, env, err := credential("nobody")
	if err != nil || c.Uid != 65534 || !strings.HasPrefix(strings.Join(env, " "), "HOME=") {
		t.Errorf("nobody: %+v %v %v", c, env, err)
	}
	if c, _, err := credential("4321"); err != nil || c.Uid != 4321 || c.Gid != 4321 {
		t.Errorf("bare unknown UID: %+v %v (want GID = UID, never root's group)", c, err)
	}
	if c, _, err := credential("4321:99"); err != nil || c.Uid != 4321 || c.Gid != 99 || c.Groups != nil {
		t.Errorf("UID:GID: %+v %v", c, err)
	}
	for _, bad := range []string{"no-such-user-nsdebug", "nobody:no-such-group-nsdebug", "-1"} {
		if _, _, err := credential(bad); !errors.Is(err, nserr.ErrUsage) {
			t.Errorf("%q: %v, want a usage error", bad, err)
		}
	}
}

func TestShellCommandPrompt(t *testing.T) {
	sh, err := NewShellCommand("/no/such/shell", "docker:web", true)
	if err != nil || sh.Argv[0] != "/bin/sh" || sh.Env[0] != "PS1=[nsdebug docker:web] # " {
		t.Errorf("missing $SHELL: %+v %v", sh, err)
	}
	if _, err := os.Stat("/bin/bash"); err != nil {
		t.Skip("no bash")
	}
	sh, err = NewShellCommand("/bin/bash", "pod:a/b'$x`", false)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	if strings.Join(sh.Argv, " ") != "/bin/bash --rcfile /dev/fd/3" || len(sh.Files) != 1 {
		t.Fatalf("bash: %+v", sh)
	}
	rc, _ := io.ReadAll(sh.Files[0])
	// The label stays literal in bash's prompt expansion.
	cmd := exec.Command("bash", "--norc", "-c", string(rc)+"\nprintf %s \"${PS1@P}\"")
	cmd.Env = append(os.Environ(), "NSDEBUG_TARGET=pod:a/b'$x`")
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), "[nsdebug pod:a/b'$x`]") {
		t.Errorf("prompt %q %v (rc %q)", out, err, rc)
	}
}

// Which nsfs mounts of the private namespace the host's unmounts would not
// reach: those whose parent has no master (the mount's own tag does not
// matter: unmounts propagate through the parent), the top of a stack first.
func TestUnpropagatedNsfsMounts(t *testing.T) {
	mi := "" +
		"26 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n" +
		"68 26 254:0 /run/netns /run/netns rw,relatime master:1 - ext4 /dev/vda rw\n" +
		"69 68 0:4 net:[4026532178] /run/netns/blue rw master:3 - nsfs nsfs rw\n" +
		"70 68 0:4 net:[4026532179] /run/netns/private rw - nsfs nsfs rw\n" +
		"71 26 0:4 net:[4026531833] /run/docker/netns/default rw - nsfs nsfs rw\n" +
		"72 26 0:4 net:[4026532300] /run/docker/netns/ab\\040c rw master:9 - nsfs nsfs rw\n" +
		"73 72 0:4 net:[4026532301] /run/docker/netns/ab\\040c rw - nsfs nsfs rw\n" +
		"74 26 0:4 mnt:[4026532400] /run/pinned-mnt rw - nsfs nsfs rw\n" +
		"75 26 0:39 / /tmp rw - tmpfs tmpfs rw\n"
	var got []string
	for _, m := range unpropagatedNsfsMounts([]byte(mi)) {
		got = append(got, strconv.Itoa(m.id)+" "+strconv.FormatUint(m.ino, 10)+" "+m.mountPoint)
	}
	want := []string{
		"74 4026532400 /run/pinned-mnt",
		"73 4026532301 /run/docker/netns/ab c",
		"72 4026532300 /run/docker/netns/ab c",
		"71 4026531833 /run/docker/netns/default",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// ---- integration tests (root, real namespaces) ----

// startIn starts argv in a fresh netns and returns it with the namespace.
func startIn(t *testing.T, s Spec) (*Process, *testbed.NetNS) {
	t.Helper()
	n := testbed.NewNetNS(t, "exec")
	s.NS = openNS(t, n)
	if s.Path == "" {
		p, err := LookPath(s.Args[0], os.Getenv("PATH"))
		if err != nil {
			t.Fatal(err)
		}
		s.Path = p
	}
	p, err := Start(s)
	if err != nil {
		t.Fatal(err)
	}
	return p, n
}

// Issue 6 case 3: a command started by exec outlives the thread (and the
// goroutine) that forked it. Pdeathsig is per-thread in Go; had it been
// set, the command would die with that thread.
func TestExecCommandOutlivesItsThread(t *testing.T) {
	testbed.RequireRoot(t)
	home := threadNS(t)
	mntHome, _ := os.Readlink("/proc/thread-self/ns/mnt")
	var out bytes.Buffer
	p, n := startIn(t, Spec{Args: []string{"sh", "-c", "sleep 1; readlink /proc/self/ns/net; ls /sys/class/net"}, Stdout: &out, Sysfs: true})
	// The forking thread is gone (its goroutine returned locked) ...
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat("/proc/self/task/" + strconv.Itoa(p.tid)); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("forking thread %d still exists", p.tid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// ... the command is still running ...
	if err := unix.Kill(p.Pid(), 0); err != nil {
		t.Fatalf("command died with its thread: %v", err)
	}
	// ... and ends normally, later, in the target netns with its own /sys.
	st, err := p.Wait()
	if err != nil || !st.Success() {
		t.Fatalf("command: %v %v", st, err)
	}
	lines := strings.Fields(out.String())
	id, _ := os.Stat(n.Path)
	if len(lines) != 2 || lines[0] != "net:["+strconv.FormatUint(id.Sys().(*syscall.Stat_t).Ino, 10)+"]" || lines[1] != "lo" {
		t.Errorf("command saw %q, want its netns and only lo in /sys/class/net", out.String())
	}
	allThreadsIn(t, home)
	allThreadsInMnt(t, mntHome)
}

// Bind over a symlink (systemd-resolved's /etc/resolv.conf): the link's
// target is covered in the command's mount namespace only; host-file binds
// and copies both work; nothing stays mounted.
func TestExecBindsFollowSymlinksPrivately(t *testing.T) {
	testbed.RequireRoot(t)
	dir := t.TempDir()
	real := filepath.Join(dir, "stub-resolv.conf")
	os.WriteFile(real, []byte("nameserver 127.0.0.53\n"), 0o644)
	link := filepath.Join(dir, "resolv.conf")
	os.Symlink("stub-resolv.conf", link)
	hostsSrc := filepath.Join(dir, "container-hosts")
	os.WriteFile(hostsSrc, []byte("10.9.8.7 db\n"), 0o644)
	hostsDst := filepath.Join(dir, "hosts")
	os.WriteFile(hostsDst, []byte("127.0.0.1 localhost\n"), 0o644)

	var out bytes.Buffer
	p, _ := startIn(t, Spec{
		Args:   []string{"cat", link, hostsDst},
		Stdout: &out,
		Binds:  []Bind{{Data: []byte("nameserver 127.0.0.11\n"), Dst: link}, {Path: hostsSrc, Dst: hostsDst}},
	})
	if st, err := p.Wait(); err != nil || !st.Success() {
		t.Fatalf("%v %v", st, err)
	}
	if out.String() != "nameserver 127.0.0.11\n10.9.8.7 db\n" {
		t.Errorf("command saw %q", out.String())
	}
	if b, _ := os.ReadFile(real); string(b) != "nameserver 127.0.0.53\n" {
		t.Errorf("host file changed: %q", b)
	}
	if b, _ := os.ReadFile(hostsDst); string(b) != "127.0.0.1 localhost\n" {
		t.Errorf("host file changed: %q", b)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), dir) || strings.Contains(string(mi), " - tmpfs nsdebug ") {
		t.Errorf("a mount was left on the host:\n%s", mi)
	}
}

// The stale check: a process that exited, or a PID now in another netns,
// is refused before anything runs.
func TestExecRefusesStaleProcess(t *testing.T) {
	testbed.RequireRoot(t)
	n := testbed.NewNetNS(t, "stale")
	ns := openNS(t, n)
	marker := filepath.Join(t.TempDir(), "ran")
	argv := []string{"touch", marker}

	gone := exec.Command("true")
	gone.Run()
	// The test process itself is alive but in the host netns, not in ns:
	// as if the target's PID had been reused by a host process.
	for _, pid := range []int{gone.Process.Pid, os.Getpid()} {
		var stderr bytes.Buffer
		err := Exec(ExecOptions{NS: ns, PID: pid, Argv: argv, Stderr: &stderr, Label: "test"})
		if !errors.Is(err, nserr.ErrStale) {
			t.Errorf("PID %d: %v, want a stale-target error", pid, err)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("PID %d: the command ran", pid)
		}
	}
	// --pid needs a process.
	if err := Exec(ExecOptions{NS: ns, JoinPID: true, Argv: argv, Label: "test"}); !errors.Is(err, nserr.ErrUsage) {
		t.Errorf("--pid without a process: %v", err)
	}
	// A live process in ns: runs, with its status passed through.
	pid := n.StartProcess(t, "sleep", "60")
	err := Exec(ExecOptions{NS: ns, PID: pid, Argv: []string{"sh", "-c", "touch " + marker + "; exit 3"}, Label: "test"})
	var ee *nserr.ExecError
	if !errors.As(err, &ee) || ee.Code != 3 {
		t.Errorf("live target: %v, want status 3", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("live target: the command did not run")
	}
}

// allThreadsInMnt fails t unless every thread of this process is in the
// mount namespace want (exec's private mount namespaces die with their
// threads; none may leak into the pool).
func allThreadsInMnt(t *testing.T, want string) {
	t.Helper()
	var bad []string
	for try := 0; try < 50; try++ {
		bad = bad[:0]
		tasks, _ := filepath.Glob("/proc/self/task/*")
		for _, task := range tasks {
			if got, err := os.Readlink(task + "/ns/mnt"); err == nil && got != want {
				bad = append(bad, filepath.Base(task)+"="+got)
			}
		}
		if len(bad) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("threads outside the host mount namespace %s: %v", want, bad)
}

// Many commands started at once, from many goroutines, while other
// goroutines keep the scheduler busy: every command runs in its netns with
// its own /sys, and afterwards no thread of nsdebug is left in a target's
// network or mount namespace.
func TestExecStressNoThreadLeaks(t *testing.T) {
	testbed.RequireRoot(t)
	home := threadNS(t)
	mntHome, _ := os.Readlink("/proc/thread-self/ns/mnt")
	n := testbed.NewNetNS(t, "exec-stress")
	ns := openNS(t, n)
	n.Exec(t, "ip", "link", "add", "stress0", "type", "veth", "peer", "name", "stress1")
	path, _ := LookPath("ls", os.Getenv("PATH"))
	stop := make(chan struct{})
	for i := 0; i < 8; i++ {
		go func() { // busy goroutines that would notice a wrong netns
			for {
				select {
				case <-stop:
					return
				default:
					if id, err := nsfs.StatID(threadNetns); err == nil && id != home {
						t.Errorf("a pool thread is in %s", id)
					}
				}
			}
		}()
	}
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		go func() {
			var out bytes.Buffer
			p, err := Start(Spec{NS: ns, Path: path, Args: []string{"ls", "/sys/class/net"}, Stdout: &out, Sysfs: true})
			if err == nil {
				_, err = p.Wait()
			}
			if err == nil && strings.Join(strings.Fields(out.String()), " ") != "lo stress0 stress1" {
				err = errors.New("command saw /sys/class/net = " + out.String())
			}
			errs <- err
		}()
	}
	for i := 0; i < 40; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	close(stop)
	allThreadsIn(t, home)
	allThreadsInMnt(t, mntHome)
}

func TestUnsearchableBy(t *testing.T) {
	// Modes are checked as the kernel does: owner bits for the owner, group
	// bits for the group, others' for the rest, with no fallthrough.
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} { // MkdirTemp's 0700
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(base, &st); err != nil {
		t.Fatal(err)
	}
	owner, group := st.Uid, st.Gid
	mk := func(name string, mode os.FileMode) string {
		p := filepath.Join(base, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ownerOnly, groupOnly, othersOnly := mk("owner", 0o700), mk("group", 0o070), mk("others", 0o007)
	nested := filepath.Join(ownerOnly, "inner")
	if err := os.Mkdir(nested, 0o777); err != nil {
		t.Fatal(err)
	}
	stranger := owner + 4242
	for _, tc := range []struct {
		dir    string
		cred   syscall.Credential
		denied string
	}{
		{ownerOnly, syscall.Credential{Uid: owner, Gid: group}, ""},
		{ownerOnly, syscall.Credential{Uid: stranger, Gid: group}, ownerOnly},
		{nested, syscall.Credential{Uid: stranger, Gid: stranger}, ownerOnly},
		{groupOnly, syscall.Credential{Uid: stranger, Gid: group}, ""},
		{groupOnly, syscall.Credential{Uid: stranger, Gid: stranger, Groups: []uint32{group}}, ""},
		{groupOnly, syscall.Credential{Uid: stranger, Gid: stranger}, groupOnly},
		{othersOnly, syscall.Credential{Uid: stranger, Gid: stranger}, ""},
		{othersOnly, syscall.Credential{Uid: stranger, Gid: group}, othersOnly},
		{othersOnly, syscall.Credential{Uid: 0, Gid: 0}, ""},
	} {
		dir, denied := unsearchableBy(tc.dir, &tc.cred)
		if denied != (tc.denied != "") || dir != tc.denied {
			t.Errorf("unsearchableBy(%s, uid %d gid %d groups %v) = %q, %v; want %q", tc.dir, tc.cred.Uid, tc.cred.Gid, tc.cred.Groups, dir, denied, tc.denied)
		}
	}
}

// nsfsMountsOf returns the "net:[INODE]" roots of the nsfs mounts in
// process pid's mount namespace.
func nsfsMountsOf(t *testing.T, pid int) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if f := strings.Fields(pre); ok && len(f) > 4 && strings.HasPrefix(post, "nsfs ") {
			out[f[3]] = true
		}
	}
	return out
}

func nsRoot(t *testing.T, path string) string {
	t.Helper()
	id, err := nsfs.StatID(path)
	if err != nil {
		t.Fatal(err)
	}
	return "net:[" + strconv.FormatUint(id.Inode, 10) + "]"
}

// privateDir mounts a tmpfs that is private (as the host's / is on many
// machines, and with it Docker's /run/docker/netns) and removes it after t.
func privateDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	testbed.MustRun(t, "mount", "-t", "tmpfs", "nsdebug-test", dir)
	testbed.MustRun(t, "mount", "--make-private", dir)
	t.Cleanup(func() { testbed.Run("umount", "-l", dir) })
	return dir
}

// privateNetns makes a network namespace that only a private mount at path
// keeps alive (as Docker's SandboxKey: a bind of /proc/PID/ns/net under a
// private mount), removed after t; path may already be such a mount (the
// new one is stacked on it). It returns the namespace as mountinfo shows it.
func privateNetns(t *testing.T, path string) string {
	t.Helper()
	if f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o444); err == nil {
		f.Close()
	}
	testbed.MustRun(t, "unshare", "--net="+path, "true")
	t.Cleanup(func() { testbed.Run("umount", path) })
	return nsRoot(t, path)
}

// Issue 6 case 6: the command's private mount namespace must not keep other
// network namespaces alive. An nsfs mount under a private mount (Docker's
// /run/docker/netns/* on most hosts) never gets the host's unmount, so a
// container removed while any exec runs would live on, invisible, as long as
// the command. Those are detached when the command starts; mounts the
// host's unmounts do reach (/run/netns, shared) stay, so ip netns exec
// works inside. Stacked mounts go too.
func TestExecDetachesUnpropagatedNetnsMounts(t *testing.T) {
	testbed.RequireRoot(t)
	keep := testbed.NewNetNS(t, "exec-keep") // /run/netns: shared on the test bed
	dir := privateDir(t)
	under := privateNetns(t, filepath.Join(dir, "stacked"))
	victim := privateNetns(t, filepath.Join(dir, "stacked")) // over the first
	sandbox := privateNetns(t, filepath.Join(dir, "sandbox"))

	sharedParent := false
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), " /run/netns rw") {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 6 && f[4] == "/run/netns" && strings.HasPrefix(f[6], "shared:") {
				sharedParent = true
			}
		}
	}

	if !sharedParent {
		t.Logf("/run/netns is not a shared mount here: its mounts are detached too, ip netns exec inside is not checked")
	}

	for _, sysfs := range []bool{true, false} {
		p, _ := startIn(t, Spec{Args: []string{"sleep", "30"}, Sysfs: sysfs})
		if p.Detached != nil {
			if notes := <-p.Detached; len(notes) > 0 {
				t.Errorf("detach notes: %q", notes)
			}
		} else if sysfs {
			t.Errorf("a private mount namespace without a detach step")
		}
		got := nsfsMountsOf(t, p.Pid())
		p.Signal(syscall.SIGKILL)
		p.Wait()
		if !sysfs {
			// No private mount namespace: the command shares the host's.
			if !got[sandbox] {
				t.Errorf("without a private mount namespace the command should see the host's mounts")
			}
			continue
		}
		for _, ns := range []string{sandbox, victim, under} {
			if got[ns] {
				t.Errorf("the command's mount namespace holds %s, mounted under a private mount on the host", ns)
			}
		}
		if sharedParent && !got[nsRoot(t, keep.Path)] {
			t.Errorf("the command's mount namespace lost %s under the shared /run/netns", keep.Path)
		}
	}

	// ip netns exec still works inside (its mount stays).
	if sharedParent {
		var out bytes.Buffer
		p, _ := startIn(t, Spec{Args: []string{"ip", "netns", "exec", keep.Name, "readlink", "/proc/self/ns/net"}, Stdout: &out, Stderr: &out, Sysfs: true})
		if st, err := p.Wait(); err != nil || !st.Success() || strings.TrimSpace(out.String()) != nsRoot(t, keep.Path) {
			t.Errorf("ip netns exec %s inside: %v %v %q", keep.Name, st, err, out.String())
		}
	}
}

// --node-root looks the command up in the node's root as the command will
// see it: an absolute symlink (Debian's /sbin/ip -> /bin/ip) resolves inside
// that root, not in nsdebug's.
func TestLookPathInNodeRoot(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"bin", "sbin", "usr/sbin"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A name nsdebug's own root cannot have, so only the node's can match.
	const name = "nsdebug-node-only-tool"
	if err := os.WriteFile(filepath.Join(dir, "bin", name), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/bin/"+name, filepath.Join(dir, "sbin", name)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "usr/sbin", "noexec"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := &nodeRoot{root: os.NewFile(uintptr(fd), dir)}
	defer n.root.Close()

	got, err := lookPath(name, "/usr/sbin:/sbin", n.stat)
	if err != nil || got != "/sbin/"+name {
		t.Errorf("lookPath in node root = %q, %v; want /sbin/%s (the path the command execs there)", got, err, name)
	}
	if _, err := LookPath(name, "/usr/sbin:/sbin"); err == nil {
		t.Errorf("%s found in nsdebug's own root: the test proves nothing", name)
	}
	var se *StartError
	if _, err := lookPath("noexec", "/usr/sbin", n.stat); !errors.As(err, &se) || se.Code != 126 {
		t.Errorf("not executable in node root: %v, want a 126 StartError", err)
	}
	if _, err := lookPath("absent", "/usr/sbin:/sbin", n.stat); !errors.As(err, &se) || se.Code != 127 {
		t.Errorf("absent in node root: %v, want a 127 StartError", err)
	}
	if _, err := lookPath("/"+name, "", n.stat); !errors.As(err, &se) || se.Code != 127 {
		t.Errorf("/%s is below /bin in the node root, not at its top: %v, want 127", name, err)
	}
}

// Neither a kubelet nor a readable PID 1: one clear line naming both, of the
// environment kind (exec reports it as 125, nsdebug's own failure).
func TestOpenNodeRootUnreachable(t *testing.T) {
	proc := t.TempDir() // a procfs with no processes at all
	_, err := openNodeRoot(proc)
	if !errors.Is(err, nserr.ErrEnvironment) {
		t.Fatalf("err = %v, want ErrEnvironment", err)
	}
	msg := err.Error()
	for _, want := range []string{"--node-root", "no kubelet process", "PID 1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans lines: %q", msg)
	}
	if got := nserr.ExitCode(err, true); got != nserr.ExitExecFailed {
		t.Errorf("exit code %d, want %d", got, nserr.ExitExecFailed)
	}
}
