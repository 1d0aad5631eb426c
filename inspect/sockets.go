package inspect

import (
	"net"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/nldump"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/internal/procfs"
)

// Socket is one TCP or UDP socket as sock_diag reports it.
type Socket struct {
	Proto     string    `json:"proto"`
	Family    string    `json:"family"`
	State     string    `json:"state"`
	Local     string    `json:"local"`
	Remote    string    `json:"remote"`
	RecvQ     uint32    `json:"recv_q"`
	SendQ     uint32    `json:"send_q"`
	Inode     uint32    `json:"inode"`
	UID       uint32    `json:"uid"`
	Processes []Process `json:"processes"`
}

// Process holds a socket open.
type Process struct {
	PID     int    `json:"pid"`
	Command string `json:"command"`
}

// tcpStates are the kernel's TCP states in ss's words.
var tcpStates = map[uint8]string{
	1: "ESTAB", 2: "SYN-SENT", 3: "SYN-RECV", 4: "FIN-WAIT-1", 5: "FIN-WAIT-2", 6: "TIME-WAIT",
	7: "UNCONN", 8: "CLOSE-WAIT", 9: "LAST-ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW-SYN-RECV",
}

// socketsOf dumps TCP and UDP sockets of both families through h, whose
// NETLINK_INET_DIAG socket lives in the inspected namespace.
func socketsOf(h *netlink.Handle) ([]Socket, error) {
	var out []Socket
	for _, proto := range []string{"tcp", "udp"} {
		for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
			socks, err := nldump.Retry(func() ([]*netlink.Socket, error) {
				if proto == "udp" {
					return h.SocketDiagUDP(fam)
				}
				return h.SocketDiagTCP(fam)
			})
			if err != nil {
				return nil, err
			}
			for _, s := range socks {
				st := tcpStates[s.State]
				if st == "" {
					st = strconv.Itoa(int(s.State))
				}
				out = append(out, Socket{
					Proto: proto, Family: familyName(int(s.Family)), State: st,
					Local: hostPort(s.Family, s.ID.Source, s.ID.SourcePort), Remote: hostPort(s.Family, s.ID.Destination, s.ID.DestinationPort),
					RecvQ: s.RQueue, SendQ: s.WQueue, Inode: s.INode, UID: s.UID, Processes: []Process{},
				})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if (a.State == "LISTEN" || a.State == "UNCONN") != (b.State == "LISTEN" || b.State == "UNCONN") {
			return a.State == "LISTEN" || a.State == "UNCONN"
		}
		if a.Proto != b.Proto {
			return a.Proto < b.Proto
		}
		return false
	})
	if out == nil {
		out = []Socket{}
	}
	return out, nil
}

// hostPort formats ip:port as ss does: [v6]:port, "*" for port 0. An
// IPv4-mapped address of an inet6 socket stays [::ffff:a.b.c.d]: the
// socket is IPv6 (a dual-stack listener's accepted connection).
func hostPort(family uint8, ip net.IP, port uint16) string {
	h := ip.String()
	switch {
	case family == unix.AF_INET6 && ip.To4() != nil:
		h = "[::ffff:" + ip.To4().String() + "]"
	case ip.To4() == nil:
		h = "[" + h + "]"
	}
	p := "*"
	if port != 0 {
		p = strconv.Itoa(int(port))
	}
	return h + ":" + p
}

// addProcesses finds which processes hold each socket by its inode, reading
// the host's /proc/PID/fd links (as ss -p does). Processes in the inspected
// namespace are read first; the rest only while some socket is still
// unclaimed (a socket may be passed to a process in another namespace).
func addProcesses(procRoot string, ns nsfs.ID, socks []Socket) error {
	byInode := map[uint32][]int{}
	for i, s := range socks {
		if s.Inode != 0 {
			byInode[s.Inode] = append(byInode[s.Inode], i)
		}
	}
	if len(byInode) == 0 {
		return nil
	}
	scan, err := procfs.ScanNetns(procRoot)
	if err != nil {
		return err
	}
	claimed := map[uint32]bool{}
	visit := func(pid int) {
		dir := procRoot + "/" + strconv.Itoa(pid) + "/fd"
		d, err := os.Open(dir)
		if err != nil {
			return
		}
		names, _ := d.Readdirnames(-1)
		d.Close()
		var comm string
		seen := map[uint32]bool{}
		for _, n := range names {
			l, err := os.Readlink(dir + "/" + n)
			if err != nil || !strings.HasPrefix(l, "socket:[") {
				continue
			}
			ino, err := strconv.ParseUint(l[len("socket:["):len(l)-1], 10, 32)
			if err != nil {
				continue
			}
			idx, ok := byInode[uint32(ino)]
			if !ok || seen[uint32(ino)] {
				continue
			}
			seen[uint32(ino)] = true
			claimed[uint32(ino)] = true
			if comm == "" {
				b, _ := os.ReadFile(procRoot + "/" + strconv.Itoa(pid) + "/comm")
				comm = strings.TrimSpace(string(b))
			}
			for _, i := range idx {
				socks[i].Processes = append(socks[i].Processes, Process{PID: pid, Command: comm})
			}
		}
	}
	for _, pid := range scan.PIDs[ns] {
		visit(pid)
	}
	if len(claimed) < len(byInode) {
		for id, pids := range scan.PIDs {
			if id == ns {
				continue
			}
			for _, pid := range pids {
				visit(pid)
			}
		}
	}
	for i := range socks {
		sort.Slice(socks[i].Processes, func(a, b int) bool { return socks[i].Processes[a].PID < socks[i].Processes[b].PID })
	}
	return nil
}
