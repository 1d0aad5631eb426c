package diagnose

import (
	"net"

	"github.com/vishvananda/netlink"

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
// bridges: the host's link dump says which netnsids those are; each
// namespace on the host is asked its netnsid (one RTM_GETNSID, no switch)
// and only the matching ones are read. Reading every namespace's addresses
// instead cost most of a single target's time on a host with 500 netns.
func bridgePeers(host *nsfs.Netns, bridges map[string]bool, procRoot string) ([]PeerAddrs, error) {
	peers := []PeerAddrs{}
	if len(bridges) == 0 {
		return peers, nil
	}
	_, _, veths, err := readLinks(host)
	if err != nil {
		return nil, err
	}
	want := map[int][]hostVeth{}
	for _, v := range veths {
		if bridges[v.Master] && v.NetnsID >= 0 {
			want[v.NetnsID] = append(want[v.NetnsID], v)
		}
	}
	if len(want) == 0 {
		return peers, nil
	}
	hh, err := enter.NetlinkHandle(host)
	if err != nil {
		return nil, err
	}
	defer hh.Close()
	paths := map[nsfs.ID]string{}
	scan, err := procfs.ScanNetns(procRoot)
	if err != nil {
		return nil, err
	}
	for id, pids := range scan.PIDs {
		paths[id] = procRoot + "/" + itoa(pids[0]) + "/ns/net"
	}
	if mounts, err := procfs.NetnsMounts(procRoot + "/self/mountinfo"); err == nil {
		for _, m := range mounts {
			if m.Visible() {
				paths[m.ID] = m.MountPoint // a stable name beats /proc/PID
			}
		}
	}
	for id, path := range paths {
		if id == host.ID || len(want) == 0 {
			continue
		}
		ns, err := nsfs.Open(path)
		if err != nil {
			continue // gone meanwhile
		}
		nsid, err := hh.GetNetNsIdByFd(ns.Fd())
		vs, ok := want[nsid]
		if err != nil || !ok || ns.ID != id {
			ns.Close()
			continue
		}
		delete(want, nsid)
		addrs, err := addrsIn(ns)
		ns.Close()
		if err != nil {
			continue
		}
		for _, v := range vs {
			peers = append(peers, PeerAddrs{Netns: id.Inode, Label: path, Bridge: v.Master, Addrs: addrs[v.PeerIndex]})
		}
	}
	return peers, nil
}

// addrsIn lists a namespace's addresses (CIDR) by interface index.
func addrsIn(ns *nsfs.Netns) (map[int][]string, error) {
	h, err := enter.NetlinkHandle(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	list, err := nldump.Retry(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, err
	}
	out := map[int][]string{}
	for _, a := range list {
		if a.IPNet != nil {
			out[a.LinkIndex] = append(out[a.LinkIndex], (&net.IPNet{IP: a.IP, Mask: a.Mask}).String())
		}
	}
	return out, nil
}
