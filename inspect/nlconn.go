package inspect

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/enter"
	"github.com/nsdebug/nsdebug/internal/nsfs"
)

// nlConn is a set of netlink sockets created inside one network namespace:
// a netlink.Handle for the library's dumps, and a raw NETLINK_ROUTE socket
// for the few requests the library has no call for (links of another netns
// by IFLA_TARGET_NETNSID).
//
// Every family a request uses must be opened here: the library silently
// opens a socket in the calling thread's (the host's) namespace for a family
// the handle lacks, which would report the host instead of the target.
type nlConn struct {
	h     *netlink.Handle
	route map[int]*nl.SocketHandle
}

// openConn opens the sockets inside ns in one visit. families are the
// handle's netlink protocols besides NETLINK_ROUTE.
func openConn(ns *nsfs.Netns, families ...int) (*nlConn, error) {
	c := &nlConn{}
	err := enter.Do(ns, func() error {
		var err error
		c.h, err = netlink.NewHandle(append([]int{unix.NETLINK_ROUTE}, families...)...)
		if err != nil {
			return err
		}
		s, err := nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_ROUTE)
		if err != nil {
			c.h.Close()
			return err
		}
		c.route = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: s}}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open netlink sockets in %s: %w", ns.ID, err)
	}
	return c, nil
}

func (c *nlConn) Close() {
	c.h.Close()
	for _, s := range c.route {
		s.Socket.Close()
	}
}

// nsidOf returns the id that this connection's namespace gives to ns
// (IFLA_LINK_NETNSID values), or -1 when it has none.
func (c *nlConn) nsidOf(ns *nsfs.Netns) int {
	id, err := c.h.GetNetNsIdByFd(ns.Fd())
	if err != nil {
		return -1
	}
	return id
}

// remoteLink is the little nsdebug needs to know about a link in another
// namespace: a veth's peer and the bridge it hangs on.
type remoteLink struct {
	Name        string
	Index       int
	MasterIndex int
	Kind        string
}

// linkAt asks for link index in the namespace this connection's namespace
// calls nsid (IFLA_TARGET_NETNSID, Linux 4.20+), without entering it.
func (c *nlConn) linkAt(nsid, index int) (remoteLink, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_ACK)
	req.Sockets = c.route
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_TARGET_NETNSID, nl.Uint32Attr(uint32(nsid))))
	req.AddData(nl.NewRtAttr(unix.IFLA_EXT_MASK, nl.Uint32Attr(rtextFilterSkipStats)))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
	if err != nil {
		return remoteLink{}, err
	}
	if len(msgs) == 0 || len(msgs[0]) < unix.SizeofIfInfomsg {
		return remoteLink{}, fmt.Errorf("no link %d in netnsid %d", index, nsid)
	}
	m := msgs[0]
	info := nl.DeserializeIfInfomsg(m)
	attrs, err := nl.ParseRouteAttr(m[info.Len():])
	if err != nil {
		return remoteLink{}, err
	}
	rl := remoteLink{Index: int(info.Index)}
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFLA_IFNAME:
			rl.Name = cString(a.Value)
		case unix.IFLA_MASTER:
			if len(a.Value) >= 4 {
				rl.MasterIndex = int(nl.NativeEndian().Uint32(a.Value))
			}
		case unix.IFLA_LINKINFO:
			if infos, err := nl.ParseRouteAttr(a.Value); err == nil {
				for _, i := range infos {
					if i.Attr.Type == unix.IFLA_INFO_KIND {
						rl.Kind = cString(i.Value)
					}
				}
			}
		}
	}
	return rl, nil
}

// masterAt is the name of link's master (bridge, bond, VRF...) in the
// namespace nsid, or "".
func (c *nlConn) masterAt(nsid int, l remoteLink) string {
	if l.MasterIndex == 0 {
		return ""
	}
	m, err := c.linkAt(nsid, l.MasterIndex)
	if err != nil {
		return ""
	}
	return m.Name
}
