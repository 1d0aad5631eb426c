package enter

import (
	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/nsfs"
)

// Socket opens a socket inside ns and returns its file descriptor. A socket
// belongs to the netns of the thread that created it, for its whole life,
// so the caller may use the fd from any goroutine (AF_PACKET capture sockets
// bind, mmap and read it on ordinary threads). The fd is close-on-exec; the
// caller closes it.
func Socket(ns *nsfs.Netns, domain, typ, proto int) (int, error) {
	fd := -1
	err := Do(ns, func() error {
		var err error
		fd, err = unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
		return err
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, err
	}
	return fd, nil
}
