package inspect

import (
	"fmt"
	"net"
	"sort"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// rtextFilterSkipStats is RTEXT_FILTER_SKIP_STATS (linux/rtnetlink.h): the
// kernel leaves the per-link counters out of a link dump.
const rtextFilterSkipStats = 1 << 3

// interfacesHere lists the links and addresses of the network namespace the
// calling thread is in. It must run inside enter.Do/enter.Each: the socket it
// opens belongs to that namespace.
//
// `ls` calls it for every namespace on the host, so it asks for less than
// netlink.LinkList does (no counters, no VF info) and decodes only the
// fields ls shows, through the library's message and attribute helpers.
// A dump the kernel interrupts is retried, never returned half-filled.
func interfacesHere() ([]Interface, error) {
	s, err := nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	defer s.Close()
	sockets := map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: s}}

	linkMsgs, err := retry(func() ([][]byte, error) {
		req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
		req.Sockets = sockets
		req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
		req.AddData(nl.NewRtAttr(unix.IFLA_EXT_MASK, nl.Uint32Attr(rtextFilterSkipStats)))
		return req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
	})
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	addrMsgs, err := retry(func() ([][]byte, error) {
		req := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
		req.Sockets = sockets
		req.AddData(nl.NewIfAddrmsg(unix.AF_UNSPEC))
		return req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWADDR)
	})
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}

	out := make([]Interface, 0, len(linkMsgs))
	byIndex := map[int]int{}
	for _, m := range linkMsgs {
		if len(m) < unix.SizeofIfInfomsg {
			continue
		}
		msg := nl.DeserializeIfInfomsg(m)
		attrs, err := nl.ParseRouteAttr(m[msg.Len():])
		if err != nil {
			return nil, fmt.Errorf("parse link: %w", err)
		}
		ifc := Interface{Index: int(msg.Index), Type: "device", Addresses: []string{}}
		for _, a := range attrs {
			switch a.Attr.Type {
			case unix.IFLA_IFNAME:
				ifc.Name = cString(a.Value)
			case unix.IFLA_OPERSTATE:
				if len(a.Value) > 0 {
					ifc.State = netlink.LinkOperState(a.Value[0]).String()
				}
			case unix.IFLA_LINKINFO:
				infos, err := nl.ParseRouteAttr(a.Value)
				if err == nil {
					for _, i := range infos {
						if i.Attr.Type == unix.IFLA_INFO_KIND {
							ifc.Type = cString(i.Value)
						}
					}
				}
			}
		}
		byIndex[ifc.Index] = len(out)
		out = append(out, ifc)
	}
	for _, m := range addrMsgs {
		if len(m) < unix.SizeofIfAddrmsg {
			continue
		}
		msg := nl.DeserializeIfAddrmsg(m)
		attrs, err := nl.ParseRouteAttr(m[msg.Len():])
		if err != nil {
			return nil, fmt.Errorf("parse address: %w", err)
		}
		var local, address net.IP
		for _, a := range attrs {
			switch a.Attr.Type {
			case unix.IFA_LOCAL:
				local = net.IP(a.Value)
			case unix.IFA_ADDRESS:
				address = net.IP(a.Value)
			}
		}
		// IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer
		// on point-to-point links (and the same as LOCAL elsewhere).
		ip := local
		if ip == nil {
			ip = address
		}
		i, ok := byIndex[int(msg.Index)]
		if ip == nil || !ok {
			continue
		}
		bits := 8 * len(ip)
		cidr := (&net.IPNet{IP: ip, Mask: net.CIDRMask(int(msg.Prefixlen), bits)}).String()
		out[i].Addresses = append(out[i].Addresses, cidr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
