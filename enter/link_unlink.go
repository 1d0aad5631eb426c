package enter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/nldump"
	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/internal/procfs"
	"github.com/nsdebug/nsdebug/resolver"
)

// UnlinkOptions say where to unlink.
type UnlinkOptions struct {
	Dir      string // DefaultNetnsDir if ""
	ProcRoot string // "/proc" if ""
	DryRun   bool
	// RuntimeFile, if set, names the container or pod whose runtime made
	// path as its netns file ("" if none). Unlink refuses to take such a
	// file away from a running pod unless Force.
	RuntimeFile func(path string) string
	Force       bool
}

func (o UnlinkOptions) dir() string      { return orDefault(o.Dir, DefaultNetnsDir) }
func (o UnlinkOptions) procRoot() string { return orDefault(o.ProcRoot, "/proc") }

// Removed is one entry unlink removed (or, with DryRun, would remove).
type Removed struct {
	Name  string `json:"name"`
	Path  string `json:"path"`
	Kind  string `json:"kind"` // netns, placeholder, symlink, dangling-symlink
	Inode uint64 `json:"inode,omitempty"`
	// Reason: why --stale judged it stale.
	Reason string `json:"reason,omitempty"`
}

// Unlink removes the link DIR/NAME: its mounts are detached, then the file
// removed, as `ip netns del` does. Empty placeholders and symlinks are
// removed too; anything else (a non-empty file, a directory) is refused.
func Unlink(name string, o UnlinkOptions) (*Removed, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	dir := o.dir()
	path := filepath.Join(dir, name)
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, nserr.New(nserr.ErrNotFound, "no network namespace link named %q: %s does not exist", name, dir)
	}
	lk, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer lk.unlock()

	e, err := classify(o.procRoot(), path)
	if err != nil {
		return nil, err
	}
	r := &Removed{Name: name, Path: path, Kind: e.kind, Inode: e.id.Inode}
	switch e.kind {
	case kindHidden:
		return nil, nserr.New(nserr.ErrRefused, "cannot unlink %s: its netns mount (%s) is hidden under a later mount of %s (the /run/netns re-mount trap), so it can be neither unmounted nor removed from here; see 'nsdebug ls'", path, e.hidden, dir)
	case kindOther:
		return nil, nserr.New(nserr.ErrNotNetns, "%s is %s, not a network namespace link; not touching it", path, e.what)
	case kindNetns:
		if o.RuntimeFile != nil && !o.Force {
			if who := o.RuntimeFile(path); who != "" {
				return nil, nserr.New(nserr.ErrRefused, "%s is the netns file of %s, made by its runtime; removing it would break the runtime's teardown (use --force)", path, who)
			}
		}
	}
	if o.DryRun {
		return r, nil
	}
	return r, removeEntry(path, e.kind)
}

// Entry kinds found in the netns directory.
const (
	kindNetns       = "netns"
	kindPlaceholder = "placeholder"
	kindSymlink     = "symlink"
	kindDangling    = "dangling-symlink"
	kindHidden      = "hidden"
	kindOther       = "other"
)

type entry struct {
	kind   string
	id     nsfs.ID // kindNetns
	hidden string  // kindHidden: the hidden mount's namespace
	what   string  // kindOther: what it is, for messages
	mtime  time.Time
}

func classify(procRoot, path string) (entry, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return entry{}, nserr.New(nserr.ErrNotFound, "no network namespace link named %q in %s", filepath.Base(path), filepath.Dir(path))
		}
		return entry{}, fmt.Errorf("stat %s: %w", path, err)
	}
	e := entry{mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec)}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		e.kind = kindSymlink
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			e.kind = kindDangling
		}
		return e, nil
	case unix.S_IFREG:
	default:
		e.kind, e.what = kindOther, "a "+nsfs.FileKind(st.Mode)
		return e, nil
	}
	ns, err := nsfs.Open(path)
	if err == nil {
		e.kind, e.id = kindNetns, ns.ID
		ns.Close()
		return e, nil
	}
	if !errors.Is(err, nserr.ErrNotNetns) {
		return entry{}, err
	}
	if h := procfs.HiddenNetnsMountAt(procRoot, path, realPath(path)); h != "" {
		e.kind, e.hidden = kindHidden, h
		return e, nil
	}
	// Stat again: a bind mount on a regular file shows the nsfs inode, so
	// the lstat above already saw the file itself.
	if st.Size != 0 {
		e.kind, e.what = kindOther, "a regular file of "+strconv.FormatInt(st.Size, 10)+" bytes"
		return e, nil
	}
	e.kind = kindPlaceholder
	return e, nil
}

func removeEntry(path, kind string) error {
	if kind == kindNetns {
		if err := unmountAll(path); err != nil {
			return err
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		if errors.Is(err, unix.EBUSY) {
			return nserr.New(nserr.ErrRefused, "cannot remove %s: it is still a mount point in another mount namespace (device or resource busy)", path)
		}
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// StaleOptions configure UnlinkStale.
type StaleOptions struct {
	UnlinkOptions
	// Known maps namespaces the runtimes know to who knows them, and
	// KnownPaths their netns files; such entries are never removed.
	Known      map[nsfs.ID]string
	KnownPaths map[string]string
	// RuntimesComplete: every runtime answered. Otherwise no namespace entry
	// is removed (a silent runtime might know it); placeholders and dangling
	// symlinks, which hold no namespace, still are.
	RuntimesComplete bool
	// MinAge spares placeholders younger than this: `ip netns add` and
	// runtimes create the file first and mount onto it a moment later.
	MinAge time.Duration
	Now    time.Time
}

// Kept is an entry --stale looked at and left alone, with why.
type Kept struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// StaleReport is what UnlinkStale removed (or would remove) and kept.
type StaleReport struct {
	Removed []Removed `json:"removed"`
	Kept    []Kept    `json:"kept"`
	DryRun  bool      `json:"dry_run"`
}

// UnlinkStale removes every entry of DIR that is an empty placeholder, a
// dangling symlink, or a namespace that no process is in, no other mount
// holds, no runtime knows and that holds no interface but loopback.
func UnlinkStale(o StaleOptions) (*StaleReport, error) {
	dir := o.dir()
	rep := &StaleReport{Removed: []Removed{}, Kept: []Kept{}, DryRun: o.DryRun}
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return rep, nil
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	lk, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer lk.unlock()

	names, err := readDirNames(dir)
	if err != nil {
		return nil, err
	}
	scan, err := procfs.ScanNetns(o.procRoot())
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", o.procRoot(), err)
	}
	mounts, err := procfs.NetnsMounts(o.procRoot() + "/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	real := realPath(dir)
	// Other holders: nsfs mounts of the namespace outside dir (e.g.
	// /run/docker/netns/*), visible or not.
	elsewhere := map[nsfs.ID]string{}
	for _, m := range mounts {
		if filepath.Dir(m.MountPoint) != real {
			elsewhere[m.ID] = m.MountPoint
		}
	}

	for _, name := range names {
		path := filepath.Join(dir, name)
		keep := func(why string) { rep.Kept = append(rep.Kept, Kept{Name: name, Reason: why}) }
		e, err := classify(o.procRoot(), path)
		if err != nil {
			if errors.Is(err, nserr.ErrNotFound) {
				continue // removed meanwhile
			}
			keep(err.Error())
			continue
		}
		r := Removed{Name: name, Path: path, Kind: e.kind, Inode: e.id.Inode}
		switch e.kind {
		case kindHidden:
			keep("its netns mount (" + e.hidden + ") is hidden under a later mount of " + dir)
			continue
		case kindOther:
			keep("not a netns link: " + e.what)
			continue
		case kindSymlink:
			keep("a symlink to an existing file")
			continue
		case kindDangling:
			r.Reason = "dangling symlink"
		case kindPlaceholder:
			if age := o.Now.Sub(e.mtime); age < o.MinAge {
				keep(fmt.Sprintf("empty placeholder only %s old (a link may be being made)", age.Round(time.Second)))
				continue
			}
			r.Reason = "empty placeholder (no namespace mounted on it)"
		case kindNetns:
			if pids := scan.PIDs[e.id]; len(pids) > 0 {
				keep(fmt.Sprintf("%s is used by %d process(es), e.g. PID %d", e.id, len(pids), pids[0]))
				continue
			}
			if who, ok := o.Known[e.id]; ok {
				keep(e.id.String() + " is known to " + who)
				continue
			}
			if who, ok := o.KnownPaths[path]; ok {
				keep("the netns file of " + who)
				continue
			}
			if where, ok := elsewhere[e.id]; ok {
				keep(e.id.String() + " is also mounted at " + where)
				continue
			}
			if !o.RuntimesComplete {
				keep(e.id.String() + " is used by no process, but not every runtime answered")
				continue
			}
			// `ip netns add` namespaces that an operator set up and will
			// use later hold no process either; their interfaces tell them
			// apart from the husk a removed container leaves behind.
			if links, err := configuredLinks(path); err != nil {
				keep(e.id.String() + " is used by no process, but its interfaces could not be read: " + err.Error())
				continue
			} else if len(links) > 0 {
				keep(fmt.Sprintf("%s is used by no process, but holds configured interfaces (%s)", e.id, strings.Join(links, ", ")))
				continue
			}
			r.Reason = e.id.String() + " is used by no process, known to no runtime and holds no interface but loopback"
		}
		if !o.DryRun {
			if err := removeEntry(path, e.kind); err != nil {
				keep(err.Error())
				continue
			}
		}
		rep.Removed = append(rep.Removed, r)
	}
	return rep, nil
}

// configuredLinks names the interfaces of the netns at path other than its
// loopback (and lo, if it has addresses beyond the kernel's own).
func configuredLinks(path string) ([]string, error) {
	ns, err := nsfs.Open(path)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	h, err := NetlinkHandle(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	links, err := nldump.Retry(h.LinkList)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range links {
		a := l.Attrs()
		if a.Name != "lo" {
			names = append(names, a.Name)
			continue
		}
		addrs, err := nldump.Retry(func() ([]netlink.Addr, error) { return h.AddrList(l, unix.AF_UNSPEC) })
		if err != nil {
			return nil, err
		}
		for _, ad := range addrs {
			if !ad.IP.IsLoopback() {
				names = append(names, "lo "+ad.IPNet.String())
			}
		}
	}
	return names, nil
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	sort.Strings(names)
	return names, nil
}

// RuntimeKnowledge asks every runtime (each bounded by the resolver's
// timeout) which network namespaces its running containers and pods use.
// complete is false when some runtime did not answer; notes say which.
func RuntimeKnowledge(ctx context.Context, r *resolver.Resolver) (known map[nsfs.ID]string, paths map[string]string, complete bool, notes []string) {
	known, paths, complete = map[nsfs.ID]string{}, map[string]string{}, true
	type answer struct {
		b     resolver.Backend
		cands []resolver.Candidate
		err   error
	}
	answers := make([]answer, len(r.Backends()))
	var wg sync.WaitGroup
	for i, b := range r.Backends() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, r.Timeout())
			defer cancel()
			var cands []resolver.Candidate
			var err error
			if kl, ok := b.(resolver.KnownLister); ok {
				cands, err = kl.ListKnown(cctx) // not-ready pods keep their netns files
			} else {
				cands, err = b.List(cctx)
			}
			if err != nil && cctx.Err() == context.DeadlineExceeded {
				err = fmt.Errorf("did not answer within %s", r.Timeout())
			}
			answers[i] = answer{b, cands, err}
		}()
	}
	wg.Wait()
	for _, a := range answers {
		if a.err != nil {
			complete = false
			notes = append(notes, fmt.Sprintf("%s at %s: %v", a.b.Name(), a.b.Endpoint(), a.err))
			continue
		}
		for _, c := range a.cands {
			who := c.Ref()
			if c.NetnsPath != "" {
				paths[c.NetnsPath] = who
				if real, err := filepath.EvalSymlinks(c.NetnsPath); err == nil {
					paths[real] = who
				}
				if id, err := nsfs.StatID(c.NetnsPath); err == nil {
					known[id] = who
				}
			}
			if c.PID > 0 {
				if id, err := nsfs.StatID(r.ProcRoot() + "/" + strconv.Itoa(c.PID) + "/ns/net"); err == nil {
					known[id] = who
				}
			}
		}
	}
	return known, paths, complete, notes
}
