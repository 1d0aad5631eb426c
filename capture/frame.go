package capture

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/capture/filter"
)

// Link-layer header lengths of the Linux cooked formats.
const (
	sllLen  = 16
	sll2Len = 20
	vlanLen = 4
)

// buildFrame appends to buf the packet as it goes into a file of link type
// lt: Ethernet frames get their VLAN tag back (the kernel strips it into the
// ring header), cooked packets get an SLL or SLL2 header made from the
// sockaddr_ll (as libpcap builds them). It returns the frame and the
// packet's length on the wire in that link type.
func buildFrame(buf []byte, p *rawPacket, lt filter.LinkType) ([]byte, int) {
	buf = buf[:0]
	wire := p.wireLen
	switch lt {
	case filter.LinuxSLL2:
		var h [sll2Len]byte
		binary.BigEndian.PutUint16(h[0:], p.protocol)
		binary.BigEndian.PutUint32(h[4:], uint32(p.ifindex))
		binary.BigEndian.PutUint16(h[8:], p.hatype)
		h[10] = p.pkttype
		h[11] = byte(len(p.addr))
		copy(h[12:], p.addr)
		buf = append(append(buf, h[:]...), p.data...)
		wire += sll2Len
	case filter.LinuxSLL:
		var h [sllLen]byte
		binary.BigEndian.PutUint16(h[0:], uint16(p.pkttype))
		binary.BigEndian.PutUint16(h[2:], p.hatype)
		binary.BigEndian.PutUint16(h[4:], uint16(len(p.addr)))
		copy(h[6:], p.addr)
		binary.BigEndian.PutUint16(h[14:], p.protocol)
		buf = append(buf, h[:]...)
		wire += sllLen
		if p.vlanOK {
			// libpcap puts the tag where the protocol was (offset 14).
			binary.BigEndian.PutUint16(buf[14:], p.vlanTPID)
			buf = binary.BigEndian.AppendUint16(buf, p.vlanTCI)
			buf = binary.BigEndian.AppendUint16(buf, p.protocol)
			wire += vlanLen
		}
		buf = append(buf, p.data...)
	default: // Ethernet
		if p.vlanOK && len(p.data) >= 12 {
			buf = append(buf, p.data[:12]...)
			buf = binary.BigEndian.AppendUint16(buf, p.vlanTPID)
			buf = binary.BigEndian.AppendUint16(buf, p.vlanTCI)
			buf = append(buf, p.data[12:]...)
			wire += vlanLen
		} else {
			buf = append(buf, p.data...)
		}
	}
	return buf, wire
}

// Direction of a packet from its sockaddr_ll packet type.
type Direction uint8

// Directions.
const (
	DirIn Direction = iota
	DirOut
)

func direction(pkttype uint8) Direction {
	if pkttype == unix.PACKET_OUTGOING {
		return DirOut
	}
	return DirIn
}
