package filter

import "golang.org/x/net/bpf"

// Classic BPF opcode parts (linux/filter.h, bpf_common.h).
const (
	clsLD   = 0x00
	clsLDX  = 0x01
	clsST   = 0x02
	clsALU  = 0x04
	clsJMP  = 0x05
	clsRET  = 0x06
	clsMISC = 0x07

	szW = 0x00
	szH = 0x08
	szB = 0x10

	modeIMM = 0x00
	modeABS = 0x20
	modeIND = 0x40
	modeMEM = 0x60
	modeLEN = 0x80
	modeMSH = 0xa0

	aluADD = 0x00
	aluSUB = 0x10
	aluMUL = 0x20
	aluDIV = 0x30
	aluOR  = 0x40
	aluAND = 0x50
	aluLSH = 0x60
	aluRSH = 0x70
	aluNEG = 0x80
	aluMOD = 0x90
	aluXOR = 0xa0

	jmpJA   = 0x00
	jmpJEQ  = 0x10
	jmpJGT  = 0x20
	jmpJGE  = 0x30
	jmpJSET = 0x40

	srcK = 0x00
	srcX = 0x08

	miscTAX = 0x00

	// Ancillary data offsets (SKF_AD_*), relative to SKF_AD_OFF.
	skfADOff             = 0xfffff000 // -0x1000
	skfLLOff             = 0xffe00000 // SKF_LL_OFF, -0x200000: special offsets from here up
	skfADProtocol        = 0
	skfADPktType         = 4
	skfADIfIndex         = 8
	skfADHatype          = 28
	skfADVLANTag         = 44
	skfADVLANTagPresent  = 48
	maxScratch           = 16 // BPF_MEMWORDS
	defaultSnaplen       = 262144
	maxProgramLength     = 4096 // BPF_MAXINSNS
	vlanMemLinkpl        = 0    // M[] slot of the variable part of the payload offset
	vlanMemLinktype      = 1    // ... and of the type field's offset
	firstFreeScratchVLAN = 2
)

func sizeCode(size int) uint16 {
	switch size {
	case 1:
		return szB
	case 2:
		return szH
	}
	return szW
}

func ri(op uint16, k uint32) bpf.RawInstruction { return bpf.RawInstruction{Op: op, K: k} }

func ldAbs(size int, k uint32) bpf.RawInstruction {
	return ri(clsLD|modeABS|sizeCode(size), k)
}
func ldInd(size int, k uint32) bpf.RawInstruction {
	return ri(clsLD|modeIND|sizeCode(size), k)
}
func ldImm(k uint32) bpf.RawInstruction  { return ri(clsLD|modeIMM, k) }
func ldMem(k uint32) bpf.RawInstruction  { return ri(clsLD|modeMEM, k) }
func ldxMem(k uint32) bpf.RawInstruction { return ri(clsLDX|modeMEM, k) }
func ldxMSH(k uint32) bpf.RawInstruction { return ri(clsLDX|modeMSH|szB, k) }
func st(k uint32) bpf.RawInstruction     { return ri(clsST, k) }
func aluK(op uint16, k uint32) bpf.RawInstruction {
	return ri(clsALU|op|srcK, k)
}
func aluX(op uint16) bpf.RawInstruction { return ri(clsALU|op|srcX, 0) }
func tax() bpf.RawInstruction           { return ri(clsMISC|miscTAX, 0) }
