package resolver

import (
	"strconv"
	"strings"

	"github.com/nsdebug/nsdebug/internal/nserr"
)

// Kind says how a target names its network namespace.
type Kind string

const (
	KindAuto       Kind = "auto" // a bare word: looked up in every runtime
	KindDocker     Kind = "docker"
	KindPodman     Kind = "podman"
	KindContainerd Kind = "containerd"
	KindPod        Kind = "pod"
	KindPID        Kind = "pid"
	KindNetns      Kind = "netns"
	KindPath       Kind = "path"
)

// Limits on target text. PIDs above 2^22 (the kernel's PID_MAX_LIMIT) cannot
// exist; names are bounded to keep errors readable.
const (
	MaxTargetLen = 4096
	MaxPID       = 1 << 22
	MaxNameLen   = 255
)

// Target is a parsed target argument.
type Target struct {
	Raw       string
	Kind      Kind
	Name      string // container name/ID (prefix), pod name, netns name or bare word
	Namespace string // containerd namespace or Kubernetes namespace ("" = all / default)
	Container string // pod:NS/NAME/CONTAINER
	PID       int
	Path      string
}

// String gives the target in its prefixed form.
func (t Target) String() string {
	switch t.Kind {
	case KindPID:
		return "pid:" + strconv.Itoa(t.PID)
	case KindPath:
		return t.Path
	case KindAuto:
		return t.Name
	case KindPod:
		s := "pod:" + t.Namespace + "/" + t.Name
		if t.Container != "" {
			s += "/" + t.Container
		}
		return s
	case KindContainerd:
		if t.Namespace != "" {
			return "containerd:" + t.Namespace + "/" + t.Name
		}
	}
	return string(t.Kind) + ":" + t.Name
}

func usage(format string, args ...any) error { return nserr.New(nserr.ErrUsage, format, args...) }

// ParseTarget parses the target syntax:
//
//	docker:NAME|ID   podman:NAME|ID   containerd:[NAMESPACE/]ID   pod:[NAMESPACE/]NAME[/CONTAINER]
//	pid:N | N        netns:NAME                  /absolute/path/to/netns
//	WORD             (container name, ID prefix or pod name, in every runtime)
func ParseTarget(s string) (Target, error) {
	t := Target{Raw: s}
	if s == "" {
		return t, usage("empty target; give a container, pod, PID, netns name or path (see 'nsdebug help targets')")
	}
	if len(s) > MaxTargetLen {
		return t, usage("target is %d bytes long; at most %d are accepted", len(s), MaxTargetLen)
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		return t, usage("target %s contains a control character at byte %d", strconv.QuoteToASCII(clip(s)), i)
	}
	if strings.HasPrefix(s, "/") {
		t.Kind, t.Path = KindPath, s
		return t, nil
	}
	if isDigits(s) {
		return parsePID(t, s)
	}
	prefix, rest, hasPrefix := strings.Cut(s, ":")
	if !hasPrefix {
		if strings.Contains(s, "/") {
			return t, usage("target %q is ambiguous: use pod:NAMESPACE/NAME, containerd:NAMESPACE/ID or an absolute path", s)
		}
		if err := checkName("target", s); err != nil {
			return t, err
		}
		t.Kind, t.Name = KindAuto, s
		return t, nil
	}
	switch Kind(prefix) {
	case KindPID:
		return parsePID(t, rest)
	case KindDocker:
		if err := checkName("docker: container name", rest); err != nil {
			return t, err
		}
		t.Kind, t.Name = KindDocker, rest
	case KindPodman:
		if err := checkName("podman: container name", rest); err != nil {
			return t, err
		}
		t.Kind, t.Name = KindPodman, rest
	case KindContainerd:
		ns, id, ok := strings.Cut(rest, "/")
		if !ok {
			ns, id = "", rest
		} else if err := checkName("containerd namespace name", ns); err != nil {
			return t, err
		}
		if err := checkName("containerd: container ID", id); err != nil {
			return t, err
		}
		t.Kind, t.Namespace, t.Name = KindContainerd, ns, id
	case KindPod:
		parts := strings.Split(rest, "/")
		switch len(parts) {
		case 1:
			t.Namespace, t.Name = "default", parts[0]
		case 2:
			t.Namespace, t.Name = parts[0], parts[1]
		case 3:
			t.Namespace, t.Name, t.Container = parts[0], parts[1], parts[2]
			if err := checkName("pod container name", t.Container); err != nil {
				return t, err
			}
		default:
			return t, usage("pod target %q has too many parts; use pod:[NAMESPACE/]NAME[/CONTAINER]", s)
		}
		if err := checkName("pod namespace name", t.Namespace); err != nil {
			return t, err
		}
		if err := checkName("pod name", t.Name); err != nil {
			return t, err
		}
		t.Kind = KindPod
	case KindNetns:
		if err := ValidateNetnsName(rest); err != nil {
			return t, err
		}
		t.Kind, t.Name = KindNetns, rest
	default:
		return t, usage("unknown target type %q; use docker:, podman:, containerd:, pod:, pid:, netns: or an absolute path", prefix)
	}
	return t, nil
}

func parsePID(t Target, s string) (Target, error) {
	if s == "" {
		return t, usage("pid: needs a process ID, e.g. pid:1234")
	}
	if !isDigits(s) {
		return t, usage("invalid PID %q: want a positive number", s)
	}
	if len(s) > 7 {
		return t, usage("PID %s is out of range (1-%d)", clip(s), MaxPID)
	}
	n, _ := strconv.Atoi(s)
	if n < 1 || n > MaxPID {
		return t, usage("PID %d is out of range (1-%d)", n, MaxPID)
	}
	t.Kind, t.PID = KindPID, n
	return t, nil
}

func checkName(what, s string) error {
	if s == "" {
		return usage("%s is empty", what)
	}
	if len(s) > MaxNameLen {
		return usage("%s is %d bytes long; at most %d are accepted", what, len(s), MaxNameLen)
	}
	if s == "." || s == ".." || strings.Contains(s, "/") {
		return usage("%s %q is not valid", what, clip(s))
	}
	return nil
}

// ValidateNetnsName applies iproute2's rules for names under /var/run/netns:
// not empty, not "." or "..", no "/", at most 255 bytes; nsdebug also refuses
// control characters, which no shell user means.
func ValidateNetnsName(name string) error {
	switch {
	case name == "":
		return usage("netns name is empty")
	case len(name) > MaxNameLen:
		return usage("netns name is %d bytes long; at most %d are accepted", len(name), MaxNameLen)
	case name == "." || name == "..":
		return usage("netns name %q is not valid", name)
	case strings.Contains(name, "/"):
		return usage("netns name %q must not contain '/'", clip(name))
	case strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return usage("netns name %s contains a control character", strconv.QuoteToASCII(clip(name)))
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// clip shortens s for error messages.
func clip(s string) string {
	if len(s) > 64 {
		return s[:61] + "..."
	}
	return s
}
