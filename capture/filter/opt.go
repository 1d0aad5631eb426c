package filter

import (
	"fmt"
	"slices"
)

// A small optimizer in the spirit of libpcap's: the packet does not change
// while the program runs, so a load whose value is already in the register
// on every path to it is dropped, and a jump whose outcome is known from
// the tests on the way to it (ldh [12] was 0x800, so it is not 0x86dd) is
// replaced by the jump it leads to. Only loads already done on that path
// are skipped, so no load that could run past the end of the packet (and
// so reject it) is removed from a path that would have run it first.

// vkey names a value that depends only on the packet.
type vkey struct {
	kind uint8 // 0 unknown, 1 absolute load, 2 4*([k]&0xf), 3 load at X=4*([xk]&0xf) + k, 4 packet length
	size uint8
	k    uint32
	xk   uint32
}

const (
	vkUnknown = iota
	vkAbs
	vkMSH
	vkInd
	vkLen
)

// fact is what the tests on every path here say of a value: it equals c
// (eq), it is one of in (the paths tested it equal to different constants,
// as a protocol test `ip proto 6 or 17 or 132` leaves it), or it is none of
// ne.
type fact struct {
	eq bool
	c  uint32
	in []uint32
	ne []uint32
	// tests: other jumps on the value decided the same way on every path
	// (`jset #0x1fff` not taken: not a fragment), which decide the same
	// jump again.
	tests []test
}

type test struct {
	op    uint16
	k     uint32
	taken bool
}

// maxIn bounds the values of an in fact (and the walks split on them).
const maxIn = 8

// values is the set of values f allows, if it is a finite one.
func (f fact) values() []uint32 {
	if f.eq {
		return []uint32{f.c}
	}
	return f.in
}

func setFact(vs []uint32) fact {
	if len(vs) == 1 {
		return fact{eq: true, c: vs[0]}
	}
	return fact{in: vs}
}

type vstate struct {
	valid bool
	a, x  vkey
	facts map[vkey]fact
	// minLen: the packet has at least this many bytes, as an absolute
	// load that ends there succeeded on every path here.
	minLen uint32
}

func (s vstate) clone() vstate {
	n := vstate{valid: s.valid, a: s.a, x: s.x, facts: make(map[vkey]fact, len(s.facts)), minLen: s.minLen}
	for k, v := range s.facts {
		n.facts[k] = v
	}
	return n
}

func meetFact(f, g fact) (fact, bool) {
	var tests []test
	for _, t := range f.tests {
		if slices.Contains(g.tests, t) {
			tests = append(tests, t)
		}
	}
	m, ok := meetValues(f, g)
	if !ok {
		m = fact{}
	}
	m.tests = tests
	return m, ok || len(tests) > 0
}

func meetValues(f, g fact) (fact, bool) {
	fv, gv := f.values(), g.values()
	switch {
	case fv != nil && gv != nil: // union
		u := append([]uint32(nil), fv...)
		for _, v := range gv {
			if !slices.Contains(u, v) {
				u = append(u, v)
			}
		}
		return setFact(u), len(u) <= maxIn
	case gv != nil && !g.eq: // f ne, g in: ne less g's values
		f, g = g, f
		fallthrough
	case fv != nil && !f.eq: // f in, g ne
		var ne []uint32
		for _, v := range g.ne {
			if !slices.Contains(f.in, v) {
				ne = append(ne, v)
			}
		}
		return fact{ne: ne}, len(ne) > 0
	case f.eq:
		f, g = g, f
		fallthrough
	case g.eq: // f is ne
		var ne []uint32
		for _, v := range f.ne {
			if v != g.c {
				ne = append(ne, v)
			}
		}
		return fact{ne: ne}, len(ne) > 0
	}
	var ne []uint32
	for _, v := range f.ne {
		for _, w := range g.ne {
			if v == w {
				ne = append(ne, v)
				break
			}
		}
	}
	return fact{ne: ne}, len(ne) > 0
}

func meet(s, t vstate) vstate {
	if !s.valid {
		return t.clone()
	}
	if !t.valid {
		return s
	}
	if s.a != t.a {
		s.a = vkey{}
	}
	if s.x != t.x {
		s.x = vkey{}
	}
	s.minLen = min(s.minLen, t.minLen)
	for k, f := range s.facts {
		g, ok := t.facts[k]
		if !ok {
			delete(s.facts, k)
			continue
		}
		if m, ok := meetFact(f, g); ok {
			s.facts[k] = m
		} else {
			delete(s.facts, k)
		}
	}
	return s
}

// loadKey is the value a load instruction puts in A or X, given X's.
func loadKey(op uint16, k uint32, x vkey) (key vkey, toX bool, pure bool) {
	size := map[uint16]uint8{szW: 4, szH: 2, szB: 1}[op&0x18]
	switch {
	case op&0x07 == clsLD && op&0xe0 == modeABS && k < skfADOff:
		return vkey{kind: vkAbs, size: size, k: k}, false, true
	case op&0x07 == clsLD && op&0xe0 == modeIND && x.kind == vkMSH:
		return vkey{kind: vkInd, size: size, k: k, xk: x.k}, false, true
	case op&0x07 == clsLD && op&0xe0 == modeLEN:
		return vkey{kind: vkLen}, false, true
	case op&0x07 == clsLDX && op&0xe0 == modeMSH:
		return vkey{kind: vkMSH, k: k}, true, true
	}
	return vkey{}, op&0x07 == clsLDX, false
}

// step applies a non-jump instruction to the state.
func step(s vstate, in item) vstate {
	op := in.ins.Op
	switch op & 0x07 {
	case clsLD, clsLDX:
		key, toX, _ := loadKey(op, in.ins.K, s.x)
		if toX {
			s.x = key
		} else {
			s.a = key
		}
		if key.kind == vkAbs {
			s.minLen = max(s.minLen, key.k+uint32(key.size))
		}
	case clsALU:
		s.a = vkey{}
	case clsMISC:
		if op&0xf8 == 0x80 { // txa
			s.a = s.x
		} else {
			s.x = s.a
		}
	}
	return s
}

// outcome: whether the jump in goes to jt, if the state decides it.
func outcome(s vstate, in item) (taken bool, known bool) {
	if in.ins.Op&srcX != 0 || s.a.kind == vkUnknown {
		return false, false
	}
	f, ok := s.facts[s.a]
	if !ok {
		return false, false
	}
	k := in.ins.K
	op := in.ins.Op & 0xf0
	if vs := f.values(); vs != nil {
		// Decided if every value allowed goes the same way.
		for i, v := range vs {
			t, ok := jumpTaken(op, v, k)
			if !ok || (i > 0 && t != taken) {
				return false, false
			}
			taken = t
		}
		return taken, true
	}
	if op == jmpJEQ {
		for _, v := range f.ne {
			if v == k {
				return false, true
			}
		}
	}
	for _, t := range f.tests {
		if t.op == op && t.k == k {
			return t.taken, true
		}
	}
	return false, false
}

// jumpTaken: whether a conditional jump op with constant k is taken for A = v.
func jumpTaken(op uint16, v, k uint32) (taken, ok bool) {
	switch op {
	case jmpJEQ:
		return v == k, true
	case jmpJGT:
		return v > k, true
	case jmpJGE:
		return v >= k, true
	case jmpJSET:
		return v&k != 0, true
	}
	return false, false
}

// edge is the state along one outcome of the jump in.
func edge(s vstate, in item, taken bool) vstate {
	if in.ins.Op&srcX != 0 || s.a.kind == vkUnknown {
		return s
	}
	if f, ok := s.facts[s.a]; ok && len(f.in) > 0 {
		// The values left on this side.
		var left []uint32
		for _, v := range f.in {
			if t, ok := jumpTaken(in.ins.Op&0xf0, v, in.ins.K); !ok || t == taken {
				left = append(left, v)
			}
		}
		if len(left) == 0 || len(left) == len(f.in) {
			return s
		}
		s = s.clone()
		s.facts[s.a] = setFact(left)
		return s
	}
	if op := in.ins.Op & 0xf0; op != jmpJEQ {
		s = s.clone()
		f := s.facts[s.a]
		f.tests = append(append([]test(nil), f.tests...), test{op: op, k: in.ins.K, taken: taken})
		s.facts[s.a] = f
		return s
	}
	s = s.clone()
	f := s.facts[s.a]
	if taken {
		s.facts[s.a] = fact{eq: true, c: in.ins.K}
	} else if !f.eq {
		f.ne = append(append([]uint32(nil), f.ne...), in.ins.K)
		s.facts[s.a] = f
	}
	return s
}

func isCond(it item) bool { return it.sym && !isJA(it) }

func isRet(it item) bool { return it.ins.Op&0x07 == clsRET }

// analyze gives the state before each instruction, the meet of the states
// on every path to it (invalid: no path reaches it).
func analyze(items []item) (map[label]int, []vstate) {
	where := labelIndex(items)
	n := len(items)
	in := make([]vstate, n)
	in[0] = vstate{valid: true, facts: map[vkey]fact{}}
	flow := func(to int, s vstate) { in[to] = meet(in[to], s) }
	for i := 0; i < n; i++ {
		if !in[i].valid {
			continue
		}
		it := items[i]
		switch {
		case isJA(it):
			flow(where[it.jt], in[i])
		case isCond(it):
			flow(where[it.jt], edge(in[i], it, true))
			flow(where[it.jf], edge(in[i], it, false))
		case isRet(it):
		default:
			if i+1 < n {
				flow(i+1, step(in[i].clone(), it))
			}
		}
	}
	return where, in
}

// optimize drops redundant loads and threads jumps whose outcome is known;
// it reports whether it changed anything.
func optimize(items []item) ([]item, bool) {
	for _, it := range items {
		if !it.sym && it.ins.Op&0x07 == clsJMP {
			return items, false // pre code with its own jumps: leave alone
		}
	}
	where, in := analyze(items)
	n := len(items)
	changed := false
	live := liveness(items, where)
	// follow: where an edge with state s into label l really leads. It
	// passes loads of values already loaded on the way (a value with a known
	// fact was) and jumps the facts decide; it may only land where A and X
	// hold what they held on the edge. A jump on a value known to be one of
	// a few is followed for each of them: where all lead to one place (the
	// three protocol tests of `port` after `tcp or udp or sctp` was
	// decided), that is where the edge leads.
	budget := 64 * n // walk steps for this pass, splits included
	var walk func(s vstate, p int, a0, x0 vkey, best label, depth int) label
	walk = func(s vstate, p int, a0, x0 vkey, best label, depth int) label {
		for ; budget > 0; budget-- {
			it := items[p]
			var next label
			switch {
			case isJA(it):
				next = it.jt
			case isCond(it):
				taken, known := outcome(s, it)
				if !known {
					f := s.facts[s.a]
					if len(f.in) < 2 || depth >= 3 || it.ins.Op&srcX != 0 {
						return best
					}
					var common label // 0: no label yet
					for _, v := range f.in {
						b := s.clone()
						b.facts[s.a] = fact{eq: true, c: v}
						r := walk(b, p, a0, x0, 0, depth+1)
						if r == 0 || (common != 0 && r != common) {
							return best
						}
						common = r
					}
					return common
				}
				next = it.jf
				if taken {
					next = it.jt
				}
			case isRet(it):
				return best
			default:
				key, toX, pure := loadKey(it.ins.Op, it.ins.K, s.x)
				_, hasFact := s.facts[key]
				if !pure || (!hasFact && key != s.a && key != s.x) {
					return best
				}
				if toX {
					s.x = key
				} else {
					s.a = key
				}
				p++
				continue
			}
			p = where[next]
			// Landing here, A and X hold the edge's values, not the
			// simulated ones: fine where they agree or the value is dead.
			if (s.a == a0 || !live[p].a) && (s.x == x0 || !live[p].x) {
				best = next
			}
		}
		return best
	}
	follow := func(s vstate, l label) label {
		return walk(s, where[l], s.a, s.x, l, 0)
	}
	// Phase 1: retarget jumps past what their own outcome decides.
	for i := range items {
		it := &items[i]
		if !in[i].valid {
			continue
		}
		switch {
		case isCond(*it):
			if t := follow(edge(in[i], *it, true), it.jt); t != it.jt {
				it.jt, changed = t, true
			}
			if f := follow(edge(in[i], *it, false), it.jf); f != it.jf {
				it.jf, changed = f, true
			}
		case isJA(*it):
			if t := follow(in[i], it.jt); t != it.jt {
				it.jt, changed = t, true
			}
		}
	}
	if changed {
		return items, true // the states are stale now
	}
	// Phase 2: jumps decided on every path to them.
	for i := range items {
		it := &items[i]
		if in[i].valid && isCond(*it) {
			if taken, known := outcome(in[i], *it); known {
				to := it.jf
				if taken {
					to = it.jt
				}
				*it = item{ins: ri(clsJMP|jmpJA, 0), sym: true, jt: to, at: it.at}
				changed = true
			}
		}
	}
	if changed {
		return items, true
	}
	// Drop redundant loads and unreachable instructions.
	reach := reachable(items)
	out := make([]item, 0, n)
	var carry []label
	for i, it := range items {
		drop := !reach[i]
		if !drop && in[i].valid && !it.sym && !isRet(it) {
			key, toX, pure := loadKey(it.ins.Op, it.ins.K, in[i].x)
			if pure && ((toX && in[i].x == key) || (!toX && in[i].a == key)) {
				drop = true
			}
		}
		if drop && !isRet(it) {
			if reach[i] {
				carry = append(carry, it.at...)
			}
			changed = true
			continue
		}
		if drop { // an unreachable return: keep it, its label may be used
			it.at = append(carry, it.at...)
			carry = nil
			out = append(out, it)
			continue
		}
		it.at = append(carry, it.at...)
		carry = nil
		out = append(out, it)
	}
	if changed {
		return out, true
	}
	return deadLoads(out)
}

// deadLoads drops a load into A that the next instruction, a load into A
// too, overwrites unread: what is left of a test whose jump was decided
// (`host` reloads ldh [12] for each of its parts). Only where the dropped
// load cannot reject a packet the next one accepts: it cannot fail (an
// immediate, scratch, length or ancillary load), or it is an absolute load
// that ends no later than the next, also absolute, load. A separate pass:
// the redundant-load step above judged the next load with this one in
// place. Every such load is a packet load the kernel charges 112 bytes of
// option memory for (see package capture).
func deadLoads(items []item) ([]item, bool) {
	size := func(op uint16) uint32 { return map[uint16]uint32{szW: 4, szH: 2, szB: 1}[op&0x18] }
	out := make([]item, 0, len(items))
	var carry []label
	changed := false
	for i, it := range items {
		if i+1 < len(items) && !it.sym && !items[i+1].sym &&
			it.ins.Op&0x07 == clsLD && items[i+1].ins.Op&0x07 == clsLD {
			a, b := it.ins, items[i+1].ins
			safe := false
			switch a.Op & 0xe0 {
			case modeIMM, modeMEM, modeLEN:
				safe = true
			case modeABS:
				safe = a.K >= skfADOff ||
					(b.Op&0xe0 == modeABS && b.K < skfADOff && uint64(b.K)+uint64(size(b.Op)) >= uint64(a.K)+uint64(size(a.Op)))
			}
			if safe {
				carry = append(carry, it.at...)
				changed = true
				continue
			}
		}
		it.at = append(carry, it.at...)
		carry = nil
		out = append(out, it)
	}
	return out, changed
}

// ancillaryReadsNothing: SKF_AD_NLATTR, _NLATTR_NEST and _ALU_XOR_X read A
// and X (the compiler makes none of them); the loads of packet metadata
// read neither.
func ancillaryReadsNothing(off uint32) bool {
	switch off {
	case skfADProtocol, skfADPktType, skfADIfIndex, 20, 24, skfADHatype, 32, 36, skfADVLANTag, skfADVLANTagPresent, 52, 56, 60:
		return true
	}
	return false
}

// regs says which of A and X an instruction's value is used from.
type regs struct{ a, x bool }

// liveness gives, for each instruction, whether A and X are read (on some
// path) before they are written from there on. The programs only jump
// forward, so one backward pass does it.
func liveness(items []item, where map[label]int) []regs {
	n := len(items)
	live := make([]regs, n+1)
	next := func(i int) regs { return live[i+1] }
	for i := n - 1; i >= 0; i-- {
		it := items[i]
		op := it.ins.Op
		var l regs
		switch op & 0x07 {
		case clsRET:
			l = regs{a: op&0x18 == 0x10, x: op&0x18 == srcX}
		case clsJMP:
			switch {
			case isJA(it):
				l = live[where[it.jt]]
			case it.sym:
				t, f := live[where[it.jt]], live[where[it.jf]]
				l = regs{a: true, x: op&srcX != 0 || t.x || f.x}
			default: // pre code's own jumps: assume both are used
				l = regs{a: true, x: true}
			}
		case clsLD:
			l = regs{x: next(i).x}
			switch {
			case op&0xe0 == modeIND:
				l.x = true
			case op&0xe0 == modeABS && it.ins.K >= skfADOff && !ancillaryReadsNothing(it.ins.K-skfADOff):
				l = regs{a: true, x: true}
			}
		case clsLDX:
			l = regs{a: next(i).a}
		case clsST:
			l = regs{a: true, x: next(i).x}
		case clsST + 1: // stx
			l = regs{a: next(i).a, x: true}
		case clsALU:
			l = regs{a: true, x: op&srcX != 0 || next(i).x}
		case clsMISC:
			if op&0xf8 == 0x80 { // txa
				l = regs{x: true}
			} else { // tax
				l = regs{a: true}
			}
		}
		live[i] = l
	}
	return live[:n]
}

// mergeBlocks sends every jump to a block to the last block identical to it:
// the same instructions, jumping to the same places. That is what is left
// of `host` after threading: the ARP and the RARP tests of each address are
// the same code once the tests after them are (libpcap's optimizer merges
// such blocks too). Blocks are compared from the end of the program, so
// their successors are already merged; the block kept is the later one,
// so every jump stays a forward jump.
func mergeBlocks(items []item) ([]item, bool) {
	for _, it := range items {
		if !it.sym && it.ins.Op&0x07 == clsJMP {
			return items, false // pre code with its own jumps: leave alone
		}
	}
	rep := map[label]label{}
	to := func(l label) label {
		if r, ok := rep[l]; ok {
			return r
		}
		return l
	}
	seen := map[string]label{}
	var key []byte
	changed := false
	for end := len(items) - 1; end > 0; {
		start := end
		for start > 0 && !isJumpOrRet(items[start-1]) {
			start--
		}
		block := items[start : end+1]
		end = start - 1
		if start == 0 || len(block[0].at) == 0 {
			continue
		}
		key = key[:0]
		entered := false // a jump into its middle: not merged away
		for j, it := range block {
			entered = entered || (j > 0 && len(it.at) > 0)
			key = fmt.Appendf(key, "%d,%d,%d,%d", it.ins.Op, it.ins.Jt, it.ins.Jf, it.ins.K)
			if it.sym {
				key = fmt.Appendf(key, ">%d,%d", to(it.jt), to(it.jf))
			}
			key = append(key, ';')
		}
		r, ok := seen[string(key)]
		switch {
		case !ok:
			seen[string(key)] = block[0].at[0]
		case !entered:
			for _, l := range block[0].at {
				rep[l] = r
			}
			changed = true
		}
	}
	if !changed {
		return items, false
	}
	for i := range items {
		if items[i].sym {
			items[i].jt, items[i].jf = to(items[i].jt), to(items[i].jf)
		}
	}
	return items, true
}

// groupChains reorders chains of `or` terms so that the terms testing the
// same packet field come one after another, and the field is loaded once
// for all of them (libpcap's or_pullup does this for `host A or host B`:
// ld [26]; jeq A; jeq B; ld [30]; jeq A; jeq B). A chain is a run of
// blocks `ld [k]; jcond`, each reached only from the one before by its
// false side (or true side for a negated term) and all leading to the
// same place when their test decides. Reordering such terms could change
// the verdict on a short packet, where a load past its end rejects it
// before a later term would accept it; so the first term stays first and
// the others are only terms whose loads no packet getting past the first
// load can fail (they end within the length that load, or a load on every
// path to the chain, has proved). The result is what the unoptimized
// program decides, on every packet.
func groupChains(items []item) ([]item, bool) {
	for _, it := range items {
		if !it.sym && it.ins.Op&0x07 == clsJMP {
			return items, false
		}
	}
	where, in := analyze(items)
	refs := map[label]int{}
	for _, it := range items {
		if it.sym {
			refs[it.jt]++
			if !isJA(it) {
				refs[it.jf]++
			}
		}
	}
	// term: block i is `ld abs; jcond #k` whose test decides towards done
	// (the true side, or the false side when negated) and otherwise goes
	// on to next.
	type term struct {
		at          int
		key         vkey
		done, next  label
		doneOnFalse bool
	}
	termAt := func(i int, done label) (term, bool) {
		if i+1 >= len(items) || !in[i].valid {
			return term{}, false
		}
		ld, j := items[i], items[i+1]
		key, toX, pure := loadKey(ld.ins.Op, ld.ins.K, in[i].x)
		if !pure || toX || (key.kind != vkAbs && key.kind != vkInd) || ld.sym || len(j.at) > 0 || !isCond(j) || j.ins.Op&srcX != 0 {
			return term{}, false
		}
		t := term{at: i, key: key, done: j.jt, next: j.jf}
		if done != 0 && j.jf == done {
			t = term{at: i, key: key, done: j.jf, next: j.jt, doneOnFalse: true}
		}
		if done != 0 && t.done != done {
			return term{}, false
		}
		return t, true
	}
	changed := false
	inChain := make([]bool, len(items))
	for i := range items {
		if inChain[i] {
			continue
		}
		// The first term stays first, so its own load may be one that
		// fails: it runs first either way, and then proves its end.
		first, ok := termAt(i, 0)
		if !ok {
			continue
		}
		end := func(k vkey) uint32 { return k.k + uint32(k.size) }
		// What no packet getting here can fail: absolute loads within the
		// length proved, loads at X+k within what a load at X+k' proved.
		proven := in[i].minLen
		provenAtX := map[uint32]uint32{} // X's key -> end
		for k := range in[i].facts {
			if k.kind == vkInd {
				provenAtX[k.xk] = max(provenAtX[k.xk], end(k))
			}
		}
		switch first.key.kind {
		case vkAbs:
			proven = max(proven, end(first.key))
		case vkInd:
			provenAtX[first.key.xk] = max(provenAtX[first.key.xk], end(first.key))
		}
		safe := func(k vkey) bool {
			if k.kind == vkAbs {
				return end(k) <= proven
			}
			return end(k) <= provenAtX[k.xk]
		}
		chain := []term{first}
		for {
			last := chain[len(chain)-1]
			nx := where[last.next]
			if refs[last.next] != 1 || len(items[nx].at) != 1 {
				break
			}
			t, ok := termAt(nx, last.done)
			// X stays what it was at the chain's start: its terms load A only.
			if !ok || !safe(t.key) || in[nx].x != in[i].x {
				break
			}
			chain = append(chain, t)
		}
		for _, t := range chain {
			inChain[t.at] = true
		}
		// Stable grouping by field, in the order the fields first come.
		var order []term
		done := make([]bool, len(chain))
		for a := range chain {
			if done[a] {
				continue
			}
			for b := a; b < len(chain); b++ {
				if !done[b] && chain[b].key == chain[a].key {
					order = append(order, chain[b])
					done[b] = true
				}
			}
		}
		same := true
		for a := range chain {
			same = same && order[a].at == chain[a].at
		}
		if same {
			continue
		}
		// The blocks stay where they are, with their labels; what they
		// hold moves.
		old := make(map[int][2]item, len(chain))
		for _, t := range chain {
			old[t.at] = [2]item{items[t.at], items[t.at+1]}
		}
		last := chain[len(chain)-1].next
		for a, t := range order {
			pos := chain[a].at
			o := old[t.at]
			ld, j := o[0], o[1]
			ld.at = old[pos][0].at
			next := last
			if a+1 < len(order) {
				next = old[chain[a+1].at][0].at[0]
			}
			if t.doneOnFalse {
				j.jf, j.jt = t.done, next
			} else {
				j.jt, j.jf = t.done, next
			}
			items[pos], items[pos+1] = ld, j
		}
		changed = true
	}
	return items, changed
}
