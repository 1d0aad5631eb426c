package filter

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestErrors: bad expressions are *SyntaxError with the position of the
// problem; unknown and unsupported primitives are named.
func TestErrors(t *testing.T) {
	cases := []struct {
		expr string
		pos  int
		msg  string // substring of the message
	}{
		{"foo", 0, `unknown primitive "foo"`},
		{"tcp and foo", 8, `unknown primitive "foo"`},
		{"host 1.1.1.1 or foo", 16, `unknown host 'foo'`},
		{"tcp and bogus port 80", 8, `unknown primitive "bogus"`},
		{"host example.com", 5, `unknown host 'example.com'`},
		{"src foo", 4, "unknown host 'foo'"},
		{"ether host foo", 11, "unknown ether host 'foo'"},
		{"ifname eth0", 0, `unsupported primitive "ifname"`},
		{"tcp or pppoes", 7, `unsupported primitive "pppoes"`},
		{"gateway 1.1.1.1", 0, `unsupported primitive "gateway"`},
		{"host 1.1.1.1 and protochain 6", 17, `unsupported primitive "protochain"`},
		{"mpls", 0, `unsupported primitive "mpls"`},
		{"llc", 0, `unsupported primitive "llc"`},
		{"tcp port 80 and", 15, "unexpected end"},
		{"(tcp", 4, "unexpected end"},
		{"tcp)", 3, `syntax error at ")"`},
		{"ip[0:3] = 1", 5, "data size must be 1, 2, or 4"},
		{"ether[-1] = len", 0, "packet offset -1 is out of range"},
		{"ether[4294963200] = 1", 0, "packet offset -4096 is out of range"},
		{"ip[0] / 0 = 1", 6, "division by zero"},
		{"ip[0] % 0 = 1", 6, "modulus by zero"},
		{"ip[0] << 32 = 1", 6, "shift by more than 31 bits"},
		{"port 70000", 5, "illegal port number 70000"},
		{"vlan 4096", 5, "VLAN tag 4096 greater than maximum 4095"},
		{"net 10.1.1.1/8", 4, `non-network bits set in "10.1.1.1/8"`},
		{"host 10.0.0.0/8", 5, "Mask syntax for networks only"},
		{"net 2001:db8::1/32", 4, "non-network bits set"},
		{"ip6 host 1.1.1.1", 0, "'ip6' modifier applied to ip host"},
		{"tcp host 1.1.1.1", 0, "'tcp' modifier applied to host"},
		{"port foo", 5, "unknown port 'foo'"},
		{"udp port http", 9, "port 'http' is tcp"},
		{"ip proto \\nosuch", 9, "unknown ip proto 'nosuch'"},
		{"ether proto 0xe0", 12, "IPX"},
		{"ip6 broadcast", 0, "only link-layer/IP broadcast"},
		{"(host 1.1.1.1) or 2.2.2.2", 18, "needs a qualifier"},
		{"ip and 10", 7, "needs a qualifier"},
		{"ip $ 1", 3, "unexpected character"},
		{"ip[0] = 4294967296", 8, "overflows 32 bits"},
		{"less", 4, "less needs a number"},
		{"ether", 0, "link layer applied in wrong context"},
	}
	for _, c := range cases {
		_, err := Compile(c.expr, EN10MB, 0)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%q: want a *SyntaxError, got %v", c.expr, err)
			continue
		}
		if se.Pos != c.pos || !strings.Contains(se.Msg, c.msg) {
			t.Errorf("%q: got position %d %q, want position %d and %q", c.expr, se.Pos, se.Msg, c.pos, c.msg)
		}
	}
	// link-type restrictions
	for _, c := range []struct {
		lt   LinkType
		expr string
		msg  string
	}{
		{LinuxSLL2, "vlan", "no VLAN support"},
		{LinuxSLL, "ether host 1:2:3:4:5:6", "ethernet addresses supported only on ethernet"},
		{Raw, "broadcast", "not a broadcast link"},
		{LinuxSLL2, "multicast", "multicast filters supported only on ethernet"},
		{Raw, "arp", "expression rejects all packets"},
		{LinkType(9999), "ip", "unsupported link type"},
	} {
		if _, err := Compile(c.expr, c.lt, 0); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s %q: got %v, want an error with %q", c.lt, c.expr, err, c.msg)
		}
	}
}

func TestEmptyAcceptsAll(t *testing.T) {
	for _, expr := range []string{"", "  \t"} {
		p, err := Compile(expr, EN10MB, 96)
		if err != nil || len(p) != 1 || p[0].Op != clsRET || p[0].K != 96 {
			t.Errorf("%q: got %v %v, want ret #96", expr, p, err)
		}
	}
	if p, _ := Compile("", LinuxSLL2, 0); p[0].K != defaultSnaplen {
		t.Errorf("snaplen 0: got ret #%d, want %d", p[0].K, defaultSnaplen)
	}
}

// TestLongPrograms: conditional jumps reach at most 255 instructions;
// longer ones go through trampolines, and the kernel limit is enforced.
func TestLongPrograms(t *testing.T) {
	var b strings.Builder
	b.WriteString("tcp and (")
	for i := 0; i < 40; i++ {
		if i > 0 {
			b.WriteString(" or ")
		}
		fmt.Fprintf(&b, "host 10.0.0.%d and port %d", 1+i%7, 1+i)
	}
	b.WriteString(") and udp")
	p, err := Compile(b.String(), EN10MB, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) < 400 {
		t.Fatalf("want a program over 255 instructions, got %d", len(p))
	}
	if err := attach(udpSocket(t), p); err != nil {
		t.Fatalf("kernel refuses the %d-instruction program: %v", len(p), err)
	}
	// Distinct bytes: the optimizer would fold repeated tests away, and
	// share the loads of tests of one field.
	terms := make([]string, 2100)
	for i := range terms {
		terms[i] = fmt.Sprintf("ether[%d] = %d", i, (i*7+3)%256)
	}
	huge := strings.Join(terms, " or ")
	if _, err := Compile(huge, EN10MB, 0); err == nil || !strings.Contains(err.Error(), "too complex") {
		t.Errorf("want a too-complex error, got %v", err)
	}
}
