package enter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

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
	// StateDir holds nsdebug link's records (see stateDirFor).
	StateDir string
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
	if err := removeEntry(path, e.kind); err != nil {
		return nil, err
	}
	return r, removeRecord(stateDirFor(o.StateDir, dir), name)
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
	// CRIAnswered: a CRI runtime answered, so a cni-* file it does not know
	// is no pod's.
	CRIAnswered bool
	// DockerNetnsDir is Docker's directory of netns files
	// (/var/run/docker/netns), looked at only when DockerAnswered: the files
	// there that Docker does not know are left over from containers gone.
	DockerNetnsDir string
	DockerAnswered bool
	// MinAge spares placeholders younger than this: `ip netns add` and
	// runtimes create the file first and mount onto it a moment later.
	MinAge time.Duration
	// RuntimeMinAge spares a runtime's netns files younger than this: CRI
	// lists a pod only once its sandbox runs, seconds after the netns file
	// was made and CNI set it up.
	RuntimeMinAge time.Duration
	// OwnerExists asks the owner's runtime whether a container or pod that
	// nsdebug linked still exists, running or not (a stopped container's
	// link is kept: holding the namespace past the process is what links
	// are for). Without it, such links are kept.
	OwnerExists func(LinkOwner) (bool, error)
	Now         time.Time
}

// Kept is an entry --stale looked at and left alone, with why.
type Kept struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// StaleReport is what UnlinkStale removed (or would remove) and kept.
type StaleReport struct {
	Removed []Removed `json:"removed"`
	Kept    []Kept    `json:"kept"`
	DryRun  bool      `json:"dry_run"`
}

// UnlinkStale removes what something that is gone left behind in DIR (and
// in Docker's netns directory): empty placeholders, dangling symlinks, CNI
// (cni-*) and Docker netns files no runtime knows, and links nsdebug made
// whose owner is gone. A namespace nobody uses but an operator made (`ip
// netns add`, even one with nothing but loopback in it) is kept: removing
// it takes its name.
func UnlinkStale(o StaleOptions) (*StaleReport, error) {
	dir := o.dir()
	rep := &StaleReport{Removed: []Removed{}, Kept: []Kept{}, DryRun: o.DryRun}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	dirs := []string{}
	if _, err := os.Lstat(dir); err == nil {
		dirs = append(dirs, dir)
	}
	if o.DockerNetnsDir != "" && o.DockerAnswered {
		if _, err := os.Lstat(o.DockerNetnsDir); err == nil {
			dirs = append(dirs, o.DockerNetnsDir)
		}
	}
	if len(dirs) == 0 {
		return rep, nil
	}
	scan, err := procfs.ScanNetns(o.procRoot())
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", o.procRoot(), err)
	}
	mounts, err := procfs.NetnsMounts(o.procRoot() + "/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	stateDir := stateDirFor(o.StateDir, dir)
	for _, d := range dirs {
		docker := d != dir
		if err := o.staleIn(d, docker, stateDir, scan, mounts, rep); err != nil {
			return nil, err
		}
	}
	if !o.DryRun {
		dropOrphanRecords(stateDir, dir)
	}
	return rep, nil
}

// dropOrphanRecords removes the records of links that are no longer in dir
// (removed by `ip netns del` or by hand): they name nothing any more.
func dropOrphanRecords(stateDir, dir string) {
	ents, err := os.ReadDir(stateDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".tmp-") {
			continue
		}
		if _, err := os.Lstat(filepath.Join(dir, name)); errors.Is(err, os.ErrNotExist) {
			_ = removeRecord(stateDir, name)
		}
	}
}

// Compiled on first use (unlink --stale), not at every start-up (issue 13).
var dockerNetnsName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{12}$`) })

func (o StaleOptions) staleIn(dir string, docker bool, stateDir string, scan procfs.ScanResult, mounts []procfs.Mount, rep *StaleReport) error {
	lk, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer lk.unlock()
	names, err := readDirNames(dir)
	if err != nil {
		return err
	}
	real := realPath(dir)
	for _, name := range names {
		path := filepath.Join(dir, name)
		keep := func(why string) { rep.Kept = append(rep.Kept, Kept{Name: name, Path: path, Reason: why}) }
		if docker && !dockerNetnsName().MatchString(name) {
			// "default" (the host's), swarm's ingress_sbox, lb_*, 1-*:
			// Docker's own, not a container's.
			keep("Docker's own netns file, not a container's")
			continue
		}
		e, err := classify(o.procRoot(), path)
		if err != nil {
			if errors.Is(err, nserr.ErrNotFound) {
				continue // removed meanwhile
			}
			keep(err.Error())
			continue
		}
		r := Removed{Name: name, Path: path, Kind: e.kind, Inode: e.id.Inode}
		var rec *LinkRecord
		if !docker {
			rec = readRecord(stateDir, name)
		}
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
			if docker {
				// dockerd may run in a mount namespace of its own whose
				// mounts do not show here: not proof of anything.
				keep("Docker's netns file shows no namespace from here (it may be mounted only in dockerd's mount namespace)")
				continue
			}
			if age := o.Now.Sub(e.mtime); age < o.MinAge {
				keep(fmt.Sprintf("empty placeholder only %s old (a link may be being made)", age.Round(time.Second)))
				continue
			}
			r.Reason = "empty placeholder (no namespace mounted on it)"
		case kindNetns:
			why, stale := o.judgeNetns(name, path, real, docker, e, rec, scan, mounts)
			if !stale {
				keep(why)
				continue
			}
			r.Reason = why
		}
		if !o.DryRun {
			if err := removeEntry(path, e.kind); err != nil {
				keep(err.Error())
				continue
			}
			if rec != nil {
				if err := removeRecord(stateDir, name); err != nil {
					keep(err.Error())
				}
			}
		}
		rep.Removed = append(rep.Removed, r)
	}
	return nil
}

// judgeNetns says whether the namespace entry at path is stale, and why (or
// why it is kept).
func (o StaleOptions) judgeNetns(name, path, realDir string, docker bool, e entry, rec *LinkRecord, scan procfs.ScanResult, mounts []procfs.Mount) (string, bool) {
	id := e.id.String()
	if pids := scan.PIDs[e.id]; len(pids) > 0 {
		return fmt.Sprintf("%s is used by %d process(es), e.g. PID %d", id, len(pids), pids[0]), false
	}
	if who, ok := o.Known[e.id]; ok {
		return id + " is known to " + who, false
	}
	if who, ok := o.KnownPaths[path]; ok {
		return "the netns file of " + who, false
	}
	// Other holders: nsfs mounts of the namespace outside this directory
	// (e.g. /run/docker/netns/*, a bind mount an operator made), visible
	// or not.
	for _, m := range mounts {
		if m.ID == e.id && filepath.Dir(m.MountPoint) != realDir {
			return id + " is also mounted at " + m.MountPoint, false
		}
	}
	if !o.RuntimesComplete {
		return id + " is used by no process, but not every runtime answered (one of them may know it)", false
	}
	switch {
	case docker:
		if age := o.Now.Sub(e.mtime); age < o.RuntimeMinAge {
			return fmt.Sprintf("Docker's netns file, only %s old (a container may be starting)", age.Round(time.Second)), false
		}
		return id + ": Docker's netns file of a container Docker does not know, used by no process", true
	case rec != nil && rec.matches(e.id):
		for _, ow := range rec.Owners {
			switch {
			case ow.Runtime == "netns" || ow.Runtime == "path":
				if cur, err := nsfs.StatID(ow.ID); err == nil && cur == e.id {
					return id + " was linked by nsdebug from " + ow.ID + ", which still holds it", false
				}
			case ow.Key() != "":
				if o.OwnerExists == nil {
					return id + " was linked by nsdebug for " + ow.Ref + "; whether that still exists was not asked", false
				}
				exists, err := o.OwnerExists(ow)
				if err != nil {
					return id + " was linked by nsdebug for " + ow.Ref + ", whose runtime could not say whether it still exists: " + err.Error(), false
				}
				if exists {
					return id + " was linked by nsdebug for " + ow.Ref + ", which still exists (not running): kept until it is removed; remove the link by name", false
				}
			}
		}
		return fmt.Sprintf("%s was linked by nsdebug for %s, which is gone (no process uses it, no runtime knows it)", id, recordOwner(rec)), true
	case rec != nil:
		return id + " is not the namespace nsdebug linked under this name (net:[" + strconv.FormatUint(rec.Inode, 10) + "]); someone replaced the link: remove it by name", false
	case strings.HasPrefix(name, "cni-"):
		if !o.CRIAnswered {
			return id + " is a CNI netns file, but no CRI runtime answered to say whose", false
		}
		if age := o.Now.Sub(e.mtime); age < o.RuntimeMinAge {
			return fmt.Sprintf("a CNI netns file only %s old (a pod may be starting)", age.Round(time.Second)), false
		}
		return id + ": a CNI netns file of a pod no CRI runtime knows, used by no process", true
	}
	return id + " is used by no process, but was made by ip netns add or another tool, not by nsdebug link or a runtime: an operator's namespace; remove it by name (nsdebug unlink " + name + ")", false
}

func recordOwner(rec *LinkRecord) string {
	if len(rec.Owners) == 0 {
		return rec.Target
	}
	refs := make([]string, len(rec.Owners))
	for i, o := range rec.Owners {
		refs[i] = o.Ref
	}
	return strings.Join(refs, ", ")
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

// Knowledge is what the runtimes said about the namespaces they use.
type Knowledge struct {
	// Known maps the namespaces of their containers and pods to who uses
	// each; Paths their netns files (as given and with symlinks resolved).
	Known map[nsfs.ID]string
	Paths map[string]string
	// Complete: every runtime answered. Answered: the runtimes (docker,
	// containerd, cri) of which at least one endpoint answered.
	Complete bool
	Answered map[string]bool
	// Notes say which runtime did not answer, and why.
	Notes []string
}

// RuntimeKnowledge asks every runtime (each bounded by the resolver's
// timeout) which network namespaces its running containers and pods use
// (CRI: every pod it has, ready or not, since a not-ready pod keeps its
// netns file until it is stopped).
func RuntimeKnowledge(ctx context.Context, r *resolver.Resolver) Knowledge {
	k := Knowledge{Known: map[nsfs.ID]string{}, Paths: map[string]string{}, Complete: true, Answered: map[string]bool{}}
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
			k.Complete = false
			k.Notes = append(k.Notes, fmt.Sprintf("%s at %s: %v", a.b.Name(), a.b.Endpoint(), a.err))
			continue
		}
		k.Answered[a.b.Name()] = true
		for _, c := range a.cands {
			who := c.Ref()
			if c.NetnsPath != "" {
				k.Paths[c.NetnsPath] = who
				if real, err := filepath.EvalSymlinks(c.NetnsPath); err == nil {
					k.Paths[real] = who
				}
				if id, err := nsfs.StatID(c.NetnsPath); err == nil {
					k.Known[id] = who
				}
			}
			if c.PID > 0 {
				if id, err := nsfs.StatID(r.ProcRoot() + "/" + strconv.Itoa(c.PID) + "/ns/net"); err == nil {
					k.Known[id] = who
				}
			}
		}
	}
	return k
}
