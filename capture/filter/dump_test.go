package filter

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/net/bpf"
)

func TestDumpExpr(t *testing.T) {
	e := os.Getenv("FILTER_EXPR")
	if e == "" {
		t.Skip("FILTER_EXPR not set")
	}
	p, err := Compile(e, EN10MB, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range p {
		fmt.Printf("(%03d) %v\n", i, in.Disassemble())
	}
	_ = bpf.RawInstruction{}
}
