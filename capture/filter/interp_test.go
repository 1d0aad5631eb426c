package filter

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/net/bpf"
)

// meta is what the kernel knows about a packet besides its bytes: the
// ancillary data a classic BPF program reads with SKF_AD_* loads.
type meta struct {
	proto       uint16
	pktType     uint8
	ifindex     uint32
	hatype      uint16
	vlanTCI     uint16
	vlanPresent bool
}

// runBPF is a reference classic BPF interpreter with the kernel's semantics
// for what golang.org/x/net/bpf's VM refuses: ancillary loads (SKF_AD_*)
// and the neg instruction. A load out of the packet ends the program with
// 0, as does a division by zero. The oracle test checks it against the VM
// on every program the VM can run.
func runBPF(prog []bpf.RawInstruction, pkt []byte, m meta) (uint32, error) {
	var a, x uint32
	var mem [16]uint32
	load := func(off uint32, size int) (uint32, bool) {
		if int32(off) < 0 {
			if off < skfADOff {
				return 0, false // SKF_NET_OFF/SKF_LL_OFF: not used by these programs
			}
			switch off - skfADOff {
			case skfADProtocol:
				return uint32(m.proto), true
			case skfADPktType:
				return uint32(m.pktType), true
			case skfADIfIndex:
				return m.ifindex, true
			case skfADHatype:
				return uint32(m.hatype), true
			case skfADVLANTag:
				return uint32(m.vlanTCI), true
			case skfADVLANTagPresent:
				if m.vlanPresent {
					return 1, true
				}
				return 0, true
			}
			return 0, false
		}
		if uint64(off)+uint64(size) > uint64(len(pkt)) {
			return 0, false
		}
		switch size {
		case 1:
			return uint32(pkt[off]), true
		case 2:
			return uint32(binary.BigEndian.Uint16(pkt[off:])), true
		}
		return binary.BigEndian.Uint32(pkt[off:]), true
	}
	sizeOf := func(op uint16) int {
		switch op & 0x18 {
		case szB:
			return 1
		case szH:
			return 2
		}
		return 4
	}
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Op & 0x07 {
		case clsLD, clsLDX:
			var v uint32
			ok := true
			switch in.Op & 0xe0 {
			case modeIMM:
				v = in.K
			case modeABS:
				v, ok = load(in.K, sizeOf(in.Op))
			case modeIND:
				if int32(in.K+x) < 0 {
					return 0, nil
				}
				v, ok = load(in.K+x, sizeOf(in.Op))
			case modeMEM:
				v = mem[in.K&15]
			case modeLEN:
				v = uint32(len(pkt))
			case modeMSH:
				v, ok = load(in.K, 1)
				v = (v & 0xf) << 2
			default:
				return 0, fmt.Errorf("bad load at %d: %#x", pc, in.Op)
			}
			if !ok {
				return 0, nil
			}
			if in.Op&0x07 == clsLD {
				a = v
			} else {
				x = v
			}
		case clsST:
			mem[in.K&15] = a
		case 0x03: // STX
			mem[in.K&15] = x
		case clsALU:
			b := in.K
			if in.Op&srcX != 0 {
				b = x
			}
			switch in.Op & 0xf0 {
			case aluADD:
				a += b
			case aluSUB:
				a -= b
			case aluMUL:
				a *= b
			case aluDIV:
				if b == 0 {
					return 0, nil
				}
				a /= b
			case aluMOD:
				if b == 0 {
					return 0, nil
				}
				a %= b
			case aluOR:
				a |= b
			case aluAND:
				a &= b
			case aluXOR:
				a ^= b
			case aluLSH:
				a <<= b & 31
			case aluRSH:
				a >>= b & 31
			case aluNEG:
				a = -a
			default:
				return 0, fmt.Errorf("bad alu at %d: %#x", pc, in.Op)
			}
		case clsJMP:
			b := in.K
			if in.Op&srcX != 0 {
				b = x
			}
			var t bool
			switch in.Op & 0xf0 {
			case jmpJA:
				pc += int(in.K)
				continue
			case jmpJEQ:
				t = a == b
			case jmpJGT:
				t = a > b
			case jmpJGE:
				t = a >= b
			case jmpJSET:
				t = a&b != 0
			default:
				return 0, fmt.Errorf("bad jump at %d: %#x", pc, in.Op)
			}
			if t {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case clsRET:
			if in.Op&0x18 == 0x10 { // BPF_A
				return a, nil
			}
			return in.K, nil
		case clsMISC:
			if in.Op&0xf8 == 0x80 {
				a = x
			} else {
				x = a
			}
		}
	}
	return 0, fmt.Errorf("program ran off its end")
}
