// Package filter compiles pcap-filter expressions (tcpdump's filter syntax)
// to classic BPF, with the semantics of libpcap's gencode: on the same
// packets, the program accepts and rejects as the one `tcpdump -d -y LT`
// prints, and returns the same snap length. It is pure Go (no libpcap, no
// cgo) and never resolves a name: a host name is an error naming it.
//
// # API
//
// Compile returns the program for packets as they are stored in a capture
// file of a link type (EN10MB, LinuxSLL, LinuxSLL2, Raw). CompileForSocket
// returns the program to attach with SO_ATTACH_FILTER to an AF_PACKET
// socket:
//
//   - EN10MB, not cooked: as libpcap on Linux, `vlan` tests the tag the
//     kernel took out of the packet (SKF_AD_VLAN_TAG_PRESENT, SKF_AD_VLAN_TAG)
//     or a tag still in it, and what follows a `vlan` is read at offsets
//     held in M[0] (payload) and M[1] (type field), 0 or 4.
//   - LinuxSLL/LinuxSLL2, cooked (SOCK_DGRAM, the `any` device): the
//     kernel's packet starts at the network header, so the program is
//     rewritten as pcap-linux.c fix_program/fix_offset do: loads past the
//     cooked header move back by its length (16 or 20 bytes); loads at the
//     offset of its protocol field become SKF_AD_PROTOCOL, of its packet
//     type SKF_AD_PKTTYPE, of its interface index (SLL2) SKF_AD_IFINDEX,
//     whatever their size; any other load from the header is an error
//     (libpcap would filter in user space instead). As in libpcap, `len`,
//     `less` and `greater` see the kernel's length, which on a cooked
//     socket excludes the cooked header. Returns are kept as compiled.
//
// An expression that can never match compiles (tcpdump refuses some, those
// its optimizer proves never match); only a constant false one, such as
// `arp` on a raw IP link, is an error, as in tcpdump.
// An empty expression accepts every packet (returns snaplen); snaplen <= 0
// means 262144, tcpdump's default. Errors are *SyntaxError with the byte
// offset in the expression; an unknown or unsupported primitive is named.
// A program has at most 4096 instructions (BPF_MAXINSNS), but the kernel
// may still refuse it with ENOMEM: it charges the program, converted to
// eBPF, to the socket's option memory (net.core.optmem_max, 128 KiB by
// default since Linux 6.9), and a load of packet data converts to about
// 14 eBPF instructions. Package capture then runs the program for the
// frames' link type (Compile) in user space.
//
// # Syntax
//
// Primitives, each optionally preceded by qualifiers:
//
//	[ip|ip6|arp|rarp|ether] [src|dst|src or dst|src and dst] host ADDR
//	[ip|ip6|arp|rarp] [dir] net NET     NET: 10, 10.1, 10.0.0.0/8, 10.0.0.0 mask 255.0.0.0, 2001:db8::/32
//	[tcp|udp|sctp] [dir] port PORT      PORT: number or a known service name (http, domain ...)
//	[tcp|udp|sctp] [dir] portrange LO-HI
//	ether [dir] [host] MAC              MAC: 00:11:22:33:44:55, 00-11-..., 0011.2233.4455
//	ether proto N|\NAME, ip proto N|\NAME, ip6 proto N|\NAME, proto N|\NAME
//	ip, ip6, arp, rarp, tcp, udp, sctp, icmp, icmp6, igmp, igrp, pim, vrrp, carp, ah, esp
//	vlan [ID]
//	[ether] broadcast, ip broadcast, [ether] multicast, ip multicast, ip6 multicast
//	less N, greater N
//	inbound, outbound                   the packet type (from the cooked header, else the kernel's SKF_AD_PKTTYPE)
//	ARITH RELOP ARITH                   RELOP: > >= = == != < <=
//
// ARITH is a number, len, PROTO[ARITH] or PROTO[ARITH:SIZE] (SIZE 1, 2 or
// 4; PROTO one of ether, link, ip, ip6, arp, rarp, tcp, udp, sctp, icmp,
// icmp6, igmp, igrp, pim, vrrp, carp), combined with + - * / % & | ^ << >>
// and unary -, with libpcap's precedences (| lowest, then &, shifts, + -,
// * / %, unary -; ^ has none and takes everything to its right, as yacc
// does in libpcap's grammar). Named constants: tcpflags, tcp-fin, tcp-syn,
// tcp-rst, tcp-push, tcp-ack, tcp-urg, tcp-ece, tcp-cwr, icmptype,
// icmpcode, icmp-echoreply ... icmp-maskreply, icmp6type, icmp6code,
// icmp6-echo ... icmp6-multicastrouterterm.
//
// Primitives combine with and/&&, or/|| (the same precedence, left to
// right) and not/! (binding tighter), in parentheses. After and/or a bare
// value takes the qualifiers of the last primitive: `host a or b`,
// `port 80 or 443`, `src net 10.0.0.0/8 and not 10.1.0.0/16`.
//
// libpcap's semantics kept on purpose: with no protocol, `host` and `net`
// match IPv4, ARP and RARP; `port` matches TCP, UDP and SCTP over IPv4 and
// IPv6; over IPv4 ports and tcp[...]/udp[...] loads match the first
// fragment only; over IPv6 the transport is the header right after the
// fixed one (extension headers are not walked, except that `ip6 proto`
// and the protocol names also look behind one fragment header);
// tcp[...] and the like are IPv4 only; `vlan` moves the offsets of
// everything after it in the expression by 4 (also after an `or`);
// in arithmetic only the left operand's protocol test guards an operation
// (libpcap 1.10's gen_arth: `1 + tcp[0] = 1` reads tcp[0] as if after an
// IPv4 header on any packet; a relation keeps the tests of both sides);
// `ip broadcast` knows no netmask (as tcpdump -i any): it matches
// 0.0.0.0 and 255.255.255.255.
//
// Not supported, an error naming them: gateway, protochain, ifindex,
// ifname, mpls, pppoed, pppoes, geneve, llc, wlan and
// 802.11 qualifiers, atalk, decnet, iso, ipx, stp and the other non-IP
// protocol families, ATM and MTP primitives, pflog fields, ether proto
// 0xe0 (IPX). `ether proto N` with N <= 1500 is an LLC SAP, as libpcap.
package filter
