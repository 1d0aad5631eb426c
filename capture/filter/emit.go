package filter

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// The emitter lays a cond out as a straight program of forward jumps:
// and/or short-circuit to labels, every label resolved at the end, with
// jumps threaded through unconditional jumps and trampolines added where a
// conditional jump would be longer than 255 instructions.

type label int

const (
	labAccept label = -1
	labReject label = -2
)

// item is one instruction; a conditional jump ending a leaf has symbolic
// targets jt/jf, an unconditional one ja; others are kept as they are (pre
// code with its own short relative jumps).
type item struct {
	ins    bpf.RawInstruction
	sym    bool // jt/jf (cond) or ja (uncond) are labels
	jt, jf label
	at     []label // labels placed before this instruction
}

type emitter struct {
	items   []item
	pending []label // labels to attach to the next instruction
	nlabels int
}

func (e *emitter) newLabel() label { e.nlabels++; return label(e.nlabels) }
func (e *emitter) place(l label)   { e.pending = append(e.pending, l) }

func (e *emitter) add(it item) {
	it.at = e.pending
	e.pending = nil
	e.items = append(e.items, it)
}

func (e *emitter) cond(c cond, t, f label) {
	switch c := c.(type) {
	case cConst:
		to := f
		if c {
			to = t
		}
		e.add(item{ins: bpf.RawInstruction{Op: clsJMP | jmpJA}, sym: true, jt: to})
	case *cNot:
		e.cond(c.a, f, t)
	case *cAnd:
		l := e.newLabel()
		e.cond(c.a, l, f)
		e.place(l)
		e.cond(c.b, t, f)
	case *cOr:
		l := e.newLabel()
		e.cond(c.a, t, l)
		e.place(l)
		e.cond(c.b, t, f)
	case *cLeaf:
		for _, in := range c.pre {
			e.add(item{ins: in})
		}
		src := uint16(srcK)
		if c.useX {
			src = srcX
		}
		e.add(item{ins: bpf.RawInstruction{Op: clsJMP | c.op | src, K: c.k}, sym: true, jt: t, jf: f})
	default:
		panic(fmt.Sprintf("filter: cond %T", c))
	}
}

func isJA(it item) bool { return it.sym && it.ins.Op == clsJMP|jmpJA }

// assemble turns the items into instructions, ending with the two returns.
func (e *emitter) assemble(prologue []bpf.RawInstruction, snaplen uint32, opt bool) ([]bpf.RawInstruction, error) {
	e.place(labAccept)
	e.add(item{ins: ri(clsRET|srcK, snaplen)})
	e.place(labReject)
	e.add(item{ins: ri(clsRET|srcK, 0)})
	items := e.items
	if len(prologue) > 0 {
		pro := make([]item, len(prologue))
		for i, in := range prologue {
			pro[i] = item{ins: in}
		}
		pro[0].at, items[0].at = items[0].at, nil
		items = append(pro, items...)
	}

	// Every pass keeps what the program decides, so stopping early only
	// costs size; the bound is only a guard against passes undoing each
	// other.
	for round := 0; round < 1000; round++ {
		items = threadJumps(items)
		var changed bool
		if !opt {
			break
		}
		if items, changed = optimize(items); changed {
			continue
		}
		if items, changed = mergeBlocks(items); changed {
			continue
		}
		if items, changed = groupChains(items); !changed {
			break
		}
	}
	return resolve(items)
}

// reachable marks the instructions some path from the start reaches.
func reachable(items []item) []bool {
	where := labelIndex(items)
	reach := make([]bool, len(items))
	reach[0] = true
	for i, it := range items {
		if !reach[i] {
			continue
		}
		switch {
		case isJA(it):
			reach[where[it.jt]] = true
		case isCond(it):
			reach[where[it.jt]] = true
			reach[where[it.jf]] = true
		case isRet(it):
		default:
			reach[i+1] = true
		}
	}
	return reach
}

// threadJumps sends jumps to the end of chains of unconditional jumps and
// drops unconditional jumps to the next instruction or that nothing reaches.
func threadJumps(items []item) []item {
	for changed := true; changed; {
		changed = false
		where := labelIndex(items)
		final := func(l label) label {
			for n := 0; n < len(items); n++ {
				i := where[l]
				if !isJA(items[i]) || items[i].jt == l {
					return l
				}
				l = items[i].jt
			}
			return l
		}
		for i := range items {
			if !items[i].sym {
				continue
			}
			if nt := final(items[i].jt); nt != items[i].jt {
				items[i].jt, changed = nt, true
			}
			if !isJA(items[i]) {
				if nf := final(items[i].jf); nf != items[i].jf {
					items[i].jf, changed = nf, true
				}
			}
		}
		// Drop unconditional jumps to the next instruction, and ones that
		// nothing can reach (after another jump, with no label).
		out := items[:0:0]
		for i, it := range items {
			if isJA(it) && i+1 < len(items) {
				next := where[it.jt] == i+1
				unreachable := len(it.at) == 0 && i > 0 && isJumpOrRet(items[i-1])
				if next || unreachable {
					if len(it.at) > 0 {
						items[i+1].at = append(it.at, items[i+1].at...)
					}
					changed = true
					continue
				}
			}
			out = append(out, it)
		}
		items = out
	}
	return items
}

// resolve turns labels into offsets, adding trampolines for conditional
// jumps out of range. A trampoline (or a copy of the return it leads to)
// already within range of a jump is shared: a long chain of `or` terms all
// jumping to the accepting return needs one every 255 instructions, not
// one per term.
func resolve(items []item) ([]bpf.RawInstruction, error) {
	next := label(-1000)
	fresh := func() label { next--; return next }
	for {
		where := labelIndex(items)
		bad := -1
		for i, it := range items {
			if !it.sym || isJA(it) {
				continue
			}
			if where[it.jt]-i-1 > 255 || where[it.jf]-i-1 > 255 {
				bad = i
				break
			}
		}
		if bad < 0 {
			break
		}
		// via is a label within range of bad that leads where to does.
		via := func(to label) (label, bool) {
			target := items[labelIndex(items)[to]] // items may have grown
			for j := bad + 1; j < len(items) && j-bad-1 <= 255; j++ {
				c := &items[j]
				same := (isJA(*c) && c.jt == to) || (isRet(*c) && isRet(target) && c.ins == target.ins)
				if !same {
					continue
				}
				if len(c.at) == 0 {
					c.at = []label{fresh()}
				}
				return c.at[0], true
			}
			return 0, false
		}
		// A new trampoline goes as far on as the jump reaches, after an
		// instruction that never falls through, so later jumps can share it.
		at := bad + 1
		for j := bad + 2; j < len(items) && j-bad-1 <= 255; j++ {
			if isJumpOrRet(items[j-1]) {
				at = j
			}
		}
		for _, jf := range []bool{false, true} {
			it := items[bad]
			to := it.jt
			if jf {
				to = it.jf
			}
			if labelIndex(items)[to]-bad-1 <= 255 {
				continue
			}
			l, ok := via(to)
			if !ok {
				l = fresh()
				t := item{ins: bpf.RawInstruction{Op: clsJMP | jmpJA}, sym: true, jt: to, at: []label{l}}
				if target := items[labelIndex(items)[to]]; isRet(target) {
					t = item{ins: target.ins, at: []label{l}}
				}
				items = append(items[:at], append([]item{t}, items[at:]...)...)
			}
			if jf {
				items[bad].jf = l
			} else {
				items[bad].jt = l
			}
		}
	}
	where := labelIndex(items)
	prog := make([]bpf.RawInstruction, len(items))
	for i, it := range items {
		in := it.ins
		if it.sym {
			if isJA(it) {
				in.K = uint32(where[it.jt] - i - 1)
			} else {
				in.Jt = uint8(where[it.jt] - i - 1)
				in.Jf = uint8(where[it.jf] - i - 1)
			}
		}
		prog[i] = in
	}
	if len(prog) > maxProgramLength {
		return nil, &SyntaxError{Msg: fmt.Sprintf("expression too complex: %d instructions (the kernel takes at most %d)", len(prog), maxProgramLength)}
	}
	return prog, nil
}

func isJumpOrRet(it item) bool {
	c := it.ins.Op & 0x07
	return c == clsRET || (c == clsJMP && (it.sym || it.ins.Op == clsJMP|jmpJA))
}

func labelIndex(items []item) map[label]int {
	m := make(map[label]int)
	for i, it := range items {
		for _, l := range it.at {
			m[l] = i
		}
	}
	return m
}
