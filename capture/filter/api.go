package filter

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// LinkType is a pcap link-layer header type (the DLT/LINKTYPE number).
type LinkType int

// Link types the compiler generates code for.
const (
	EN10MB    LinkType = 1   // Ethernet
	Raw       LinkType = 101 // raw IPv4/IPv6, no link header (LINKTYPE_RAW)
	LinuxSLL  LinkType = 113 // Linux cooked capture v1
	LinuxSLL2 LinkType = 276 // Linux cooked capture v2
)

func (lt LinkType) String() string {
	switch lt {
	case EN10MB:
		return "EN10MB"
	case Raw:
		return "RAW"
	case LinuxSLL:
		return "LINUX_SLL"
	case LinuxSLL2:
		return "LINUX_SLL2"
	}
	return fmt.Sprintf("LinkType(%d)", int(lt))
}

// SyntaxError is a filter expression the compiler cannot accept. Pos is the
// byte offset in the expression where the problem is.
type SyntaxError struct {
	Pos int
	Msg string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("filter: at position %d: %s", e.Pos, e.Msg)
}

// Compile compiles expr for packets of link type lt, as captured into a file
// with that link type, returning at most snaplen bytes of accepted packets.
func Compile(expr string, lt LinkType, snaplen int) ([]bpf.RawInstruction, error) {
	return compile(expr, lt, snaplen)
}

// CompileForSocket compiles expr for attaching to an AF_PACKET socket whose
// packets are presented as link type lt. cooked is true for a SOCK_DGRAM
// socket (the `any` device, lt LinuxSLL or LinuxSLL2): the program is then
// rewritten for the kernel as libpcap does for cooked sockets.
func CompileForSocket(expr string, lt LinkType, cooked bool, snaplen int) ([]bpf.RawInstruction, error) {
	return compileForSocket(expr, lt, cooked, snaplen)
}
