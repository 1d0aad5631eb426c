// Package inspect reports on network namespaces from the host: the inventory
// behind `nsdebug ls`, and (inspect.go and friends) the per-netns reports.
package inspect

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/enter"
	"github.com/nsdebug/nsdebug/internal/nldump"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/internal/procfs"
	"github.com/nsdebug/nsdebug/resolver"
)

// NetnsRow is one network namespace in `nsdebug ls`. JSON field names are
// part of nsdebug's stable output.
type NetnsRow struct {
	Netns      NetnsRef         `json:"netns"`
	Host       bool             `json:"host"`
	Orphaned   bool             `json:"orphaned"` // held only by a bind mount, no process
	Owners     []resolver.Owner `json:"owners"`
	PIDs       []int            `json:"pids"`
	Mounts     []MountRef       `json:"mounts"` // nsfs bind mounts holding it
	Interfaces []Interface      `json:"interfaces"`
	// HostVeths is filled by ls -o wide: the host-side ends of its veth pairs.
	HostVeths []HostVeth `json:"host_veths,omitempty"`
	Error     string     `json:"error,omitempty"` // why interfaces could not be read

	// mountsChecked: Mounts' Hidden flags are set (see pinRow).
	mountsChecked bool
}

// NetnsRef identifies a namespace; Path is the best way to reach it (a bind
// mount if one is visible, else /proc/PID/ns/net).
type NetnsRef struct {
	Inode uint64 `json:"inode"`
	Dev   uint64 `json:"dev"`
	Path  string `json:"path"`
}

// MountRef is one nsfs bind mount; Hidden when a later mount covers it (the
// /run/netns trap: the file shows empty, `ip netns del` says busy).
type MountRef struct {
	Path   string `json:"path"`
	Hidden bool   `json:"hidden"`
}

// Interface is one link with its addresses in CIDR form.
type Interface struct {
	Name      string   `json:"name"`
	Index     int      `json:"index"`
	Type      string   `json:"type"`
	State     string   `json:"state"`
	Addresses []string `json:"addresses"`
}

// HostVeth is the host side of a container's veth pair.
type HostVeth struct {
	Name   string `json:"name"`
	Bridge string `json:"bridge,omitempty"`
	Peer   string `json:"peer,omitempty"` // the interface inside the netns
}

// Inventory is the result of ListNetns.
type Inventory struct {
	Rows     []NetnsRow
	Warnings []string
	// Searched is how many namespaces were looked at: more than len(Rows)
	// when ListOptions.HoldingIP left some out.
	Searched int
}

// ListOptions tune ListNetns.
type ListOptions struct {
	// Workers bounds how many namespaces are read at once.
	Workers int
	// Wiring adds each namespace's host-side veths (ls -o wide).
	Wiring bool
	// HoldingIP, when set, keeps only the namespaces where an interface
	// has this address (whois IP): the others are asked for their
	// addresses alone and left out.
	HoldingIP net.IP
}

// ListNetns finds every network namespace on the host, from the kernel side
// (every /proc/PID/ns/net and every nsfs mount) and from the runtimes, and
// merges them by namespace identity. A runtime that does not answer becomes a
// warning: the kernel side is still complete.
func ListNetns(ctx context.Context, r *resolver.Resolver, opts ListOptions) (*Inventory, error) {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	inv := &Inventory{}

	// mountinfo (one line per mount: thousands with thousands of named
	// namespaces) is parsed while /proc is scanned. It is started before
	// the runtimes are asked: the namespaces' reads, the longest part, wait
	// for it, and it finished 5-7 ms later when it had to share the second
	// core with five runtime clients (ls, 500 netns, 2 cores).
	var (
		mounts   []procfs.Mount
		mountErr error
	)
	mountsDone := make(chan struct{})
	go func() {
		defer close(mountsDone)
		mounts, mountErr = procfs.NetnsMounts(r.ProcRoot() + "/self/mountinfo")
	}()
	// When only the namespaces holding an address are wanted, a backend
	// that can list containers by ID is asked, once those namespaces are
	// known, for the containers whose processes are in them: their cgroups
	// name them (Docker 29 lists 50 containers in 80 ms, one in 5).
	var heldPIDs []int
	heldReady := make(chan struct{})
	heldKnown := sync.OnceFunc(func() { close(heldReady) })
	defer heldKnown() // on an early return too: no goroutine waits forever

	// The runtimes answer over sockets; ask them while /proc is scanned.
	answers := make([]answer, len(r.Backends()))
	var wg sync.WaitGroup
	for i, b := range r.Backends() {
		wg.Add(1)
		go func(i int, b resolver.Backend) {
			defer wg.Done()
			il, byID := b.(resolver.IDLister)
			byID = byID && opts.HoldingIP != nil
			if byID {
				<-heldReady
			}
			cctx, cancel := context.WithTimeout(ctx, r.Timeout())
			defer cancel()
			var cands []resolver.Candidate
			var err error
			if bl, ok := b.(resolver.BriefLister); byID {
				if ids := procfs.ContainerIDs(r.ProcRoot(), heldPIDs); len(ids) > 0 {
					cands, err = il.ListBriefIDs(cctx, ids)
				}
			} else if ok {
				cands, err = bl.ListBrief(cctx)
			} else {
				cands, err = b.List(cctx)
			}
			if err != nil && cctx.Err() == context.DeadlineExceeded {
				err = fmt.Errorf("%s did not answer within %s at %s", b.Name(), r.Timeout(), b.Endpoint())
			}
			answers[i] = answer{b, cands, err}
		}(i, b)
	}

	scan, err := procfs.ScanNetns(r.ProcRoot())
	<-mountsDone
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", r.ProcRoot(), err)
	}
	if mountErr != nil {
		inv.Warnings = append(inv.Warnings, "cannot read mountinfo: "+mountErr.Error())
	}
	hostID, hostSrc, herr := r.Host()
	if herr != nil {
		inv.Warnings = append(inv.Warnings, herr.Error())
	} else if hostSrc == nsfs.HostFromSelf {
		inv.Warnings = append(inv.Warnings, "cannot read /proc/1/ns/net or /proc/2/ns/net: the host namespace is assumed to be nsdebug's own")
	}

	rows := map[nsfs.ID]*NetnsRow{}
	row := func(id nsfs.ID) *NetnsRow {
		if rw, ok := rows[id]; ok {
			return rw
		}
		rw := &NetnsRow{Netns: NetnsRef{Inode: id.Inode, Dev: id.Dev}, Host: herr == nil && id == hostID, Owners: []resolver.Owner{}, PIDs: []int{}, Mounts: []MountRef{}, Interfaces: []Interface{}}
		rows[id] = rw
		return rw
	}
	for id, pids := range scan.PIDs {
		row(id).PIDs = pids
	}
	if herr == nil {
		row(hostID) // the host netns is listed even when PID 1 cannot be read
	}
	for _, m := range mounts {
		rw := row(m.ID)
		// Hidden is decided by the workers that read the namespaces
		// (pinRow): a stat per mount, 500 of them with 500 named
		// netns, is better spread over them than done here in turn.
		rw.Mounts = append(rw.Mounts, MountRef{Path: m.MountPoint})
	}

	// Read every namespace's interfaces while the runtimes answer: the rows
	// are keyed by what the kernel shows, and owners only decorate them.
	kernelRows := make([]*NetnsRow, 0, len(rows))
	for _, rw := range rows {
		kernelRows = append(kernelRows, rw)
	}
	// Namespaces left out because they do not hold opts.HoldingIP (read
	// by the goroutine below, then by this one after ifDone).
	var gone []*NetnsRow
	ifDone := make(chan struct{})
	go func() {
		defer close(ifDone)
		if opts.HoldingIP != nil {
			kernelRows, gone = keepHolding(kernelRows, opts.HoldingIP, opts.Workers)
			for _, rw := range kernelRows {
				heldPIDs = append(heldPIDs, rw.PIDs...)
			}
		}
		heldKnown()
		readInterfaces(kernelRows, opts.Workers)
	}()

	wg.Wait()
	completeBrief(ctx, r, answers)
	late := map[nsfs.ID]*NetnsRow{} // namespaces that appeared after the scan
	for _, a := range answers {
		if a.err != nil {
			inv.Warnings = append(inv.Warnings, fmt.Sprintf("%s: %v (listing from the kernel side only)", a.b.Name(), firstLine(a.err)))
			continue
		}
		for _, c := range a.cands {
			id, ok := candidateID(r.ProcRoot(), c)
			if !ok {
				continue // exited since the runtime answered
			}
			rw, known := rows[id]
			if !known {
				rw = row(id)
				late[id] = rw
				if c.PID > 0 {
					rw.PIDs = []int{c.PID}
				}
			}
			if !hasOwner(rw.Owners, c.Owner) {
				rw.Owners = append(rw.Owners, c.Owner)
			}
		}
	}
	<-ifDone
	if len(late) > 0 {
		var extra []*NetnsRow
		for _, rw := range late {
			extra = append(extra, rw)
		}
		if opts.HoldingIP != nil {
			var lateGone []*NetnsRow
			extra, lateGone = keepHolding(extra, opts.HoldingIP, opts.Workers)
			gone = append(gone, lateGone...)
		}
		readInterfaces(extra, opts.Workers)
	}
	inv.Searched = len(rows)
	for _, rw := range gone {
		delete(rows, nsfs.ID{Dev: rw.Netns.Dev, Inode: rw.Netns.Inode})
	}

	list := make([]*NetnsRow, 0, len(rows))
	for _, rw := range rows {
		rw.Orphaned = len(rw.PIDs) == 0 && !rw.Host
		rw.Netns.Path = bestPath(r.ProcRoot(), rw)
		sortOwners(rw.Owners)
		list = append(list, rw)
	}

	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.Host != b.Host {
			return a.Host
		}
		if (len(a.Owners) > 0) != (len(b.Owners) > 0) {
			return len(a.Owners) > 0
		}
		if len(a.Owners) > 0 && a.Owners[0].Ref() != b.Owners[0].Ref() {
			return a.Owners[0].Ref() < b.Owners[0].Ref()
		}
		return a.Netns.Inode < b.Netns.Inode
	})
	for _, rw := range list {
		inv.Rows = append(inv.Rows, *rw)
	}
	if opts.Wiring {
		if err := AddHostWiring(ctx, r, inv.Rows); err != nil {
			inv.Warnings = append(inv.Warnings, "host wiring: "+err.Error())
		}
	}
	return inv, nil
}

type answer struct {
	b     resolver.Backend
	cands []resolver.Candidate
	err   error
}

// completeBrief places the containers a brief listing left without a PID:
// first from another runtime's view of the same container (Docker's
// containers are the tasks of containerd's "moby" namespace, with PIDs),
// then by asking the backend itself.
func completeBrief(ctx context.Context, r *resolver.Resolver, answers []answer) {
	pids := map[string]int{}
	for _, a := range answers {
		for _, c := range a.cands {
			if c.Runtime == "containerd" && c.PID > 0 {
				pids[c.ID] = c.PID
			}
		}
	}
	for i, a := range answers {
		bl, ok := a.b.(resolver.BriefLister)
		if !ok || a.err != nil {
			continue
		}
		var missing []resolver.Candidate
		for j := range a.cands {
			c := &answers[i].cands[j]
			if c.PID == 0 && c.NetnsPath == "" {
				if pid, ok := pids[c.ID]; ok {
					c.PID = pid
				} else {
					missing = append(missing, *c)
				}
			}
		}
		if len(missing) == 0 {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, r.Timeout())
		done, err := bl.Complete(cctx, missing)
		cancel()
		if err != nil {
			answers[i].err = err
			continue
		}
		byID := map[string]resolver.Candidate{}
		for _, c := range done {
			byID[c.ID] = c
		}
		for j := range a.cands {
			c := &answers[i].cands[j]
			if d, ok := byID[c.ID]; ok && c.PID == 0 && c.NetnsPath == "" {
				*c = d
			}
		}
	}
}

// candidateID finds which namespace a runtime's container is in, without
// opening it: the runtime's netns file first, the PID second.
func candidateID(procRoot string, c resolver.Candidate) (nsfs.ID, bool) {
	if c.NetnsPath != "" {
		if id, err := nsfs.StatID(c.NetnsPath); err == nil && isNsfsLike(c.NetnsPath) {
			return id, true
		}
	}
	if c.PID > 0 {
		if id, err := nsfs.StatID(procRoot + "/" + strconv.Itoa(c.PID) + "/ns/net"); err == nil {
			return id, true
		}
	}
	return nsfs.ID{}, false
}

// isNsfsLike rejects an empty placeholder file left where a bind mount was:
// only a file on nsfs is a namespace.
func isNsfsLike(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

func hasOwner(os []resolver.Owner, o resolver.Owner) bool {
	for _, x := range os {
		if x.Ref() == o.Ref() && x.ID == o.ID {
			return true
		}
	}
	return false
}

// sortOwners puts the most specific owner first: Docker, then pods, then
// plain containerd (whose moby and k8s.io namespaces mirror the other two).
func sortOwners(os []resolver.Owner) {
	rank := func(o resolver.Owner) int {
		switch {
		case (o.Runtime == "docker" || o.Runtime == "podman") && !strings.HasPrefix(o.NetworkMode, "container:"):
			return 0
		case o.Runtime == "docker" || o.Runtime == "podman":
			return 1
		case o.Runtime == "cri" && o.Sandbox:
			return 1
		case o.Runtime == "cri":
			return 2
		case o.Runtime == "containerd" && o.Namespace != "moby" && o.Namespace != "k8s.io":
			return 3
		}
		return 4
	}
	sort.SliceStable(os, func(i, j int) bool {
		if rank(os[i]) != rank(os[j]) {
			return rank(os[i]) < rank(os[j])
		}
		return os[i].Ref() < os[j].Ref()
	})
}

func bestPath(procRoot string, rw *NetnsRow) string {
	for _, m := range rw.Mounts {
		if !m.Hidden {
			return m.Path
		}
	}
	if len(rw.PIDs) > 0 {
		return procRoot + "/" + strconv.Itoa(rw.PIDs[0]) + "/ns/net"
	}
	if len(rw.Mounts) > 0 {
		return rw.Mounts[0].Path
	}
	return ""
}

// readInterfaces fills each row's interfaces through a netlink handle opened
// inside each namespace. Workers each take a share of the rows and visit them
// on one locked thread (enter.Each), which is what keeps ls fast on hosts
// with hundreds of namespaces.
// keepHolding splits rows into those whose namespace has an interface with
// address ip and those without, with one address dump per namespace. A
// namespace that cannot be read is kept: its row carries the error.
func keepHolding(rows []*NetnsRow, ip net.IP, workers int) (holding, without []*NetnsRow) {
	held := make([]bool, len(rows))
	eachNetns(rows, workers, func(buf []byte, i int) (err error) {
		held[i], err = holdsAddress(buf, ip)
		return err
	})
	for i, rw := range rows {
		if held[i] || rw.Error != "" {
			holding = append(holding, rw)
		} else {
			without = append(without, rw)
		}
	}
	return holding, without
}

// readInterfaces fills every row's interfaces and addresses.
func readInterfaces(rows []*NetnsRow, workers int) {
	for _, rw := range rows {
		rw.Error = "" // this read is the row's answer
	}
	results := make([][]Interface, len(rows))
	eachNetns(rows, workers, func(buf []byte, i int) (err error) {
		results[i], err = interfacesHere(buf)
		return err
	})
	for i, rw := range rows {
		if rw.Error == "" {
			rw.Interfaces = results[i]
		}
	}
}

// eachNetns runs visit(buf, i) inside the namespace of every rows[i],
// workers namespaces at a time: each worker pins its share of the rows and
// visits them from one thread (enter.Each) with one receive buffer, reused.
// A namespace that cannot be pinned or entered, or whose visit fails, gets
// the error in its row's Error.
func eachNetns(rows []*NetnsRow, workers int, visit func(buf []byte, i int) error) {
	if workers > len(rows) {
		workers = len(rows)
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var nss []*nsfs.Netns
			var idx []int
			defer func() {
				for _, ns := range nss {
					ns.Close()
				}
			}()
			for i := w; i < len(rows); i += workers {
				ns, err := pinRow(rows[i])
				if err != nil {
					rows[i].Error = err.Error()
					continue
				}
				nss = append(nss, ns)
				idx = append(idx, i)
			}
			buf := make([]byte, nl.RECEIVE_BUFFER_SIZE)
			errs := enter.Each(nss, func(j int) error { return visit(buf, idx[j]) })
			for j, err := range errs {
				if err != nil {
					rows[idx[j]].Error = err.Error()
				}
			}
		}(w)
	}
	wg.Wait()
}

// pinRow pins the row's namespace and, the first time, sets each of its
// mounts Hidden when its mount point no longer shows the namespace (a later
// mount covers it). The first mount that opens as the namespace is both its
// own check and the pin: one lookup, not a stat and then an open.
func pinRow(rw *NetnsRow) (*nsfs.Netns, error) {
	if rw.mountsChecked {
		return openRow(rw)
	}
	rw.mountsChecked = true
	want := nsfs.ID{Dev: rw.Netns.Dev, Inode: rw.Netns.Inode}
	var pinned *nsfs.Netns
	for i := range rw.Mounts {
		if pinned == nil {
			if ns, err := nsfs.OpenKnown(rw.Mounts[i].Path, want); err == nil {
				pinned = ns // it shows the namespace: visible
				continue
			}
		}
		id, err := nsfs.StatID(rw.Mounts[i].Path)
		rw.Mounts[i].Hidden = err != nil || id != want
	}
	if pinned != nil {
		return pinned, nil
	}
	return openRow(rw)
}

// openRow pins the row's namespace and checks it is still the same one.
func openRow(rw *NetnsRow) (*nsfs.Netns, error) {
	want := nsfs.ID{Dev: rw.Netns.Dev, Inode: rw.Netns.Inode}
	last := errors.New("no process or visible mount holds it")
	paths := []string{}
	for _, m := range rw.Mounts {
		if !m.Hidden {
			paths = append(paths, m.Path)
		}
	}
	for _, pid := range rw.PIDs {
		paths = append(paths, "/proc/"+strconv.Itoa(pid)+"/ns/net")
		if len(paths) > 4 {
			break
		}
	}
	// The mounts' paths were stat'ed by pinRow, the PIDs' are procfs links
	// to namespaces: each only has to be the namespace still.
	for _, p := range paths {
		ns, err := nsfs.OpenKnown(p, want)
		if err != nil {
			last = err
			continue
		}
		return ns, nil
	}
	return nil, last
}

// Interfaces lists links and their addresses through h, retrying dumps the
// kernel interrupted (busy hosts) instead of returning half a list.
func Interfaces(h *netlink.Handle) ([]Interface, error) {
	links, err := nldump.Retry(h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	addrs, err := nldump.Retry(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	byIndex := map[int][]string{}
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		byIndex[a.LinkIndex] = append(byIndex[a.LinkIndex], (&net.IPNet{IP: a.IP, Mask: a.Mask}).String())
	}
	out := make([]Interface, 0, len(links))
	for _, l := range links {
		at := l.Attrs()
		addrs := byIndex[at.Index]
		if addrs == nil {
			addrs = []string{}
		}
		out = append(out, Interface{Name: at.Name, Index: at.Index, Type: l.Type(), State: at.OperState.String(), Addresses: addrs})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

func firstLine(err error) string {
	s := err.Error()
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
