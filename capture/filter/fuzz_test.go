package filter

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// FuzzCompile: no expression makes the compiler panic; every expression it
// accepts gives, for every link type and socket kind, a program that
// golang.org/x/net/bpf disassembles and reassembles to the same bytes,
// that fits the kernel's limit, and that the kernel accepts
// (SO_ATTACH_FILTER on a throwaway UDP socket); every error is a
// *SyntaxError.
func FuzzCompile(f *testing.F) {
	if fh, err := os.Open("testdata/exprs.txt"); err == nil {
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
				f.Add(l)
			}
		}
		fh.Close()
	}
	for _, s := range []string{"", "(", "not", "host", "ip[", "ip[1:", "tcp[13]&", "\\", "1=1", "vlan and vlan and vlan and ip", "((((ip))))", "- - -1 = 1", "ip[0]^1^2^3 = 0"} {
		f.Add(s)
	}
	for i, p := range genCorpus() {
		if i%7 == 0 {
			fuzzPackets = append(fuzzPackets, p)
		}
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		f.Fatal(err)
	}
	defer unix.Close(fd)
	f.Fuzz(func(t *testing.T, expr string) {
		check := func(what string, prog []bpf.RawInstruction, err error) {
			if err != nil {
				if _, ok := err.(*SyntaxError); !ok {
					t.Fatalf("%s %q: error %T is not a *SyntaxError: %v", what, expr, err, err)
				}
				return
			}
			if len(prog) == 0 || len(prog) > maxProgramLength {
				t.Fatalf("%s %q: %d instructions", what, expr, len(prog))
			}
			ins, ok := bpf.Disassemble(prog)
			if !ok {
				t.Fatalf("%s %q: x/net/bpf cannot disassemble\n%s", what, expr, dump(prog))
			}
			again, err := bpf.Assemble(ins)
			if err != nil || !sameProgram(again, prog) {
				t.Fatalf("%s %q: x/net/bpf does not reassemble it (%v)\n%s", what, expr, err, dump(prog))
			}
			if err := attach(fd, prog); err != nil && err != unix.ENOMEM {
				// ENOMEM: larger than the socket's option memory
				// (net.core.optmem_max), not a malformed program
				t.Fatalf("%s %q: the kernel refuses the program: %v\n%s", what, expr, err, dump(prog))
			}
		}
		for _, lt := range []LinkType{EN10MB, LinuxSLL, LinuxSLL2, Raw} {
			p, err := Compile(expr, lt, 0)
			check(lt.String(), p, err)
			if err == nil {
				checkOptimizer(t, expr, lt, p, fuzzPackets)
			}
		}
		p, err := CompileForSocket(expr, EN10MB, false, 0)
		check("EN10MB socket", p, err)
		p, err = CompileForSocket(expr, LinuxSLL2, true, 0)
		check("SLL2 cooked", p, err)
		p, err = CompileForSocket(expr, LinuxSLL, true, 0)
		check("SLL cooked", p, err)
	})
}

// sameProgram: equal, except that x/net/bpf writes every ancillary load as
// a word load (the kernel ignores the size of those; libpcap writes the
// field's size).
func sameProgram(a, b []bpf.RawInstruction) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Op&0xe7 == clsLD|modeABS && y.Op&0xe7 == clsLD|modeABS && x.K >= skfADOff && x.K == y.K {
			continue
		}
		if x != y {
			return false
		}
	}
	return true
}

var fuzzPackets []testPacket

// checkOptimizer: the optimizer only drops loads already done and jumps
// already decided on the way, so the program without it decides the same
// on every packet, truncated ones included.
func checkOptimizer(t *testing.T, expr string, lt LinkType, opt []bpf.RawInstruction, pkts []testPacket) {
	t.Helper()
	plain, err := buildOpt(expr, lt, false, 0, false)
	if err != nil {
		t.Fatalf("%s %q: unoptimized: %v", lt, expr, err)
	}
	for _, p := range pkts {
		data, ok := p.asLinkType(lt)
		if !ok {
			continue
		}
		a, err1 := runBPF(plain, data, meta{})
		b, err2 := runBPF(opt, data, meta{})
		if err1 != nil || err2 != nil || a != b {
			t.Fatalf("%s %q on %s: unoptimized %d (%v), optimized %d (%v)\nunoptimized:\n%soptimized:\n%s", lt, expr, p.name, a, err1, b, err2, dump(plain), dump(opt))
		}
	}
}

// TestOptimizerKeepsSemantics runs checkOptimizer over the corpus.
func TestOptimizerKeepsSemantics(t *testing.T) {
	pkts := genCorpus()
	for _, expr := range readExprs(t, "testdata/exprs.txt") {
		for _, lt := range []LinkType{EN10MB, LinuxSLL, LinuxSLL2, Raw} {
			if p, err := Compile(expr, lt, 0); err == nil {
				checkOptimizer(t, expr, lt, p, pkts)
			}
		}
	}
}
