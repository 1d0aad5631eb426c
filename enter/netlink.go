package enter

import (
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/nsfs"
)

// NetlinkHandle opens a netlink handle inside ns. The socket is created on a
// thread switched into ns, so it belongs to ns for its whole life and can be
// used from any goroutine afterwards without further switching.
//
// families are netlink protocols (unix.NETLINK_ROUTE, ...); none means
// NETLINK_ROUTE only — one socket instead of the library's three, which
// matters when hundreds of namespaces are listed.
func NetlinkHandle(ns *nsfs.Netns, families ...int) (*netlink.Handle, error) {
	if len(families) == 0 {
		families = []int{unix.NETLINK_ROUTE}
	}
	var h *netlink.Handle
	err := Do(ns, func() error {
		var err error
		h, err = netlink.NewHandle(families...)
		return err
	})
	return h, err
}
