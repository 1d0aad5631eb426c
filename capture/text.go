package capture

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/nsdebug/nsdebug/capture/filter"
)

// textSink prints one line per packet in tcpdump's -nn -S style, always
// with the interface and direction as tcpdump -i any shows them:
//
//	15:04:05.000000 eth0  In  IP 10.0.0.1.40000 > 10.0.0.2.8080: Flags [S], seq 1, win 64240, options [mss 1460], length 0
type textSink struct {
	bw     *bufio.Writer
	ifaces []Iface
}

// NewTextSink writes text lines to w.
func NewTextSink(w io.Writer) Sink {
	return &textSink{bw: bufio.NewWriterSize(w, 64<<10)}
}

func (s *textSink) AddInterface(i Iface) (int, error) {
	s.ifaces = append(s.ifaces, i)
	return len(s.ifaces) - 1, nil
}

func (s *textSink) WritePacket(p *Packet) error {
	i := s.ifaces[p.Iface]
	name := i.Name
	if n, ok := i.Names[p.IfIndex]; ok && i.Index == 0 {
		// -i any: the interface the packet was on, inside the capture's name.
		name = strings.TrimSuffix(name, "any") + n
	}
	var b strings.Builder
	b.WriteString(p.TS.Format("15:04:05.000000"))
	b.WriteByte(' ')
	b.WriteString(name)
	b.WriteByte(' ')
	b.WriteString(dirLabel(p.Pkttype))
	b.WriteByte(' ')
	b.WriteString(FormatPacket(p.Data, i.LinkType, p.WireLen))
	b.WriteByte('\n')
	_, err := s.bw.WriteString(b.String())
	return err
}

func (s *textSink) EndInterface(int, IfaceStats) error { return nil }
func (s *textSink) Flush() error                       { return s.bw.Flush() }

// dirLabel is tcpdump's -i any direction column.
func dirLabel(pkttype uint8) string {
	switch pkttype {
	case 0:
		return "In "
	case 1:
		return "B  "
	case 2:
		return "M  "
	case 3:
		return "P  "
	case 4:
		return "Out"
	}
	return "?  "
}

// FormatPacket decodes a frame of link type lt with gopacket's layers and
// describes it as tcpdump -nn -S does after the timestamp (and interface).
func FormatPacket(data []byte, lt filter.LinkType, wireLen int) string {
	first := layers.LayerTypeEthernet
	switch lt {
	case filter.LinuxSLL:
		first = layers.LayerTypeLinuxSLL
	case filter.LinuxSLL2:
		first = layers.LayerTypeLinuxSLL2
	}
	pkt := gopacket.NewPacket(data, first, gopacket.NoCopy)
	var b strings.Builder
	var netl gopacket.Layer
	for _, l := range pkt.Layers() {
		switch l.LayerType() {
		case layers.LayerTypeIPv4, layers.LayerTypeIPv6, layers.LayerTypeARP:
			netl = l
		}
		if netl != nil {
			break
		}
	}
	switch l := netl.(type) {
	case *layers.ARP:
		formatARP(&b, l)
	case *layers.IPv4:
		src, dst := l.SrcIP.String(), l.DstIP.String()
		b.WriteString("IP ")
		if l.FragOffset != 0 {
			fmt.Fprintf(&b, "%s > %s: ip-proto-%d", src, dst, l.Protocol)
			break
		}
		formatTransport(&b, pkt, src, dst, int(l.Length)-int(l.IHL)*4)
	case *layers.IPv6:
		b.WriteString("IP6 ")
		formatTransport(&b, pkt, l.SrcIP.String(), l.DstIP.String(), int(l.Length))
	default:
		et := etherType(pkt)
		if et == 0 {
			fmt.Fprintf(&b, "unknown, length %d", wireLen)
		} else {
			fmt.Fprintf(&b, "ethertype %s (0x%04x), length %d", layers.EthernetType(et), et, wireLen)
		}
	}
	return b.String()
}

func etherType(pkt gopacket.Packet) uint16 {
	for _, l := range pkt.Layers() {
		switch h := l.(type) {
		case *layers.Dot1Q:
			return uint16(h.Type)
		case *layers.Ethernet:
			if _, ok := pkt.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q); !ok {
				return uint16(h.EthernetType)
			}
		case *layers.LinuxSLL:
			return uint16(h.EthernetType)
		case *layers.LinuxSLL2:
			return uint16(h.ProtocolType)
		}
	}
	return 0
}

func formatARP(b *strings.Builder, a *layers.ARP) {
	n := len(a.Contents) + len(a.Payload) // with the frame's padding, as tcpdump
	switch a.Operation {
	case layers.ARPRequest:
		fmt.Fprintf(b, "ARP, Request who-has %s tell %s, length %d", net.IP(a.DstProtAddress), net.IP(a.SourceProtAddress), n)
	case layers.ARPReply:
		fmt.Fprintf(b, "ARP, Reply %s is-at %s, length %d", net.IP(a.SourceProtAddress), net.HardwareAddr(a.SourceHwAddress), n)
	default:
		fmt.Fprintf(b, "ARP, op %d, length %d", a.Operation, n)
	}
}

// formatTransport writes "src.port > dst.port: ..." for the packet's
// transport layer; ipPayload is the IP payload length from the header.
func formatTransport(b *strings.Builder, pkt gopacket.Packet, src, dst string, ipPayload int) {
	for _, l := range pkt.Layers() {
		switch t := l.(type) {
		case *layers.TCP:
			fmt.Fprintf(b, "%s.%d > %s.%d: Flags [%s]", src, t.SrcPort, dst, t.DstPort, tcpFlags(t))
			plen := tcpPayloadLen(t, ipPayload, pkt)
			// tcpdump shows seq only for data or SYN/FIN/RST.
			if plen > 0 {
				fmt.Fprintf(b, ", seq %d:%d", t.Seq, t.Seq+uint32(plen))
			} else if t.SYN || t.FIN || t.RST {
				fmt.Fprintf(b, ", seq %d", t.Seq)
			}
			if t.ACK {
				fmt.Fprintf(b, ", ack %d", t.Ack)
			}
			fmt.Fprintf(b, ", win %d", t.Window)
			if t.URG {
				fmt.Fprintf(b, ", urg %d", t.Urgent)
			}
			if opts := tcpOptions(t); opts != "" {
				fmt.Fprintf(b, ", options [%s]", opts)
			}
			fmt.Fprintf(b, ", length %d", plen)
			return
		case *layers.UDP:
			fmt.Fprintf(b, "%s.%d > %s.%d: UDP, length %d", src, t.SrcPort, dst, t.DstPort, int(t.Length)-8)
			return
		case *layers.ICMPv4:
			fmt.Fprintf(b, "%s > %s: ICMP %s, length %d", src, dst, icmp4(t), ipPayload)
			return
		case *layers.ICMPv6:
			fmt.Fprintf(b, "%s > %s: ICMP6, %s, length %d", src, dst, icmp6(t, pkt), ipPayload)
			return
		case *layers.SCTP:
			fmt.Fprintf(b, "%s.%d > %s.%d: sctp, length %d", src, t.SrcPort, dst, t.DstPort, ipPayload)
			return
		}
	}
	proto := "unknown"
	if ip, ok := pkt.NetworkLayer().(*layers.IPv4); ok {
		proto = "ip-proto-" + strconv.Itoa(int(ip.Protocol))
	} else if ip, ok := pkt.NetworkLayer().(*layers.IPv6); ok {
		proto = "ip-proto-" + strconv.Itoa(int(ip.NextHeader))
	}
	fmt.Fprintf(b, "%s > %s: %s %d", src, dst, proto, ipPayload)
}

func tcpPayloadLen(t *layers.TCP, ipPayload int, pkt gopacket.Packet) int {
	n := ipPayload - int(t.DataOffset)*4
	if _, ok := pkt.NetworkLayer().(*layers.IPv6); ok {
		// IPv6's payload length includes extension headers before TCP.
		n = len(t.Payload)
		if ipPayload > 0 {
			ip := pkt.NetworkLayer().(*layers.IPv6)
			n = ipPayload - (len(ip.Payload) - len(t.Contents) - len(t.Payload)) - int(t.DataOffset)*4
		}
	}
	if n < 0 {
		return 0
	}
	return n
}

// tcpFlags as tcpdump prints them, in bit order (F S R P . U E W).
func tcpFlags(t *layers.TCP) string {
	var f strings.Builder
	for _, x := range []struct {
		on bool
		c  byte
	}{{t.FIN, 'F'}, {t.SYN, 'S'}, {t.RST, 'R'}, {t.PSH, 'P'}, {t.ACK, '.'}, {t.URG, 'U'}, {t.ECE, 'E'}, {t.CWR, 'W'}} {
		if x.on {
			f.WriteByte(x.c)
		}
	}
	if f.Len() == 0 {
		return "none"
	}
	return f.String()
}

func tcpOptions(t *layers.TCP) string {
	var parts []string
	for _, o := range t.Options {
		switch o.OptionType {
		case layers.TCPOptionKindEndList:
			parts = append(parts, "eol")
		case layers.TCPOptionKindNop:
			parts = append(parts, "nop")
		case layers.TCPOptionKindMSS:
			if len(o.OptionData) == 2 {
				parts = append(parts, fmt.Sprintf("mss %d", uint16(o.OptionData[0])<<8|uint16(o.OptionData[1])))
			}
		case layers.TCPOptionKindWindowScale:
			if len(o.OptionData) == 1 {
				parts = append(parts, fmt.Sprintf("wscale %d", o.OptionData[0]))
			}
		case layers.TCPOptionKindSACKPermitted:
			parts = append(parts, "sackOK")
		case layers.TCPOptionKindTimestamps:
			if len(o.OptionData) == 8 {
				d := o.OptionData
				val := uint32(d[0])<<24 | uint32(d[1])<<16 | uint32(d[2])<<8 | uint32(d[3])
				ecr := uint32(d[4])<<24 | uint32(d[5])<<16 | uint32(d[6])<<8 | uint32(d[7])
				parts = append(parts, fmt.Sprintf("TS val %d ecr %d", val, ecr))
			}
		default:
			parts = append(parts, fmt.Sprintf("opt-%d", o.OptionType))
		}
	}
	return strings.Join(parts, ",")
}

func icmp4(t *layers.ICMPv4) string {
	switch t.TypeCode.Type() {
	case layers.ICMPv4TypeEchoRequest:
		return fmt.Sprintf("echo request, id %d, seq %d", t.Id, t.Seq)
	case layers.ICMPv4TypeEchoReply:
		return fmt.Sprintf("echo reply, id %d, seq %d", t.Id, t.Seq)
	case layers.ICMPv4TypeDestinationUnreachable:
		return "unreachable"
	case layers.ICMPv4TypeTimeExceeded:
		return "time exceeded in-transit"
	}
	return fmt.Sprintf("type-#%d", t.TypeCode.Type())
}

func icmp6(t *layers.ICMPv6, pkt gopacket.Packet) string {
	switch t.TypeCode.Type() {
	case layers.ICMPv6TypeEchoRequest, layers.ICMPv6TypeEchoReply:
		kind := "echo request"
		if t.TypeCode.Type() == layers.ICMPv6TypeEchoReply {
			kind = "echo reply"
		}
		if e, ok := pkt.Layer(layers.LayerTypeICMPv6Echo).(*layers.ICMPv6Echo); ok {
			return fmt.Sprintf("%s, id %d, seq %d", kind, e.Identifier, e.SeqNumber)
		}
		return kind
	case layers.ICMPv6TypeNeighborSolicitation:
		if n, ok := pkt.Layer(layers.LayerTypeICMPv6NeighborSolicitation).(*layers.ICMPv6NeighborSolicitation); ok {
			return "neighbor solicitation, who has " + n.TargetAddress.String()
		}
		return "neighbor solicitation"
	case layers.ICMPv6TypeNeighborAdvertisement:
		if n, ok := pkt.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement); ok {
			return "neighbor advertisement, tgt is " + n.TargetAddress.String()
		}
		return "neighbor advertisement"
	case layers.ICMPv6TypeRouterSolicitation:
		return "router solicitation"
	case layers.ICMPv6TypeRouterAdvertisement:
		return "router advertisement"
	case layers.ICMPv6TypeDestinationUnreachable:
		return "destination unreachable"
	case layers.ICMPv6TypeMLDv2MulticastListenerReportMessageV2:
		if len(t.Payload) >= 4 {
			return fmt.Sprintf("multicast listener report v2, %d group record(s)", int(t.Payload[2])<<8|int(t.Payload[3]))
		}
		return "multicast listener report v2"
	case layers.ICMPv6TypeMLDv1MulticastListenerQueryMessage:
		return "multicast listener query"
	}
	return fmt.Sprintf("type %d", t.TypeCode.Type())
}
