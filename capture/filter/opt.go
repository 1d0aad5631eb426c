package filter

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

type fact struct {
	eq bool
	c  uint32
	ne []uint32
}

type vstate struct {
	valid bool
	a, x  vkey
	facts map[vkey]fact
}

func (s vstate) clone() vstate {
	n := vstate{valid: s.valid, a: s.a, x: s.x, facts: make(map[vkey]fact, len(s.facts))}
	for k, v := range s.facts {
		n.facts[k] = v
	}
	return n
}

func meetFact(f, g fact) (fact, bool) {
	switch {
	case f.eq && g.eq:
		return f, f.c == g.c
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
	if f.eq {
		switch op {
		case jmpJEQ:
			return f.c == k, true
		case jmpJGT:
			return f.c > k, true
		case jmpJGE:
			return f.c >= k, true
		case jmpJSET:
			return f.c&k != 0, true
		}
		return false, false
	}
	if op == jmpJEQ {
		for _, v := range f.ne {
			if v == k {
				return false, true
			}
		}
	}
	return false, false
}

// edge is the state along one outcome of the jump in.
func edge(s vstate, in item, taken bool) vstate {
	if in.ins.Op&0xf0 != jmpJEQ || in.ins.Op&srcX != 0 || s.a.kind == vkUnknown {
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

// optimize drops redundant loads and threads jumps whose outcome is known;
// it reports whether it changed anything.
func optimize(items []item) ([]item, bool) {
	for _, it := range items {
		if !it.sym && it.ins.Op&0x07 == clsJMP {
			return items, false // pre code with its own jumps: leave alone
		}
	}
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
	changed := false
	// follow: where an edge with state s into label l really leads. It
	// passes loads of values already loaded on the way (a value with a known
	// fact was) and jumps the facts decide; it may only land where A and X
	// hold what they held on the edge.
	follow := func(s vstate, l label) label {
		best := l
		a0, x0 := s.a, s.x
		p := where[l]
		for steps := 0; steps < n; steps++ {
			it := items[p]
			var next label
			switch {
			case isJA(it):
				next = it.jt
			case isCond(it):
				taken, known := outcome(s, it)
				if !known {
					return best
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
			if s.a == a0 && s.x == x0 {
				best = next
			}
		}
		return best
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
