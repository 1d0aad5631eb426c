package diagnose

import (
	"errors"
	"net"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/enter"
	"github.com/nsdebug/nsdebug/internal/nsfs"
)

// ProbeResult is the DNS probe's outcome per nameserver.
type ProbeResult struct {
	Servers []ServerProbe
}

// ServerProbe is one nameserver's answer (or silence).
type ServerProbe struct {
	Server   string
	Answered bool
	RCode    string
	RTT      time.Duration
	Err      string
}

// probeName is asked of each nameserver: "localhost." is answered by
// resolvers themselves (RFC 6761), so the probe never makes a resolver go
// out to the internet on nsdebug's behalf.
const probeName = "localhost."

// probeDNS sends at most threshold("dns.probe","queries") queries to each
// of the first three nameservers (as many as glibc uses), from a UDP socket
// made inside ns, and waits at most the probe timeout for each.
func probeDNS(ns *nsfs.Netns, servers []string) *ProbeResult {
	pr := &ProbeResult{}
	if len(servers) > 3 {
		servers = servers[:3]
	}
	timeout := time.Duration(threshold("dns.probe", "timeout_s") * float64(time.Second))
	tries := int(threshold("dns.probe", "queries"))
	for _, s := range servers {
		sp := ServerProbe{Server: s}
		ip := net.ParseIP(s)
		if ip == nil {
			sp.Err = "not an IP address"
			pr.Servers = append(pr.Servers, sp)
			continue
		}
		var fd int
		err := enter.Do(ns, func() error {
			var err error
			fam := unix.AF_INET
			if ip.To4() == nil {
				fam = unix.AF_INET6
			}
			fd, err = unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			return err
		})
		if err != nil {
			sp.Err = err.Error()
			pr.Servers = append(pr.Servers, sp)
			continue
		}
		sp = askOnce(fd, ip, tries, timeout/time.Duration(tries))
		sp.Server = s
		unix.Close(fd)
		pr.Servers = append(pr.Servers, sp)
	}
	return pr
}

func askOnce(fd int, ip net.IP, tries int, per time.Duration) ServerProbe {
	var sa unix.Sockaddr
	if ip4 := ip.To4(); ip4 != nil {
		a := &unix.SockaddrInet4{Port: 53}
		copy(a.Addr[:], ip4)
		sa = a
	} else {
		a := &unix.SockaddrInet6{Port: 53}
		copy(a.Addr[:], ip.To16())
		sa = a
	}
	if err := unix.Connect(fd, sa); err != nil {
		return ServerProbe{Err: err.Error()}
	}
	tv := unix.NsecToTimeval(per.Nanoseconds())
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	var last error
	start := time.Now()
	for i := 0; i < tries; i++ {
		id := uint16(time.Now().UnixNano()) + uint16(i)
		q := dnsmessage.Message{
			Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
			Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(probeName), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}},
		}
		b, _ := q.Pack()
		if _, err := unix.Write(fd, b); err != nil {
			last = err
			continue
		}
		deadline := time.Now().Add(per)
		buf := make([]byte, 1500)
		for time.Now().Before(deadline) {
			n, err := unix.Read(fd, buf)
			if err != nil {
				last = err
				break
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil || h.ID != id || !h.Response {
				continue
			}
			return ServerProbe{Answered: true, RCode: h.RCode.String(), RTT: time.Since(start)}
		}
	}
	if last == nil || errors.Is(last, unix.EAGAIN) {
		return ServerProbe{Err: "no answer"}
	}
	return ServerProbe{Err: last.Error()}
}
