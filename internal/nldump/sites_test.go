package nldump

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dumpCalls are the netlink calls that dump a table: each may come back
// interrupted (NLM_F_DUMP_INTR) and must be redone through Retry.
var dumpCalls = map[string]bool{
	"LinkList": true, "AddrList": true, "RouteList": true, "RouteListFiltered": true,
	"RuleList": true, "RuleListFiltered": true, "NeighList": true, "NeighListExecute": true,
	"SocketDiagTCP": true, "SocketDiagUDP": true, "SocketDiagTCPInfo": true, "SocketDiagUDPInfo": true,
	"dump": true, // dumpSocket.dump
}

// productDirs are the packages whose source TestEveryDumpIsRetried reads
// (test fixtures in internal/testbed and test/ make their own dumps).
var productDirs = []string{"cmd", "enter", "inspect", "resolver", "internal/nsfs", "internal/procfs", "sysctl", "internal/hostcheck"}

// TestEveryDumpIsRetried reads nsdebug's source: every dump call (the
// library's list calls, inspect's dumpSocket.dump, and any request built
// with NLM_F_DUMP) sits inside an argument of Retry, so no path can return
// the half-filled answer of an interrupted dump.
func TestEveryDumpIsRetried(t *testing.T) {
	var files []string
	for _, d := range productDirs {
		fs, err := filepath.Glob(filepath.Join("..", "..", d, "*.go"))
		if err != nil || len(fs) == 0 {
			t.Fatalf("no Go files in %s: %v", d, err)
		}
		files = append(files, fs...)
	}
	fset := token.NewFileSet()
	sites := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		file, err := parser.ParseFile(fset, f, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		var stack []ast.Node
		ast.Inspect(file, func(n ast.Node) bool {
			if n == nil {
				stack = stack[:len(stack)-1]
				return false
			}
			stack = append(stack, n)
			if isDumpSite(n) {
				sites++
				if !insideRetryDump(stack) {
					t.Errorf("%s: netlink dump outside nldump.Retry", fset.Position(n.Pos()))
				}
			}
			return true
		})
	}
	// nsdebug makes over a dozen dumps; finding few means this test no
	// longer recognises them.
	if sites < 12 {
		t.Errorf("found %d dump sites, expected at least 10: does the test still recognise them?", sites)
	}
}

func isDumpSite(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.SelectorExpr:
		return dumpCalls[n.Sel.Name]
	case *ast.CallExpr:
		sel, ok := n.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "NewNetlinkRequest" || len(n.Args) < 2 {
			return false
		}
		flags := false
		ast.Inspect(n.Args[1], func(m ast.Node) bool {
			if s, ok := m.(*ast.SelectorExpr); ok && s.Sel.Name == "NLM_F_DUMP" {
				flags = true
			}
			return true
		})
		return flags
	}
	return false
}

// insideRetryDump reports whether the innermost node of stack lies in an
// argument of a call to Retry (nldump.Retry).
func insideRetryDump(stack []ast.Node) bool {
	for i := len(stack) - 2; i >= 0; i-- {
		call, ok := stack[i].(*ast.CallExpr)
		if !ok {
			continue
		}
		fun := call.Fun
		if ix, ok := fun.(*ast.IndexExpr); ok {
			fun = ix.X
		}
		if sel, ok := fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Retry" && isIdent(sel.X, "nldump") {
			for _, a := range call.Args {
				if a == stack[i+1] {
					return true
				}
			}
		}
	}
	return false
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}
