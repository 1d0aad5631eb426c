package filter

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/net/bpf"
)

// cond is a boolean test built from the AST; emit.go lays it out as jumps.
type cond interface{}

type (
	cAnd   struct{ a, b cond }
	cOr    struct{ a, b cond }
	cNot   struct{ a cond }
	cConst bool
	// cLeaf: run pre (which leaves the value in A, and in X for useX),
	// then jump on A op k (or A op X). pre may be empty when the previous
	// leaf on the falling-through path left the value in A.
	cLeaf struct {
		pre  []bpf.RawInstruction
		op   uint16
		k    uint32
		useX bool
	}
)

// and, or and not fold constants, as libpcap's optimizer does (a test
// whose outcome is known is dropped together with its loads).
func and(cs ...cond) cond {
	var r cond = cConst(true)
	for _, c := range cs {
		switch {
		case r == cConst(false) || c == cConst(true):
		case r == cConst(true) || c == cConst(false):
			r = c
		default:
			r = &cAnd{r, c}
		}
	}
	return r
}

func or(cs ...cond) cond {
	var r cond = cConst(false)
	for _, c := range cs {
		switch {
		case r == cConst(true) || c == cConst(false):
		case r == cConst(false) || c == cConst(true):
			r = c
		default:
			r = &cOr{r, c}
		}
	}
	return r
}

func not(c cond) cond {
	if b, ok := c.(cConst); ok {
		return !b
	}
	return &cNot{c}
}

// offset is a packet offset: a constant, plus, after a `vlan` on a socket
// that gets VLAN tags out of band, a variable part held in M[slot].
type offset struct {
	k    uint32
	slot int // -1: constant
}

type gen struct {
	lt          LinkType
	socketVLAN  bool // EN10MB socket: tags stripped by the kernel, seen through SKF_AD_VLAN_*
	hasLinktype bool
	linktype    offset
	linkpl      offset
	vlanDepth   int
	usesVar     bool
	scratch     int  // next free M[] slot
	reserveVar  bool // M[0], M[1] hold the VLAN offsets
}

func newGen(lt LinkType, socket bool) (*gen, error) {
	g := &gen{lt: lt, hasLinktype: true}
	switch lt {
	case EN10MB:
		g.linktype, g.linkpl = offset{12, -1}, offset{14, -1}
		g.socketVLAN = socket
	case LinuxSLL:
		g.linktype, g.linkpl = offset{14, -1}, offset{16, -1}
	case LinuxSLL2:
		g.linktype, g.linkpl = offset{0, -1}, offset{20, -1}
	case Raw:
		g.hasLinktype = false
		g.linkpl = offset{0, -1}
	default:
		return nil, &SyntaxError{Msg: fmt.Sprintf("unsupported link type %d", int(lt))}
	}
	return g, nil
}

// load reads size bytes at o+k.
func (g *gen) load(o offset, k uint32, size int) []bpf.RawInstruction {
	if o.slot < 0 {
		return []bpf.RawInstruction{ldAbs(size, o.k+k)}
	}
	return []bpf.RawInstruction{ldxMem(uint32(o.slot)), ldInd(size, o.k+k)}
}

func leaf(pre []bpf.RawInstruction, op uint16, k uint32) *cLeaf {
	return &cLeaf{pre: pre, op: op, k: k}
}

// cmp: (size bytes at o+k) & mask == v.
func (g *gen) mcmp(o offset, k uint32, size int, v, mask uint32) cond {
	pre := g.load(o, k, size)
	full := uint32(0xffffffff) >> (32 - 8*size)
	if mask&full != full {
		if mask == 0 { // libpcap's optimizer drops the test (and its load)
			return cConst(v == 0)
		}
		pre = append(pre, aluK(aluAND, mask))
	}
	return leaf(pre, jmpJEQ, v)
}

func (g *gen) nl(k uint32, size int, v uint32) cond { return g.mcmp(g.linkpl, k, size, v, 0xffffffff) }

// linkType tests the link layer's protocol type, as gen_linktype.
func (g *gen) linkType(pos int, proto uint32) (cond, error) {
	if !g.hasLinktype {
		switch proto {
		case 0x0800:
			return leaf([]bpf.RawInstruction{ldAbs(1, 0), aluK(aluAND, 0xf0)}, jmpJEQ, 0x40), nil
		case 0x86dd:
			return leaf([]bpf.RawInstruction{ldAbs(1, 0), aluK(aluAND, 0xf0)}, jmpJEQ, 0x60), nil
		}
		return cConst(false), nil
	}
	if proto <= 1500 && g.lt != LinuxSLL2 {
		return g.llc(pos, proto)
	}
	return leaf(g.load(g.linktype, 0, 2), jmpJEQ, proto), nil
}

// llc: `ether proto N` with N <= 1500 is an 802.2 LLC SAP, as libpcap's
// gen_linktype: an 802.3 frame (a length, not a type, in the type field;
// on LINUX_SLL the protocol LINUX_SLL_P_802_2) whose DSAP is N, for the IP,
// ISO and NetBEUI SAPs DSAP and SSAP both. (LINUX_SLL2 compares the
// protocol field as for a type, as libpcap does.)
func (g *gen) llc(pos int, proto uint32) (cond, error) {
	if proto == 0xe0 {
		return nil, errAt(pos, "ether proto 0xe0 (IPX, with its several encapsulations) is not supported")
	}
	var is8023 cond
	if g.lt == LinuxSLL {
		is8023 = leaf(g.load(g.linktype, 0, 2), jmpJEQ, 4)
	} else {
		is8023 = not(leaf(g.load(g.linktype, 0, 2), jmpJGT, 1500))
	}
	switch proto {
	case 0x06, 0xfe, 0xf0:
		return and(is8023, g.mcmp(g.linkpl, 0, 2, proto<<8|proto, 0xffffffff)), nil
	}
	return and(is8023, leaf(g.load(g.linkpl, 0, 1), jmpJEQ, proto)), nil
}

func (g *gen) mustLinkType(proto uint32) cond {
	c, err := g.linkType(0, proto)
	if err != nil {
		panic(err) // proto > 1500 here
	}
	return c
}

// notFrag: IPv4 fragment offset zero (gen_ipfrag).
func (g *gen) notFrag() cond {
	return not(leaf(g.load(g.linkpl, 6, 2), jmpJSET, 0x1fff))
}

// loadIPHdrLenX puts the IPv4 header length (plus the variable offset) in X.
func (g *gen) loadIPHdrLenX() []bpf.RawInstruction {
	if g.linkpl.slot < 0 {
		return []bpf.RawInstruction{ldxMSH(g.linkpl.k)}
	}
	return []bpf.RawInstruction{
		ldxMem(uint32(g.linkpl.slot)), ldInd(1, g.linkpl.k), aluK(aluAND, 0xf), aluK(aluLSH, 2),
		aluX(aluADD), tax(),
	}
}

func (g *gen) ipProto(v4, v6 bool, proto uint32) cond {
	var c4, c6 cond
	if v4 {
		c4 = and(g.mustLinkType(0x0800), g.nl(9, 1, proto))
	}
	if v6 {
		// the next header, or the one after a fragment header
		c6 = and(g.mustLinkType(0x86dd), or(g.nl(6, 1, proto), and(g.nl(6, 1, 44), g.nl(40, 1, proto))))
	}
	switch {
	case c4 != nil && c6 != nil:
		return or(c4, c6)
	case c4 != nil:
		return c4
	}
	return c6
}

func (g *gen) node(n node) (cond, error) {
	switch n := n.(type) {
	case *trueNode:
		return cConst(true), nil
	case *andNode:
		a, err := g.node(n.l)
		if err != nil {
			return nil, err
		}
		b, err := g.node(n.r)
		if err != nil {
			return nil, err
		}
		return and(a, b), nil
	case *orNode:
		a, err := g.node(n.l)
		if err != nil {
			return nil, err
		}
		b, err := g.node(n.r)
		if err != nil {
			return nil, err
		}
		return or(a, b), nil
	case *notNode:
		a, err := g.node(n.x)
		if err != nil {
			return nil, err
		}
		return not(a), nil
	case *protoNode:
		return g.protoAbbrev(n.pos, n.proto)
	case *castNode:
		return g.cast(n)
	case *lenNode:
		if n.greater {
			return leaf([]bpf.RawInstruction{ri(clsLD|modeLEN, 0)}, jmpJGE, n.n), nil
		}
		return not(leaf([]bpf.RawInstruction{ri(clsLD|modeLEN, 0)}, jmpJGT, n.n)), nil
	case *vlanNode:
		return g.vlan(n)
	case *dirNode:
		// the packet type: PACKET_OUTGOING (4) is outbound, anything else
		// inbound; from the cooked header, else from the kernel (as
		// libpcap, an ancillary load even in a program for a file)
		var ld []bpf.RawInstruction
		switch g.lt {
		case LinuxSLL:
			ld = []bpf.RawInstruction{ldAbs(2, 0)}
		case LinuxSLL2:
			ld = []bpf.RawInstruction{ldAbs(1, 10)}
		default:
			ld = []bpf.RawInstruction{ldAbs(2, skfADOff+skfADPktType)}
		}
		out := leaf(ld, jmpJEQ, 4)
		if n.inbound {
			return not(out), nil
		}
		return out, nil
	case *relNode:
		return g.relation(n)
	case *primNode:
		return g.prim(n)
	}
	return nil, fmt.Errorf("filter: internal error: node %T", n)
}

func (g *gen) protoAbbrev(pos int, proto string) (cond, error) {
	switch proto {
	case "ip":
		return g.mustLinkType(0x0800), nil
	case "ip6":
		return g.mustLinkType(0x86dd), nil
	case "arp":
		return g.mustLinkType(0x0806), nil
	case "rarp":
		return g.mustLinkType(0x8035), nil
	case "link", "ether":
		return nil, errAt(pos, "link layer applied in wrong context")
	}
	t, ok := transportProtos[proto]
	if !ok {
		return nil, errAt(pos, "unsupported primitive %q", proto)
	}
	return g.ipProto(t.v4, t.v6, t.num), nil
}

func (g *gen) cast(n *castNode) (cond, error) {
	switch {
	case !n.multi && (n.proto == "" || n.proto == "link"):
		if g.lt != EN10MB {
			return nil, errAt(n.pos, "not a broadcast link")
		}
		return and(g.mcmp(offset{0, -1}, 2, 4, 0xffffffff, 0xffffffff), g.mcmp(offset{0, -1}, 0, 2, 0xffff, 0xffffffff)), nil
	case !n.multi && n.proto == "ip":
		// libpcap with no known netmask (as tcpdump -i any): 0.0.0.0 or
		// 255.255.255.255.
		return and(g.mustLinkType(0x0800), or(g.nl(16, 4, 0), g.nl(16, 4, 0xffffffff))), nil
	case !n.multi:
		return nil, errAt(n.pos, "only link-layer/IP broadcast filters supported")
	case n.proto == "" || n.proto == "link":
		if g.lt != EN10MB {
			return nil, errAt(n.pos, "link-layer multicast filters supported only on ethernet")
		}
		return leaf([]bpf.RawInstruction{ldAbs(1, 0)}, jmpJSET, 1), nil
	case n.proto == "ip":
		return and(g.mustLinkType(0x0800), leaf(g.load(g.linkpl, 16, 1), jmpJGE, 224)), nil
	case n.proto == "ip6":
		return and(g.mustLinkType(0x86dd), g.nl(24, 1, 255)), nil
	}
	return nil, errAt(n.pos, "only link-layer/IP/IPv6 multicast filters supported")
}

func (g *gen) vlan(n *vlanNode) (cond, error) {
	if g.lt != EN10MB {
		return nil, errAt(n.pos, "no VLAN support for data link type %s", g.lt)
	}
	defer func() { g.vlanDepth++ }()
	if g.socketVLAN && g.vlanDepth == 0 {
		// libpcap's gen_vlan_bpf_extensions: the kernel strips the outer
		// tag into metadata; a tag still in the packet (not stripped) moves
		// everything after it by 4, which the variable offsets carry.
		g.usesVar = true
		present := leaf([]bpf.RawInstruction{ldAbs(1, skfADOff+skfADVLANTagPresent)}, jmpJEQ, 1)
		tpid := or(
			leaf([]bpf.RawInstruction{ldImm(4), st(vlanMemLinkpl), st(vlanMemLinktype), ldAbs(2, g.linktype.k)}, jmpJEQ, 0x8100),
			leaf(nil, jmpJEQ, 0x88a8), leaf(nil, jmpJEQ, 0x9100))
		c := or(present, tpid)
		if n.hasID {
			pre := []bpf.RawInstruction{
				ldAbs(1, skfADOff+skfADVLANTagPresent),
				{Op: clsJMP | jmpJEQ | srcK, K: 1, Jt: 0, Jf: 2},
				ldAbs(1, skfADOff+skfADVLANTag),
				{Op: clsJMP | jmpJA, K: 1},
				ldAbs(2, g.linkpl.k),
				aluK(aluAND, 0xfff),
			}
			c = and(c, leaf(pre, jmpJEQ, n.id))
		}
		g.linktype.slot, g.linkpl.slot = vlanMemLinktype, vlanMemLinkpl
		return c, nil
	}
	c := or(leaf(g.load(g.linktype, 0, 2), jmpJEQ, 0x8100), leaf(nil, jmpJEQ, 0x88a8), leaf(nil, jmpJEQ, 0x9100))
	if n.hasID {
		c = and(c, g.mcmp(g.linkpl, 0, 2, n.id, 0xfff))
	}
	g.linktype.k += 4
	g.linkpl.k += 4
	return c, nil
}

// --- qualified primitives -------------------------------------------------

func (g *gen) prim(n *primNode) (cond, error) {
	q, v := n.q, n.v
	switch v.kind {
	case tEID:
		return g.etherHost(n)
	case tHID6:
		return g.host6(n)
	case tHID:
		if q.addr == "port" || q.addr == "portrange" || q.addr == "proto" {
			return nil, errAt(v.pos, "illegal %s %q", q.addr, v.text)
		}
		return g.host4(n)
	case tNum:
		switch q.addr {
		case "port":
			if v.num > 65535 {
				return nil, errAt(v.pos, "illegal port number %d > 65535", v.num)
			}
			return g.port(n, v.num, v.num, false, "")
		case "portrange":
			if v.num > 65535 {
				return nil, errAt(v.pos, "illegal port number %d > 65535", v.num)
			}
			return g.port(n, v.num, v.num, true, "")
		case "proto":
			return g.protoNum(n, v.num)
		}
		return g.host4(n)
	case tID:
		switch q.addr {
		case "port":
			s, ok := serviceNames[v.text]
			if !ok {
				return nil, errAt(v.pos, "unknown port '%s'", v.text)
			}
			return g.port(n, s.port, s.port, false, serviceProto(s))
		case "portrange":
			lo, hi, proto, err := portRange(v)
			if err != nil {
				return nil, err
			}
			return g.port(n, lo, hi, true, proto)
		case "proto":
			if q.proto == "link" {
				e, ok := etherProtoNames[v.text]
				if !ok {
					return nil, errAt(v.pos, "unknown ether proto '%s'", v.text)
				}
				return g.protoNum(n, e)
			}
			p, ok := ipProtoNames[v.text]
			if !ok {
				return nil, errAt(v.pos, "unknown ip proto '%s'", v.text)
			}
			return g.protoNum(n, p)
		}
		if q.proto == "link" {
			return nil, errAt(v.pos, "unknown ether host '%s' (names are not resolved)", v.text)
		}
		return nil, errAt(v.pos, "unknown host '%s' (nsdebug does not resolve names; give an address)", v.text)
	}
	return nil, errAt(v.pos, "syntax error")
}

func serviceProto(s service) string {
	switch {
	case s.tcp && s.udp:
		return ""
	case s.tcp:
		return "tcp"
	}
	return "udp"
}

func portRange(v value) (lo, hi uint32, proto string, err error) {
	a, b, ok := strings.Cut(v.text, "-")
	if !ok {
		return 0, 0, "", errAt(v.pos, "illegal port range '%s'", v.text)
	}
	one := func(s string) (uint32, string, error) {
		if n, err := strconv.ParseUint(s, 10, 32); err == nil {
			if n > 65535 {
				return 0, "", errAt(v.pos, "illegal port number %d > 65535", n)
			}
			return uint32(n), "", nil
		}
		if sv, ok := serviceNames[s]; ok {
			return sv.port, serviceProto(sv), nil
		}
		return 0, "", errAt(v.pos, "unknown port in range '%s'", v.text)
	}
	lo, p1, err := one(a)
	if err != nil {
		return 0, 0, "", err
	}
	hi, p2, err := one(b)
	if err != nil {
		return 0, 0, "", err
	}
	if p1 != p2 {
		return 0, 0, "", errAt(v.pos, "port range '%s': the names are for different transports", v.text)
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	return lo, hi, p1, nil
}

func (g *gen) port(n *primNode, lo, hi uint32, isRange bool, nameProto string) (cond, error) {
	q := n.q
	var protos []uint32
	proto := q.proto
	if proto != "" && proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, errAt(n.pos, "illegal qualifier of '%s'", q.addr)
	}
	if nameProto != "" {
		if proto != "" && proto != nameProto {
			return nil, errAt(n.v.pos, "port '%s' is %s", n.v.text, nameProto)
		}
		proto = nameProto
	}
	switch proto {
	case "":
		protos = []uint32{6, 17, 132}
	default:
		protos = []uint32{transportProtos[proto].num}
	}
	atom := func(xPre []bpf.RawInstruction, base offset, k uint32) cond {
		var load []bpf.RawInstruction
		load = append(load, xPre...)
		if xPre != nil {
			load = append(load, ldInd(2, base.k+k))
		} else {
			load = append(load, g.load(base, k, 2)...)
		}
		if !isRange {
			return leaf(load, jmpJEQ, lo)
		}
		return and(leaf(load, jmpJGE, lo), not(leaf(nil, jmpJGT, hi)))
	}
	dirs := func(mk func(k uint32) cond) (cond, error) {
		switch q.dir {
		case "src":
			return mk(0), nil
		case "dst":
			return mk(2), nil
		case "and":
			return and(mk(0), mk(2)), nil
		}
		return or(mk(0), mk(2)), nil
	}
	// IPv6: the next header right after the fixed header (no extension
	// headers walked, as libpcap), ports right after the fixed header.
	var nh6, nh4 cond = cConst(false), cConst(false)
	for _, p := range protos {
		nh6 = or(nh6, g.nl(6, 1, p))
		nh4 = or(nh4, g.nl(9, 1, p))
	}
	p6, err := dirs(func(k uint32) cond { return atom(nil, g.linkpl, 40+k) })
	if err != nil {
		return nil, err
	}
	p4, err := dirs(func(k uint32) cond { return atom(g.loadIPHdrLenX(), g.linkpl, k) })
	if err != nil {
		return nil, err
	}
	v6 := and(g.mustLinkType(0x86dd), nh6, p6)
	v4 := and(g.mustLinkType(0x0800), nh4, g.notFrag(), p4)
	return or(v6, v4), nil
}
