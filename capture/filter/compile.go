package filter

import (
	"fmt"

	"golang.org/x/net/bpf"
)

func compile(expr string, lt LinkType, snaplen int) ([]bpf.RawInstruction, error) {
	return build(expr, lt, false, snaplen)
}

func compileForSocket(expr string, lt LinkType, cooked bool, snaplen int) ([]bpf.RawInstruction, error) {
	if cooked && lt != LinuxSLL && lt != LinuxSLL2 {
		return nil, &SyntaxError{Msg: fmt.Sprintf("a cooked socket needs link type LINUX_SLL or LINUX_SLL2, not %s", lt)}
	}
	if !cooked && (lt == LinuxSLL || lt == LinuxSLL2) {
		return nil, &SyntaxError{Msg: fmt.Sprintf("link type %s is only for cooked sockets", lt)}
	}
	prog, err := build(expr, lt, true, snaplen)
	if err != nil || !cooked {
		return prog, err
	}
	return fixCooked(prog, lt)
}

func build(expr string, lt LinkType, socket bool, snaplen int) ([]bpf.RawInstruction, error) {
	return buildOpt(expr, lt, socket, snaplen, true)
}

// buildOpt: optimize false is for tests of the optimizer.
func buildOpt(expr string, lt LinkType, socket bool, snaplen int, optimize bool) ([]bpf.RawInstruction, error) {
	if snaplen <= 0 {
		snaplen = defaultSnaplen
	}
	ast, err := parse(expr)
	if err != nil {
		return nil, err
	}
	g, err := newGen(lt, socket)
	if err != nil {
		return nil, err
	}
	g.reserveVar = g.socketVLAN && hasVLAN(ast)
	c, err := g.node(ast)
	if err != nil {
		return nil, err
	}
	var prologue []bpf.RawInstruction
	if g.usesVar {
		// the variable parts of the offsets start at 0
		prologue = []bpf.RawInstruction{ldImm(0), st(vlanMemLinkpl), st(vlanMemLinktype)}
	}
	if c == cConst(false) {
		// libpcap refuses these too
		return nil, &SyntaxError{Pos: 0, Msg: "expression rejects all packets"}
	}
	e := &emitter{}
	if c == cConst(true) {
		return []bpf.RawInstruction{ri(clsRET|srcK, uint32(snaplen))}, nil
	}
	e.cond(c, labAccept, labReject)
	return e.assemble(prologue, uint32(snaplen), optimize)
}

func hasVLAN(n node) bool {
	switch n := n.(type) {
	case *vlanNode:
		return true
	case *andNode:
		return hasVLAN(n.l) || hasVLAN(n.r)
	case *orNode:
		return hasVLAN(n.l) || hasVLAN(n.r)
	case *notNode:
		return hasVLAN(n.x)
	}
	return false
}

func (g *gen) usesVarPlanned() bool { return g.reserveVar }
