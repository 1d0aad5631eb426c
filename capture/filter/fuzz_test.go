package filter

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// FuzzCompile: no expression makes the compiler panic; every expression it
// accepts gives, for every link type and socket kind, a program that
// golang.org/x/net/bpf disassembles and reassembles to the same bytes and
// that has at most BPF_MAXINSNS instructions; the kernel accepts it
// (SO_ATTACH_FILTER on a throwaway UDP socket) or refuses it only as too
// big for the socket's option memory (ENOMEM: net.core.optmem_max), and
// then the program for the frames' link type, which capture runs in user
// space instead, runs in x/net/bpf's VM (unless it needs the kernel's
// packet type: inbound/outbound on Ethernet, which capture then reports
// as an error); every error is a *SyntaxError.
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
		check := func(what string, prog []bpf.RawInstruction, err error, userLT LinkType) {
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
			err = attach(fd, prog)
			switch {
			case err == unix.ENOMEM:
				// Larger than the socket's option memory: capture
				// filters in user space with the link type's program.
				checkUserSpace(t, what, expr, userLT)
			case err != nil:
				t.Fatalf("%s %q: the kernel refuses the program: %v\n%s", what, expr, err, dump(prog))
			}
		}
		for _, lt := range []LinkType{EN10MB, LinuxSLL, LinuxSLL2, Raw} {
			p, err := Compile(expr, lt, 0)
			check(lt.String(), p, err, lt)
			if err == nil {
				checkOptimizer(t, expr, lt, p, fuzzPackets)
			}
		}
		p, err := CompileForSocket(expr, EN10MB, false, 0)
		check("EN10MB socket", p, err, EN10MB)
		p, err = CompileForSocket(expr, LinuxSLL2, true, 0)
		check("SLL2 cooked", p, err, LinuxSLL2)
		p, err = CompileForSocket(expr, LinuxSLL, true, 0)
		check("SLL cooked", p, err, LinuxSLL)
	})
}

// checkUserSpace: the program capture runs in user space when the kernel
// refuses a filter as too big (capture.filterInUserSpace) runs in
// x/net/bpf's VM, unless it loads the kernel's packet type (inbound or
// outbound on Ethernet), which the VM cannot.
func checkUserSpace(t *testing.T, what, expr string, lt LinkType) {
	t.Helper()
	p, err := Compile(expr, lt, 0)
	if err != nil {
		t.Fatalf("%s %q: too big for the kernel, and no %s program for user space: %v", what, expr, lt, err)
	}
	ins, ok := bpf.Disassemble(p)
	if !ok {
		t.Fatalf("%s %q: x/net/bpf cannot disassemble the %s program", what, expr, lt)
	}
	if _, err := bpf.NewVM(ins); err != nil {
		for _, r := range p {
			if r.Op&0xe7 == clsLD|modeABS && r.K == skfADOff+skfADPktType {
				return
			}
		}
		t.Fatalf("%s %q: too big for the kernel, and x/net/bpf's VM refuses the %s program: %v\n%s", what, expr, lt, err, dump(p))
	}
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

// bigExpr is 1,400 tests of distinct packet bytes: an Ethernet socket
// program of 2,800 instructions with 1,400 packet loads, too big for the
// kernel's default 128 KiB of option memory (each load costs about 112
// bytes once the kernel has converted the filter to eBPF). `host` chains
// no longer make such programs: their loads are shared (see groupChains).
func bigExpr() string {
	terms := make([]string, 1400)
	for i := range terms {
		terms[i] = fmt.Sprintf("ether[%d] = %d", i, (i*7+3)%256)
	}
	return strings.Join(terms, " or ")
}

// TestTooBigForKernelRunsInUserSpace: the fuzz target's user-space check on
// programs the kernel does refuse (ENOMEM): the program for the frames'
// link type runs in x/net/bpf's VM, and gives the kernel program's verdict
// on the corpus; with inbound (the kernel's packet type, which the VM
// cannot load) checkUserSpace accepts the VM's refusal.
func TestTooBigForKernelRunsInUserSpace(t *testing.T) {
	fd := udpSocket(t)
	pkts := genCorpus()
	for _, expr := range []string{bigExpr(), bigExpr() + " or inbound"} {
		p, err := CompileForSocket(expr, EN10MB, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := attach(fd, p); err != unix.ENOMEM {
			t.Fatalf("%d instructions: the kernel says %v, want ENOMEM (net.core.optmem_max above 128 KiB? the test needs the default)", len(p), err)
		}
		checkUserSpace(t, "EN10MB socket", expr, EN10MB)
	}
	// Two of the corpus's addresses besides, so that some packets match.
	user, err := Compile(bigExpr()+" or host 10.1.2.3 or dst host 192.168.1.1", EN10MB, 0)
	if err != nil {
		t.Fatal(err)
	}
	ins, _ := bpf.Disassemble(user)
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	matched := 0
	for _, pk := range pkts {
		data, ok := pk.asLinkType(EN10MB)
		if !ok {
			continue
		}
		want, err := runBPF(user, data, meta{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := vm.Run(data)
		if err != nil || uint32(got) != want {
			t.Fatalf("%s: x/net/bpf's VM says %d (%v), nsdebug's interpreter %d", pk.name, got, err, want)
		}
		if got > 0 {
			matched++
		}
	}
	t.Logf("%d of %d packets matched", matched, len(pkts))
}
