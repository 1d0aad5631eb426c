package nsfs

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

func TestOpenRejectsWhatIsNotANetns(t *testing.T) {
	dir := t.TempDir()
	empty := dir + "/placeholder"
	os.WriteFile(empty, nil, 0o444)
	for _, p := range []string{empty, dir, "/proc/self/status", "/proc/self/ns/uts"} {
		if _, err := Open(p); !errors.Is(err, nserr.ErrNotNetns) {
			t.Errorf("Open(%s) = %v, want not a network namespace", p, err)
		}
	}
	if _, err := Open(dir + "/missing"); !errors.Is(err, nserr.ErrNotFound) {
		t.Errorf("missing file: %v", err)
	}
	n, err := Open("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	id, _ := StatID("/proc/self/ns/net")
	if n.ID != id {
		t.Errorf("ID %v, want %v", n.ID, id)
	}
	d, err := n.Dup()
	if err != nil || d.ID != n.ID || d.Fd() == n.Fd() {
		t.Fatalf("Dup: %v %v", d, err)
	}
	d.Close()
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// OpenKnown opens only the namespace it was told of: another namespace, or
// anything else, at that path is refused, and a FIFO does not hang it.
func TestOpenKnownChecksTheIdentity(t *testing.T) {
	net, err := StatID("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	n, err := OpenKnown("/proc/self/ns/net", net)
	if err != nil || n.ID != net {
		t.Fatalf("OpenKnown(own netns) = %v, %v", n, err)
	}
	n.Close()
	dir := t.TempDir()
	fifo := dir + "/fifo"
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/proc/self/ns/uts", "/proc/self/status", fifo} {
		if _, err := OpenKnown(p, net); !errors.Is(err, nserr.ErrNotNetns) {
			t.Errorf("OpenKnown(%s, the netns) = %v, want refused as another namespace", p, err)
		}
	}
	if _, err := OpenKnown(dir+"/missing", net); !errors.Is(err, nserr.ErrNotFound) {
		t.Errorf("missing file: %v", err)
	}
}

// Issue 6 case 4: the target process exits and its PID is reused by a
// process in another netns between resolution (the pidfd) and entry (the
// namespace). OpenPID must refuse, through the pidfd ioctl (Linux 6.11+) and
// through the /proc fallback alike.
func TestOpenPIDRefusesAReusedPID(t *testing.T) {
	testbed.RequireRoot(t)
	for _, fallback := range []bool{false, true} {
		x := testbed.NewNetNS(t, "reuse-x")
		y := testbed.NewNetNS(t, "reuse-y")
		victim := exec.Command("ip", "netns", "exec", x.Name, "sleep", "60")
		if err := victim.Start(); err != nil {
			t.Fatal(err)
		}
		pid := victim.Process.Pid
		var reused *exec.Cmd
		testNoPidfdIoctl = fallback
		testHookAfterPidfd = func(int) {
			victim.Process.Kill()
			victim.Wait()
			reused = reusePID(t, pid, y.Name)
		}
		n, err := OpenPID("/proc", pid)
		testHookAfterPidfd, testNoPidfdIoctl = nil, false
		if reused == nil {
			t.Fatalf("could not stage the reuse of PID %d", pid)
		}
		waitIn(t, pid, y.Path)
		if err == nil {
			n.Close()
			t.Fatalf("fallback=%v: OpenPID(%d) succeeded after the PID was reused (got %s)", fallback, pid, n.ID)
		}
		if !errors.Is(err, nserr.ErrStale) {
			t.Errorf("fallback=%v: %v, want ErrStale", fallback, err)
		}
		reused.Process.Kill()
		reused.Wait()
	}
}

// reusePID hands the freed PID pid to a new process in netns netnsName
// (through ns_last_pid), or returns nil if other processes kept taking it.
func reusePID(t *testing.T, pid int, netnsName string) *exec.Cmd {
	t.Helper()
	for try := 0; try < 2000; try++ { // other processes may take the PID first
		os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0)
		c := exec.Command("ip", "netns", "exec", netnsName, "sleep", "60")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if c.Process.Pid == pid {
			return c
		}
		c.Process.Kill()
		c.Wait()
	}
	return nil
}

func waitIn(t *testing.T, pid int, path string) {
	t.Helper()
	want, _ := StatID(path)
	for i := 0; i < 100; i++ {
		if id, err := StatID("/proc/" + strconv.Itoa(pid) + "/ns/net"); err == nil && id == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOpenPIDPermissionMessage(t *testing.T) {
	testbed.RequireRoot(t)
	// PID 1 may be unreadable even for root (ptrace rules); if it is, the
	// message must say why rather than a bare EACCES.
	_, err := OpenPID("/proc", 1)
	if err != nil && errors.Is(err, nserr.ErrPermission) {
		if want := "ptrace access rules"; !contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// Issue 6 case 4 for runtime targets: the race starts before nsdebug holds
// anything. The runtime reports a PID, that process dies, and its PID goes to
// a process in another netns before pidfd_open. OpenReportedPID must refuse
// the stranger and accept the process the runtime saw.
func TestOpenReportedPIDRefusesAPIDReusedBeforePinning(t *testing.T) {
	testbed.RequireRoot(t)
	x := testbed.NewNetNS(t, "rep-x")
	y := testbed.NewNetNS(t, "rep-y")
	victim := exec.Command("ip", "netns", "exec", x.Name, "sleep", "60")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	pid := victim.Process.Pid
	waitIn(t, pid, x.Path)

	askedAt := Boottime() // the runtime is asked and answers "pid"
	n, err := OpenReportedPID("/proc", pid, askedAt)
	if err != nil {
		t.Fatalf("the process the runtime reported was refused: %v", err)
	}
	if want, _ := StatID(x.Path); n.ID != want {
		t.Errorf("pinned %s, want %s", n.ID, want)
	}
	n.Close()

	time.Sleep(30 * time.Millisecond) // more than a clock tick after askedAt
	victim.Process.Kill()
	victim.Wait()
	reused := reusePID(t, pid, y.Name)
	if reused == nil {
		t.Fatalf("could not stage the reuse of PID %d", pid)
	}
	defer func() { reused.Process.Kill(); reused.Wait() }()
	waitIn(t, pid, y.Path)

	n, err = OpenReportedPID("/proc", pid, askedAt)
	if err == nil {
		n.Close()
		t.Fatalf("OpenReportedPID(%d) pinned %s, the netns of the process that reused the PID", pid, n.ID)
	}
	if !errors.Is(err, nserr.ErrStale) {
		t.Errorf("%v, want ErrStale", err)
	}
}

func TestParseStartTime(t *testing.T) {
	for _, tc := range []struct {
		stat string
		want time.Duration
		bad  bool
	}{
		{"1234 (sleep) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 4242 2000000 100 18446744073709551615", 42420 * time.Millisecond, false},
		// A command name with spaces and parentheses: count after the last ')'.
		{"77 (a) b) (c) R 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0", time.Second, false},
		{"77 (x) R 1 2 3", 0, true},
		{"no parenthesis", 0, true},
		{"77 (x) R 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -5 0 0", 0, true},
	} {
		got, err := parseStartTime(tc.stat)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("parseStartTime(%q) = %v, %v; want %v (error: %v)", tc.stat, got, err, tc.want, tc.bad)
		}
	}
}
