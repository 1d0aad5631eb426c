package reliability

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// Case 8: every bad target gives one line on stderr, its documented exit
// code, and changes nothing (TestMain checks the host afterwards).
func TestCase08_BadTargets(t *testing.T) {
	testbed.Require(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), dangling); err != nil {
		t.Fatal(err)
	}
	// Two containers whose IDs share a first hex digit make an ambiguous prefix.
	byFirst := map[byte]string{}
	ambiguous := ""
	for i := 0; i < 17 && ambiguous == ""; i++ {
		c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "rel-amb"})
		if _, ok := byFirst[c.ID[0]]; ok {
			ambiguous = c.ID[:1]
		}
		byFirst[c.ID[0]] = c.ID
	}

	cases := []struct {
		target string
		code   int
	}{
		{"", 2},
		{"docker:", 2},
		{"containerd:", 2},
		{"pod:", 2},
		{"nsdebug-no-such-thing", 3},
		{"docker:nsdebug-no-such-thing", 3},
		{"pod:nsdebug/no-such-pod", 3},
		{"containerd:nsdebug-test/no-such", 3},
		{"docker:" + ambiguous, 4},
		{strings.Repeat("a", 10*1024), 2},
		{"we\x01b", 2},
		{"web\nx", 2},
		{"pid:-1", 2},
		{"pid:0", 2},
		{"pid:99999999", 2},
		{"pid:4194000", 3},
		{"netns:../etc", 2},
		{"/etc/passwd", 6},
		{"/proc/self/status", 6},
		{dir, 6},
		{fifo, 6},
		{dangling, 3},
	}
	for _, c := range cases {
		for _, cmd := range []string{"resolve"} {
			r := nsdebug(t, cmd, c.target)
			r.oneLine(t, cmd+" "+printable(c.target), c.code)
			if r.stdout != "" {
				t.Errorf("%s %s: wrote to stdout %q", cmd, printable(c.target), r.stdout)
			}
		}
	}
	// NUL cannot pass through exec's argv; the parser's own test covers it.
}

func printable(s string) string {
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return strings.NewReplacer("\n", `\n`, "\x01", `\x01`).Replace(s)
}
