package inspect

import (
	"errors"
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
