package filter

import (
	"encoding/binary"
	"net"
	"strconv"
	"strings"

	"golang.org/x/net/bpf"
)

// atoin parses 1 to 4 dotted decimal parts (libpcap's __pcap_atoin): the
// value, left-aligned later by the caller, and the number of bits given.
func atoin(s string) (uint32, int, bool) {
	var v uint32
	parts := strings.Split(s, ".")
	for _, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil || n > 255 {
			return 0, 0, false
		}
		v = v<<8 | uint32(n)
	}
	return v, 8 * len(parts), true
}

func (g *gen) host4(n *primNode) (cond, error) {
	q, v := n.q, n.v
	if q.proto == "link" {
		return nil, errAt(v.pos, "illegal link layer address")
	}
	addr, mask := uint32(0), uint32(0xffffffff)
	switch v.kind {
	case tNum:
		addr = v.num
		if q.addr == "net" {
			// promote a short net number: net 10 is 10.0.0.0/8
			for addr != 0 && addr&0xff000000 == 0 {
				addr <<= 8
				mask <<= 8
			}
		}
	default:
		a, vlen, ok := atoin(v.text)
		if !ok {
			return nil, errAt(v.pos, "invalid address %q", v.text)
		}
		if vlen < 32 {
			a <<= 32 - vlen
			mask <<= 32 - vlen
		}
		addr = a
		if v.masklen >= 0 || v.mask != "" {
			if q.addr != "net" {
				return nil, errAt(v.pos, "Mask syntax for networks only")
			}
			if v.masklen >= 0 {
				if v.masklen > 32 {
					return nil, errAt(v.pos, "mask length must be <= 32")
				}
				mask = 0
				if v.masklen > 0 {
					mask = 0xffffffff << (32 - v.masklen)
				}
			} else {
				m, mlen, ok := atoin(v.mask)
				if !ok {
					return nil, errAt(v.pos, "invalid netmask %q", v.mask)
				}
				mask = m << (32 - mlen)
			}
			if addr&^mask != 0 {
				if v.masklen >= 0 {
					return nil, errAt(v.pos, "non-network bits set in \"%s/%d\"", v.text, v.masklen)
				}
				return nil, errAt(v.pos, "non-network bits set in \"%s mask %s\"", v.text, v.mask)
			}
		}
	}
	return g.hostByProto(n, addr, mask)
}

func (g *gen) hostByProto(n *primNode, addr, mask uint32) (cond, error) {
	q := n.q
	op := func(proto uint32, src, dst uint32) cond {
		one := func(off uint32) cond {
			return and(g.mustLinkType(proto), g.mcmp(g.linkpl, off, 4, addr&mask, mask))
		}
		switch q.dir {
		case "src":
			return one(src)
		case "dst":
			return one(dst)
		case "and":
			return and(one(src), one(dst))
		}
		return or(one(src), one(dst))
	}
	switch q.proto {
	case "":
		return or(op(0x0800, 12, 16), op(0x0806, 14, 24), op(0x8035, 14, 24)), nil
	case "ip":
		return op(0x0800, 12, 16), nil
	case "arp":
		return op(0x0806, 14, 24), nil
	case "rarp":
		return op(0x8035, 14, 24), nil
	case "ip6":
		return nil, errAt(q.pos, "'ip6' modifier applied to ip host")
	}
	return nil, errAt(q.pos, "'%s' modifier applied to host", q.proto)
}

func (g *gen) host6(n *primNode) (cond, error) {
	q, v := n.q, n.v
	if q.addr == "port" || q.addr == "portrange" || q.addr == "proto" {
		return nil, errAt(v.pos, "invalid qualifier against IPv6 address")
	}
	ip := net.ParseIP(v.text).To16()
	if ip == nil {
		return nil, errAt(v.pos, "invalid IPv6 address %q", v.text)
	}
	bitsLen := 128
	if v.masklen >= 0 {
		if q.addr != "net" {
			return nil, errAt(v.pos, "Mask syntax for networks only")
		}
		if v.masklen > 128 {
			return nil, errAt(v.pos, "mask length must be <= 128")
		}
		bitsLen = v.masklen
	}
	m := net.CIDRMask(bitsLen, 128)
	for i := range ip {
		if ip[i]&^m[i] != 0 {
			return nil, errAt(v.pos, "non-network bits set in \"%s/%d\"", v.text, bitsLen)
		}
	}
	switch q.proto {
	case "", "ip6":
	case "link":
		return nil, errAt(v.pos, "illegal link layer address")
	case "ip":
		return nil, errAt(q.pos, "'ip' modifier applied to ip6 host")
	default:
		return nil, errAt(q.pos, "'%s' modifier applied to ip6 host", q.proto)
	}
	one := func(off uint32) cond {
		c := g.mustLinkType(0x86dd)
		for w := uint32(0); w < 4; w++ {
			a := binary.BigEndian.Uint32(ip[4*w:])
			mk := binary.BigEndian.Uint32(m[4*w:])
			c = and(c, g.mcmp(g.linkpl, off+4*w, 4, a, mk))
		}
		return c
	}
	switch q.dir {
	case "src":
		return one(8), nil
	case "dst":
		return one(24), nil
	case "and":
		return and(one(8), one(24)), nil
	}
	return or(one(8), one(24)), nil
}

func parseMAC(s string) (net.HardwareAddr, bool) {
	var hex string
	switch {
	case strings.Count(s, ":") == 5 || strings.Count(s, "-") == 5:
		for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == '-' }) {
			if len(p) == 1 {
				p = "0" + p
			}
			hex += p
		}
	default:
		hex = strings.ReplaceAll(s, ".", "")
	}
	if len(hex) != 12 {
		return nil, false
	}
	b := make(net.HardwareAddr, 6)
	for i := range b {
		n, err := strconv.ParseUint(hex[2*i:2*i+2], 16, 8)
		if err != nil {
			return nil, false
		}
		b[i] = byte(n)
	}
	return b, true
}

func (g *gen) etherHost(n *primNode) (cond, error) {
	q, v := n.q, n.v
	if q.proto != "link" || (q.addr != "" && q.addr != "host") {
		return nil, errAt(v.pos, "ethernet address used in non-ether expression")
	}
	if g.lt != EN10MB {
		return nil, errAt(n.pos, "ethernet addresses supported only on ethernet")
	}
	mac, ok := parseMAC(v.text)
	if !ok {
		return nil, errAt(v.pos, "invalid MAC address %q", v.text)
	}
	hdr := offset{0, -1}
	one := func(off uint32) cond {
		return and(g.mcmp(hdr, off+2, 4, binary.BigEndian.Uint32(mac[2:]), 0xffffffff),
			g.mcmp(hdr, off, 2, uint32(binary.BigEndian.Uint16(mac[:2])), 0xffffffff))
	}
	switch q.dir {
	case "src":
		return one(6), nil
	case "dst":
		return one(0), nil
	case "and":
		return and(one(6), one(0)), nil
	}
	return or(one(6), one(0)), nil
}

func (g *gen) protoNum(n *primNode, v uint32) (cond, error) {
	q := n.q
	if q.dir != "" {
		return nil, errAt(n.pos, "direction applied to 'proto'")
	}
	switch q.proto {
	case "":
		if v > 255 {
			return nil, errAt(n.v.pos, "illegal protocol number %d", v)
		}
		return g.ipProto(true, true, v), nil
	case "ip":
		if v > 255 {
			return nil, errAt(n.v.pos, "illegal protocol number %d", v)
		}
		return g.ipProto(true, false, v), nil
	case "ip6":
		if v > 255 {
			return nil, errAt(n.v.pos, "illegal protocol number %d", v)
		}
		return g.ipProto(false, true, v), nil
	case "link":
		if v > 65535 {
			return nil, errAt(n.v.pos, "illegal ether proto %d", v)
		}
		return g.linkType(n.v.pos, v)
	}
	return nil, errAt(n.pos, "'%s proto' is not supported", q.proto)
}

// --- arithmetic -----------------------------------------------------------

// constant folds a constant arithmetic expression.
func constant(a arith) (uint32, bool, error) {
	switch a := a.(type) {
	case *numArith:
		return a.v, true, nil
	case *negArith:
		v, ok, err := constant(a.x)
		return -v, ok, err
	case *binArith:
		l, lok, err := constant(a.l)
		if err != nil {
			return 0, false, err
		}
		r, rok, err := constant(a.r)
		if err != nil {
			return 0, false, err
		}
		if err := checkDivisor(a, r, rok); err != nil {
			return 0, false, err
		}
		if !lok || !rok {
			return 0, false, nil
		}
		return foldOp(a.op, l, r), true, nil
	}
	return 0, false, nil
}

func checkDivisor(a *binArith, r uint32, rok bool) error {
	if !rok {
		return nil
	}
	switch {
	case a.op == "/" && r == 0:
		return errAt(a.pos, "division by zero")
	case a.op == "%" && r == 0:
		return errAt(a.pos, "modulus by zero")
	case (a.op == "<<" || a.op == ">>") && r > 31:
		return errAt(a.pos, "shift by more than 31 bits")
	}
	return nil
}

func foldOp(op string, l, r uint32) uint32 {
	switch op {
	case "+":
		return l + r
	case "-":
		return l - r
	case "*":
		return l * r
	case "/":
		return l / r
	case "%":
		return l % r
	case "&":
		return l & r
	case "|":
		return l | r
	case "^":
		return l ^ r
	case "<<":
		return l << r
	case ">>":
		return l >> r
	}
	panic("filter: unknown operator " + op)
}

var aluOps = map[string]uint16{
	"+": aluADD, "-": aluSUB, "*": aluMUL, "/": aluDIV, "%": aluMOD,
	"&": aluAND, "|": aluOR, "^": aluXOR, "<<": aluLSH, ">>": aluRSH,
}

// arith compiles a into instructions leaving its value in A; guards
// collects the protocol tests its loads need (ip[..] needs ip ...).
func (g *gen) arith(a arith, guards *[]cond) ([]bpf.RawInstruction, error) {
	if v, ok, err := constant(a); err != nil {
		return nil, err
	} else if ok {
		return []bpf.RawInstruction{ldImm(v)}, nil
	}
	switch a := a.(type) {
	case *lenArith:
		return []bpf.RawInstruction{ri(clsLD|modeLEN, 0)}, nil
	case *negArith:
		x, err := g.arith(a.x, guards)
		if err != nil {
			return nil, err
		}
		return append(x, ri(clsALU|aluNEG, 0)), nil
	case *binArith:
		l, err := g.arith(a.l, guards)
		if err != nil {
			return nil, err
		}
		if r, ok, err := constant(a.r); err != nil {
			return nil, err
		} else if ok {
			return append(l, aluK(aluOps[a.op], r)), nil
		}
		slot, err := g.alloc(a.pos)
		if err != nil {
			return nil, err
		}
		defer g.free()
		// As libpcap 1.10's gen_arth, only the left operand's protocol
		// tests guard an operation: `1 + tcp[0] = 1` reads tcp[0] (after
		// an IPv4 header) on any packet. tcpdump does this; so does nsdebug.
		var dropped []cond
		r, err := g.arith(a.r, &dropped)
		if err != nil {
			return nil, err
		}
		out := append(l, st(slot))
		out = append(out, r...)
		return append(out, tax(), ldMem(slot), aluX(aluOps[a.op])), nil
	case *loadArith:
		return g.loadArith(a, guards)
	}
	return nil, errAt(a.position(), "internal error: arithmetic %T", a)
}

func (g *gen) alloc(pos int) (uint32, error) {
	base := 0
	if g.usesVarPlanned() {
		base = firstFreeScratchVLAN
	}
	s := base + g.scratch
	if s >= maxScratch {
		return 0, errAt(pos, "too many registers needed to evaluate expression")
	}
	g.scratch++
	return uint32(s), nil
}

func (g *gen) free() { g.scratch-- }

func (g *gen) loadArith(a *loadArith, guards *[]cond) ([]bpf.RawInstruction, error) {
	idx, isConst, err := constant(a.off)
	if err != nil {
		return nil, err
	}
	var idxCode []bpf.RawInstruction
	if !isConst {
		if idxCode, err = g.arith(a.off, guards); err != nil {
			return nil, err
		}
	}
	// base: where the protocol's header starts; xPre: code putting a
	// variable base in X (nil if the base is constant).
	var base uint32
	var xPre []bpf.RawInstruction
	switch a.proto {
	case "link":
		base = 0
	case "ip", "arp", "rarp", "ip6":
		proto := map[string]uint32{"ip": 0x0800, "arp": 0x0806, "rarp": 0x8035, "ip6": 0x86dd}[a.proto]
		*guards = append(*guards, g.mustLinkType(proto))
		base = g.linkpl.k
		if g.linkpl.slot >= 0 {
			xPre = []bpf.RawInstruction{ldxMem(uint32(g.linkpl.slot))}
		}
	case "icmp6":
		*guards = append(*guards, and(g.mustLinkType(0x86dd), g.nl(6, 1, 58)))
		base = g.linkpl.k + 40
		if g.linkpl.slot >= 0 {
			xPre = []bpf.RawInstruction{ldxMem(uint32(g.linkpl.slot))}
		}
	case "tcp", "udp", "sctp", "icmp", "igmp", "igrp", "pim", "vrrp", "carp":
		// IPv4 only, first fragment only, after the IP header (libpcap;
		// its optimizer leaves no IPv6 test behind).
		*guards = append(*guards, and(g.mustLinkType(0x0800), g.nl(9, 1, transportProtos[a.proto].num), g.notFrag()))
		base = g.linkpl.k
		xPre = g.loadIPHdrLenX()
	default:
		return nil, errAt(a.pos, "unsupported index operation on %q", a.proto)
	}
	switch {
	case isConst && xPre == nil:
		// The kernel reads absolute offsets from SKF_LL_OFF (-0x200000)
		// up as special ones (link and network header, ancillary data):
		// `ether[-1]` would load something else, or not attach at all.
		if off := base + idx; off >= skfLLOff {
			return nil, errAt(a.pos, "packet offset %d is out of range", int32(off))
		}
		return []bpf.RawInstruction{ldAbs(a.size, base+idx)}, nil
	case isConst:
		return append(append([]bpf.RawInstruction{}, xPre...), ldInd(a.size, base+idx)), nil
	case xPre == nil:
		return append(idxCode, tax(), ldInd(a.size, base)), nil
	}
	slot, err := g.alloc(a.pos)
	if err != nil {
		return nil, err
	}
	defer g.free()
	out := append(idxCode, st(slot))
	out = append(out, xPre...)
	return append(out, ldMem(slot), aluX(aluADD), tax(), ldInd(a.size, base)), nil
}

func (g *gen) relation(n *relNode) (cond, error) {
	l, lok, err := constant(n.l)
	if err != nil {
		return nil, err
	}
	r, rok, err := constant(n.r)
	if err != nil {
		return nil, err
	}
	var op uint16
	neg := false
	switch n.op {
	case ">":
		op = jmpJGT
	case ">=":
		op = jmpJGE
	case "=", "==":
		op = jmpJEQ
	case "!=":
		op, neg = jmpJEQ, true
	case "<":
		op, neg = jmpJGE, true
	case "<=":
		op, neg = jmpJGT, true
	}
	if lok && rok {
		var b bool
		switch op {
		case jmpJGT:
			b = l > r
		case jmpJGE:
			b = l >= r
		default:
			b = l == r
		}
		return cConst(b != neg), nil
	}
	var guards []cond
	var c *cLeaf
	if rok {
		code, err := g.arith(n.l, &guards)
		if err != nil {
			return nil, err
		}
		c = leaf(code, op, r)
	} else {
		slot, err := g.alloc(n.pos)
		if err != nil {
			return nil, err
		}
		lc, err := g.arith(n.l, &guards)
		if err != nil {
			return nil, err
		}
		rc, err := g.arith(n.r, &guards)
		if err != nil {
			return nil, err
		}
		g.free()
		code := append(lc, st(slot))
		code = append(code, rc...)
		code = append(code, tax(), ldMem(slot))
		c = &cLeaf{pre: code, op: op, useX: true}
	}
	var res cond = c
	if neg {
		res = not(c)
	}
	return and(append(guards, res)...), nil
}
