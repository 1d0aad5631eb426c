package resolver

import (
	"errors"
	"strings"
	"testing"

	"github.com/nsdebug/nsdebug/internal/nserr"
)

func TestParseTarget(t *testing.T) {
	ok := []struct {
		in   string
		want Target
	}{
		{"web", Target{Kind: KindAuto, Name: "web"}},
		{"3f2a1b", Target{Kind: KindAuto, Name: "3f2a1b"}},
		{"docker:web", Target{Kind: KindDocker, Name: "web"}},
		{"docker:3f2a", Target{Kind: KindDocker, Name: "3f2a"}},
		{"containerd:abc", Target{Kind: KindContainerd, Name: "abc"}},
		{"containerd:k8s.io/abc", Target{Kind: KindContainerd, Namespace: "k8s.io", Name: "abc"}},
		{"pod:cart", Target{Kind: KindPod, Namespace: "default", Name: "cart"}},
		{"pod:shop/cart-7d9f", Target{Kind: KindPod, Namespace: "shop", Name: "cart-7d9f"}},
		{"pod:shop/cart/app", Target{Kind: KindPod, Namespace: "shop", Name: "cart", Container: "app"}},
		{"pid:42", Target{Kind: KindPID, PID: 42}},
		{"42", Target{Kind: KindPID, PID: 42}},
		{"4194304", Target{Kind: KindPID, PID: 4194304}},
		{"netns:cni-1234", Target{Kind: KindNetns, Name: "cni-1234"}},
		{"/var/run/docker/netns/abc", Target{Kind: KindPath, Path: "/var/run/docker/netns/abc"}},
		{"/run/netns/cni-1", Target{Kind: KindPath, Path: "/run/netns/cni-1"}},
	}
	for _, c := range ok {
		got, err := ParseTarget(c.in)
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", c.in, err)
			continue
		}
		c.want.Raw = c.in
		if got != c.want {
			t.Errorf("ParseTarget(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}

	bad := []struct{ in, msg string }{
		{"", "empty target"},
		{"docker:", "container name is empty"},
		{"containerd:", "container ID is empty"},
		{"containerd:ns/", "container ID is empty"},
		{"containerd:/x", "namespace name is empty"},
		{"pod:", "pod name is empty"},
		{"pod:shop/", "pod name is empty"},
		{"pod:/cart", "pod namespace name is empty"},
		{"pod:shop/..", `pod name ".." is not valid`},
		{"pod:a/b/c/d", "too many parts"},
		{"pid:", "needs a process ID"},
		{"pid:-1", "invalid PID"},
		{"pid:0", "out of range"},
		{"0", "out of range"},
		{"pid:99999999", "out of range"},
		{"pid:4194305", "out of range"},
		{"pid:12a", "invalid PID"},
		{"netns:", "empty"},
		{"netns:../etc", "must not contain '/'"},
		{"netns:..", "not valid"},
		{"netns:.", "not valid"},
		{"bogus:x", "unknown target type"},
		{"shop/cart", "ambiguous"},
		{"we\x00b", "control character"},
		{"web\n", "control character"},
		{"docker:" + strings.Repeat("a", 300), "at most 255"},
		{strings.Repeat("x", 10240), "at most 4096"},
	}
	for _, c := range bad {
		_, err := ParseTarget(c.in)
		if err == nil {
			t.Errorf("ParseTarget(%q): no error", c.in)
			continue
		}
		if !errors.Is(err, nserr.ErrUsage) {
			t.Errorf("ParseTarget(%q): error %v is not a usage error", c.in, err)
		}
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("ParseTarget(%q) = %q, want it to mention %q", c.in, err, c.msg)
		}
		if strings.ContainsAny(err.Error(), "\n\x00") {
			t.Errorf("ParseTarget(%q): error is not one clean line: %q", c.in, err)
		}
	}
}

func TestTargetStringRoundTrips(t *testing.T) {
	for _, in := range []string{"docker:web", "containerd:k8s.io/abc", "pod:shop/cart", "pod:shop/cart/app", "pid:7", "netns:x", "/run/netns/x", "web"} {
		tg, err := ParseTarget(in)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseTarget(tg.String())
		if err != nil || again.Kind != tg.Kind || again.Name != tg.Name || again.PID != tg.PID || again.Path != tg.Path {
			t.Errorf("%q -> %q -> %+v (%v)", in, tg.String(), again, err)
		}
	}
}

func TestValidateNetnsName(t *testing.T) {
	good := []string{"web", "cni-1234", "a.b", "x_y", strings.Repeat("n", 255)}
	for _, n := range good {
		if err := ValidateNetnsName(n); err != nil {
			t.Errorf("ValidateNetnsName(%q): %v", n, err)
		}
	}
	bad := []string{"", ".", "..", "a/b", "../x", strings.Repeat("n", 256), "a\nb", "tab\there"}
	for _, n := range bad {
		err := ValidateNetnsName(n)
		if err == nil || !errors.Is(err, nserr.ErrUsage) {
			t.Errorf("ValidateNetnsName(%q) = %v, want a usage error", n, err)
		}
	}
}

// FuzzParseTarget: the parser never panics, errors are one usage-kind line,
// and accepted targets never smuggle a path component into a name.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"web", "docker:web", "containerd:ns/id", "pod:a/b/c", "pid:1", "1", "netns:x", "/run/netns/x", "netns:../etc", "pid:-1", "", ":", "pod:////", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			if !errors.Is(err, nserr.ErrUsage) {
				t.Fatalf("ParseTarget(%q): non-usage error %v", s, err)
			}
			if strings.ContainsAny(err.Error(), "\n\r\x00") {
				t.Fatalf("ParseTarget(%q): multi-line error %q", s, err)
			}
			return
		}
		switch tg.Kind {
		case KindPath:
			if !strings.HasPrefix(tg.Path, "/") {
				t.Fatalf("path target not absolute: %q", tg.Path)
			}
		case KindPID:
			if tg.PID < 1 || tg.PID > MaxPID {
				t.Fatalf("PID out of range accepted: %d", tg.PID)
			}
		default:
			for _, part := range []string{tg.Name, tg.Namespace, tg.Container} {
				if strings.Contains(part, "/") || part == ".." || part == "." {
					t.Fatalf("%q: unsafe name part %q", s, part)
				}
			}
			if tg.Name == "" {
				t.Fatalf("%q: accepted with empty name", s)
			}
		}
	})
}

// FuzzValidateNetnsName: accepted names are always a single safe path element.
func FuzzValidateNetnsName(f *testing.F) {
	for _, s := range []string{"web", "", ".", "..", "a/b", "../x", "a\nb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateNetnsName(s) != nil {
			return
		}
		if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00\n") || len(s) > 255 {
			t.Fatalf("unsafe name accepted: %q", s)
		}
	})
}
