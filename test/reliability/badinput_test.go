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
// code, and changes nothing, through every command that takes a target
// (TestMain checks the host as a whole afterwards).
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
		badTargetEverywhere(t, c.target, c.code)
	}
	// NUL cannot pass through exec's argv; the parser's own test covers it.
}

// badTargetEverywhere runs every command that takes a TARGET on target,
// which must fail before anything is entered or changed: resolve, exec,
// link, sysctl (a write) and inspect each give one line on stderr and
// code (125 for exec, which must run nothing), write nothing to stdout,
// create no /var/run/netns entry, start no process and leave the host's
// sysctl as it was.
func badTargetEverywhere(t *testing.T, target string, code int) {
	t.Helper()
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	linkName := testbed.UniqueName("rel-bad")
	somaxconn := "/proc/sys/net/core/somaxconn"
	hostBefore, err := os.ReadFile(somaxconn)
	if err != nil {
		t.Fatal(err)
	}
	value := strings.TrimSpace(string(hostBefore)) + "1"
	for _, c := range []struct {
		name string
		args []string
		code int
	}{
		{"resolve", []string{"resolve", target}, code},
		{"exec", []string{"exec", target, "--", "touch", marker}, 125},
		{"link", []string{"link", target, linkName}, code},
		{"sysctl", []string{"sysctl", target, "net.core.somaxconn=" + value}, code},
		{"inspect", []string{"inspect", target}, code},
	} {
		what := c.name + " " + printable(target)
		r := nsdebug(t, c.args...)
		r.oneLine(t, what, c.code)
		if r.stdout != "" {
			t.Errorf("%s: wrote to stdout %q", what, r.stdout)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Errorf("%s: the command ran", what)
			os.Remove(marker)
		}
		if _, err := os.Lstat("/var/run/netns/" + linkName); err == nil {
			t.Errorf("%s: created /var/run/netns/%s", what, linkName)
			testbed.Run(bin, "unlink", linkName)
		}
		if now, _ := os.ReadFile(somaxconn); string(now) != string(hostBefore) {
			t.Errorf("%s: the host's net.core.somaxconn changed from %q to %q", what, hostBefore, now)
			os.WriteFile(somaxconn, hostBefore, 0o644)
		}
	}
	for _, desc := range nsdebugProcesses() {
		if strings.Contains(desc, dir) || strings.Contains(desc, linkName) {
			t.Errorf("%s: left a process: %s", printable(target), desc)
		}
	}
}

func printable(s string) string {
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return strings.NewReplacer("\n", `\n`, "\x01", `\x01`).Replace(s)
}
