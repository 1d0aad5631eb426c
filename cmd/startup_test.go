package cmd

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// maxOwnInitBytes bounds what each of nsdebug's own packages allocates at
// package init. Init runs before every command, even version: work that
// only one command needs (a capture filter's regexps, unlink --stale's)
// belongs to that command, compiled on first use (issue 13). One compiled
// regexp of the filter lexer's size already passes this bound.
const maxOwnInitBytes = 16 << 10

// TestStartupInitIsLight reads the runtime's own init trace of the real
// binary (allocations are exact, unlike times): no package of nsdebug's
// does more than maxOwnInitBytes of work at init.
func TestStartupInitIsLight(t *testing.T) {
	bin := nsdebugBinary(t)
	cmd := exec.Command(bin, "version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s version: %v\n%s", bin, err, stderr.Bytes())
	}
	seen := 0
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		// init github.com/nsdebug/nsdebug/enter @10 ms, 0.055 ms clock, 5392 bytes, 8 allocs
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[0] != "init" || !strings.HasPrefix(f[1], "github.com/nsdebug/nsdebug/") || f[8] != "bytes," {
			continue
		}
		seen++
		n, err := strconv.Atoi(f[7])
		if err != nil {
			t.Fatalf("init trace line %q: %v", sc.Text(), err)
		}
		if n > maxOwnInitBytes {
			t.Errorf("package %s allocates %d bytes at init (bound %d): move what only some commands need to first use", f[1], n, maxOwnInitBytes)
		}
	}
	if seen < 3 {
		t.Fatalf("init trace names %d of nsdebug's packages; want the trace of every one:\n%s", seen, stderr.String())
	}
}
