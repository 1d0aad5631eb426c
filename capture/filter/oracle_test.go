package filter

import (
	"bufio"
	"fmt"
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
	if !usesNeg(prog) {
		vm, err := bpf.NewVM(ins)
		if err != nil {
			t.Fatalf("VM refuses program: %v\n%s", err, dump(prog))
		}
		r.vm = vm
	}
	return r
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
// On a truncated packet (one a load can run past the end of, which ends a
// BPF program with "reject") libpcap's optimizer itself changes the
// outcome: it reorders and merges tests, so the optimized and the
// unoptimized (tcpdump -O) programs of one expression disagree on such
// packets. There nsdebug's result must be that of one of the two; on every
// complete packet it must be exactly the optimized program's (what tcpdump
// attaches).
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
	const snaplen = 128 // shorter than some packets, so the snap length shows
	var pairs, compiled, truncatedDisagree, truncatedAsUnopt int
	discriminating := map[string]bool{}
	compiles := map[string]bool{}
	for _, lt := range []LinkType{EN10MB, LinuxSLL, LinuxSLL2, Raw} {
		for _, expr := range exprs {
			ref, refErr := tcpdumpCompile(tcpdump, expr, lt, snaplen, true)
			got, gotErr := Compile(expr, lt, snaplen)
			if (refErr == nil) != (gotErr == nil) {
				t.Errorf("%s %q: tcpdump: %v; nsdebug: %v", lt, expr, refErr, gotErr)
				continue
			}
			if refErr != nil {
				continue
			}
			compiled++
			compiles[expr] = true
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
				pairs++
				want := rvm.run(t, data, meta{})
				have := gvm.run(t, data, meta{})
				if strings.HasPrefix(p.name, "cut") {
					u := uvm.run(t, data, meta{})
					if u != want {
						truncatedDisagree++
						if have == u {
							truncatedAsUnopt++
						}
					}
					if have == want || have == u {
						continue
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
				discriminating[expr] = true
			}
		}
	}
	t.Logf("%d expressions x 4 link types: %d programs compared over %d (expression, packet) pairs, %d packets; %d runs checked against x/net/bpf's VM",
		len(exprs), compiled, pairs, len(pkts), vmRuns)
	t.Logf("truncated packets where tcpdump's optimized and unoptimized programs disagree: %d pairs; nsdebug agreed with the unoptimized one in %d of them, with the optimized one in the rest",
		truncatedDisagree, truncatedAsUnopt)
	// An expression that accepts everything or nothing on every link type
	// proves little: the corpus must exercise both outcomes.
	var weak []string
	for _, e := range exprs {
		if compiles[e] && !discriminating[e] {
			weak = append(weak, e)
		}
	}
	if len(weak) > len(exprs)/20 {
		t.Errorf("%d expressions never both accept and reject a corpus packet: %q", len(weak), weak)
	} else if len(weak) > 0 {
		t.Logf("expressions with one outcome only: %q", weak)
	}
}
