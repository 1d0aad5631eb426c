// Package reliability is nsdebug's adversarial suite (issue 6): it drives the
// built binary against the real test bed and proves that nothing on the host
// is changed or left behind. TestMain snapshots the host before the suite
// and compares after it (case 16): every mount, /var/run/netns, processes
// nsdebug ran or started, all of /proc/sys/net.
package reliability

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

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
		if out, err := exec.Command("go", "build", "-tags", "grpcnotrace", "-o", bin, "../../cmd/nsdebug").CombinedOutput(); err != nil { // -tags: the Makefile's TAGS
			fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	before := snapshotHost()
	code := m.Run()
	// Runtimes finish some removals asynchronously (a shim's mounts, a
	// sandbox's netns): what is still different after a few seconds stays.
	diff := before.diff(snapshotHost())
	for try := 0; diff != "" && try < 10; try++ {
		time.Sleep(300 * time.Millisecond)
		diff = before.diff(snapshotHost())
	}
	if diff != "" {
		fmt.Fprintf(os.Stderr, "FAIL: the suite changed the host (case 16):\n%s", diff)
		code = 1
	}
	os.Exit(code)
}

// hostState is what no nsdebug command may change or leave behind.
type hostState struct {
	// every mount of the host's mount namespace, "MOUNTPOINT FSTYPE SOURCE
	// ROOT", counted (the same mount can be stacked)
	mounts map[string]int
	// /var/run/netns entries
	netns map[string]int
	// processes an nsdebug run left: nsdebug itself (its binary as exe) and
	// anything exec or shell started (NSDEBUG_TARGET in its environment),
	// wherever they were re-parented; keyed "PID START-TIME", valued by a
	// description
	procs map[string]string
	// all of /proc/sys/net in the host netns
	sysctls map[string]string
}

func snapshotHost() hostState {
	s := hostState{mounts: map[string]int{}, netns: map[string]int{}, procs: map[string]string{}, sysctls: map[string]string{}}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			pre, post, ok := strings.Cut(line, " - ")
			f, pf := strings.Fields(pre), strings.Fields(post)
			if !ok || len(f) < 5 || len(pf) < 2 {
				continue
			}
			s.mounts[f[4]+" "+pf[0]+" "+pf[1]+" "+f[3]]++
		}
	}
	if es, err := os.ReadDir("/var/run/netns"); err == nil {
		for _, e := range es {
			s.netns[e.Name()]++
		}
	}
	s.procs = nsdebugProcesses()
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

// nsdebugProcesses scans all of /proc for processes that nsdebug runs or
// started: its own binary, or NSDEBUG_TARGET in the environment (exec and
// shell put it there; children of the command inherit it).
func nsdebugProcesses() map[string]string {
	out := map[string]string{}
	self := os.Getpid()
	binInfo, _ := os.Stat(bin)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		dir := "/proc/" + e.Name()
		why := ""
		if env, err := os.ReadFile(dir + "/environ"); err == nil {
			for _, kv := range strings.Split(string(env), "\x00") {
				if strings.HasPrefix(kv, "NSDEBUG_TARGET=") {
					why = kv
					break
				}
			}
		}
		if exe, err := os.Stat(dir + "/exe"); err == nil && binInfo != nil && os.SameFile(exe, binInfo) {
			why = "nsdebug"
		}
		if why == "" {
			continue
		}
		stat, err := os.ReadFile(dir + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// "PID (comm) state ppid ... starttime(22) ...": comm may hold spaces.
		i := strings.LastIndexByte(string(stat), ')')
		f := strings.Fields(string(stat[i+1:]))
		start := ""
		if len(f) > 19 {
			start = f[19]
		}
		cmdline, _ := os.ReadFile(dir + "/cmdline")
		out[e.Name()+" "+start] = fmt.Sprintf("PID %d %q (%s)", pid, strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")), why)
	}
	return out
}

func (a hostState) diff(b hostState) string {
	var out []string
	for _, c := range []struct {
		what   string
		before map[string]int
		after  map[string]int
	}{{"mount", a.mounts, b.mounts}, {"/var/run/netns entry", a.netns, b.netns}} {
		for k, n := range c.after {
			if n > c.before[k] {
				out = append(out, fmt.Sprintf("new %s: %s", c.what, k))
			}
		}
		for k, n := range c.before {
			if n > c.after[k] {
				out = append(out, fmt.Sprintf("removed %s: %s", c.what, k))
			}
		}
	}
	for k, v := range b.procs {
		if _, ok := a.procs[k]; !ok {
			out = append(out, "leftover process: "+v)
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
