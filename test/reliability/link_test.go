package reliability

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// Case 9: bad link names: one line on stderr, exit 2, nothing created
// (TestMain checks the host as a whole afterwards).
func TestLinkCase09_BadNames(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "rel-link"})
	names := []string{"", ".", "..", "a/b", "../x", strings.Repeat("n", 256), "a\nb", "tab\tx"}
	for _, n := range names {
		for _, args := range [][]string{{"link", c.Name, n}, {"link", "--force", c.Name, n}, {"unlink", n}, {"unlink", "--dry-run", n}} {
			r := nsdebug(t, args...)
			r.oneLine(t, strings.Join(args[:len(args)-1], " ")+" "+printable(n), 2)
			if r.stdout != "" {
				t.Errorf("%s %s: wrote to stdout %q", args[0], printable(n), r.stdout)
			}
		}
	}
	// Nothing may appear where a bad name would have pointed.
	for _, p := range []string{"/var/run/netns/a", "/var/run/netns/x", "/var/run/x", "/var/run/netns/a\nb", "/var/run/netns/tab\tx"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%q exists after refused commands", p)
		}
	}
	// A link that is refused for its name in use changes nothing either.
	other := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "rel-link-other"})
	name := testbed.UniqueName("rel-link")
	path := "/var/run/netns/" + name
	if r := nsdebug(t, "link", c.Name, name); r.code != 0 {
		t.Fatalf("link: %+v", r)
	}
	defer nsdebug(t, "unlink", name)
	ino := inode(t, path)
	nsdebug(t, "link", other.Name, name).oneLine(t, "link of another netns under a used name", 9)
	if inode(t, path) != ino {
		t.Errorf("refused link replaced %s", path)
	}
	if r := nsdebug(t, "unlink", name); r.code != 0 {
		t.Errorf("unlink: %+v", r)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// case15Script runs in a private mount namespace (unshare --mount
// --propagation private) over a fresh tmpfs on /run for each scenario, so
// the host's /run/netns (and the test bed's cni-* mounts in it) is never
// re-mounted: doing that on the host is exactly the trap under test. Each
// scenario prints "X rc=N", "X stderr: ..." lines and facts to check.
const case15Script = `
set -u
B=$1
fresh() { mount -t tmpfs nsdebug-case15 /run || exit 90; }
fresh
unshare --net sleep 600 & P=$!
unshare --net sleep 600 & Q=$!
trap 'kill $P $Q' EXIT
while [ "$(stat -L -c %i /proc/$P/ns/net)" = "$(stat -L -c %i /proc/self/ns/net)" ]; do sleep 0.05; done
while [ "$(stat -L -c %i /proc/$Q/ns/net)" = "$(stat -L -c %i /proc/self/ns/net)" ]; do sleep 0.05; done
nsd() { tag=$1; shift; out=$("$B" "$@" 2>/tmp/case15.err.$$); rc=$?; echo "$tag rc=$rc"; sed "s/^/$tag stderr: /" /tmp/case15.err.$$; rm -f /tmp/case15.err.$$; }
mi() { grep " /run/netns " /proc/self/mountinfo | tail -1 | sed "s/^/$1 mountinfo: /"; }

# A: no /run/netns at all: created, bound onto itself, made shared.
nsd A link pid:$P a
ip netns exec a true && echo "A exec ok"
mi A

# B: a directory (not a mount point) already holding a runtime's netns mount.
fresh
mkdir /run/netns && touch /run/netns/old && mount --bind /proc/$Q/ns/net /run/netns/old
nsd B link pid:$P b
ip netns exec b true && echo "B exec ok"
ip netns exec old true && echo "B old still visible"

# C: /run/netns bound onto itself over "old" (the trap): old is hidden.
fresh
mkdir /run/netns && touch /run/netns/old && mount --bind /proc/$Q/ns/net /run/netns/old
mount --bind /run/netns /run/netns
nsd C link pid:$P c
ip netns exec c true && echo "C exec ok"
nsd C1 unlink old
nsd C2 link pid:$P old
nsd C3 unlink c
[ -e /run/netns/c ] || echo "C c removed"

# D: a private mount point: made shared.
fresh
mkdir /run/netns && mount -t tmpfs nsdebug-priv /run/netns && mount --make-private /run/netns
nsd D link pid:$P d
mi D

# E: a read-only /run/netns: says why, creates nothing.
fresh
mkdir /run/netns && mount -t tmpfs -o ro nsdebug-ro /run/netns
nsd E link pid:$P e
echo "E entries: $(ls -A /run/netns | wc -l)"
`

// Case 15: /run/netns not a shared mount, or mounted over an earlier one:
// link works or says exactly why not.
func TestLinkCase15_RunNetnsNotSharedOrOvermounted(t *testing.T) {
	testbed.RequireRoot(t)
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", case15Script, "sh", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("case 15 script: %v\n%s", err, out)
	}
	o := string(out)
	t.Logf("\n%s", o)
	want := []string{
		"A rc=0", "A exec ok",
		"B rc=0", "B exec ok", "B old still visible",
		"C rc=0", "C exec ok", "C3 rc=0", "C c removed",
		"C1 rc=9", "C2 rc=9",
		"D rc=0",
		"E rc=1", "E entries: 0",
	}
	for _, w := range want {
		if !strings.Contains(o, w+"\n") {
			t.Errorf("missing %q", w)
		}
	}
	for _, re := range []string{
		`A mountinfo: \S+ \S+ \S+ /netns /run/netns .*shared:\d+ - tmpfs nsdebug-case15`,
		`B stderr: nsdebug: warning: /var/run/netns is not a mount point and already holds 1 netns mount\(s\) \(old\); nsdebug does not bind-mount it onto itself`,
		`C stderr: nsdebug: warning: .*hidden under a later mount of /var/run/netns .*old=net:\[\d+\]`,
		`C1 stderr: nsdebug: cannot unlink /var/run/netns/old: its netns mount \(net:\[\d+\]\) is hidden under a later mount`,
		`C2 stderr: nsdebug: /var/run/netns/old is a mount point of net:\[\d+\] hidden under a later mount`,
		`D mountinfo: .* / /run/netns .*shared:\d+ - tmpfs nsdebug-priv`,
		`E stderr: nsdebug: create /var/run/netns/e: EROFS \(Read-only file system\)\n`,
	} {
		if !regexp.MustCompile(re).MatchString(o) {
			t.Errorf("output does not match %s", re)
		}
	}
	// Every failing command said one line.
	for _, tag := range []string{"C1", "C2", "E"} {
		if n := strings.Count(o, tag+" stderr: "); n != 1 {
			t.Errorf("%s: %d stderr lines", tag, n)
		}
	}
}

// Concurrent link and unlink processes (iproute2's flock on /var/run/netns):
// one mount, no placeholder left, every call succeeds or says why.
func TestLinkConcurrentProcesses(t *testing.T) {
	testbed.Require(t)
	c := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "rel-link-conc"})
	name := testbed.UniqueName("rel-conc")
	path := filepath.Join("/var/run/netns", name)
	var wg sync.WaitGroup
	results := make([]result, 12)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = nsdebug(t, "link", c.Name, name)
		}(i)
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("link #%d: %+v", i, r)
		}
	}
	if n := countMounts(t, path); n != 1 {
		t.Errorf("%d mounts at %s after concurrent links, want 1", n, path)
	}
	unlinked := 0
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = nsdebug(t, "unlink", name)
		}(i)
	}
	wg.Wait()
	for i, r := range results {
		switch r.code {
		case 0:
			unlinked++
		case 3:
			r.oneLine(t, "unlink #"+strconv.Itoa(i)+" of a name just removed", 3)
		default:
			t.Errorf("unlink #%d: %+v", i, r)
		}
	}
	if unlinked != 1 {
		t.Errorf("%d unlinks succeeded, want exactly 1", unlinked)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) || countMounts(t, path) != 0 {
		t.Errorf("%s left behind", path)
	}
}

func countMounts(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	real := strings.Replace(path, "/var/run/", "/run/", 1)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == real {
			n++
		}
	}
	return n
}
