package enter

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/nsfs"
)

// processPin is what exec takes from the target's process: its PID
// namespace (--pid) and its root directory (for /etc files).
type processPin struct {
	pidns *os.File
	root  *os.File
}

func (p *processPin) close() {
	if p.pidns != nil {
		p.pidns.Close()
	}
	if p.root != nil {
		p.root.Close()
	}
}

// pinProcess proves that pid is still the process whose network namespace
// was resolved (pinned as id), and opens what else exec needs from it. The
// netns itself is already pinned by an fd, so the command can only ever run
// there; this check refuses to run at all when the target has gone away or
// its PID now names another process (whose PID namespace and files would be
// wrong). pid 0 means no process is known (netns: and path targets).
func pinProcess(procRoot string, pid int, id nsfs.ID, wantPidNS, wantRoot bool) (*processPin, error) {
	pin := &processPin{}
	if pid <= 0 {
		if wantPidNS {
			return nil, nserr.New(nserr.ErrUsage, "--pid needs a target with a process (a container, pod or pid:N); this one is only a network namespace")
		}
		return pin, nil
	}
	gone := func() error {
		return nserr.New(nserr.ErrStale, "process %d exited after its network namespace was resolved; nothing was run", pid)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	switch {
	case errors.Is(err, unix.ESRCH):
		return nil, gone()
	case errors.Is(err, unix.ENOSYS):
		pidfd = -1 // old kernel: /proc only, as nsenter
	case err != nil:
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	default:
		defer unix.Close(pidfd)
	}
	dir := procRoot + "/" + strconv.Itoa(pid)
	now, err := nsfs.StatID(dir + "/ns/net")
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
		return nil, gone()
	} else if err != nil {
		return nil, fmt.Errorf("check process %d: %w", pid, err)
	}
	if now != id {
		return nil, nserr.New(nserr.ErrStale, "process %d is no longer in the resolved network namespace %s (it is in %s: the process was replaced or its PID reused); nothing was run", pid, id, now)
	}
	if wantPidNS {
		if pin.pidns, err = os.Open(dir + "/ns/pid"); err != nil {
			pin.close()
			if errors.Is(err, os.ErrNotExist) {
				return nil, gone()
			}
			return nil, fmt.Errorf("open PID namespace of %d: %w", pid, err)
		}
	}
	if wantRoot {
		// Only a root that differs from ours holds files of its own.
		var a, b unix.Stat_t
		if unix.Stat(dir+"/root/", &a) == nil && unix.Stat("/", &b) == nil && (a.Dev != b.Dev || a.Ino != b.Ino) {
			if f, err := os.Open(dir + "/root/"); err == nil {
				pin.root = f
			}
		}
	}
	// Everything above was opened while the pidfd held the process: if it
	// is still alive now, it was the right process all along.
	if pidfd >= 0 {
		if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); errors.Is(err, unix.ESRCH) {
			pin.close()
			return nil, gone()
		}
	}
	return pin, nil
}

// targetFiles are the container's resolv.conf and hosts as binds.
type targetFiles struct {
	resolv, hosts *Bind
	notes         []string
}

// containerFiles finds the files the target itself resolves names with: the
// runtime's (Docker's ResolvConfPath/HostsPath, the CRI sandbox's), else
// /etc/netns/NAME's (as ip netns exec), else the process's own root's. A
// target with none keeps the host's files.
func containerFiles(o ExecOptions, root *os.File) *targetFiles {
	tf := &targetFiles{}
	for _, f := range []struct {
		runtime string
		name    string
		dst     **Bind
	}{{o.ResolvConf, "resolv.conf", &tf.resolv}, {o.Hosts, "hosts", &tf.hosts}} {
		dst := "/etc/" + f.name
		if f.runtime != "" {
			err := isRegular(f.runtime)
			if err == nil && strings.HasPrefix(f.runtime, "/proc/") {
				// Below another process's root (the node's, from a helper
				// pod): the kernel binds only within this mount namespace.
				var data []byte
				if data, err = os.ReadFile(f.runtime); err == nil {
					*f.dst = &Bind{Data: data, Dst: dst}
					continue
				}
			}
			if err == nil {
				*f.dst = &Bind{Path: f.runtime, Dst: dst}
				continue
			}
			tf.notes = append(tf.notes, fmt.Sprintf("the runtime's %s for this target is unusable (%v); looking elsewhere", f.name, err))
		}
		if o.EtcNetns != "" {
			if p := filepath.Join(o.EtcNetns, f.name); isRegular(p) == nil {
				*f.dst = &Bind{Path: p, Dst: dst}
				continue
			}
		}
		if root != nil {
			data, err := readInRoot(root, "etc/"+f.name)
			if err == nil {
				*f.dst = &Bind{Data: data, Dst: dst}
				continue
			}
			tf.notes = append(tf.notes, fmt.Sprintf("the target has no usable /etc/%s (%v); the host's is used", f.name, err))
		}
	}
	return tf
}

// isRegular refuses directories, devices and FIFOs as bind sources.
func isRegular(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	return nil
}

// readInRoot reads name as the target sees it: symlinks (e.g. a
// systemd-resolved /etc/resolv.conf inside the container) are resolved
// inside the target's root, never against the host's.
func readInRoot(root *os.File, name string) ([]byte, error) {
	fd, err := unix.Openat2(int(root.Fd()), name, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), root.Name()+name)
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("/%s is not a regular file", name)
	}
	return io.ReadAll(io.LimitReader(f, 1<<20))
}

// loopbackNameservers returns the resolv.conf nameservers on loopback
// addresses (stub resolvers such as systemd-resolved's 127.0.0.53 or
// Docker's 127.0.0.11), which exist only in the netns they were set up in.
func loopbackNameservers(resolvConf []byte) []netip.Addr {
	var out []netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(resolvConf))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			continue
		}
		if a = a.WithZone("").Unmap(); a.IsLoopback() {
			out = append(out, a)
		}
	}
	return out
}

// missingStubs runs on the switched thread: which loopback nameservers have
// no UDP socket bound to them in this netns? Docker's embedded DNS listens
// on 127.0.0.11 at a random port (its iptables rules redirect port 53), so
// any socket on the address counts; a wildcard socket counts on port 53.
func missingStubs(stubs []netip.Addr) []string {
	var bound []netip.AddrPort
	for _, f := range []string{"/proc/thread-self/net/udp", "/proc/thread-self/net/udp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil // cannot tell: stay quiet rather than cry wolf
		}
		bound = append(bound, parseProcNetUDP(b)...)
	}
	var notes []string
	for _, s := range stubs {
		found := false
		for _, ap := range bound {
			a := ap.Addr().Unmap()
			if a == s || (a.IsUnspecified() && ap.Port() == 53 && (a.Is4() == s.Is4() || ap.Addr().Is6())) {
				found = true
				break
			}
		}
		if !found {
			notes = append(notes, fmt.Sprintf("nameserver %s is a loopback stub resolver that does not exist in this network namespace (nothing listens on it); name lookups will fail", s))
		}
	}
	return notes
}

// parseProcNetUDP reads local addresses from /proc/net/udp{,6}: hex, each
// 32-bit word in host (little-endian on the machines nsdebug supports) order.
func parseProcNetUDP(b []byte) []netip.AddrPort {
	var out []netip.AddrPort
	lines := strings.Split(string(b), "\n")
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		hexAddr, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		raw, err := hex.DecodeString(hexAddr)
		if err != nil || (len(raw) != 4 && len(raw) != 16) {
			continue
		}
		for i := 0; i+4 <= len(raw); i += 4 {
			raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
		}
		port, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil {
			continue
		}
		a, _ := netip.AddrFromSlice(raw)
		out = append(out, netip.AddrPortFrom(a, uint16(port)))
	}
	return out
}
