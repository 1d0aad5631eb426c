package sysctl

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/enter"
	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/nsfs"
)

// Value is one sysctl and its value as the kernel prints it, without the
// trailing newline.
type Value struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Change is one write: the value before and after. In a dry run New is the
// value that would be written and Applied is false.
type Change struct {
	Key     string `json:"key"`
	Old     string `json:"old"`
	New     string `json:"new"`
	Applied bool   `json:"applied"`
	// WriteOnly: the key cannot be read (net.ipv4.route.flush); Old and
	// New are empty.
	WriteOnly bool `json:"write_only,omitempty"`
	// Partial: the kernel kept only part of Requested (the numbers before
	// one it rejected, or before a surplus); New is what it kept.
	Partial   bool   `json:"partial,omitempty"`
	Requested string `json:"requested,omitempty"`
	// ReadBackError: the key could not be read after the write; New is then
	// the value written (or, when Partial, the part the kernel took).
	ReadBackError string `json:"read_back_error,omitempty"`
}

// Step is the outcome of one Op: Reads for a read (several when the key is
// a group such as net.ipv4.conf.eth0), Write for a write.
type Step struct {
	Reads []Value
	Write *Change
}

// RunError is a failure in the middle of a list, after every key was
// checked: Key failed with Err (whose kind gives the exit code), the writes
// after it were not attempted. Its message also names what was applied.
type RunError struct {
	Key          string
	Err          error
	NotAttempted []string
	msg          string
}

func (e *RunError) Error() string { return e.msg }
func (e *RunError) Unwrap() error { return e.Err }

// Run performs ops in order inside ns, all on one thread inside it (one
// enter.Do). Every key is checked to exist, every written key to be a
// writable file, and every value to suit the key (CheckValue), before
// anything is written, so a bad key or value writes nothing, in a dry run
// too. A failed write stops the list; the steps done so far are returned
// with a *RunError that names what was applied.
func Run(ns *nsfs.Netns, ops []Op, dryRun bool) ([]Step, error) {
	return run(ns, ops, dryRun, true)
}

// run is Run; checkValues false lets tests reach the kernel with values
// CheckValue refuses.
func run(ns *nsfs.Netns, ops []Op, dryRun, checkValues bool) ([]Step, error) {
	var steps []Step
	err := enter.Do(ns, func() error {
		t, err := openTree()
		if err != nil {
			return err
		}
		defer t.close()
		for _, op := range ops {
			if err := t.check(op); err != nil {
				return err
			}
			if !op.Write || !checkValues {
				continue
			}
			if cur, err := t.read(op.Key.Rel); err == nil {
				if err := CheckValue(op.Key, cur, op.Value); err != nil {
					return err
				}
			}
		}
		for i, op := range ops {
			if !op.Write {
				vals, err := t.readKey(op.Key)
				if err != nil {
					if HasWrites(ops) {
						return stopped(op.Key, err, steps, ops[i+1:], false)
					}
					return err
				}
				steps = append(steps, Step{Reads: vals})
				continue
			}
			// Old is "" when it cannot be read: write-only keys (route.flush)
			// and ipv6 stable_secret until set (EIO).
			old, _ := t.read(op.Key.Rel)
			st, _ := t.stat(op.Key.Rel)
			ch := &Change{Key: op.Key.Name, Old: old, New: op.Value, WriteOnly: st.Mode&0o444 == 0}
			if dryRun {
				steps = append(steps, Step{Write: ch})
				continue
			}
			n, werr := t.write(op.Key, op.Value)
			var now string
			rerr := errors.New("write-only key")
			if !ch.WriteOnly {
				now, rerr = t.read(op.Key.Rel)
			}
			short := werr == nil && strings.TrimSpace(op.Value[n:]) != ""
			switch {
			case werr != nil && rerr == nil && now != old:
				// A vector is stored element by element: the kernel kept
				// the ones before the element it rejected.
				ch.Applied, ch.Partial, ch.Requested, ch.New = true, true, op.Value, now
				err := fmt.Errorf("%w, but kept part of it: %s is now %s (was %s)", werr, op.Key.Name, shown(now), shown(old))
				before := steps
				steps = append(steps, Step{Write: ch})
				return stopped(op.Key, err, before, ops[i+1:], true)
			case werr != nil:
				return stopped(op.Key, werr, steps, ops[i+1:], false)
			case short:
				// More numbers than the key holds: the kernel stored the
				// ones it holds and answered a short write for the rest.
				took := strings.TrimSpace(op.Value[:n])
				ch.Applied, ch.Partial, ch.Requested, ch.New = true, true, op.Value, took
				state := fmt.Sprintf("%s is now %s (was %s)", op.Key.Name, shown(now), shown(old))
				if rerr != nil {
					ch.ReadBackError = rerr.Error()
					state = fmt.Sprintf("%s could not be read back: %v", op.Key.Name, rerr)
				} else {
					ch.New = now
				}
				err := nserr.New(nserr.ErrUsage, "the kernel kept only %s of %s for %s and ignored %s; %s",
					quote(shorten(took)), quote(shorten(op.Value)), op.Key.Name, quote(shorten(strings.TrimSpace(op.Value[n:]))), state)
				before := steps
				steps = append(steps, Step{Write: ch})
				return stopped(op.Key, err, before, ops[i+1:], true)
			}
			ch.Applied = true
			if !ch.WriteOnly {
				if rerr != nil {
					ch.ReadBackError = rerr.Error()
				} else {
					ch.New = now
				}
			}
			steps = append(steps, Step{Write: ch})
		}
		return nil
	})
	return steps, err
}

// Read returns the values of keys inside ns, or of every net.* sysctl there
// when keys is empty. Groups are expanded. With lenient, keys missing in ns
// are left out instead of failing (the host side of --diff).
func Read(ns *nsfs.Netns, keys []Key, lenient bool) ([]Value, error) {
	var vals []Value
	err := enter.Do(ns, func() error {
		t, err := openTree()
		if err != nil {
			return err
		}
		defer t.close()
		if len(keys) == 0 {
			vals, err = t.walk("")
			return err
		}
		for _, k := range keys {
			v, err := t.readKey(k)
			if err != nil {
				if lenient {
					continue
				}
				return err
			}
			vals = append(vals, v...)
		}
		return nil
	})
	return vals, err
}

// DiffEntry is a key whose value in the target differs from the host's.
type DiffEntry struct {
	Key    string `json:"key"`
	Target string `json:"target"`
	Host   string `json:"host"`
}

// Diff lists the keys of target whose value differs in host. Keys missing on
// either side (host-only sysctls, interfaces only one side has) cannot be
// compared and are left out, as are counters that are not settings and the
// keys of interfaces other than all, default and lo (OtherDevice).
func Diff(target, host []Value) []DiffEntry {
	hv := make(map[string]string, len(host))
	for _, v := range host {
		hv[v.Key] = v.Value
	}
	var out []DiffEntry
	for _, v := range target {
		h, ok := hv[v.Key]
		if !ok || h == v.Value || counters[v.Key] {
			continue
		}
		if _, other := OtherDevice(v.Key); other {
			continue
		}
		out = append(out, DiffEntry{Key: v.Key, Target: v.Value, Host: h})
	}
	return out
}

var counters = map[string]bool{"net.netfilter.nf_conntrack_count": true}

// OtherDevice tells whether key (a canonical name) is a per-interface key
// (net.ipv4.conf.IF.*, net.ipv6.conf.IF.*, net.ipv4.neigh.IF.*,
// net.ipv6.neigh.IF.*, net.mpls.conf.IF.*) of an interface other than
// all, default and lo, and names it. Such an interface in two namespaces
// is two devices, even with the same name: comparing them says nothing
// about a setting somebody changed.
func OtherDevice(key string) (string, bool) {
	c := strings.Split(key, ".")
	if len(c) < 4 || c[0] != "net" {
		return "", false
	}
	switch c[1] + "." + c[2] {
	case "ipv4.conf", "ipv6.conf", "ipv4.neigh", "ipv6.neigh", "mpls.conf":
	default:
		return "", false
	}
	switch c[3] {
	case "all", "default", "lo":
		return "", false
	}
	return strings.ReplaceAll(c[3], "/", "."), true
}

// stopped ends a list at key's failure with a *RunError whose message
// names what was applied before it (before) and the writes not attempted.
// keyApplied: key itself was partly applied, as err says.
func stopped(key Key, err error, before []Step, notRun []Op, keyApplied bool) error {
	var done []string
	for _, s := range before {
		if s.Write != nil && s.Write.Applied {
			done = append(done, fmt.Sprintf("%s (%s -> %s)", s.Write.Key, shown(s.Write.Old), shown(s.Write.New)))
		}
	}
	msg := err.Error()
	switch {
	case len(done) > 0:
		msg += "; applied before it: " + strings.Join(done, ", ")
	case !keyApplied:
		msg += "; nothing was written"
	}
	skipped := []string{}
	for _, o := range notRun {
		if o.Write {
			skipped = append(skipped, o.Key.Name)
		}
	}
	if len(skipped) > 0 {
		msg += "; not attempted: " + strings.Join(skipped, ", ")
	}
	return &RunError{Key: key.Name, Err: err, NotAttempted: skipped, msg: msg}
}

// tree is /proc/sys/net opened on the switched thread. Every file is
// opened relative to it with openat2 RESOLVE_BENEATH, so even a key that
// slipped past ParseKey could not leave it, and it is checked to be procfs
// (the host's: enter.Do switches only the network namespace, never the
// mount namespace).
type tree struct{ fd int }

func openTree() (*tree, error) {
	fd, err := unix.Open(Root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", Root, err)
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil || fs.Type != unix.PROC_SUPER_MAGIC {
		unix.Close(fd)
		return nil, nserr.New(nserr.ErrEnvironment, "%s is not procfs: refusing to read or write sysctls through it", Root)
	}
	return &tree{fd: fd}, nil
}

func (t *tree) close() { unix.Close(t.fd) }

// noOpenat2 is set once openat2 turns out to be missing (kernel before 5.6).
var noOpenat2 atomic.Bool

func (t *tree) open(rel string, flags int) (int, error) {
	if rel == "" {
		rel = "."
	}
	flags |= unix.O_CLOEXEC | unix.O_NOFOLLOW
	if !noOpenat2.Load() {
		fd, err := unix.Openat2(t.fd, rel, &unix.OpenHow{
			Flags:   uint64(flags),
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		})
		if !errors.Is(err, unix.ENOSYS) {
			return fd, err
		}
		noOpenat2.Store(true) // ParseKey's guarantee then stands alone
	}
	return unix.Openat(t.fd, rel, flags, 0)
}

func (t *tree) stat(rel string) (unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := t.open(rel, unix.O_PATH)
	if err != nil {
		return st, err
	}
	defer unix.Close(fd)
	err = unix.Fstat(fd, &st)
	return st, err
}

// check refuses, before anything is written, keys that do not exist in
// this namespace and writes to groups or read-only keys.
func (t *tree) check(op Op) error {
	st, err := t.stat(op.Key.Rel)
	if errors.Is(err, unix.ENOENT) {
		return nserr.New(nserr.ErrNotFound, "sysctl %s does not exist in the target's network namespace (not namespaced on this kernel, or no such interface there)", op.Key.Name)
	}
	if err != nil {
		return fmt.Errorf("sysctl %s: %w", op.Key.Name, err)
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if !op.Write {
		if !isDir && st.Mode&0o444 == 0 {
			return nserr.New(nserr.ErrUsage, "sysctl %s is write-only: it has no value to read", op.Key.Name)
		}
		return nil
	}
	if isDir {
		return nserr.New(nserr.ErrUsage, "%s is a group of sysctls, not one: cannot write it", op.Key.Name)
	}
	if st.Mode&0o222 == 0 {
		return nserr.New(nserr.ErrPermission, "sysctl %s is read-only in the target's network namespace", op.Key.Name)
	}
	return nil
}

func (t *tree) read(rel string) (string, error) {
	fd, err := t.open(rel, unix.O_RDONLY)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	var b []byte
	buf := make([]byte, 4096)
	for len(b) < 1<<20 {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return "", err
		}
		if n == 0 {
			break
		}
		b = append(b, buf[:n]...)
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

// readKey reads a key, or every key below it when it is a group.
func (t *tree) readKey(k Key) ([]Value, error) {
	st, err := t.stat(k.Rel)
	if errors.Is(err, unix.ENOENT) {
		return nil, nserr.New(nserr.ErrNotFound, "sysctl %s does not exist in the target's network namespace (not namespaced on this kernel, or no such interface there)", k.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("sysctl %s: %w", k.Name, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return t.walk(k.Rel)
	}
	if st.Mode&0o444 == 0 {
		return nil, nserr.New(nserr.ErrUsage, "sysctl %s is write-only: it has no value to read", k.Name)
	}
	v, err := t.read(k.Rel)
	if err != nil {
		return nil, fmt.Errorf("read sysctl %s: %w", k.Name, err)
	}
	return []Value{{Key: k.Name, Value: v}}, nil
}

// walk lists every readable sysctl below rel, sorted by path. Keys that
// cannot be read are left out, as sysctl -a leaves them out of stdout:
// write-only ones (route.flush) and those that fail by design
// (ipv6 stable_secret is EIO until set).
func (t *tree) walk(rel string) ([]Value, error) {
	fd, err := t.open(rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", keyFromRel(rel).Name, err)
	}
	f := os.NewFile(uintptr(fd), Root+"/"+rel)
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", keyFromRel(rel).Name, err)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	var out []Value
	for _, e := range ents {
		child := e.Name()
		if rel != "" {
			child = rel + "/" + child
		}
		if e.IsDir() {
			sub, err := t.walk(child)
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) {
				continue // an interface went away meanwhile (busy hosts)
			}
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		if v, err := t.read(child); err == nil {
			out = append(out, Value{Key: keyFromRel(child).Name, Value: v})
		}
	}
	return out, nil
}

// write writes v in one write(2), as sysctl(8) does, and returns how many
// bytes the kernel took. The kernel parses v and answers EINVAL for a value
// it does not take; for more numbers than an integer sysctl holds it stores
// those it holds and answers a short count.
func (t *tree) write(k Key, v string) (int, error) {
	fd, err := t.open(k.Rel, unix.O_WRONLY)
	if err != nil {
		return 0, writeError(k, v, err)
	}
	n, err := unix.Write(fd, []byte(v))
	cerr := unix.Close(fd)
	if err == nil {
		err = cerr
	}
	if err != nil {
		return 0, writeError(k, v, err)
	}
	return n, nil
}

func writeError(k Key, v string, err error) error {
	switch {
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ERANGE), errors.Is(err, unix.EOVERFLOW), errors.Is(err, unix.ENOENT):
		return nserr.New(nserr.ErrUsage, "the kernel rejected %s for %s: %v", quote(shorten(v)), k.Name, err)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return nserr.New(nserr.ErrPermission, "the kernel refused the write to %s: %v", k.Name, err)
	}
	return fmt.Errorf("write %s: %w", k.Name, err)
}

func shorten(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
