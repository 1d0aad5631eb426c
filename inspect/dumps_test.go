package inspect

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// nlMsg is one netlink message as the kernel sends it.
func nlMsg(typ, flags uint16, seq uint32, payload []byte) []byte {
	n := syscall.NLMSG_HDRLEN + len(payload)
	b := make([]byte, (n+syscall.NLMSG_ALIGNTO-1)&^(syscall.NLMSG_ALIGNTO-1))
	nl.NativeEndian().PutUint32(b[0:4], uint32(n))
	nl.NativeEndian().PutUint16(b[4:6], typ)
	nl.NativeEndian().PutUint16(b[6:8], flags)
	nl.NativeEndian().PutUint32(b[8:12], seq)
	copy(b[syscall.NLMSG_HDRLEN:], payload)
	return b
}

// receiveFrom feeds datagrams to a dumpSocket waiting for the answers to
// request seq, through a socketpair standing in for the kernel.
func receiveFrom(t *testing.T, seq uint32, datagrams ...[]byte) (calls int, err error) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	for _, d := range datagrams {
		if _, err := unix.Write(fds[1], d); err != nil {
			t.Fatal(err)
		}
	}
	s := &dumpSocket{fd: fds[0], seq: seq, buf: make([]byte, nl.RECEIVE_BUFFER_SIZE)}
	defer s.close()
	err = s.receive(unix.RTM_NEWLINK, func([]byte) error { calls++; return nil })
	return calls, err
}

// A dump the kernel flags NLM_F_DUMP_INTR (on any message, or only on
// NLMSG_DONE) is reported as interrupted, after being read to its end, so
// that RetryDump redoes it; flags on a late answer to an earlier request
// do not count.
func TestDumpSocketDetectsInterruptedDump(t *testing.T) {
	link := make([]byte, unix.SizeofIfInfomsg)
	const multi, intr = unix.NLM_F_MULTI, unix.NLM_F_DUMP_INTR
	done := nlMsg(unix.NLMSG_DONE, multi, 7, make([]byte, 4))
	cases := []struct {
		name      string
		datagrams [][]byte
		calls     int
		wantIntr  bool
	}{
		{"clean", [][]byte{append(nlMsg(unix.RTM_NEWLINK, multi, 7, link), nlMsg(unix.RTM_NEWLINK, multi, 7, link)...), done}, 2, false},
		{"interrupted on a link", [][]byte{append(nlMsg(unix.RTM_NEWLINK, multi|intr, 7, link), nlMsg(unix.RTM_NEWLINK, multi, 7, link)...), done}, 2, true},
		{"interrupted on done", [][]byte{nlMsg(unix.RTM_NEWLINK, multi, 7, link), nlMsg(unix.NLMSG_DONE, multi|intr, 7, make([]byte, 4))}, 1, true},
		{"late answer flagged", [][]byte{nlMsg(unix.RTM_NEWLINK, multi|intr, 6, link), nlMsg(unix.RTM_NEWLINK, multi, 7, link), done}, 1, false},
	}
	for _, c := range cases {
		calls, err := receiveFrom(t, 7, c.datagrams...)
		if got := errors.Is(err, netlink.ErrDumpInterrupted); got != c.wantIntr || (!c.wantIntr && err != nil) {
			t.Errorf("%s: err = %v, want interrupted=%v", c.name, err, c.wantIntr)
		}
		if calls != c.calls {
			t.Errorf("%s: %d links passed on, want %d", c.name, calls, c.calls)
		}
	}
	errMsg := make([]byte, 4)
	errno := int32(unix.EPERM)
	nl.NativeEndian().PutUint32(errMsg, uint32(-errno)) // nlmsgerr.error is -errno
	if _, err := receiveFrom(t, 7, nlMsg(unix.NLMSG_ERROR, 0, 7, errMsg)); !errors.Is(err, unix.EPERM) {
		t.Errorf("NLMSG_ERROR -EPERM: err = %v", err)
	}
}

// dumpCalls are the netlink calls that dump a table: each may come back
// interrupted (NLM_F_DUMP_INTR) and must be redone through RetryDump.
var dumpCalls = map[string]bool{
	"LinkList": true, "AddrList": true, "RouteList": true, "RouteListFiltered": true,
	"RuleList": true, "RuleListFiltered": true, "NeighList": true, "NeighListExecute": true,
	"SocketDiagTCP": true, "SocketDiagUDP": true, "SocketDiagTCPInfo": true, "SocketDiagUDPInfo": true,
	"dump": true, // dumpSocket.dump
}

// TestEveryDumpIsRetried reads this package's source: every dump call (the
// library's list calls, dumpSocket.dump, and any request built with
// NLM_F_DUMP) sits inside a RetryDump argument, so no path can return the
// half-filled answer of an interrupted dump.
func TestEveryDumpIsRetried(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	sites := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		file, err := parser.ParseFile(fset, f, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		var stack []ast.Node
		ast.Inspect(file, func(n ast.Node) bool {
			if n == nil {
				stack = stack[:len(stack)-1]
				return false
			}
			stack = append(stack, n)
			if isDumpSite(n) {
				sites++
				if !insideRetryDump(stack) {
					t.Errorf("%s: netlink dump outside RetryDump", fset.Position(n.Pos()))
				}
			}
			return true
		})
	}
	// The package makes a dozen dumps; finding none means this test no
	// longer recognises them.
	if sites < 10 {
		t.Errorf("found %d dump sites, expected at least 10: does the test still recognise them?", sites)
	}
}

func isDumpSite(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.SelectorExpr:
		return dumpCalls[n.Sel.Name]
	case *ast.CallExpr:
		sel, ok := n.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "NewNetlinkRequest" || len(n.Args) < 2 {
			return false
		}
		flags := false
		ast.Inspect(n.Args[1], func(m ast.Node) bool {
			if s, ok := m.(*ast.SelectorExpr); ok && s.Sel.Name == "NLM_F_DUMP" {
				flags = true
			}
			return true
		})
		return flags
	}
	return false
}

// insideRetryDump reports whether the innermost node of stack lies in an
// argument of a call to RetryDump.
func insideRetryDump(stack []ast.Node) bool {
	for i := len(stack) - 2; i >= 0; i-- {
		call, ok := stack[i].(*ast.CallExpr)
		if !ok {
			continue
		}
		fun := call.Fun
		if ix, ok := fun.(*ast.IndexExpr); ok {
			fun = ix.X
		}
		if id, ok := fun.(*ast.Ident); ok && id.Name == "RetryDump" {
			for _, a := range call.Args {
				if a == stack[i+1] {
					return true
				}
			}
		}
	}
	return false
}
