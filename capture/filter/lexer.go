package filter

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// tokKind is the lexical class of a token, following libpcap's scanner:
// numbers, dotted IPv4 (HID), IPv6 (HID6), MAC addresses (EID), names (ID,
// including keywords) and operators.
type tokKind int

const (
	tEOF tokKind = iota
	tNum
	tHID  // 1 to 4 dotted decimal parts
	tHID6 // IPv6 address
	tEID  // MAC address
	tID   // name or keyword
	tOp   // punctuation and operators
)

type token struct {
	kind tokKind
	pos  int
	text string
	num  uint32 // tNum
	esc  bool   // \name: a name even if it is a keyword
}

// lexPatterns have the same shapes as libpcap's scanner.l; the longest match
// wins and, on a tie, the earlier pattern (numbers and addresses before
// names). Compiled on first use: only capture filters need them, and
// compiling them at package init cost every nsdebug command's start-up
// (issue 13).
type lexPatterns struct{ num, hid, v6, eid, id *regexp.Regexp }

var patterns = sync.OnceValue(func() *lexPatterns {
	return &lexPatterns{
		num: regexp.MustCompile(`^(0[xX][0-9A-Fa-f]+|[0-9]+)`),
		hid: regexp.MustCompile(`^[0-9]+(\.[0-9]+){1,3}`),
		v6:  regexp.MustCompile(`^[0-9A-Fa-f:][0-9A-Fa-f:.]*`),
		eid: regexp.MustCompile(`^([0-9A-Fa-f]{1,2}(:[0-9A-Fa-f]{1,2}){5}|[0-9A-Fa-f]{1,2}(-[0-9A-Fa-f]{1,2}){5}|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}|[0-9A-Fa-f]{12})`),
		id:  regexp.MustCompile(`^[A-Za-z0-9]([-_.A-Za-z0-9]*[.A-Za-z0-9])?`),
	}
})

var twoCharOps = []string{"&&", "||", "<<", ">>", "<=", ">=", "==", "!="}

func lex(s string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(s) {
		c := s[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			i++
			continue
		}
		rest := s[i:]
		if c == '\\' { // \name: a name even if it is a keyword (ether proto \ip)
			j := 1
			for j < len(rest) && !strings.ContainsRune(" !()\n\t", rune(rest[j])) {
				j++
			}
			if j == 1 {
				return nil, &SyntaxError{Pos: i, Msg: "empty name after '\\'"}
			}
			toks = append(toks, token{kind: tID, pos: i, text: rest[1:j], esc: true})
			i += j
			continue
		}
		if isAlnum(c) || c == ':' {
			t, n := lexWord(rest)
			if n > 0 {
				t.pos = i
				toks = append(toks, t)
				i += n
				continue
			}
		}
		op := ""
		for _, o := range twoCharOps {
			if strings.HasPrefix(rest, o) {
				op = o
				break
			}
		}
		if op == "" && strings.ContainsRune("()[]:!&|+-*/%^<>=", rune(c)) {
			op = string(c)
		}
		if op == "" {
			return nil, &SyntaxError{Pos: i, Msg: "unexpected character " + strconv.QuoteRune(rune(c))}
		}
		toks = append(toks, token{kind: tOp, pos: i, text: op})
		i += len(op)
	}
	toks = append(toks, token{kind: tEOF, pos: len(s)})
	return toks, nil
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// lexWord returns the longest address, number or name at the start of s.
func lexWord(s string) (token, int) {
	best, bestN := token{}, 0
	re := patterns()
	try := func(kind tokKind, m string) {
		if len(m) > bestN {
			best, bestN = token{kind: kind, text: m}, len(m)
		}
	}
	if m := re.num.FindString(s); m != "" {
		try(tNum, m)
	}
	if m := re.eid.FindString(s); m != "" {
		try(tEID, m)
	}
	if m := re.hid.FindString(s); m != "" {
		try(tHID, m)
	}
	if m := re.v6.FindString(s); m != "" {
		// Shrink to the longest prefix that is an IPv6 address with "::" or
		// eight groups (so "0:1" in ether[0:1] is not one).
		for n := len(m); n > 0; n-- {
			cand := m[:n]
			if !strings.Contains(cand, "::") && strings.Count(cand, ":") != 7 {
				continue
			}
			if a, err := netip.ParseAddr(cand); err == nil && a.Is6() && !strings.Contains(cand, "%") {
				try(tHID6, cand)
				break
			}
		}
	}
	if m := re.id.FindString(s); m != "" {
		try(tID, m)
	}
	if best.kind == tNum {
		v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(best.text, "0x"), "0X"), numBase(best.text), 64)
		if err != nil || v > 0xffffffff {
			// libpcap: "number %s overflows 32 bits"; reported by the parser.
			best.kind = tID
		} else {
			best.num = uint32(v)
		}
	}
	return best, bestN
}

func numBase(s string) int {
	switch {
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		return 16
	case len(s) > 1 && s[0] == '0':
		return 8
	}
	return 10
}
