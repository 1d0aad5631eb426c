package filter

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// testPacket is one frame of the oracle corpus, as Ethernet; the cooked
// and raw forms are derived from it.
type testPacket struct {
	name  string
	frame []byte // Ethernet frame
	pkt   int    // SLL packet type (0 host, 1 broadcast, 2 multicast, 3 other host, 4 outgoing)
}

var (
	v4Pool = []string{"10.0.0.1", "10.1.2.3", "10.255.0.9", "192.168.1.1", "192.168.0.255",
		"1.1.1.1", "2.2.2.2", "3.3.3.3", "172.16.5.4", "224.0.0.1", "239.1.2.3",
		"255.255.255.255", "0.0.0.0", "127.0.0.1"}
	v6Pool = []string{"::1", "fe80::1", "fe80::abcd", "2001:db8::1", "2001:db8:1::2",
		"2001:db8::ff", "ff02::1", "ff05::2", "::", "2001:db9::1"}
	portPool = []uint16{0, 1, 2, 20, 21, 22, 23, 53, 67, 80, 90, 123, 443, 514, 1023,
		1024, 8080, 8443, 65535, 33000}
	macPool = []string{"00:11:22:33:44:55", "01:02:03:04:05:06", "02:42:ac:11:00:02",
		"ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01", "33:33:00:00:00:01", "00:00:00:00:00:00",
		"aa:bb:cc:dd:ee:ff"}
)

type corpusGen struct {
	r   *rand.Rand
	out []testPacket
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func serialize(ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...); err != nil {
		panic(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// eth wraps a network-layer packet in Ethernet, with VLAN tags (TPIDs
// outermost first) if any.
func (c *corpusGen) eth(name string, etype layers.EthernetType, payload []byte, tpids ...uint16) {
	dst := pick(c.r, macPool)
	src := pick(c.r, macPool)
	f := append([]byte{}, mac(dst)...)
	f = append(f, mac(src)...)
	for _, t := range tpids {
		f = binary.BigEndian.AppendUint16(f, t)
		f = binary.BigEndian.AppendUint16(f, uint16(c.r.IntN(3)<<13|pick(c.r, []int{1, 10, 100, 4095, 0, 10})))
	}
	f = binary.BigEndian.AppendUint16(f, uint16(etype))
	f = append(f, payload...)
	pt := 0
	switch {
	case dst == "ff:ff:ff:ff:ff:ff":
		pt = 1
	case mac(dst)[0]&1 == 1:
		pt = 2
	default:
		pt = pick(c.r, []int{0, 0, 3, 4})
	}
	c.out = append(c.out, testPacket{name: fmt.Sprintf("%s/%s>%s", name, src, dst), frame: f, pkt: pt})
}

func (c *corpusGen) ip4(proto layers.IPProtocol, l4 []byte, frag uint16, flags layers.IPv4Flag, opts bool) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, Flags: flags, FragOffset: frag,
		SrcIP: net.ParseIP(pick(c.r, v4Pool)).To4(), DstIP: net.ParseIP(pick(c.r, v4Pool)).To4(), Id: uint16(c.r.IntN(65536))}
	if opts {
		ip.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
	}
	return serialize(ip, gopacket.Payload(l4))
}

func (c *corpusGen) tcp(flags uint8, net gopacket.NetworkLayer) []byte {
	t := &layers.TCP{SrcPort: layers.TCPPort(pick(c.r, portPool)), DstPort: layers.TCPPort(pick(c.r, portPool)),
		Seq: c.r.Uint32(), Window: 1024,
		FIN: flags&1 != 0, SYN: flags&2 != 0, RST: flags&4 != 0, PSH: flags&8 != 0,
		ACK: flags&16 != 0, URG: flags&32 != 0, ECE: flags&64 != 0, CWR: flags&128 != 0}
	if net != nil {
		_ = t.SetNetworkLayerForChecksum(net)
	}
	return serialize(t, gopacket.Payload(make([]byte, c.r.IntN(40))))
}

func (c *corpusGen) udp() []byte {
	u := &layers.UDP{SrcPort: layers.UDPPort(pick(c.r, portPool)), DstPort: layers.UDPPort(pick(c.r, portPool))}
	return serialize(u, gopacket.Payload(make([]byte, c.r.IntN(30))))
}

func (c *corpusGen) sctp() []byte {
	b := binary.BigEndian.AppendUint16(nil, pick(c.r, portPool))
	b = binary.BigEndian.AppendUint16(b, pick(c.r, portPool))
	b = binary.BigEndian.AppendUint32(b, c.r.Uint32())
	b = binary.BigEndian.AppendUint32(b, 0)
	return append(b, 1, 0, 0, 4) // an INIT chunk header
}

func (c *corpusGen) icmp4() []byte {
	typ := pick(c.r, []uint8{0, 3, 4, 5, 8, 11, 12, 13, 17})
	i := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, uint8(c.r.IntN(4))), Id: 1, Seq: 1}
	return serialize(i, gopacket.Payload([]byte("abcdefgh")))
}

func (c *corpusGen) icmp6() []byte {
	typ := pick(c.r, []uint8{1, 2, 3, 128, 129, 133, 134, 135, 136, 143})
	b := []byte{typ, uint8(c.r.IntN(3)), 0, 0}
	return append(b, make([]byte, 4+c.r.IntN(24))...)
}

// ip6 builds IPv6 with the given extension headers (header type numbers)
// in front of the transport.
func (c *corpusGen) ip6(final layers.IPProtocol, l4 []byte, exts ...uint8) []byte {
	next := uint8(final)
	body := l4
	for i := len(exts) - 1; i >= 0; i-- {
		var h []byte
		switch exts[i] {
		case 44: // fragment: next, reserved, offset/flags, id
			off := uint16(0)
			if c.r.IntN(2) == 0 {
				off = uint16(c.r.IntN(100)+1) << 3
			}
			h = []byte{next, 0}
			h = binary.BigEndian.AppendUint16(h, off|uint16(c.r.IntN(2)))
			h = binary.BigEndian.AppendUint32(h, c.r.Uint32())
		case 43: // routing type 0 style, one address
			h = append([]byte{next, 2, 0, 1, 0, 0, 0, 0}, net.ParseIP(pick(c.r, v6Pool)).To16()...)
		default: // hop-by-hop (0) and destination options (60): PadN
			h = []byte{next, 0, 1, 4, 0, 0, 0, 0}
		}
		body = append(h, body...)
		next = exts[i]
	}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocol(next),
		SrcIP: net.ParseIP(pick(c.r, v6Pool)), DstIP: net.ParseIP(pick(c.r, v6Pool))}
	return serialize(ip, gopacket.Payload(body))
}

func (c *corpusGen) arp(op uint16) []byte {
	a := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: op,
		SourceHwAddress: mac(pick(c.r, macPool)), SourceProtAddress: net.ParseIP(pick(c.r, v4Pool)).To4(),
		DstHwAddress: mac(pick(c.r, macPool)), DstProtAddress: net.ParseIP(pick(c.r, v4Pool)).To4()}
	return serialize(a)
}

// genCorpus makes the deterministic packet corpus (seeded).
func genCorpus() []testPacket {
	c := &corpusGen{r: rand.New(rand.NewPCG(11, 2026))}
	// every TCP flag combination, over IPv4 (some with options) and IPv6
	for f := 0; f < 256; f++ {
		c.eth(fmt.Sprintf("ip4-tcp-flags%02x", f), layers.EthernetTypeIPv4, c.ip4(layers.IPProtocolTCP, c.tcp(uint8(f), nil), 0, 0, f%8 == 1))
		if f%2 == 0 {
			c.eth(fmt.Sprintf("ip6-tcp-flags%02x", f), layers.EthernetTypeIPv6, c.ip6(layers.IPProtocolTCP, c.tcp(uint8(f), nil)))
		}
		if f%8 == 3 {
			c.eth(fmt.Sprintf("vlan-ip4-tcp-flags%02x", f), layers.EthernetTypeIPv4, c.ip4(layers.IPProtocolTCP, c.tcp(uint8(f), nil), 0, 0, false), 0x8100)
		}
	}
	for i := 0; i < 30; i++ {
		c.eth("ip4-udp", layers.EthernetTypeIPv4, c.ip4(layers.IPProtocolUDP, c.udp(), 0, 0, i%5 == 0))
		c.eth("ip6-udp", layers.EthernetTypeIPv6, c.ip6(layers.IPProtocolUDP, c.udp()))
		c.eth("ip4-icmp", layers.EthernetTypeIPv4, c.ip4(layers.IPProtocolICMPv4, c.icmp4(), 0, 0, false))
		c.eth("ip6-icmp6", layers.EthernetTypeIPv6, c.ip6(layers.IPProtocolICMPv6, c.icmp6()))
	}
	for i := 0; i < 14; i++ {
		c.eth("ip4-sctp", layers.EthernetTypeIPv4, c.ip4(layers.IPProtocolSCTP, c.sctp(), 0, 0, false))
		c.eth("ip6-sctp", layers.EthernetTypeIPv6, c.ip6(layers.IPProtocolSCTP, c.sctp()))
		c.eth("ip4-igmp", layers.EthernetTypeIPv4, c.ip4(layers.IPProtocolIGMP, []byte{0x16, 0, 0, 0, 224, 0, 0, 1}, 0, 0, false))
		c.eth("ip4-proto", layers.EthernetTypeIPv4, c.ip4(layers.IPProtocol(pick(c.r, []uint8{47, 50, 51, 103, 112, 9, 41})), make([]byte, 24), 0, 0, false))
		c.eth("ip6-proto", layers.EthernetTypeIPv6, c.ip6(layers.IPProtocol(pick(c.r, []uint8{47, 50, 51, 103})), make([]byte, 24), pick(c.r, [][]uint8{nil, {44}})...))
	}
	// IPv4 fragments: first (MF, offset 0), middle and last
	for i := 0; i < 12; i++ {
		proto := pick(c.r, []layers.IPProtocol{layers.IPProtocolTCP, layers.IPProtocolUDP, layers.IPProtocolICMPv4})
		var l4 []byte
		switch proto {
		case layers.IPProtocolTCP:
			l4 = c.tcp(uint8(c.r.IntN(256)), nil)
		case layers.IPProtocolUDP:
			l4 = c.udp()
		default:
			l4 = c.icmp4()
		}
		off := uint16(0)
		flags := layers.IPv4MoreFragments
		if i%3 != 0 {
			off = uint16(c.r.IntN(200) + 1)
			if i%3 == 2 {
				flags = 0
			}
		}
		if i%4 == 3 {
			flags |= layers.IPv4DontFragment
		}
		c.eth(fmt.Sprintf("ip4-frag-off%d", off), layers.EthernetTypeIPv4, c.ip4(proto, l4, off, flags, false))
	}
	// IPv6 with extension headers
	extSets := [][]uint8{{0}, {43}, {44}, {60}, {0, 44}, {0, 43, 44}, {44, 60}, {0, 60}}
	for i := 0; i < 24; i++ {
		exts := extSets[i%len(extSets)]
		var final layers.IPProtocol
		var l4 []byte
		switch i % 3 {
		case 0:
			final, l4 = layers.IPProtocolTCP, c.tcp(uint8(c.r.IntN(256)), nil)
		case 1:
			final, l4 = layers.IPProtocolUDP, c.udp()
		default:
			final, l4 = layers.IPProtocolICMPv6, c.icmp6()
		}
		c.eth(fmt.Sprintf("ip6-ext%v", exts), layers.EthernetTypeIPv6, c.ip6(final, l4, exts...))
	}
	// VLAN: 802.1Q, QinQ (802.1ad outer), 0x9100 and a double 802.1Q
	tags := [][]uint16{{0x8100}, {0x88a8, 0x8100}, {0x9100}, {0x8100, 0x8100}, {0x88a8}}
	for i := 0; i < 40; i++ {
		tp := tags[i%len(tags)]
		switch i % 4 {
		case 0:
			c.eth("vlan-ip4-udp", layers.EthernetTypeIPv4, c.ip4(layers.IPProtocolUDP, c.udp(), 0, 0, false), tp...)
		case 1:
			c.eth("vlan-ip6-tcp", layers.EthernetTypeIPv6, c.ip6(layers.IPProtocolTCP, c.tcp(uint8(c.r.IntN(256)), nil)), tp...)
		case 2:
			c.eth("vlan-arp", layers.EthernetTypeARP, c.arp(1), tp...)
		default:
			c.eth("vlan-ip4-icmp", layers.EthernetTypeIPv4, c.ip4(layers.IPProtocolICMPv4, c.icmp4(), 0, 0, false), tp...)
		}
	}
	// ARP and RARP
	for i := 0; i < 20; i++ {
		c.eth("arp", layers.EthernetTypeARP, c.arp(uint16(1+i%2)))
		c.eth("rarp", layers.EthernetType(0x8035), c.arp(uint16(3+i%2)))
	}
	// other link-layer content: LLC (802.3 length), unknown types
	for i := 0; i < 14; i++ {
		sap := pick(c.r, []byte{0x42, 0x06, 0xfe, 0xf0, 0xaa, 100})
		c.eth("llc", layers.EthernetType(uint16(pick(c.r, []int{38, 100, 1500}))), []byte{sap, sap, 0x03, 0, 0, 0, 0, 0, 0, 0})
		c.eth("other-etype", layers.EthernetType(pick(c.r, []uint16{0x88cc, 0x8863, 0x8847, 0x9000, 0x0064})), make([]byte, 30))
	}
	// truncated copies of some packets (a snap length): loads past the end
	// make a BPF program reject
	n := len(c.out)
	for i := 0; i < 40; i++ {
		p := c.out[c.r.IntN(n)]
		cut := pick(c.r, []int{1, 6, 12, 13, 14, 15, 18, 20, 23, 24, 26, 30, 34, 38, 40, 42, 48, 54, 56, 58})
		if cut < len(p.frame) {
			c.out = append(c.out, testPacket{name: fmt.Sprintf("cut%d-%s", cut, p.name), frame: p.frame[:cut], pkt: p.pkt})
		}
	}
	// padded copies (trailing bytes after the IP packet) and a big one
	for i := 0; i < 10; i++ {
		p := c.out[c.r.IntN(n)]
		c.out = append(c.out, testPacket{name: "padded-" + p.name, frame: append(append([]byte{}, p.frame...), make([]byte, 1+c.r.IntN(200))...), pkt: p.pkt})
	}
	c.eth("ip4-udp-big", layers.EthernetTypeIPv4, c.ip4(layers.IPProtocolUDP, serialize(&layers.UDP{SrcPort: 53, DstPort: 53}, gopacket.Payload(make([]byte, 9000))), 0, 0, false))
	return c.out
}

// asLinkType renders a corpus packet for a link type; ok is false if it
// has no form there (a raw IP link only carries IP).
func (p testPacket) asLinkType(lt LinkType) ([]byte, bool) {
	f := p.frame
	switch lt {
	case EN10MB:
		return f, true
	case Raw:
		if len(f) < 15 {
			return nil, false
		}
		et := binary.BigEndian.Uint16(f[12:])
		if et != 0x0800 && et != 0x86dd {
			return nil, false
		}
		return f[14:], true
	}
	if len(f) < 14 {
		return nil, false
	}
	etype, payload, src := f[12:14], f[14:], f[6:12]
	var h []byte
	if lt == LinuxSLL {
		h = binary.BigEndian.AppendUint16(nil, uint16(p.pkt))
		h = binary.BigEndian.AppendUint16(h, 1) // ARPHRD_ETHER
		h = binary.BigEndian.AppendUint16(h, 6)
		h = append(h, src...)
		h = append(h, 0, 0)
		h = append(h, etype...)
	} else {
		h = append([]byte{}, etype...)
		h = append(h, 0, 0)
		h = binary.BigEndian.AppendUint32(h, uint32(2+p.pkt))
		h = binary.BigEndian.AppendUint16(h, 1)
		h = append(h, byte(p.pkt), 6)
		h = append(h, src...)
		h = append(h, 0, 0)
	}
	return append(h, payload...), true
}
