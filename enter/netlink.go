package enter

import (
	"github.com/vishvananda/netlink"

	"github.com/nsdebug/nsdebug/internal/nsfs"
)

// NetlinkHandle opens a netlink handle inside ns. The socket is created on a
// thread switched into ns, so it belongs to ns for its whole life and can be
// used from any goroutine afterwards without further switching.
func NetlinkHandle(ns *nsfs.Netns) (*netlink.Handle, error) {
	var h *netlink.Handle
	err := Do(ns, func() error {
		var err error
		h, err = netlink.NewHandle()
		return err
	})
	return h, err
}
