package enter

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/internal/procfs"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

// A link whose bind mount fails changes nothing: no placeholder is left, and
// the directory is neither left as a new mount point nor left created.
func TestLinkFailureChangesNothing(t *testing.T) {
	testbed.RequireRoot(t)
	ns, err := nsfs.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	testHookBind = func() error { return unix.EIO }
	defer func() { testHookBind = nil }()

	parent := t.TempDir()
	for _, existed := range []bool{false, true} {
		dir := filepath.Join(parent, "netns")
		if existed {
			os.Mkdir(dir, 0o755)
		}
		mountsBefore := mountsUnder(t, parent)
		_, err := Link(ns, LinkOptions{Name: "x", Dir: dir})
		if !errors.Is(err, unix.EIO) || strings.Contains(err.Error(), "\n") {
			t.Errorf("existed=%v: Link = %v, want the mount error", existed, err)
		}
		if _, err := os.Stat(dir); existed != (err == nil) {
			t.Errorf("existed=%v: after the failure %s: %v", existed, dir, err)
		}
		if _, err := os.Lstat(filepath.Join(dir, "x")); !os.IsNotExist(err) {
			t.Errorf("existed=%v: placeholder left behind (%v)", existed, err)
		}
		if after := mountsUnder(t, parent); after != mountsBefore {
			t.Errorf("existed=%v: mounts changed: %q -> %q", existed, mountsBefore, after)
		}
	}
}

func mountsUnder(t *testing.T, dir string) string {
	t.Helper()
	ms, err := procfs.ReadMountInfo("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, m := range ms {
		if strings.HasPrefix(m.MountPoint, dir) {
			s = append(s, m.MountPoint)
		}
	}
	return strings.Join(s, " ")
}
