package inspect

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/resolver"
)

// WhoisResult is `nsdebug whois -o json`: every namespace that THING points
// at, each with the reason it matched. matches[] are ls rows (netns, host,
// orphaned, owners, pids, mounts, interfaces, host_veths, error) plus
// "reason". Field names are documented in `nsdebug whois --help`.
type WhoisResult struct {
	Query    string       `json:"query"`
	Matches  []WhoisMatch `json:"matches"`
	Warnings []string     `json:"warnings,omitempty"`
	rows     []NetnsRow
}

// WhoisMatch is one namespace and why it matched.
type WhoisMatch struct {
	Reason string `json:"reason"`
	NetnsRow
}

// Whois finds whose thing is: an IP address (which namespaces hold it), a
// host interface name (a host veth: the namespace of its peer; a bridge:
// every namespace hanging on it), an interface index on the host, a netns
// inode, or a PID. A bare number is tried as all three of the last; prefixes
// pid:N, ifindex:N and net:[N] (or inode:N) pick one.
func Whois(ctx context.Context, r *resolver.Resolver, thing string) (*WhoisResult, error) {
	thing = strings.TrimSpace(thing)
	if err := CheckWhois(thing); err != nil {
		return nil, err
	}
	q := parseWhois(thing)
	// An address is looked for with one address dump per namespace; only
	// the namespaces that hold it are read whole.
	inv, err := ListNetns(ctx, r, ListOptions{HoldingIP: q.ip})
	if err != nil {
		return nil, err
	}
	res := &WhoisResult{Query: thing, Matches: []WhoisMatch{}, Warnings: inv.Warnings, rows: inv.Rows}
	var host *NetnsRow
	for i := range inv.Rows {
		if inv.Rows[i].Host {
			host = &inv.Rows[i]
		}
	}
	// A host interface is explained by every namespace's wiring; other
	// queries need the wiring of their matches only (see below), which
	// keeps whois IP fast on hosts with hundreds of namespaces.
	wiredAll := q.name != "" || q.ifindex > 0
	if wiredAll {
		if err := AddHostWiring(ctx, r, inv.Rows); err != nil {
			res.Warnings = append(res.Warnings, "host wiring: "+err.Error())
		}
	}
	add := func(reason string, rw NetnsRow) {
		res.Matches = append(res.Matches, WhoisMatch{Reason: reason, NetnsRow: rw})
	}

	if q.ip != nil {
		for _, rw := range inv.Rows {
			for _, ifc := range rw.Interfaces {
				for _, a := range ifc.Addresses {
					if ip, _, err := net.ParseCIDR(a); err == nil && ip.Equal(q.ip) {
						add(fmt.Sprintf("address %s on %s", q.ip, ifc.Name), rw)
					}
				}
			}
		}
	}
	if q.name != "" && host != nil {
		for _, ifc := range host.Interfaces {
			if ifc.Name == q.name {
				res.addHostInterface(ifc, add)
			}
		}
	}
	if q.ifindex > 0 && host != nil {
		for _, ifc := range host.Interfaces {
			if ifc.Index == q.ifindex {
				res.addHostInterface(ifc, add)
			}
		}
	}
	if q.inode > 0 {
		for _, rw := range inv.Rows {
			if rw.Netns.Inode == q.inode {
				add(fmt.Sprintf("network namespace net:[%d]", q.inode), rw)
			}
		}
	}
	if q.pid > 0 {
		found := false
		for _, rw := range inv.Rows {
			for _, p := range rw.PIDs {
				if p == q.pid {
					add(fmt.Sprintf("process %d (%s)", p, comm(r.ProcRoot(), p)), rw)
					found = true
				}
			}
		}
		if !found {
			if tgid, id, ok := threadNetns(r.ProcRoot(), q.pid); ok {
				for _, rw := range inv.Rows {
					if rw.Netns.Inode == id.Inode && rw.Netns.Dev == id.Dev {
						add(fmt.Sprintf("thread %d of process %d (%s)", q.pid, tgid, comm(r.ProcRoot(), q.pid)), rw)
					}
				}
			}
		}
	}
	if !wiredAll && len(res.Matches) > 0 {
		rows := make([]NetnsRow, len(res.Matches))
		for i, m := range res.Matches {
			rows[i] = m.NetnsRow
		}
		if err := AddHostWiring(ctx, r, rows); err != nil {
			res.Warnings = append(res.Warnings, "host wiring: "+err.Error())
		}
		for i := range rows {
			res.Matches[i].HostVeths = rows[i].HostVeths
		}
	}
	if len(res.Matches) == 0 {
		return res, nserr.New(nserr.ErrNotFound, "nothing on this host matches %q (looked for %s in %s)", thing, q.what(), countNetns(inv.Searched))
	}
	return res, nil
}

func comm(procRoot string, pid int) string {
	b, _ := os.ReadFile(procRoot + "/" + strconv.Itoa(pid) + "/comm")
	return strings.TrimSpace(string(b))
}

// threadNetns finds a thread that is not its process's leader (/proc lists
// leaders only, but /proc/TID answers) and the namespace that thread is in:
// its own, which need not be its leader's (a Go program switching threads
// with setns, as nsdebug does).
func threadNetns(procRoot string, tid int) (tgid int, id nsfs.ID, ok bool) {
	dir := procRoot + "/" + strconv.Itoa(tid)
	b, err := os.ReadFile(dir + "/status")
	if err != nil {
		return 0, nsfs.ID{}, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, found := strings.CutPrefix(line, "Tgid:"); found {
			tgid, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if tgid <= 0 || tgid == tid {
		return 0, nsfs.ID{}, false
	}
	id, err = nsfs.StatID(dir + "/ns/net")
	if err != nil {
		return 0, nsfs.ID{}, false
	}
	return tgid, id, true
}

// addHostInterface explains a host interface: a veth leads to its peer's
// namespace, a bridge to every namespace with a veth on it, anything else is
// the host's own.
func (res *WhoisResult) addHostInterface(ifc Interface, add func(string, NetnsRow)) {
	found := false
	for _, rw := range res.rows {
		for _, hv := range rw.HostVeths {
			switch {
			case hv.Name == ifc.Name:
				add(fmt.Sprintf("host veth %s (#%d) is the peer of %s inside", ifc.Name, ifc.Index, dash(hv.Peer)), rw)
				found = true
			case hv.Bridge == ifc.Name:
				add(fmt.Sprintf("bridge %s: host veth %s leads here", ifc.Name, hv.Name), rw)
				found = true
			}
		}
	}
	if !found {
		for _, rw := range res.rows {
			if rw.Host {
				add(fmt.Sprintf("host interface %s (#%d, %s)", ifc.Name, ifc.Index, ifc.Type), rw)
			}
		}
	}
}

// CheckWhois says whether thing is something whois can look for (a usage
// error if not), without looking: bad input is refused before anything
// needs root.
func CheckWhois(thing string) error {
	thing = strings.TrimSpace(thing)
	if thing == "" {
		return nserr.New(nserr.ErrUsage, "whois needs an IP address, interface name, ifindex, netns inode or PID")
	}
	if q := parseWhois(thing); q.bad != "" {
		return nserr.New(nserr.ErrUsage, "%s", q.bad)
	}
	return nil
}

type whoisQuery struct {
	ip      net.IP
	name    string
	ifindex int
	inode   uint64
	pid     int
	bad     string
}

func (q whoisQuery) what() string {
	var w []string
	if q.ip != nil {
		w = append(w, "an address")
	}
	if q.name != "" {
		w = append(w, "a host interface name")
	}
	if q.ifindex > 0 {
		w = append(w, "a host ifindex")
	}
	if q.inode > 0 {
		w = append(w, "a netns inode")
	}
	if q.pid > 0 {
		w = append(w, "a PID or thread ID")
	}
	return strings.Join(w, ", ")
}

func parseWhois(s string) whoisQuery {
	num := func(v, what string) (uint64, string) {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return 0, fmt.Sprintf("%q: %s must be a positive number", s, what)
		}
		return n, ""
	}
	var q whoisQuery
	switch {
	case strings.HasPrefix(s, "pid:"):
		n, bad := num(s[4:], "a PID")
		q.pid, q.bad = int(n), bad
	case strings.HasPrefix(s, "ifindex:"):
		n, bad := num(s[8:], "an ifindex")
		q.ifindex, q.bad = int(n), bad
	case strings.HasPrefix(s, "inode:"):
		q.inode, q.bad = num(s[6:], "an inode")
	case strings.HasPrefix(s, "net:[") && strings.HasSuffix(s, "]"):
		q.inode, q.bad = num(s[5:len(s)-1], "an inode")
	default:
		if ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); ip != nil {
			q.ip = ip
		} else if n, err := strconv.ParseUint(s, 10, 64); err == nil && n > 0 {
			q.inode = n
			if n <= 1<<31 {
				q.pid, q.ifindex = int(n), int(n)
			}
		} else if len(s) <= 15 && !strings.ContainsAny(s, "/ \t:") {
			q.name = s // IFNAMSIZ-1
		} else {
			q.bad = fmt.Sprintf("%q is not an IP address, interface name, ifindex, netns inode or PID", s)
		}
	}
	return q
}

func countNetns(n int) string {
	if n == 1 {
		return "1 network namespace"
	}
	return strconv.Itoa(n) + " network namespaces"
}
