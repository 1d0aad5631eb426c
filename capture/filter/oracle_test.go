package filter

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// requireTcpdump returns the path of tcpdump; missing, the test skips,
// except in CI (CI=true), where it fails.
func requireTcpdump(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("tcpdump")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("tcpdump is the oracle and is not installed (apt-get install tcpdump): %v", err)
		}
		t.Skip("tcpdump not installed (the oracle); with CI=true this fails")
	}
	return p
}

var tcpdumpLinkTypes = map[LinkType]string{EN10MB: "EN10MB", LinuxSLL: "LINUX_SLL", LinuxSLL2: "LINUX_SLL2", Raw: "RAW"}

// tcpdumpCompile runs `tcpdump -ddd -y LT -s SNAPLEN EXPR` (no device,
// no root) and parses its decimal program.
func tcpdumpCompile(tcpdump, expr string, lt LinkType, snaplen int, optimize bool) ([]bpf.RawInstruction, error) {
	args := []string{"-ddd", "-y", tcpdumpLinkTypes[lt]}
	if !optimize {
		args = append(args, "-O")
	}
	if snaplen > 0 {
		args = append(args, "-s", strconv.Itoa(snaplen))
	}
	args = append(args, "--", expr)
	out, err := exec.Command(tcpdump, args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("tcpdump: %s", strings.TrimSpace(string(out)))
	}
	return parseDDD(string(out))
}

func parseDDD(s string) ([]bpf.RawInstruction, error) {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	n, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || n != len(lines)-1 {
		return nil, fmt.Errorf("bad -ddd output %q", s)
	}
	prog := make([]bpf.RawInstruction, n)
	for i, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 4 {
			return nil, fmt.Errorf("bad -ddd line %q", l)
		}
		var v [4]uint64
		for j := range f {
			if v[j], err = strconv.ParseUint(f[j], 10, 32); err != nil {
				return nil, fmt.Errorf("bad -ddd line %q", l)
			}
		}
		prog[i] = bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])}
	}
	return prog, nil
}

// runner runs a program in golang.org/x/net/bpf's VM and, as a check on
// both, in runBPF; where the VM refuses the program (neg, ancillary loads)
// runBPF alone.
type runner struct {
	prog []bpf.RawInstruction
	vm   *bpf.VM
}

func newRunner(t testing.TB, prog []bpf.RawInstruction) *runner {
	t.Helper()
	ins, ok := bpf.Disassemble(prog)
	if !ok {
		t.Fatalf("program does not disassemble: %v", prog)
	}
	r := &runner{prog: prog}
	if !usesNeg(prog) && !usesAncillary(prog) {
		vm, err := bpf.NewVM(ins)
		if err != nil {
			t.Fatalf("VM refuses program: %v\n%s", err, dump(prog))
		}
		r.vm = vm
	}
	return r
}

func usesAncillary(prog []bpf.RawInstruction) bool {
	for _, in := range prog {
		if in.Op&0x07 == clsLD && in.Op&0xe0 == modeABS && in.K >= skfADOff {
			return true
		}
	}
	return false
}

func usesNeg(prog []bpf.RawInstruction) bool {
	for _, in := range prog {
		if in.Op == clsALU|aluNEG {
			return true
		}
	}
	return false
}

// vmRuns counts runs checked against the VM.
var vmRuns int

func (r *runner) run(t testing.TB, pkt []byte, m meta) int {
	t.Helper()
	got, err := runBPF(r.prog, pkt, m)
	if err != nil {
		t.Fatalf("runBPF: %v\n%s", err, dump(r.prog))
	}
	if r.vm != nil {
		want, err := r.vm.Run(pkt)
		if err != nil {
			t.Fatalf("VM: %v", err)
		}
		vmRuns++
		if uint32(want) != got {
			t.Fatalf("runBPF returns %d, the VM %d on % x\n%s", got, want, pkt, dump(r.prog))
		}
	}
	return int(got)
}

func dump(prog []bpf.RawInstruction) string {
	var b strings.Builder
	for i, in := range prog {
		fmt.Fprintf(&b, "(%03d) %-40v {0x%02x %d %d 0x%x}\n", i, in.Disassemble(), in.Op, in.Jt, in.Jf, in.K)
	}
	return b.String()
}

func readExprs(t testing.TB, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	return out
}

// TestOracleTcpdump: every expression of testdata/exprs.txt, for every link
// type, compiled by nsdebug and by tcpdump, must compile on both or fail on
// both, and give the same result (accept with the same snap length, or
// reject) on every packet of the generated corpus.
//
// On a packet a load can run past the end of (a truncated one, or a short
// one with a field tested beyond it), which ends a BPF program with
// "reject", libpcap's optimizer itself changes the outcome: it reorders and
// merges tests (`ether[20] = 1 or ether[40] = 2 or ether[20] = 3` tests
// both [20]s first), so the optimized and the unoptimized (tcpdump -O)
// programs of one expression disagree on such packets. There nsdebug's
// result must be that of one of the two (nsdebug's optimizer keeps what
// its unoptimized program decides, see TestOptimizerKeepsSemantics); on
// every other packet it must be exactly the optimized program's (what
// tcpdump attaches).
func TestOracleTcpdump(t *testing.T) {
	tcpdump := requireTcpdump(t)
	exprs := readExprs(t, "testdata/exprs.txt")
	if len(exprs) < 150 {
		t.Fatalf("corpus has %d expressions, want at least 150", len(exprs))
	}
	pkts := genCorpus()
	if len(pkts) < 300 {
		t.Fatalf("packet corpus has %d packets, want at least 300", len(pkts))
	}
	st := compareWithTcpdump(t, tcpdump, exprs, []LinkType{EN10MB, LinuxSLL, LinuxSLL2, Raw}, pkts)
	t.Logf("%d expressions x 4 link types: %d programs compared over %d (expression, packet) pairs, %d packets; %d runs checked against x/net/bpf's VM",
		len(exprs), st.compiled, st.pairs, len(pkts), vmRuns)
	t.Logf("pairs where nsdebug differs from tcpdump's optimized program and tcpdump's own unoptimized program does too (a load past the packet's end): %d; nsdebug agreed with the unoptimized one in %d of them",
		st.truncatedDisagree, st.truncatedAsUnopt)
	// An expression that accepts everything or nothing on every link type
	// proves little: the corpus must exercise both outcomes.
	var weak []string
	for _, e := range exprs {
		if st.compiles[e] && !st.discriminating[e] {
			weak = append(weak, e)
		}
	}
	if len(weak) > len(exprs)/20 {
		t.Errorf("%d expressions never both accept and reject a corpus packet: %q", len(weak), weak)
	} else if len(weak) > 0 {
		t.Logf("expressions with one outcome only: %q", weak)
	}
}

type oracleStats struct {
	pairs, compiled, truncatedDisagree, truncatedAsUnopt, rejectsAll int
	discriminating, compiles                                         map[string]bool
}

// compareWithTcpdump is the oracle comparison of TestOracleTcpdump.
func compareWithTcpdump(t *testing.T, tcpdump string, exprs []string, lts []LinkType, pkts []testPacket) oracleStats {
	t.Helper()
	const snaplen = 128 // shorter than some packets, so the snap length shows
	st := oracleStats{discriminating: map[string]bool{}, compiles: map[string]bool{}}
	for _, lt := range lts {
		for _, expr := range exprs {
			ref, refErr := tcpdumpCompile(tcpdump, expr, lt, snaplen, true)
			got, gotErr := Compile(expr, lt, snaplen)
			if refErr != nil && gotErr == nil && strings.Contains(refErr.Error(), "expression rejects all packets") {
				// libpcap's optimizer proved the filter never matches and
				// tcpdump refuses it; nsdebug does not (its optimizer proves
				// other things): its program must then decide as tcpdump's
				// unoptimized one, rejecting every packet too.
				if ref, refErr = tcpdumpCompile(tcpdump, expr, lt, snaplen, false); refErr != nil {
					t.Fatalf("%s %q: tcpdump -O: %v", lt, expr, refErr)
				}
				st.rejectsAll++
			}
			if (refErr == nil) != (gotErr == nil) {
				t.Errorf("%s %q: tcpdump: %v; nsdebug: %v", lt, expr, refErr, gotErr)
				continue
			}
			if refErr != nil {
				continue
			}
			st.compiled++
			st.compiles[expr] = true
			unopt, err := tcpdumpCompile(tcpdump, expr, lt, snaplen, false)
			if err != nil {
				t.Fatalf("%s %q: tcpdump -O fails where tcpdump does not: %v", lt, expr, err)
			}
			rvm, gvm, uvm := newRunner(t, ref), newRunner(t, got), newRunner(t, unopt)
			accepted, rejected := 0, 0
			for _, p := range pkts {
				data, ok := p.asLinkType(lt)
				if !ok {
					continue
				}
				st.pairs++
				m := meta{pktType: uint8(p.pkt)} // for inbound/outbound on EN10MB and RAW
				want := rvm.run(t, data, m)
				have := gvm.run(t, data, m)
				// Only where a load runs past the packet's end (a cut
				// packet, or a field beyond a short one) can libpcap's two
				// programs disagree.
				if have != want {
					if u := uvm.run(t, data, m); u != want {
						st.truncatedDisagree++
						if have == u {
							st.truncatedAsUnopt++
							continue
						}
					}
				}
				if want != have {
					t.Errorf("%s %q on %s (%d bytes): tcpdump's program returns %d, nsdebug's %d\ntcpdump:\n%snsdebug:\n%s",
						lt, expr, p.name, len(data), want, have, dump(ref), dump(got))
					break
				}
				if want > 0 {
					accepted++
				} else {
					rejected++
				}
			}
			if accepted > 0 && rejected > 0 {
				st.discriminating[expr] = true
			}
		}
	}
	return st
}

// TestOracleRandomCombinations: seeded random combinations of primitives
// with and/or/not/&&/||/! and parentheses (and the bare values that then
// inherit qualifiers), compared with tcpdump like the corpus.
func TestOracleRandomCombinations(t *testing.T) {
	tcpdump := requireTcpdump(t)
	atoms := []string{"ip", "ip6", "arp", "tcp", "udp", "icmp", "icmp6", "sctp", "vlan", "vlan 10",
		"host 10.0.0.1", "src host 1.1.1.1", "dst net 10.0.0.0/8", "net 2001:db8::/32", "port 80",
		"tcp port 443", "udp dst port 53", "portrange 20-25", "ether broadcast", "multicast",
		"ip multicast", "ether src 00:11:22:33:44:55", "less 80", "greater 100", "len > 60",
		"ip[9] = 17", "tcp[tcpflags] & tcp-syn != 0", "tcp[tcpflags] & (tcp-ack|tcp-fin) = tcp-ack",
		"icmp[icmptype] = icmp-echo", "ip[6:2] & 0x1fff != 0", "ether proto 0x0806", "ip proto 47",
		"ip6 proto 58", "src 2.2.2.2", "ether[0] & 1 = 0", "udp[2:2] > 1000", "ip[2:2] - 20 > 40"}
	values := []string{"10.1.2.3", "2.2.2.2", "443", "53", "fe80::1", "not 1.1.1.1"}
	r := rand.New(rand.NewPCG(7, 11))
	var gen func(depth int) string
	gen = func(depth int) string {
		if depth == 0 || r.IntN(3) == 0 {
			return pick(r, atoms)
		}
		l, rt := gen(depth-1), gen(depth-1)
		op := pick(r, []string{"and", "or", "&&", "||"})
		switch r.IntN(6) {
		case 0:
			return "not " + l + " " + op + " " + rt
		case 1:
			return "(" + l + ") " + op + " !(" + rt + ")"
		case 2:
			return l + " " + op + " " + pick(r, values) // inherits the last qualifiers, or is an error
		case 3:
			return "(" + l + " " + op + " " + rt + ")"
		}
		return l + " " + op + " " + rt
	}
	var exprs []string
	for i := 0; i < 150; i++ {
		exprs = append(exprs, gen(3))
	}
	st := compareWithTcpdump(t, tcpdump, exprs, []LinkType{EN10MB, LinuxSLL2}, genCorpus())
	if st.compiled < 150 {
		t.Errorf("only %d of %d programs compiled: the generator makes too many errors", st.compiled, 2*len(exprs))
	}
	t.Logf("%d random expressions x 2 link types: %d programs over %d pairs; %d that tcpdump refuses as rejecting every packet compared with tcpdump -O",
		len(exprs), st.compiled, st.pairs, st.rejectsAll)
}
