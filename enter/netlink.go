package enter

import (
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
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

// NetlinkSocket opens a raw netlink socket of protocol proto (as
// unix.NETLINK_ROUTE) inside ns, for the requests the netlink library has no
// call for. Like NetlinkHandle's, it belongs to ns for its whole life.
func NetlinkSocket(ns *nsfs.Netns, proto int) (*nl.NetlinkSocket, error) {
	var s *nl.NetlinkSocket
	err := Do(ns, func() error {
		var err error
		s, err = nl.GetNetlinkSocketAt(netns.None(), netns.None(), proto)
		return err
	})
	return s, err
}
