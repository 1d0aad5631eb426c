// Package sysctl reads and writes the net.* sysctls of one network namespace
// from the host. Keys are parsed and validated here without privilege (pure
// functions, fuzzed); reads and writes run inside the target namespace
// through enter.Do, because /proc/sys/net resolves against the network
// namespace of the thread that opens a file there.
package sysctl

import (
	"path"
	"strings"

	"github.com/nsdebug/nsdebug/internal/nserr"
)

// Root is the only directory nsdebug ever opens sysctls under.
const Root = "/proc/sys/net"

// Limits. A key longer than MaxKeyLen names nothing the kernel has (interface
// names are at most 15 bytes, the longest sysctl paths are under 100); a
// value longer than a page is more than any sysctl handler accepts.
const (
	MaxKeyLen   = 255
	MaxValueLen = 4096
)

// Key is a validated net.* sysctl key.
type Key struct {
	// Name is the canonical dotted form as sysctl(8) prints it: a '.' inside
	// a component (VLAN eth0.100) is shown as '/'.
	Name string
	// Rel is the path below Root, e.g. "ipv4/conf/eth0.100/rp_filter"; ""
	// for the whole of net.* (only from Walk, never from ParseKey).
	Rel string
}

// Path is the absolute file under Root.
func (k Key) Path() string {
	if k.Rel == "" {
		return Root
	}
	return Root + "/" + k.Rel
}

// String is the canonical name.
func (k Key) String() string { return k.Name }

// ParseKey accepts a key in sysctl(8)'s dotted form (net.ipv4.tcp_keepalive_time,
// net.ipv4.conf.eth0/100.rp_filter) or its path form
// (net/ipv4/conf/eth0.100/rp_filter, optionally with a leading /proc/sys/).
// As in sysctl(8), the first separator decides the form: in dotted form
// '.' separates components and '/' stands for a literal '.' inside one; in
// path form the reverse. Every accepted key maps to a path under Root with no
// empty, "." or ".." component, so no key can reach a file outside
// /proc/sys/net.
func ParseKey(s string) (Key, error) {
	shown := printable(s)
	if s == "" {
		return Key{}, nserr.New(nserr.ErrUsage, "empty sysctl key")
	}
	if len(s) > MaxKeyLen {
		return Key{}, nserr.New(nserr.ErrUsage, "sysctl key %s is too long (%d bytes, at most %d)", shown, len(s), MaxKeyLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return Key{}, nserr.New(nserr.ErrUsage, "sysctl key %s contains a control character (byte %d)", shown, i)
		}
	}
	if strings.ContainsAny(s, " =") {
		return Key{}, nserr.New(nserr.ErrUsage, "sysctl key %s contains a space or '='", shown)
	}
	// ".." is a traversal attempt in either form (in dotted form it would
	// otherwise surface as a puzzling "empty component"); it costs only
	// interface names containing "..", which nobody uses.
	if strings.Contains(s, "..") {
		return Key{}, nserr.New(nserr.ErrUsage, "sysctl key %s contains \"..\": keys may not walk out of net.*", shown)
	}
	p := s
	if rest, ok := strings.CutPrefix(p, "/proc/sys/"); ok {
		p = rest
	}
	// sysctl(8)'s slashdot: the first separator tells the form; dotted
	// keys swap '.' and '/' to become paths.
	// Bytewise: interface names need not be UTF-8, and strings.Map would
	// turn invalid bytes into U+FFFD (another file).
	if i := strings.IndexAny(p, "./"); i >= 0 && p[i] == '.' {
		b := []byte(p)
		for j, c := range b {
			switch c {
			case '.':
				b[j] = '/'
			case '/':
				b[j] = '.'
			}
		}
		p = string(b)
	}
	comps := strings.Split(p, "/")
	if comps[0] != "net" {
		return Key{}, nserr.New(nserr.ErrUsage, "sysctl key %s is not a network sysctl: only net.* keys belong to a network namespace", shown)
	}
	if len(comps) < 2 {
		return Key{}, nserr.New(nserr.ErrUsage, "sysctl key %s names all of net.*; give no key to list them", shown)
	}
	for _, c := range comps[1:] {
		switch c {
		case "":
			return Key{}, nserr.New(nserr.ErrUsage, "sysctl key %s has an empty component (repeated, leading or trailing separator)", shown)
		case ".", "..":
			return Key{}, nserr.New(nserr.ErrUsage, "sysctl key %s has a %q component: keys may not walk out of net.*", shown, c)
		}
	}
	rel := strings.Join(comps[1:], "/")
	// Belt and braces: the rules above already guarantee this.
	if full := Root + "/" + rel; path.Clean(full) != full || !strings.HasPrefix(full, Root+"/") {
		return Key{}, nserr.New(nserr.ErrUsage, "sysctl key %s does not stay under %s", shown, Root)
	}
	return keyFromRel(rel), nil
}

// keyFromRel builds a Key from a path below Root whose components are known
// to be sane (from ParseKey or from a directory listing).
func keyFromRel(rel string) Key {
	comps := strings.Split(rel, "/")
	for i, c := range comps {
		comps[i] = strings.ReplaceAll(c, ".", "/")
	}
	return Key{Name: "net." + strings.Join(comps, "."), Rel: rel}
}

// ValidateValue checks a value before anything is written: no newline, NUL
// or other control character but tab (multi-value sysctls such as
// ip_local_port_range take "32768 60999" or tab-separated), not empty, at
// most a page.
func ValidateValue(key Key, v string) error {
	if v == "" {
		return nserr.New(nserr.ErrUsage, "empty value for %s", key.Name)
	}
	if len(v) > MaxValueLen {
		return nserr.New(nserr.ErrUsage, "value for %s is too long (%d bytes, at most %d)", key.Name, len(v), MaxValueLen)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			what := "a control character"
			switch c {
			case '\n', '\r':
				what = "a newline"
			case 0:
				what = "a NUL byte"
			}
			return nserr.New(nserr.ErrUsage, "value for %s contains %s (byte %d): one value per key", key.Name, what, i)
		}
	}
	return nil
}

// Op is one command-line argument: a read (KEY) or a write (KEY=VALUE).
type Op struct {
	Key   Key
	Value string
	Write bool
}

// ParseOps parses KEY and KEY=VALUE arguments, in order. The first '='
// separates key and value, as in sysctl(8).
func ParseOps(args []string) ([]Op, error) {
	ops := make([]Op, 0, len(args))
	for _, a := range args {
		k, v, write := strings.Cut(a, "=")
		key, err := ParseKey(k)
		if err != nil {
			return nil, err
		}
		if write {
			if err := ValidateValue(key, v); err != nil {
				return nil, err
			}
		}
		ops = append(ops, Op{Key: key, Value: v, Write: write})
	}
	return ops, nil
}

// HasWrites reports whether any op writes.
func HasWrites(ops []Op) bool {
	for _, o := range ops {
		if o.Write {
			return true
		}
	}
	return false
}

// printable quotes a key for messages, short and on one line.
func printable(s string) string {
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return quote(s)
}

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&15])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
