package resolver

import (
	"os"
	"path/filepath"
	"testing"
)

func TestInRoot(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"run/netns", "var", "etc/real"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"var/run": "/run", "etc/rel": "real", "etc/up": "../run"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	for in, want := range map[string]string{
		"/var/run/netns/cni-1": "/run/netns/cni-1",
		"/etc/rel/resolv.conf": "/etc/real/resolv.conf",
		"/etc/up/netns":        "/run/netns",
		"/no/such/file":        "/no/such/file",
	} {
		if got := InRoot(root, in); got != filepath.Join(root, want) {
			t.Errorf("%s: %s, want %s", in, got, filepath.Join(root, want))
		}
	}
}
