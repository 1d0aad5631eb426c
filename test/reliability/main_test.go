// Package reliability is nsdebug's adversarial suite (issue 6): it drives the
// built binary against the real test bed and proves that nothing on the host
// is changed or left behind. TestMain snapshots the host before the suite
// and compares after it (case 16).
package reliability

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

var bin string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		if testbed.InCI() {
			fmt.Fprintln(os.Stderr, "reliability: the suite needs root and the test bed (CI=true)")
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "reliability: skipped: needs root and the test bed (sudo make testbed test)")
		os.Exit(0)
	}
	bin = os.Getenv("NSDEBUG_BIN")
	if bin == "" {
		dir, err := os.MkdirTemp("", "nsdebug-rel")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "nsdebug")
		if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/nsdebug").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	before := snapshotHost()
	code := m.Run()
	if diff := before.diff(snapshotHost()); diff != "" {
		fmt.Fprintf(os.Stderr, "FAIL: the suite changed the host (case 16):\n%s", diff)
		code = 1
	}
	os.Exit(code)
}

// hostState is what no nsdebug command may change or leave behind.
type hostState struct {
	mounts   map[string]bool   // nsfs and sysfs mount points
	netns    map[string]bool   // /var/run/netns entries
	children map[string]bool   // processes whose parent is this test process
	sysctls  map[string]string // all of /proc/sys/net in the host netns
}

func snapshotHost() hostState {
	s := hostState{mounts: map[string]bool{}, netns: map[string]bool{}, children: map[string]bool{}, sysctls: map[string]string{}}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			i := strings.Index(line, " - ")
			if i < 0 {
				continue
			}
			f := strings.Fields(line[:i])
			post := strings.Fields(line[i+3:])
			if len(f) > 4 && len(post) > 0 && (post[0] == "nsfs" || post[0] == "sysfs") {
				s.mounts[post[0]+" "+f[4]] = true
			}
		}
	}
	if es, err := os.ReadDir("/var/run/netns"); err == nil {
		for _, e := range es {
			s.netns[e.Name()] = true
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/children", os.Getpid())); err == nil {
		for _, p := range strings.Fields(string(b)) {
			s.children[p] = true
		}
	}
	filepath.WalkDir("/proc/sys/net", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		// Counters and per-interface entries of interfaces that tests
		// create and remove are not state nsdebug could have changed.
		if strings.Contains(p, "/conf/veth") || strings.Contains(p, "/neigh/veth") || strings.Contains(p, "/conf/br-") || strings.Contains(p, "/neigh/br-") ||
			strings.HasSuffix(p, "nf_conntrack_count") || strings.Contains(p, "/netfilter/nf_log") {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil {
			s.sysctls[p] = string(b)
		}
		return nil
	})
	return s
}

func (a hostState) diff(b hostState) string {
	var out []string
	for _, c := range []struct {
		what   string
		before map[string]bool
		after  map[string]bool
	}{{"mount", a.mounts, b.mounts}, {"/var/run/netns entry", a.netns, b.netns}, {"child process", a.children, b.children}} {
		for k := range c.after {
			if !c.before[k] {
				out = append(out, "new "+c.what+": "+k)
			}
		}
	}
	for k, v := range a.sysctls {
		if w, ok := b.sysctls[k]; ok && w != v {
			out = append(out, fmt.Sprintf("sysctl %s changed: %q -> %q", k, strings.TrimSpace(v), strings.TrimSpace(w)))
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return ""
	}
	return strings.Join(out, "\n") + "\n"
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

func nsdebug(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{o.String(), e.String(), code}
}

// oneLine fails t unless r failed with exactly one "nsdebug: " line on stderr.
func (r result) oneLine(t *testing.T, what string, code int) {
	t.Helper()
	if r.code != code {
		t.Errorf("%s: exit %d, want %d (stderr %q)", what, r.code, code, r.stderr)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "nsdebug: ") {
		t.Errorf("%s: stderr is not one line: %q", what, r.stderr)
	}
}
