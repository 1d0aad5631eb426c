// Package procfs reads the kernel's side of network namespaces: which
// processes are in which netns (/proc/PID/ns/net), and which netns are held
// by nsfs bind mounts (/proc/self/mountinfo). Every function takes the /proc
// root so unit tests can use fake trees.
package procfs

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/nsdebug/nsdebug/internal/nsfs"
)

// ScanResult maps each network namespace seen under /proc to its PIDs.
type ScanResult struct {
	PIDs map[nsfs.ID][]int
	// Unreadable counts processes whose ns/net could not be read (permission:
	// e.g. PID 1 on hardened hosts) — they are skipped, not fatal.
	Unreadable int
}

// ScanNetns stats procRoot/PID/ns/net for every process, as lsns does.
func ScanNetns(procRoot string) (ScanResult, error) {
	res := ScanResult{PIDs: map[nsfs.ID][]int{}}
	d, err := os.Open(procRoot)
	if err != nil {
		return res, err
	}
	defer d.Close()
	var b strings.Builder
	for {
		names, err := d.Readdirnames(1024)
		for _, name := range names {
			pid, perr := strconv.Atoi(name)
			if perr != nil || pid <= 0 {
				continue
			}
			b.Reset()
			b.WriteString(procRoot)
			b.WriteByte('/')
			b.WriteString(name)
			b.WriteString("/ns/net")
			id, serr := nsfs.StatID(b.String())
			if serr != nil {
				if !os.IsNotExist(serr) { // a process that just exited is not news
					res.Unreadable++
				}
				continue
			}
			res.PIDs[id] = append(res.PIDs[id], pid)
		}
		if err == io.EOF || len(names) == 0 {
			break
		}
		if err != nil {
			return res, err
		}
	}
	for _, pids := range res.PIDs {
		sort.Ints(pids)
	}
	return res, nil
}

// Mount is one nsfs mount of a network namespace.
type Mount struct {
	MountID    int
	ParentID   int
	MountPoint string
	ID         nsfs.ID // from the mount's root "net:[INODE]" and its device
}

// MountInfo is one line of a mountinfo file.
type MountInfo struct {
	ID, Parent int
	Dev        uint64 // st_dev of the mount's filesystem (major:minor)
	Root       string // the mounted path inside it: "net:[INODE]" for nsfs
	MountPoint string
	Shared     bool // "shared:N" among the optional fields
	FSType     string
}

// ParseMountInfoLine parses one mountinfo line,
// "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:5 - ext3 /dev/root rw".
func ParseMountInfoLine(line string) (MountInfo, bool) {
	pre, post, ok := strings.Cut(line, " - ")
	if !ok {
		return MountInfo{}, false
	}
	f := strings.Fields(pre)
	if len(f) < 6 {
		return MountInfo{}, false
	}
	id, err1 := strconv.Atoi(f[0])
	parent, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return MountInfo{}, false
	}
	m := MountInfo{ID: id, Parent: parent, Dev: devOf(f[2]), Root: Unescape(f[3]), MountPoint: Unescape(f[4])}
	for _, opt := range f[6:] {
		if strings.HasPrefix(opt, "shared:") {
			m.Shared = true
		}
	}
	if pf := strings.Fields(post); len(pf) > 0 {
		m.FSType = pf[0]
	}
	return m, true
}

// ReadMountInfo parses a mountinfo file (normally /proc/self/mountinfo).
func ReadMountInfo(path string) ([]MountInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseMountInfo(f)
}

func parseMountInfo(r io.Reader) ([]MountInfo, error) {
	var out []MountInfo
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if m, ok := ParseMountInfoLine(sc.Text()); ok {
			out = append(out, m)
		}
	}
	return out, sc.Err()
}

// NetnsMounts parses a mountinfo file and returns the nsfs mounts of network
// namespaces (e.g. /run/netns/*, /run/docker/netns/*). Mounts hidden under a
// later mount are listed too: mountinfo still shows them.
func NetnsMounts(mountinfo string) ([]Mount, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseNetnsMounts(f)
}

func parseNetnsMounts(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// 36 35 0:4 net:[4026532300] /run/netns/x rw,... shared:5 - nsfs nsfs rw
		// Only lines that can be nsfs are parsed (half of ls's mountinfo
		// time with 500 named netns): mountinfo escapes spaces in paths
		// (\040), so " - nsfs " is the separator and the type, or absent.
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(" - nsfs ")) {
			continue
		}
		m, ok := ParseMountInfoLine(string(line))
		if !ok || m.FSType != "nsfs" || !strings.HasPrefix(m.Root, "net:[") || !strings.HasSuffix(m.Root, "]") {
			continue
		}
		ino, err := strconv.ParseUint(m.Root[5:len(m.Root)-1], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, Mount{MountID: m.ID, ParentID: m.Parent, MountPoint: m.MountPoint, ID: nsfs.ID{Dev: m.Dev, Inode: ino}})
	}
	return out, nil
}

// HiddenNetnsMountAt returns the namespace ("net:[N]") of an nsfs mount that
// mountinfo lists at path (or at real, its resolved form) but that path does
// not show because a later mount covers it (the /run/netns re-mount trap),
// or "".
func HiddenNetnsMountAt(procRoot, path, real string) string {
	mounts, err := NetnsMounts(procRoot + "/self/mountinfo")
	if err != nil {
		return ""
	}
	for _, m := range mounts {
		if (m.MountPoint == real || m.MountPoint == path) && !m.Visible() {
			return m.ID.String()
		}
	}
	return ""
}

// devOf turns "major:minor" into the st_dev encoding stat(2) returns.
func devOf(s string) uint64 {
	maj, min, ok := strings.Cut(s, ":")
	if !ok {
		return 0
	}
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(min, 10, 32)
	if err1 != nil || err2 != nil {
		return 0
	}
	// Linux's new_encode_dev, as glibc's makedev.
	return (mi & 0xff) | (ma&0xfff)<<8 | (mi&^0xff)<<12 | (ma&^0xfff)<<32
}

// Unescape undoes mountinfo's octal escapes (\040 space, \012 newline).
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Visible reports whether the mount point still shows the mounted namespace:
// false when a later mount covers it (the file shows something else).
func (m Mount) Visible() bool {
	id, err := nsfs.StatID(m.MountPoint)
	return err == nil && id == m.ID
}

// ContainerIDs returns the container IDs that the cgroups of pids name, in
// order of first appearance: every run of exactly 64 lowercase hex digits in
// their /proc/PID/cgroup (Docker's /docker/ID and docker-ID.scope, Podman's
// libpod-ID.scope, containerd's cri-containerd-ID.scope, under any parent).
// A process that has exited meanwhile names none.
func ContainerIDs(procRoot string, pids []int) []string {
	var out []string
	seen := map[string]bool{}
	for _, pid := range pids {
		data, err := os.ReadFile(procRoot + "/" + strconv.Itoa(pid) + "/cgroup")
		if err != nil {
			continue
		}
		for _, id := range hexIDs(data) {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out
}

func hexIDs(data []byte) []string {
	var out []string
	isHex := func(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }
	for i := 0; i < len(data); {
		if !isHex(data[i]) {
			i++
			continue
		}
		j := i
		for j < len(data) && isHex(data[j]) {
			j++
		}
		if j-i == 64 {
			out = append(out, string(data[i:j]))
		}
		i = j
	}
	return out
}
