package diagnose

import (
	"net"
	"strings"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/enter"
	"github.com/nsdebug/nsdebug/internal/nldump"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/internal/procfs"
)

// hostVeth is a host veth with where its peer lives.
type hostVeth struct {
	Name, Master string
	NetnsID      int // the peer's namespace, as the host's netnsid
	PeerIndex    int
}

// bridgePeers reads the addresses of every namespace with a veth on one of
// bridges, from the host alone: the host's link dump gives each veth's
// peer namespace as a netnsid, and an address dump with
// IFA_TARGET_NETNSID reads that namespace without entering or even
// opening it (opening every namespace on a host with 500 netns to find the
// few on a bridge was most of a single target's time). Only when an address
// shows up twice on one bridge are the namespaces named, by a scan.
func bridgePeers(host *nsfs.Netns, veths []hostVeth, bridges map[string]bool, procRoot string) ([]PeerAddrs, error) {
	peers := []PeerAddrs{}
	if len(bridges) == 0 {
		return peers, nil
	}
	var err error
	if veths == nil {
		// Not read yet (gatherHost did not run, or its dump failed).
		if _, _, veths, err = readLinks(host); err != nil {
			return nil, err
		}
	}
	sock, err := enter.NetlinkSocket(host, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	defer sock.Close()
	// Without strict checking the kernel ignores a dump request's
	// attributes, IFA_TARGET_NETNSID included, and dumps the host's own.
	if err := unix.SetsockoptInt(sock.GetFd(), unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1); err != nil {
		return nil, err
	}
	byNsid := map[int]map[int][]string{}
	seen := map[string]map[int]bool{} // bridge/ip -> nsids
	for _, v := range veths {
		if !bridges[v.Master] || v.NetnsID < 0 {
			continue
		}
		addrs, ok := byNsid[v.NetnsID]
		if !ok {
			if addrs, err = addrsAt(sock, v.NetnsID); err != nil {
				continue // the namespace went away
			}
			byNsid[v.NetnsID] = addrs
		}
		p := PeerAddrs{NetnsID: v.NetnsID, Label: "netnsid " + itoa(v.NetnsID), Bridge: v.Master, Addrs: addrs[v.PeerIndex]}
		for _, a := range p.Addrs {
			k := v.Master + "/" + a
			if seen[k] == nil {
				seen[k] = map[int]bool{}
			}
			seen[k][v.NetnsID] = true
		}
		peers = append(peers, p)
	}
	dup := map[int]bool{}
	for _, ids := range seen {
		if len(ids) > 1 {
			for id := range ids {
				dup[id] = true
			}
		}
	}
	if len(dup) > 0 {
		nameNsids(host, dup, procRoot, peers)
	}
	return peers, nil
}

// addrsAt dumps the addresses of the namespace the host knows as nsid.
func addrsAt(sock *nl.NetlinkSocket, nsid int) (map[int][]string, error) {
	msgs, err := nldump.Retry(func() ([][]byte, error) {
		req := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
		req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: sock}}
		req.AddData(nl.NewIfAddrmsg(unix.AF_UNSPEC))
		req.AddData(nl.NewRtAttr(unix.IFA_TARGET_NETNSID, nl.Uint32Attr(uint32(nsid))))
		return req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWADDR)
	})
	if err != nil {
		return nil, err
	}
	out := map[int][]string{}
	for _, m := range msgs {
		if len(m) < unix.SizeofIfAddrmsg {
			continue
		}
		h := nl.DeserializeIfAddrmsg(m)
		attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfAddrmsg:])
		if err != nil {
			continue
		}
		var local, addr net.IP
		for _, a := range attrs {
			switch a.Attr.Type {
			case unix.IFA_LOCAL:
				local = net.IP(a.Value)
			case unix.IFA_ADDRESS:
				addr = net.IP(a.Value)
			}
		}
		if local != nil {
			addr = local // IFA_ADDRESS is the peer's on point-to-point links
		}
		if addr == nil {
			continue
		}
		bits := 8 * len(addr)
		out[int(h.Index)] = append(out[int(h.Index)], (&net.IPNet{IP: addr, Mask: net.CIDRMask(int(h.Prefixlen), bits)}).String())
	}
	return out, nil
}

// nameNsids labels the peers whose netnsid is in ids with a path to their
// namespace (a netns mount beats /proc/PID).
func nameNsids(host *nsfs.Netns, ids map[int]bool, procRoot string, peers []PeerAddrs) {
	hh, err := enter.NetlinkHandle(host)
	if err != nil {
		return
	}
	defer hh.Close()
	paths := map[nsfs.ID]string{}
	if scan, err := procfs.ScanNetns(procRoot); err == nil {
		for id, pids := range scan.PIDs {
			paths[id] = procRoot + "/" + itoa(pids[0]) + "/ns/net"
		}
	}
	if mounts, err := procfs.NetnsMounts(procRoot + "/self/mountinfo"); err == nil {
		for _, m := range mounts {
			if m.Visible() {
				paths[m.ID] = m.MountPoint
			}
		}
	}
	label := map[int]string{}
	inode := map[int]uint64{}
	for id, path := range paths {
		if id == host.ID || len(label) == len(ids) {
			continue
		}
		ns, err := nsfs.Open(path)
		if err != nil {
			continue
		}
		nsid, err := hh.GetNetNsIdByFd(ns.Fd())
		if err == nil && ids[nsid] && ns.ID == id {
			label[nsid], inode[nsid] = path, id.Inode
		}
		ns.Close()
	}
	for i := range peers {
		if l, ok := label[peers[i].NetnsID]; ok {
			peers[i].Label, peers[i].Netns = l, inode[peers[i].NetnsID]
		}
	}
}

// readHairpin dumps ns's bridge ports (an AF_BRIDGE link dump lists only
// them, each with its IFLA_PROTINFO) and returns their hairpin mode by name.
// One dump for all ports; netlink's LinkGetProtinfo does one per port.
func readHairpin(ns *nsfs.Netns) (map[string]string, error) {
	sock, err := enter.NetlinkSocket(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	defer sock.Close()
	msgs, err := nldump.Retry(func() ([][]byte, error) {
		req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
		req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: sock}}
		req.AddData(nl.NewIfInfomsg(unix.AF_BRIDGE))
		return req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
	})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, m := range msgs {
		if len(m) < unix.SizeofIfInfomsg {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfInfomsg:])
		if err != nil {
			continue
		}
		name, mode := "", ""
		for _, a := range attrs {
			switch a.Attr.Type &^ unix.NLA_F_NESTED {
			case unix.IFLA_IFNAME:
				name = strings.TrimRight(string(a.Value), "\x00")
			case unix.IFLA_PROTINFO:
				inner, err := nl.ParseRouteAttr(a.Value)
				if err != nil {
					continue
				}
				for _, b := range inner {
					if b.Attr.Type&^unix.NLA_F_NESTED == nl.IFLA_BRPORT_MODE && len(b.Value) > 0 {
						mode = itoa(int(b.Value[0]))
					}
				}
			}
		}
		if name != "" && mode != "" {
			out[name] = mode
		}
	}
	return out, nil
}
