package internal_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/nsdebug/nsdebug/"

// TestInternalIsHelpersOnly keeps internal/ to helpers: a package that
// builds on a capability (enter/, which switches namespaces, or any other
// top-level package) is a capability itself and belongs at the top level,
// as sysctl/ does. Tests may use what they like, and so may the build-time
// programs under internal/tools (the man page writer reads cmd's tree).
func TestInternalIsHelpersOnly(t *testing.T) {
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || path == "tools") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		files++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, module) && !strings.HasPrefix(p, module+"internal/") {
				t.Errorf("internal/%s imports %s: a package built on a top-level package is a capability; move it out of internal/", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 10 {
		t.Fatalf("read only %d files under internal/: the walk is broken", files)
	}
}
