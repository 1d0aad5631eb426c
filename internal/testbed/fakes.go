package testbed

import (
	"bytes"
	"net"
	"path/filepath"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer that a process's output goroutine may write
// while the test reads it (exec.Cmd copies Stdout/Stderr from a goroutine of
// its own when they are not *os.File).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// SilentSocket listens on a unix socket in t's temporary directory, accepts
// every connection and never answers: a runtime that hangs rather than
// refuses. The connections stay open until t ends.
func SilentSocket(t testing.TB) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "silent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return sock
}
