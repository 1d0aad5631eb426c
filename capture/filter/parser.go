package filter

import (
	"fmt"
	"strconv"
)

// parser is a recursive-descent parser for libpcap's grammar (grammar.y),
// including its abbreviations: after `and`/`or` a bare value takes the
// qualifiers of the last qualified primitive (`host a or b`, `port 80 or 443`).
type parser struct {
	toks []token
	i    int
	last qual // qualifiers a following bare value inherits
}

func parse(expr string) (node, error) {
	toks, err := lex(expr)
	if err != nil {
		return nil, err
	}
	// Number keywords (tcp-syn, icmptype ...) are numbers to the grammar.
	for i := range toks {
		if toks[i].kind == tID && patterns().num.FindString(toks[i].text) == toks[i].text {
			if numBase(toks[i].text) == 8 {
				return nil, errAt(toks[i].pos, "number %s contains non-octal digit", toks[i].text)
			}
			return nil, errAt(toks[i].pos, "number %s overflows 32 bits", toks[i].text)
		}
		if toks[i].kind == tID {
			if v, ok := numKeywords[toks[i].text]; ok {
				toks[i].kind, toks[i].num = tNum, v
			}
		}
	}
	p := &parser{toks: toks, last: qual{err: true}}
	if p.peek().kind == tEOF {
		return &trueNode{}, nil
	}
	n, err := p.expr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.unexpected(t)
	}
	return n, nil
}

func (p *parser) peek() token       { return p.toks[p.i] }
func (p *parser) peekN(n int) token { return p.toks[min(p.i+n, len(p.toks)-1)] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) isWord(t token, w string) bool { return t.kind == tID && t.text == w }
func (p *parser) isOp(t token, op string) bool  { return t.kind == tOp && t.text == op }

func (p *parser) isAnd(t token) bool { return p.isWord(t, "and") || p.isOp(t, "&&") }
func (p *parser) isOr(t token) bool  { return p.isWord(t, "or") || p.isOp(t, "||") }
func (p *parser) isNot(t token) bool { return p.isWord(t, "not") || p.isOp(t, "!") }

func errAt(pos int, format string, args ...any) error {
	return &SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) unexpected(t token) error {
	switch {
	case t.kind == tEOF:
		return errAt(t.pos, "unexpected end of expression")
	case t.kind == tID && unsupportedKeywords[t.text]:
		return errAt(t.pos, "unsupported primitive %q", t.text)
	case t.kind == tID && !isKeyword(t.text):
		return errAt(t.pos, "unknown primitive %q", t.text)
	}
	return errAt(t.pos, "syntax error at %q", t.text)
}

// expr: term { (and|or) (id | term) }, left to right, and/or equal.
func (p *parser) expr() (node, error) {
	l, err := p.term()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		isAnd := p.isAnd(t)
		if !isAnd && !p.isOr(t) {
			return l, nil
		}
		p.next()
		var r node
		if p.startsID() {
			if n := p.peek(); n.kind == tID && !n.esc && p.last.err {
				return nil, errAt(n.pos, "unknown primitive %q", n.text)
			}
			if p.last.err {
				return nil, errAt(p.peek().pos, "%q needs a qualifier (host, net, port ...): nothing to inherit here", p.peek().text)
			}
			r, err = p.id(p.last)
		} else {
			r, err = p.term()
		}
		if err != nil {
			return nil, err
		}
		if isAnd {
			l = &andNode{pos: t.pos, l: l, r: r}
		} else {
			l = &orNode{pos: t.pos, l: l, r: r}
		}
	}
}

// isValue: a token that can only be an operand of a qualifier.
func (p *parser) isValue(t token) bool {
	switch t.kind {
	case tHID, tHID6, tEID:
		return true
	case tID:
		return t.esc || !isKeyword(t.text)
	}
	return false
}

// startsID reports whether what follows and/or is a bare value (possibly
// negated or parenthesised) rather than a term.
func (p *parser) startsID() bool {
	j := 0
	for {
		t := p.peekN(j)
		if p.isNot(t) || p.isOp(t, "(") {
			j++
			continue
		}
		if t.kind == tNum {
			// A number followed by an arithmetic operator or a relation
			// is arithmetic: `tcp and 1 = 1`.
			n := p.peekN(j + 1)
			return n.kind != tOp || !isArithOrRelOp(n.text)
		}
		return p.isValue(t)
	}
}

func isArithOrRelOp(s string) bool {
	switch s {
	case "+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>", "=", "==", "!=", "<", "<=", ">", ">=", "[":
		return true
	}
	return false
}

// term: not term | rterm
func (p *parser) term() (node, error) {
	t := p.peek()
	if p.isNot(t) {
		p.next()
		x, err := p.term()
		if err != nil {
			return nil, err
		}
		return &notNode{pos: t.pos, x: x}, nil
	}
	return p.rterm()
}

func (p *parser) rterm() (node, error) {
	t := p.peek()
	if p.isOp(t, "(") {
		// Arithmetic in parentheses if an arithmetic or relational
		// operator follows the matching ')', else an expression.
		if p.parenIsArith() {
			return p.relation()
		}
		p.next()
		before := p.last
		n, err := p.expr()
		if err != nil {
			return nil, err
		}
		if c := p.peek(); !p.isOp(c, ")") {
			return nil, p.unexpected(c)
		}
		p.next()
		// libpcap: a parenthesised expression passes on the qualifiers that
		// were current before it.
		p.last = before
		return n, nil
	}
	switch t.kind {
	case tNum:
		return p.relation()
	case tOp:
		if t.text == "-" {
			return p.relation()
		}
		return nil, p.unexpected(t)
	case tID:
	default:
		return nil, p.unexpected(t)
	}
	w := t.text
	switch {
	case t.esc:
		return nil, errAt(t.pos, "unknown primitive %q", w)
	case unsupportedKeywords[w]:
		return nil, errAt(t.pos, "unsupported primitive %q", w)
	case w == "len":
		return p.relation()
	case w == "less" || w == "greater":
		p.next()
		n := p.next()
		if n.kind != tNum {
			return nil, errAt(n.pos, "%s needs a number", w)
		}
		p.last = qual{err: true}
		return &lenNode{pos: t.pos, greater: w == "greater", n: n.num}, nil
	case w == "vlan":
		p.next()
		v := &vlanNode{pos: t.pos}
		if n := p.peek(); n.kind == tNum {
			p.next()
			if n.num > 4095 {
				return nil, errAt(n.pos, "VLAN tag %d greater than maximum 4095", n.num)
			}
			v.id, v.hasID = n.num, true
		}
		p.last = qual{err: true}
		return v, nil
	case w == "inbound" || w == "outbound":
		p.next()
		p.last = qual{err: true}
		return &dirNode{pos: t.pos, inbound: w == "inbound"}, nil
	case w == "broadcast" || w == "multicast":
		p.next()
		p.last = qual{err: true}
		return &castNode{pos: t.pos, multi: w == "multicast"}, nil
	case protoKeywords[w]:
		n := p.peekN(1)
		if p.isOp(n, "[") {
			return p.relation()
		}
		if n.kind == tID && (n.text == "broadcast" || n.text == "multicast") {
			p.next()
			p.next()
			p.last = qual{err: true}
			if w == "ether" {
				w = "link"
			}
			return &castNode{pos: t.pos, proto: w, multi: n.text == "multicast"}, nil
		}
		if n.kind == tID && isQualWord(n.text) {
			return p.headID()
		}
		p.next()
		p.last = qual{err: true}
		return &protoNode{pos: t.pos, proto: w}, nil
	case isQualWord(w):
		return p.headID()
	case !isKeyword(w):
		return nil, errAt(t.pos, "unknown primitive %q", w)
	}
	return nil, p.unexpected(t)
}

func isQualWord(w string) bool {
	switch w {
	case "src", "dst", "host", "net", "port", "portrange", "proto":
		return true
	}
	return unsupportedKeywords[w] && (w == "gateway" || w == "protochain")
}

// headID: [proto] [dir] [addr] id
func (p *parser) headID() (node, error) {
	var q qual
	start := p.peek().pos
	q.pos = start
	if t := p.peek(); t.kind == tID && protoKeywords[t.text] {
		q.proto = t.text
		if q.proto == "ether" {
			q.proto = "link"
		}
		p.next()
	}
	if t := p.peek(); p.isWord(t, "src") || p.isWord(t, "dst") {
		p.next()
		q.dir = t.text
		// src or dst, src and dst (either order)
		if c, d := p.peek(), p.peekN(1); (p.isOr(c) || p.isAnd(c)) && (p.isWord(d, "src") || p.isWord(d, "dst")) && d.text != t.text {
			p.next()
			p.next()
			if p.isOr(c) {
				q.dir = "or"
			} else {
				q.dir = "and"
			}
		}
	}
	if t := p.peek(); t.kind == tID {
		switch t.text {
		case "host", "net", "port", "portrange", "proto":
			p.next()
			q.addr = t.text
		case "gateway", "protochain":
			return nil, errAt(t.pos, "unsupported primitive %q", t.text)
		}
	}
	if q.dir == "" && q.addr == "" {
		return nil, errAt(start, "syntax error")
	}
	n, err := p.id(q)
	if err != nil {
		return nil, err
	}
	p.last = q
	return n, nil
}

// id: not id | value | '(' pid ')'; pid: id { (and|or) id }
func (p *parser) id(q qual) (node, error) {
	t := p.peek()
	if p.isNot(t) {
		p.next()
		x, err := p.id(q)
		if err != nil {
			return nil, err
		}
		return &notNode{pos: t.pos, x: x}, nil
	}
	if p.isOp(t, "(") {
		p.next()
		l, err := p.id(q)
		if err != nil {
			return nil, err
		}
		for {
			c := p.peek()
			if p.isOp(c, ")") {
				p.next()
				return l, nil
			}
			if !p.isAnd(c) && !p.isOr(c) {
				return nil, p.unexpected(c)
			}
			p.next()
			r, err := p.id(q)
			if err != nil {
				return nil, err
			}
			if p.isAnd(c) {
				l = &andNode{pos: c.pos, l: l, r: r}
			} else {
				l = &orNode{pos: c.pos, l: l, r: r}
			}
		}
	}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	return &primNode{pos: t.pos, q: q, v: v}, nil
}

func (p *parser) value() (value, error) {
	t := p.next()
	v := value{pos: t.pos, kind: t.kind, text: t.text, num: t.num, masklen: -1}
	switch t.kind {
	case tNum, tEID:
		return v, nil
	case tHID, tHID6:
		if c := p.peek(); p.isOp(c, "/") {
			p.next()
			n := p.next()
			if n.kind != tNum {
				return v, errAt(n.pos, "expected a prefix length after '/'")
			}
			v.masklen = int(n.num)
			return v, nil
		}
		if c := p.peek(); t.kind == tHID && p.isWord(c, "mask") {
			p.next()
			m := p.next()
			if m.kind != tHID {
				return v, errAt(m.pos, "expected a dotted netmask after 'mask'")
			}
			v.mask = m.text
		}
		return v, nil
	case tID:
		if t.esc || !isKeyword(t.text) {
			return v, nil
		}
	}
	p.i--
	return v, p.unexpected(t)
}

// relation: arith relop arith
func (p *parser) relation() (node, error) {
	start := p.peek().pos
	l, err := p.arith(0)
	if err != nil {
		return nil, err
	}
	t := p.peek()
	if t.kind != tOp {
		return nil, p.unexpected(t)
	}
	switch t.text {
	case ">", ">=", "=", "==", "<", "<=", "!=":
	default:
		return nil, p.unexpected(t)
	}
	p.next()
	r, err := p.arith(0)
	if err != nil {
		return nil, err
	}
	p.last = qual{err: true}
	return &relNode{pos: start, op: t.text, l: l, r: r}, nil
}

var arithPrec = map[string]int{
	"|": 1, "&": 2, "<<": 3, ">>": 3, "+": 4, "-": 4, "*": 5, "/": 5, "%": 5,
}

// arith parses with libpcap's precedences. '^' has none in grammar.y, so
// yacc always shifts on it: `a + b ^ c` is a + (b ^ c) and `a ^ b + c` is
// a ^ (b + c).
func (p *parser) arith(minPrec int) (arith, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if t.kind != tOp {
			return l, nil
		}
		if t.text == "^" {
			p.next()
			r, err := p.arith(0)
			if err != nil {
				return nil, err
			}
			l = &binArith{pos: t.pos, op: "^", l: l, r: r}
			continue
		}
		prec, ok := arithPrec[t.text]
		if !ok || prec < minPrec {
			return l, nil
		}
		p.next()
		r, err := p.arith(prec + 1)
		if err != nil {
			return nil, err
		}
		l = &binArith{pos: t.pos, op: t.text, l: l, r: r}
	}
}

func (p *parser) unary() (arith, error) {
	t := p.next()
	switch {
	case t.kind == tNum:
		return &numArith{pos: t.pos, v: t.num}, nil
	case p.isOp(t, "-"):
		x, err := p.arith(6)
		if err != nil {
			return nil, err
		}
		return &negArith{pos: t.pos, x: x}, nil
	case p.isOp(t, "("):
		x, err := p.arith(0)
		if err != nil {
			return nil, err
		}
		if c := p.next(); !p.isOp(c, ")") {
			p.i--
			return nil, p.unexpected(c)
		}
		return x, nil
	case p.isWord(t, "len"):
		return &lenArith{pos: t.pos}, nil
	case t.kind == tID && protoKeywords[t.text]:
		if c := p.next(); !p.isOp(c, "[") {
			p.i--
			return nil, p.unexpected(c)
		}
		off, err := p.arith(0)
		if err != nil {
			return nil, err
		}
		size := 1
		if c := p.peek(); p.isOp(c, ":") {
			p.next()
			n := p.next()
			if n.kind != tNum {
				return nil, errAt(n.pos, "expected a size (1, 2 or 4)")
			}
			if n.num != 1 && n.num != 2 && n.num != 4 {
				return nil, errAt(n.pos, "data size must be 1, 2, or 4")
			}
			size = int(n.num)
		}
		if c := p.next(); !p.isOp(c, "]") {
			p.i--
			return nil, p.unexpected(c)
		}
		proto := t.text
		if proto == "ether" {
			proto = "link"
		}
		return &loadArith{pos: t.pos, proto: proto, off: off, size: size}, nil
	}
	p.i--
	if t.kind == tID && !isKeyword(t.text) {
		if _, err := strconv.Atoi(t.text); err != nil {
			return nil, p.unexpected(t)
		}
	}
	return nil, p.unexpected(t)
}

// parenIsArith looks past the parenthesis at the current token to its
// matching one.
func (p *parser) parenIsArith() bool {
	depth := 0
	for j := p.i; j < len(p.toks); j++ {
		t := p.toks[j]
		switch {
		case p.isOp(t, "("):
			depth++
		case p.isOp(t, ")"):
			depth--
			if depth == 0 {
				n := p.toks[min(j+1, len(p.toks)-1)]
				return n.kind == tOp && n.text != "[" && isArithOrRelOp(n.text)
			}
		case t.kind == tEOF:
			return false
		}
	}
	return false
}
