package capture

import (
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
	ip4A = net.IP{10, 250, 1, 1}
	ip4B = net.IP{10, 250, 1, 2}
	ip6A = net.ParseIP("fd00:250::1")
	ip6B = net.ParseIP("fd00:250::2")
)

// corpusPacket is one Ethernet frame of the formatter's corpus.
type corpusPacket struct {
	name string
	data []byte
}

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	for _, l := range ls {
		if n, ok := l.(interface {
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
		}); ok {
			for _, nl := range ls {
				if x, ok := nl.(gopacket.NetworkLayer); ok {
					if err := n.SetNetworkLayerForChecksum(x); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func eth(t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: t}
}

func ip4(p layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: p, SrcIP: ip4A, DstIP: ip4B, Id: 7}
}

func ip6(p layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: p, SrcIP: ip6A, DstIP: ip6B}
}

// textCorpus covers what the text formatter decodes: TCP with every flag
// and the usual options, UDP, ICMP, IPv6, ICMPv6, ARP, VLAN.
func textCorpus(t testing.TB) []corpusPacket {
	synOpts := []layers.TCPOption{
		{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
		{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
		{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0, 0, 0, 1, 0, 0, 0, 0}},
		{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
		{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
	}
	tcp := func(f func(*layers.TCP)) *layers.TCP {
		x := &layers.TCP{SrcPort: 40000, DstPort: 40080, Seq: 1000, Ack: 2000, Window: 502}
		f(x)
		return x
	}
	var c []corpusPacket
	add := func(name string, ls ...gopacket.SerializableLayer) {
		c = append(c, corpusPacket{name, serialize(t, ls...)})
	}
	add("tcp syn", eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcp(func(x *layers.TCP) { x.SYN, x.Ack, x.Options = true, 0, synOpts }))
	add("tcp syn-ack", eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcp(func(x *layers.TCP) { x.SYN, x.ACK = true, true }))
	add("tcp psh-ack data", eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcp(func(x *layers.TCP) { x.PSH, x.ACK = true, true }), gopacket.Payload("hello world"))
	add("tcp fin-ack", eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcp(func(x *layers.TCP) { x.FIN, x.ACK = true, true }))
	add("tcp rst", eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcp(func(x *layers.TCP) { x.RST = true; x.Ack = 0 }))
	add("tcp urg ece cwr", eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcp(func(x *layers.TCP) { x.URG, x.ECE, x.CWR, x.ACK, x.Urgent = true, true, true, true, 3 }))
	add("tcp no flags", eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcp(func(x *layers.TCP) { x.Ack = 0 }))
	add("udp", eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 40001, DstPort: 40002}, gopacket.Payload("12345"))
	add("icmp echo request", eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 5, Seq: 1}, gopacket.Payload(make([]byte, 56)))
	add("icmp echo reply", eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(0, 0), Id: 5, Seq: 2}, gopacket.Payload(make([]byte, 56)))
	add("tcp6 syn", eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolTCP), tcp(func(x *layers.TCP) { x.SYN, x.Ack = true, 0 }))
	add("tcp6 data", eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolTCP), tcp(func(x *layers.TCP) { x.PSH, x.ACK = true, true }), gopacket.Payload("abc"))
	add("udp6", eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolUDP), &layers.UDP{SrcPort: 40003, DstPort: 40004}, gopacket.Payload("xy"))
	add("icmp6 echo", eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolICMPv6), &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, &layers.ICMPv6Echo{Identifier: 9, SeqNumber: 3}, gopacket.Payload(make([]byte, 8)))
	add("arp request", eth(layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
		SourceHwAddress: macA, SourceProtAddress: ip4A, DstHwAddress: make([]byte, 6), DstProtAddress: ip4B})
	add("arp reply", eth(layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPReply,
		SourceHwAddress: macB, SourceProtAddress: ip4B, DstHwAddress: macA, DstProtAddress: ip4A})
	add("vlan udp", eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4}, ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 40005, DstPort: 40006}, gopacket.Payload("vlan"))
	return c
}
