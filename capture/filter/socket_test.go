package filter

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// attach loads prog into the kernel on a throwaway UDP socket: the kernel's
// classic BPF checker is the same for every socket type, and needs no
// privilege for a socket of one's own. While it replaces a filter the
// kernel charges the old and the new one together to the socket's option
// memory (net.core.optmem_max), so a 1-instruction filter goes first, as
// capture's reject-all one does: the limit met is the program's own.
func attach(fd int, prog []bpf.RawInstruction) error {
	one := []bpf.RawInstruction{{Op: 0x06, K: 0}}
	fp := unix.SockFprog{Len: 1, Filter: (*unix.SockFilter)(unsafe.Pointer(&one[0]))}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fp); err != nil {
		return err
	}
	fp = unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fp)
}

func udpSocket(t testing.TB) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// TestKernelAcceptsCorpus: every program nsdebug makes from the corpus, for
// files and for sockets of every link type, is accepted by the kernel.
func TestKernelAcceptsCorpus(t *testing.T) {
	fd := udpSocket(t)
	n := 0
	for _, expr := range readExprs(t, "testdata/exprs.txt") {
		type variant struct {
			name string
			f    func() ([]bpf.RawInstruction, error)
		}
		for _, v := range []variant{
			{"EN10MB", func() ([]bpf.RawInstruction, error) { return Compile(expr, EN10MB, 0) }},
			{"RAW", func() ([]bpf.RawInstruction, error) { return Compile(expr, Raw, 0) }},
			{"EN10MB socket", func() ([]bpf.RawInstruction, error) { return CompileForSocket(expr, EN10MB, false, 0) }},
			{"SLL cooked", func() ([]bpf.RawInstruction, error) { return CompileForSocket(expr, LinuxSLL, true, 0) }},
			{"SLL2 cooked", func() ([]bpf.RawInstruction, error) { return CompileForSocket(expr, LinuxSLL2, true, 0) }},
		} {
			prog, err := v.f()
			if err != nil {
				continue
			}
			if err := attach(fd, prog); err != nil {
				t.Errorf("%s %q: kernel refuses the program: %v\n%s", v.name, expr, err, dump(prog))
			}
			n++
		}
	}
	if n < 500 {
		t.Fatalf("only %d programs attached", n)
	}
	t.Logf("%d programs attached", n)
}

// requireRoot: tcpdump needs root to open a live device.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root (tcpdump -d -i lo opens a live device)")
		}
		t.Skip("needs root (with CI=true this fails)")
	}
}

func tcpdumpLive(t testing.TB, tcpdump, iface, expr string, snaplen int, optimize bool) ([]bpf.RawInstruction, error) {
	args := []string{"-ddd", "-i", iface, "-s", strconv.Itoa(snaplen)}
	if !optimize {
		args = append(args, "-O")
	}
	cmd := exec.Command(tcpdump, append(args, "--", expr)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.New(strings.TrimSpace(stderr.String()))
	}
	return parseDDD(string(out))
}

// stripVLAN is what the kernel does with an 802.1Q/802.1ad tag on receive:
// the outer tag moves out of the packet into metadata.
func stripVLAN(frame []byte) ([]byte, meta, bool) {
	if len(frame) < 18 {
		return nil, meta{}, false
	}
	tpid := binary.BigEndian.Uint16(frame[12:])
	if tpid != 0x8100 && tpid != 0x88a8 {
		return nil, meta{}, false
	}
	out := append(append([]byte{}, frame[:12]...), frame[16:]...)
	return out, meta{vlanPresent: true, vlanTCI: binary.BigEndian.Uint16(frame[14:]), proto: binary.BigEndian.Uint16(frame[16:])}, true
}

// TestSocketVLANMatchesTcpdump: for an Ethernet socket, where the kernel
// takes VLAN tags out of the packet, libpcap's live programs test them with
// SKF_AD_VLAN_TAG_PRESENT/SKF_AD_VLAN_TAG and variable offsets. nsdebug's
// CompileForSocket programs are compared with `tcpdump -ddd -i lo` (a live
// Ethernet-type device) over the corpus, each packet once as it is and,
// when tagged, once with its outer tag stripped into metadata, run in the
// reference interpreter (the VM refuses ancillary loads).
func TestSocketVLANMatchesTcpdump(t *testing.T) {
	tcpdump := requireTcpdump(t)
	requireRoot(t)
	const snaplen = 128
	pkts := genCorpus()
	var pairs, stripped int
	for _, expr := range readExprs(t, "testdata/exprs.txt") {
		if strings.Contains(expr, "ip broadcast") {
			// a live tcpdump knows the device's netmask; nsdebug's programs
			// use none (as tcpdump -i any)
			continue
		}
		ref, refErr := tcpdumpLive(t, tcpdump, "lo", expr, snaplen, true)
		got, gotErr := CompileForSocket(expr, EN10MB, false, snaplen)
		if (refErr == nil) != (gotErr == nil) {
			t.Errorf("%q: tcpdump: %v; nsdebug: %v", expr, refErr, gotErr)
			continue
		}
		if refErr != nil {
			continue
		}
		unopt, err := tcpdumpLive(t, tcpdump, "lo", expr, snaplen, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkts {
			forms := []struct {
				data []byte
				m    meta
			}{{p.frame, meta{proto: etherType(p.frame)}}}
			if s, m, ok := stripVLAN(p.frame); ok {
				forms = append(forms, struct {
					data []byte
					m    meta
				}{s, m})
				stripped++
			}
			for _, f := range forms {
				pairs++
				want, _ := runBPF(ref, f.data, f.m)
				have, err := runBPF(got, f.data, f.m)
				if err != nil {
					t.Fatal(err)
				}
				if want == have {
					continue
				}
				if strings.HasPrefix(p.name, "cut") {
					if u, _ := runBPF(unopt, f.data, f.m); u == have {
						continue
					}
				}
				t.Errorf("%q on %s (vlan in metadata %v): tcpdump's program returns %d, nsdebug's %d\ntcpdump:\n%snsdebug:\n%s",
					expr, p.name, f.m.vlanPresent, want, have, dump(ref), dump(got))
				break
			}
		}
	}
	t.Logf("%d (expression, packet) pairs, %d with the VLAN tag in metadata", pairs, stripped)
}

func etherType(f []byte) uint16 {
	if len(f) < 14 {
		return 0
	}
	return binary.BigEndian.Uint16(f[12:])
}

// usesLen: the expression's result depends on the packet length, which on
// a cooked socket is the network packet's (the kernel's skb->len), not the
// cooked frame's: libpcap does not adjust it, nor does nsdebug.
func usesLen(expr string) bool {
	return strings.Contains(expr, "len") || strings.Contains(expr, "less") || strings.Contains(expr, "greater")
}

// TestCookedRewrite: the program for a cooked socket, run on the network
// packet with the cooked header's fields as kernel metadata, decides as the
// LINUX_SLL/LINUX_SLL2 program on the whole cooked frame, for every corpus
// expression and packet (both run in the reference interpreter).
func TestCookedRewrite(t *testing.T) {
	pkts := genCorpus()
	var pairs, refused int
	for _, lt := range []LinkType{LinuxSLL, LinuxSLL2} {
		hdr := sllHdrLen
		if lt == LinuxSLL2 {
			hdr = sll2HdrLen
		}
		for _, expr := range readExprs(t, "testdata/exprs.txt") {
			file, fileErr := Compile(expr, lt, 128)
			sock, sockErr := CompileForSocket(expr, lt, true, 128)
			if fileErr != nil {
				if sockErr == nil {
					t.Errorf("%s %q: no file program (%v) but a socket one", lt, expr, fileErr)
				}
				continue
			}
			if sockErr != nil {
				// only loads of the cooked header's other fields are refused
				if !strings.Contains(expr, "link[") && !strings.Contains(expr, "ether[") {
					t.Errorf("%s %q: socket program refused: %v", lt, expr, sockErr)
				}
				refused++
				continue
			}
			if usesLen(expr) || strings.Contains(expr, "link[") || strings.Contains(expr, "ether[") {
				// loads from the cooked header are libpcap's field mapping,
				// checked by TestCookedRewriteRules: a load of any size at a
				// field's offset becomes the whole field (ldb [0] on SLL is
				// the packet type, not its high byte)
				continue
			}
			for _, p := range pkts {
				full, ok := p.asLinkType(lt)
				if !ok || len(full) < hdr {
					continue
				}
				m := meta{proto: etherType(p.frame), pktType: uint8(p.pkt), ifindex: uint32(2 + p.pkt)}
				want, err1 := runBPF(file, full, m)
				have, err2 := runBPF(sock, full[hdr:], m)
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				pairs++
				if want != have {
					t.Errorf("%s %q on %s: file program %d, cooked socket program %d\nfile:\n%ssocket:\n%s", lt, expr, p.name, want, have, dump(file), dump(sock))
					break
				}
			}
		}
	}
	t.Logf("%d (expression, packet) pairs agree; %d expressions refused for cooked sockets", pairs, refused)
}

// TestCookedRewriteRules checks the rewrite against libpcap's fix_offset
// rules by hand.
func TestCookedRewriteRules(t *testing.T) {
	ad := func(k uint32) uint32 { return skfADOff + k }
	cases := []struct {
		lt   LinkType
		expr string
		want []bpf.RawInstruction
	}{
		// SLL2: protocol at 0 -> SKF_AD_PROTOCOL
		{LinuxSLL2, "ip", []bpf.RawInstruction{
			{Op: 0x28, K: ad(skfADProtocol)}, {Op: 0x15, Jt: 0, Jf: 1, K: 0x800}, {Op: 0x06, K: 128}, {Op: 0x06, K: 0}}},
		// SLL: protocol at 14
		{LinuxSLL, "arp", []bpf.RawInstruction{
			{Op: 0x28, K: ad(skfADProtocol)}, {Op: 0x15, Jt: 0, Jf: 1, K: 0x806}, {Op: 0x06, K: 128}, {Op: 0x06, K: 0}}},
		// SLL2: packet type at 10 -> SKF_AD_PKTTYPE; interface index at 4 -> SKF_AD_IFINDEX
		{LinuxSLL2, "link[10] = 4", []bpf.RawInstruction{
			{Op: 0x30, K: ad(skfADPktType)}, {Op: 0x15, Jt: 0, Jf: 1, K: 4}, {Op: 0x06, K: 128}, {Op: 0x06, K: 0}}},
		{LinuxSLL2, "link[4:4] = 3", []bpf.RawInstruction{
			{Op: 0x20, K: ad(skfADIfIndex)}, {Op: 0x15, Jt: 0, Jf: 1, K: 3}, {Op: 0x06, K: 128}, {Op: 0x06, K: 0}}},
		// SLL: packet type at 0
		{LinuxSLL, "link[0:2] = 4", []bpf.RawInstruction{
			{Op: 0x28, K: ad(skfADPktType)}, {Op: 0x15, Jt: 0, Jf: 1, K: 4}, {Op: 0x06, K: 128}, {Op: 0x06, K: 0}}},
		// libpcap maps by offset whatever the size: ldb [0] is the packet type
		{LinuxSLL, "link[0] & 1 = 1", []bpf.RawInstruction{
			{Op: 0x30, K: ad(skfADPktType)}, {Op: 0x54, K: 1}, {Op: 0x15, Jt: 0, Jf: 1, K: 1}, {Op: 0x06, K: 128}, {Op: 0x06, K: 0}}},
		// payload loads move back by the header length, indexed and MSH too
		{LinuxSLL, "udp[0:2] = 53", []bpf.RawInstruction{
			{Op: 0x28, K: ad(skfADProtocol)}, {Op: 0x15, Jt: 0, Jf: 8, K: 0x800},
			{Op: 0x30, K: 9}, {Op: 0x15, Jt: 0, Jf: 6, K: 17},
			{Op: 0x28, K: 6}, {Op: 0x45, Jt: 4, Jf: 0, K: 0x1fff},
			{Op: 0xb1, K: 0}, {Op: 0x48, K: 0}, {Op: 0x15, Jt: 0, Jf: 1, K: 53},
			{Op: 0x06, K: 128}, {Op: 0x06, K: 0}}},
		{LinuxSLL2, "ip6 and ip6[40] = 128", []bpf.RawInstruction{
			{Op: 0x28, K: ad(skfADProtocol)}, {Op: 0x15, Jt: 0, Jf: 3, K: 0x86dd},
			{Op: 0x30, K: 40}, {Op: 0x15, Jt: 0, Jf: 1, K: 128},
			{Op: 0x06, K: 128}, {Op: 0x06, K: 0}}},
	}
	for _, c := range cases {
		got, err := CompileForSocket(c.expr, c.lt, true, 128)
		if err != nil {
			t.Errorf("%s %q: %v", c.lt, c.expr, err)
			continue
		}
		if !equalProg(got, c.want) {
			t.Errorf("%s %q:\ngot:\n%swant:\n%s", c.lt, c.expr, dump(got), dump(c.want))
		}
	}
	// other bytes of the cooked header are not available to the kernel
	for _, c := range []struct {
		lt   LinkType
		expr string
	}{{LinuxSLL2, "link[2] = 0"}, {LinuxSLL2, "link[8:2] = 1"}, {LinuxSLL, "link[2:2] = 1"}, {LinuxSLL, "link[6] = 0"}} {
		if _, err := CompileForSocket(c.expr, c.lt, true, 128); err == nil {
			t.Errorf("%s %q: the kernel cannot do this load, want an error", c.lt, c.expr)
		}
	}
	if _, err := CompileForSocket("ip", EN10MB, true, 0); err == nil {
		t.Error("cooked EN10MB: want an error")
	}
}

func equalProg(a, b []bpf.RawInstruction) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
