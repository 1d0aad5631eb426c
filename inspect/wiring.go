package inspect

import (
	"context"
	"fmt"
	"sort"

	"github.com/nsdebug/nsdebug/internal/nldump"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/resolver"
)

// HostWiring maps each namespace in nss to the host-side ends of the veth
// pairs whose other end lives in it, with the bridge each host end hangs on
// and the name of the end inside the namespace.
//
// A host veth names its peer's namespace by a netnsid local to the host
// (IFLA_LINK_NETNSID); the kernel is asked which netnsid each namespace in
// nss has (RTM_GETNSID by fd), so the match is exact, not a guess from
// interface indexes. Namespaces without a veth to the host are absent from
// the map. host is the host's network namespace.
func HostWiring(ctx context.Context, host *nsfs.Netns, nss []*nsfs.Netns) (map[nsfs.ID][]HostVeth, error) {
	c, err := openConn(host)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	links, err := nldump.Retry(c.h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list host links: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	byNsid := map[int]nsfs.ID{}
	for _, ns := range nss {
		if ns.ID == host.ID {
			continue
		}
		if id := c.nsidOf(ns); id >= 0 {
			byNsid[id] = ns.ID
		}
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	out := map[nsfs.ID][]HostVeth{}
	for _, l := range links {
		a := l.Attrs()
		if l.Type() != "veth" || a.NetNsID < 0 {
			continue
		}
		id, ok := byNsid[a.NetNsID]
		if !ok {
			continue
		}
		hv := HostVeth{Name: a.Name, Bridge: names[a.MasterIndex]}
		if p, err := c.linkAt(a.NetNsID, a.ParentIndex); err == nil {
			hv.Peer = p.Name
		}
		out[id] = append(out[id], hv)
	}
	for _, v := range out {
		sort.Slice(v, func(i, j int) bool { return v[i].Name < v[j].Name })
	}
	return out, nil
}

// AddHostWiring fills HostVeths of the given rows (ls -o wide, graph,
// whois). Rows whose namespace cannot be pinned any more are left without.
func AddHostWiring(ctx context.Context, r *resolver.Resolver, rows []NetnsRow) error {
	host, err := OpenHost(r)
	if err != nil {
		return fmt.Errorf("open the host network namespace: %w", err)
	}
	defer host.Close()
	var nss []*nsfs.Netns
	for i := range rows {
		if rows[i].Host {
			continue
		}
		ns, err := openRow(&rows[i])
		if err != nil {
			continue
		}
		nss = append(nss, ns)
	}
	defer func() {
		for _, ns := range nss {
			ns.Close()
		}
	}()
	wiring, err := HostWiring(ctx, host, nss)
	if err != nil {
		return err
	}
	for i := range rows {
		rw := &rows[i]
		rw.HostVeths = wiring[nsfs.ID{Dev: rw.Netns.Dev, Inode: rw.Netns.Inode}]
	}
	return nil
}
