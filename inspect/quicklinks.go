package inspect

import (
	"fmt"
	"net"
	"sort"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/nldump"
)

// rtextFilterSkipStats is RTEXT_FILTER_SKIP_STATS (linux/rtnetlink.h): the
// kernel leaves the per-link counters out of a link dump.
const rtextFilterSkipStats = 1 << 3

// dumpSocket is a NETLINK_ROUTE socket for ls's bulk dumps: a plain
// blocking descriptor (no poller registration, which costs two system calls
// per socket) reading into one buffer that is reused for every dump of every
// namespace a worker visits. The library's Receive allocates and clears a
// fresh 64 KiB buffer per read: for ls on a host with hundreds of namespaces
// that garbage, and the page faults it brings, were most of ls's time.
// Requests are still built, and answers parsed, by the library.
type dumpSocket struct {
	fd  int
	seq uint32
	buf []byte
}

// openDumpSocket opens a socket in the calling thread's namespace; buf is
// the worker's shared receive buffer.
func openDumpSocket(buf []byte) (*dumpSocket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	s := &dumpSocket{fd: fd, buf: buf}
	// A bounded wait: a dump the kernel never finishes must not hang ls.
	tv := unix.NsecToTimeval((5 * time.Second).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *dumpSocket) close() { unix.Close(s.fd) }

// dump sends req and calls fn for every answer of type resType. The message
// passed to fn aliases the shared buffer: fn must copy what it keeps. An
// interrupted dump (NLM_F_DUMP_INTR) returns netlink.ErrDumpInterrupted
// after draining it, so that the caller redoes it whole.
func (s *dumpSocket) dump(req *nl.NetlinkRequest, resType uint16, fn func(m []byte) error) error {
	s.seq++
	req.Seq = s.seq
	if err := unix.Sendto(s.fd, req.Serialize(), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	return s.receive(resType, fn)
}

// receive reads the answers to request s.seq until NLMSG_DONE or an error
// (split from dump so that tests can feed it crafted messages).
func (s *dumpSocket) receive(resType uint16, fn func(m []byte) error) error {
	intr := false
	for {
		// read, not recvfrom: only the kernel sends here, and recvfrom
		// allocates a source address per call.
		n, err := unix.Read(s.fd, s.buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(s.buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			// Only the kernel unicasts to this unbound (auto-bound) socket,
			// and only answers to its own requests.
			if m.Header.Seq != s.seq {
				continue // a late answer to an earlier request
			}
			if m.Header.Flags&unix.NLM_F_DUMP_INTR != 0 {
				intr = true
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				if intr {
					return netlink.ErrDumpInterrupted
				}
				return nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(nl.NativeEndian().Uint32(m.Data[:4])); errno != 0 {
						return syscall.Errno(-errno)
					}
				}
				return nil
			case resType:
				if err := fn(m.Data); err != nil {
					return err
				}
			}
		}
	}
}

// interfacesHere lists the links and addresses of the network namespace the
// calling thread is in. It must run inside enter.Do/enter.Each: the socket it
// opens belongs to that namespace. buf is a receive buffer the caller reuses
// (at least 64 KiB, as the library uses).
//
// `ls` calls it for every namespace on the host, so it asks for less than
// netlink.LinkList does (no counters, no VF info) and decodes only the
// fields ls shows, through the library's message and attribute helpers.
// A dump the kernel interrupts is redone, never returned half-filled.
func interfacesHere(buf []byte) ([]Interface, error) {
	s, err := openDumpSocket(buf)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	defer s.close()

	var out []Interface
	byIndex := map[int]int{}
	_, err = nldump.Retry(func() ([]Interface, error) {
		out, byIndex = out[:0], map[int]int{}
		req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
		req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
		req.AddData(nl.NewRtAttr(unix.IFLA_EXT_MASK, nl.Uint32Attr(rtextFilterSkipStats)))
		return nil, s.dump(req, unix.RTM_NEWLINK, func(m []byte) error {
			ifc, err := parseLinkBrief(m)
			if err != nil || ifc == nil {
				return err
			}
			byIndex[ifc.Index] = len(out)
			out = append(out, *ifc)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	_, err = nldump.Retry(func() ([]Interface, error) {
		for i := range out {
			out[i].Addresses = out[i].Addresses[:0]
		}
		req := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
		req.AddData(nl.NewIfAddrmsg(unix.AF_UNSPEC))
		return nil, s.dump(req, unix.RTM_NEWADDR, func(m []byte) error {
			return addAddressBrief(m, out, byIndex)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

// holdsAddress reports whether an interface of the network namespace the
// calling thread is in has address ip. It must run inside enter.Do or
// enter.Each, like interfacesHere, and costs one address dump: whois IP asks
// it of every namespace and reads links only where the answer is yes (a link
// dump is most of interfacesHere's cost: the kernel builds every attribute
// of every link, IPv6 settings included).
func holdsAddress(buf []byte, ip net.IP) (bool, error) {
	s, err := openDumpSocket(buf)
	if err != nil {
		return false, fmt.Errorf("netlink socket: %w", err)
	}
	defer s.close()
	family := uint8(unix.AF_INET6)
	want := ip.To16()
	if v4 := ip.To4(); v4 != nil {
		family, want = unix.AF_INET, v4
	}
	held, err := nldump.Retry(func() (bool, error) {
		found := false
		req := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
		req.AddData(nl.NewIfAddrmsg(int(family)))
		err := s.dump(req, unix.RTM_NEWADDR, func(m []byte) error {
			if found || len(m) < unix.SizeofIfAddrmsg {
				return nil
			}
			msg := nl.DeserializeIfAddrmsg(m)
			var local, address []byte
			if err := walkAttrs(m[msg.Len():], func(typ uint16, val []byte) {
				switch typ {
				case unix.IFA_LOCAL:
					local = val
				case unix.IFA_ADDRESS:
					address = val
				}
			}); err != nil {
				return fmt.Errorf("parse address: %w", err)
			}
			// The interface's own address, as addAddressBrief takes it.
			own := local
			if own == nil {
				own = address
			}
			found = net.IP(own).Equal(want)
			return nil
		})
		return found, err
	})
	if err != nil {
		return false, fmt.Errorf("list addresses: %w", err)
	}
	return held, nil
}

// parseLinkBrief decodes the fields ls shows from one RTM_NEWLINK message;
// nil for a message too short to be one.
func parseLinkBrief(m []byte) (*Interface, error) {
	if len(m) < unix.SizeofIfInfomsg {
		return nil, nil
	}
	msg := nl.DeserializeIfInfomsg(m)
	ifc := &Interface{Index: int(msg.Index), Type: "device", Addresses: []string{}}
	var infoErr error
	err := walkAttrs(m[msg.Len():], func(typ uint16, val []byte) {
		switch typ {
		case unix.IFLA_IFNAME:
			ifc.Name = cString(val)
		case unix.IFLA_OPERSTATE:
			if len(val) > 0 {
				ifc.State = netlink.LinkOperState(val[0]).String()
			}
		case unix.IFLA_LINKINFO:
			infoErr = walkAttrs(val, func(typ uint16, val []byte) {
				if typ == unix.IFLA_INFO_KIND {
					ifc.Type = cString(val)
				}
			})
		}
	})
	if err == nil {
		err = infoErr
	}
	if err != nil {
		return nil, fmt.Errorf("parse link: %w", err)
	}
	return ifc, nil
}

// addAddressBrief adds one RTM_NEWADDR message's address to its interface.
func addAddressBrief(m []byte, out []Interface, byIndex map[int]int) error {
	if len(m) < unix.SizeofIfAddrmsg {
		return nil
	}
	msg := nl.DeserializeIfAddrmsg(m)
	attrs, err := nl.ParseRouteAttr(m[msg.Len():])
	if err != nil {
		return fmt.Errorf("parse address: %w", err)
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
		return nil
	}
	// String() copies: the message aliases the shared receive buffer.
	cidr := (&net.IPNet{IP: ip, Mask: net.CIDRMask(int(msg.Prefixlen), 8*len(ip))}).String()
	out[i].Addresses = append(out[i].Addresses, cidr)
	return nil
}

// walkAttrs calls fn for each route attribute in b, in order. It is
// nl.ParseRouteAttr without building the slice: a link message carries some
// fifty attributes of which ls reads three, and for hundreds of namespaces
// those slices were most of ls's garbage.
func walkAttrs(b []byte, fn func(typ uint16, val []byte)) error {
	for len(b) >= unix.SizeofRtAttr {
		l := int(nl.NativeEndian().Uint16(b[0:2]))
		typ := nl.NativeEndian().Uint16(b[2:4])
		if l < unix.SizeofRtAttr || l > len(b) {
			return unix.EINVAL
		}
		fn(typ&nl.NLA_TYPE_MASK, b[unix.SizeofRtAttr:l])
		next := (l + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1)
		if next > len(b) {
			break
		}
		b = b[next:]
	}
	return nil
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
