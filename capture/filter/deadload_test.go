package filter

import (
	"testing"

	"golang.org/x/net/bpf"
)

// deadLoads drops a load the next one overwrites only where that cannot
// turn a rejected packet into an accepted one: a short packet that the
// dropped load would have run past the end of must make the next load run
// past it too. The generated code rarely has the unsafe shapes, so they are
// built here.
func TestDeadLoads(t *testing.T) {
	ret := ri(clsRET, 1)
	for _, c := range []struct {
		name string
		in   []bpf.RawInstruction
		drop bool
	}{
		{"ldh [12] then ld [30]", []bpf.RawInstruction{ldAbs(2, 12), ldAbs(4, 30), ret}, true},
		{"ld [30] then ldh [12]: [30] rejects a 20-byte packet", []bpf.RawInstruction{ldAbs(4, 30), ldAbs(2, 12), ret}, false},
		{"ld [12] then ldh [14]: same end", []bpf.RawInstruction{ldAbs(4, 12), ldAbs(2, 14), ret}, true},
		{"ld #0 then ldb [0]", []bpf.RawInstruction{ldImm(0), ldAbs(1, 0), ret}, true},
		{"ld M[1] then ld len", []bpf.RawInstruction{ldMem(1), ri(clsLD|modeLEN, 0), ret}, true},
		{"ancillary then ldb [0]", []bpf.RawInstruction{ldAbs(2, skfADOff+skfADProtocol), ldAbs(1, 0), ret}, true},
		{"ldh [12] then ancillary", []bpf.RawInstruction{ldAbs(2, 12), ldAbs(2, skfADOff+skfADProtocol), ret}, false},
		{"ldb [x+40] then ld [0]", []bpf.RawInstruction{ldInd(1, 40), ldAbs(4, 0), ret}, false},
		{"ldh [12] then tax (reads A)", []bpf.RawInstruction{ldAbs(2, 12), ri(clsMISC, 0), ret}, false},
	} {
		items := make([]item, len(c.in))
		for i, in := range c.in {
			items[i] = item{ins: in}
		}
		out, changed := deadLoads(items)
		if changed != c.drop || len(out) != len(c.in)-map[bool]int{true: 1}[c.drop] {
			t.Errorf("%s: changed %v, %d instructions left, want drop %v", c.name, changed, len(out), c.drop)
			continue
		}
		if c.drop && out[0].ins != c.in[1] {
			t.Errorf("%s: kept %v, want %v", c.name, out[0].ins, c.in[1])
		}
	}
}
