package kube_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// ptySession is `kubectl nsdebug shell POD` on a terminal the test holds:
// the plugin is the session leader of a pty's slave side, as under a
// terminal emulator, and the test types into the master side.
type ptySession struct {
	t      *testing.T
	cmd    *exec.Cmd
	master *os.File
	mu     sync.Mutex
	out    bytes.Buffer
	done   chan struct{}
}

func startPTYSession(t *testing.T, args ...string) *ptySession {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := pty.Setsize(master, &pty.Winsize{Rows: 24, Cols: 80}); err != nil {
		t.Fatal(err)
	}
	s := &ptySession{t: t, master: master, done: make(chan struct{})}
	s.cmd = plugin(t, args...)
	s.cmd.Stdin, s.cmd.Stdout, s.cmd.Stderr = slave, slave, slave
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	go func() {
		defer close(s.done)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			s.mu.Lock()
			s.out.Write(buf[:n])
			s.mu.Unlock()
			if err != nil {
				return // EIO once the slave side is closed by all
			}
		}
	}()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			// SIGTERM first: the plugin deletes its helper.
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			timer := time.AfterFunc(30*time.Second, func() { _ = s.cmd.Process.Kill() })
			_ = s.cmd.Wait()
			timer.Stop()
		}
		master.Close()
	})
	return s
}

func (s *ptySession) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

func (s *ptySession) typ(text string) {
	s.t.Helper()
	if _, err := s.master.Write([]byte(text)); err != nil {
		s.t.Fatalf("type %q: %v", text, err)
	}
}

// expect waits until the output from offset from on holds want, and
// returns the offset past it.
func (s *ptySession) expect(from int, want string, within time.Duration) int {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		out := s.output()
		if i := strings.Index(out[from:], want); i >= 0 {
			return from + i + len(want)
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no %q within %s; output since: %q", want, within, out[from:])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A user at a terminal: Ctrl-C typed as the raw byte 0x03 interrupts the
// remote command and not the session (the shell survives and runs the next
// command, the session's status is the shell's), a resize of the client's
// terminal reaches the remote one, and the helper is deleted at the end.
func TestTTYCtrlCAndResize(t *testing.T) {
	p := pod(t, testbed.KubePodOptions{})
	s := startPTYSession(t, "-n", p.Namespace, "shell", p.Name)
	// Markers the remote shell computes: the terminal's echo of what is
	// typed does not hold them.
	at := 0
	s.typ("stty size; echo ready=$((20+1))\r")
	at = s.expect(at, "ready=21", 60*time.Second)
	if !strings.Contains(s.output(), "24 80") {
		t.Errorf("stty size before the resize: output %q, want 24 80", s.output())
	}
	// Resize: the kernel sends SIGWINCH to the plugin (the terminal's
	// foreground process), which passes the new size on.
	if err := pty.Setsize(s.master, &pty.Winsize{Rows: 37, Cols: 111}); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		s.typ(fmt.Sprintf("echo size$((%d+1))=$(stty size)\r", i))
		at = s.expect(at, fmt.Sprintf("size%d=", i+1), 20*time.Second)
		end := s.expect(at, "\n", 20*time.Second)
		line := s.output()[at:end]
		at = end
		if strings.TrimSpace(line) == "37 111" {
			break
		}
		if i == 20 {
			t.Fatalf("stty size after the resize: %q, want 37 111", line)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Ctrl-C: a sleep on the remote side, then the raw byte.
	n := 100000 + rand.IntN(800000)
	s.typ(fmt.Sprintf("sleep %d\r", n))
	var pid int
	for deadline := time.Now().Add(20 * time.Second); pid == 0; time.Sleep(50 * time.Millisecond) {
		if pid = findProcess(fmt.Sprintf("sleep\x00%d\x00", n)); pid == 0 && time.Now().After(deadline) {
			t.Fatalf("the remote sleep %d did not start; output %q", n, s.output()[at:])
		}
	}
	s.typ("\x03")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the remote sleep (PID %d) still runs 10 s after Ctrl-C; output %q", pid, s.output()[at:])
		}
	}
	s.typ("echo status=$? after=$((6*7)); exit 3\r")
	s.expect(at, "status=130 after=42", 20*time.Second)
	code, _ := waitExit(t, s.cmd, 30*time.Second)
	<-s.done
	if code != 3 {
		t.Errorf("session exit %d, want the shell's 3; output %q", code, s.output())
	}
	if hs := helpersOf(t, p.Name, false); len(hs) > 0 {
		t.Errorf("helper left: %v", hs)
	}
}
