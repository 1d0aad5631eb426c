package filter

import "golang.org/x/net/bpf"

func compile(expr string, lt LinkType, snaplen int) ([]bpf.RawInstruction, error) {
	return nil, &SyntaxError{Pos: 0, Msg: "filter compiler not built yet"}
}

func compileForSocket(expr string, lt LinkType, cooked bool, snaplen int) ([]bpf.RawInstruction, error) {
	return nil, &SyntaxError{Pos: 0, Msg: "filter compiler not built yet"}
}
