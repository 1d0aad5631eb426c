// Package filter compiles pcap-filter expressions (tcpdump's filter syntax)
// to classic BPF, with the semantics of libpcap's gencode: the same packets
// are accepted and the same snap length is returned as by the program
// `tcpdump -d` prints for the same link type. It is pure Go (no libpcap, no
// cgo) and never resolves names: a host name is an error naming it.
//
// API (shared with package capture):
//
//	type LinkType int // EN10MB, LinuxSLL, LinuxSLL2, Raw
//	func Compile(expr string, lt LinkType, snaplen int) ([]bpf.RawInstruction, error)
//	func CompileForSocket(expr string, lt LinkType, cooked bool, snaplen int) ([]bpf.RawInstruction, error)
//	type SyntaxError struct{ Pos int; Msg string }
//
// Compile returns the program for packets as they appear in a capture file
// of that link type (what `tcpdump -d -y LT` prints). CompileForSocket
// returns the program to attach with SO_ATTACH_FILTER: for a cooked socket
// (SOCK_DGRAM AF_PACKET, the `any` device) the kernel delivers packets that
// start at the network header, so the LinuxSLL/LinuxSLL2 program is rewritten
// as libpcap's pcap-linux.c does (fix_program/fix_offset): loads from the
// cooked header become ancillary loads (SKF_AD_PROTOCOL, SKF_AD_PKTTYPE,
// SKF_AD_IFINDEX, SKF_AD_HATYPE), loads past it are made relative to
// SKF_NET_OFF, and accepting returns stay as given. An empty expression
// accepts every packet (returns snaplen).
//
// Errors are *SyntaxError carrying the byte offset in the expression; an
// unsupported primitive is named in the message.
package filter
