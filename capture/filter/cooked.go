package filter

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// Header lengths of the cooked headers.
const (
	sllHdrLen  = 16
	sll2HdrLen = 20
)

// fixCooked rewrites a LINUX_SLL/LINUX_SLL2 program for a SOCK_DGRAM packet
// socket, whose packets start at the network header, as libpcap's
// pcap-linux.c fix_program/fix_offset do: packet loads past the cooked
// header move back by its length; loads of the header's protocol, packet
// type and (SLL2) interface index fields become the kernel's ancillary
// loads; any other load from the header cannot be done by the kernel and
// is an error (libpcap then filters in user space; nsdebug refuses).
// Returns are kept: with a TPACKET ring libpcap does not change them.
func fixCooked(prog []bpf.RawInstruction, lt LinkType) ([]bpf.RawInstruction, error) {
	out := make([]bpf.RawInstruction, len(prog))
	copy(out, prog)
	for i := range out {
		p := &out[i]
		class := p.Op & 0x07
		if class != clsLD && class != clsLDX {
			continue
		}
		mode := p.Op & 0xe0
		if mode != modeABS && mode != modeIND && mode != modeMSH {
			continue
		}
		if p.K >= skfADOff { // already ancillary
			continue
		}
		var err error
		if lt == LinuxSLL2 {
			err = fixOffset(p, sll2HdrLen, map[uint32]uint32{0: skfADProtocol, 4: skfADIfIndex, 10: skfADPktType})
		} else {
			err = fixOffset(p, sllHdrLen, map[uint32]uint32{0: skfADPktType, 14: skfADProtocol})
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func fixOffset(p *bpf.RawInstruction, hdrLen uint32, fields map[uint32]uint32) error {
	if p.K >= hdrLen {
		p.K -= hdrLen
		return nil
	}
	if ad, ok := fields[p.K]; ok {
		p.K = skfADOff + ad
		return nil
	}
	return &SyntaxError{Msg: fmt.Sprintf("the kernel cannot load byte %d of the cooked header (only its protocol, packet type and interface index fields)", p.K)}
}
