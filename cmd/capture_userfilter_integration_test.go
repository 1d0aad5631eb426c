package cmd

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// A filter whose program the kernel refuses as too big (ENOMEM: larger,
// once converted to eBPF, than the netns's net.core.optmem_max) runs in
// user space, as libpcap does. The expression is 150 `host` terms of which
// only the first matches the test's traffic: nsdebug's program for it is
// about 1,200 instructions with 600 packet loads, tcpdump's about 660.
// Round "default": both fit the default 128 KiB and filter in the kernel.
// Round "small optmem" (optmem_max 2048 in the test's own netns, as on a
// host whose limit is low): both programs are refused and both fall back.
// In both rounds nsdebug captures exactly what tcpdump captures and what
// nsdebug itself captures with the one matching term alone (filtered in
// the kernel), on the Ethernet interface (and on -i any in the second
// round); the note is on stderr only where nsdebug falls back, the
// socket's kernel filter (ss -0 -b, second round) is the accept-all one,
// tcpdump's warning says where it filters, and the counters count what the
// user-space program accepted.
func TestCaptureFilterInUserSpace(t *testing.T) {
	requireTcpdump(t)
	p := newCapturePair(t)
	terms := []string{"host " + p.V4B}
	for i := 0; i < 149; i++ {
		terms = append(terms, fmt.Sprintf("host 10.77.%d.%d", i/200, 1+i%200))
	}
	big := strings.Join(terms, " or ")
	bin := nsdebugBinary(t)

	// -i any only with the small optmem: at 128 KiB the kernel takes
	// nsdebug's cooked program (it loads the protocol from the kernel's
	// ancillary field, not from the packet: fewer of the loads that cost
	// 112 bytes each), and ss prints nothing at all for a netns with a
	// socket whose filter is that big.
	for _, round := range []struct {
		name             string
		optmem           string
		tcpdumpFallsBack bool
		ifaces           []string
	}{
		{"default", "", false, []string{p.IfA}},
		{"small optmem", "2048", true, []string{p.IfA, "any"}},
	} {
		t.Run(round.name, func(t *testing.T) {
			if round.optmem != "" {
				// Only in the test's netns (optmem_max is per netns since
				// Linux 6.9), which goes away with the test.
				old := strings.TrimSpace(testbed.MustRun(t, "ip", "netns", "exec", p.A.Name, "sysctl", "-n", "net.core.optmem_max"))
				testbed.MustRun(t, "ip", "netns", "exec", p.A.Name, "sysctl", "-qw", "net.core.optmem_max="+round.optmem)
				t.Cleanup(func() { testbed.Run("ip", "netns", "exec", p.A.Name, "sysctl", "-qw", "net.core.optmem_max="+old) })
			}
			dir := t.TempDir()
			type run struct {
				name, file string
				pr         *proc
				lt         layers.LinkType
				userSpace  bool // nsdebug expected to filter in user space
				nsdebug    bool
			}
			var runs []*run
			for _, iface := range round.ifaces {
				tf := filepath.Join(dir, "tcpdump-"+iface+".pcap")
				targs := []string{"--net=" + p.A.Path, "tcpdump", "-i", iface, "-w", tf}
				if iface == "any" {
					targs = append(targs, "-y", "LINUX_SLL2")
				}
				runs = append(runs, &run{name: "tcpdump -i " + iface, file: tf, pr: startCapture(t, nil, "nsenter", append(targs, big)...)})
				for _, expr := range []string{big, "host " + p.V4B} {
					kind := "big"
					if expr != big {
						kind = "small"
					}
					nf := filepath.Join(dir, "nsdebug-"+iface+"-"+kind+".pcapng")
					nargs := []string{"capture", "netns:" + p.A.Name, "-i", iface, "-w", nf, expr}
					runs = append(runs, &run{name: "nsdebug -i " + iface + " " + kind, file: nf, nsdebug: true, userSpace: expr == big && round.optmem != "",
						pr: startCapture(t, nil, bin, nargs...)})
				}
			}
			for _, r := range runs {
				r.pr.waitReady(t)
			}
			// Every socket's kernel filter, by owner PID: the proof that
			// each side filtered where the test says.
			// ss -0 -b only where every filter is small: the kernel's
			// packet diag cannot dump a filter over about 4 KiB (500
			// instructions; tcpdump's here is 659), and then ss prints
			// no socket at all.
			filters, ssOut := map[int]int{}, ""
			if round.optmem != "" {
				filters, ssOut = socketFilters(t, p.A.Name)
			}
			for _, r := range runs {
				if !r.nsdebug {
					// libpcap warns when it filters in user space for ENOMEM.
					warned := strings.Contains(r.pr.stderr.String(), "Couldn't allocate kernel memory for filter")
					if warned != round.tcpdumpFallsBack {
						t.Errorf("%s: fell back to user space %v, want %v: %s", r.name, warned, round.tcpdumpFallsBack, r.pr.stderr.String())
					}
				}
				n, ok := filters[r.pr.cmd.Process.Pid]
				switch {
				case round.optmem == "":
				case !ok:
					t.Errorf("%s: no packet socket of PID %d in ss -0 -b -p:\n%s", r.name, r.pr.cmd.Process.Pid, ssOut)
				case r.nsdebug && r.userSpace && n != 1:
					t.Errorf("%s: kernel filter of %d instructions, want the 1-instruction accept-all", r.name, n)
				case r.nsdebug && !r.userSpace && n <= 1:
					t.Errorf("%s: kernel filter of %d instructions, want the real one", r.name, n)
				case !r.nsdebug && round.tcpdumpFallsBack && n != 0:
					t.Errorf("%s: tcpdump kept a kernel filter (%d instructions): it did not fall back, the round proves nothing", r.name, n)
				case !r.nsdebug && !round.tcpdumpFallsBack && n <= 1:
					t.Errorf("%s: tcpdump has no kernel filter (%d)", r.name, n)
				}
				note := strings.Contains(r.pr.stderr.String(), "filtering in user space")
				if r.nsdebug && note != r.userSpace {
					t.Errorf("%s: user-space note %v, want %v: %s", r.name, note, r.userSpace, r.pr.stderr.String())
				}
			}
			time.Sleep(200 * time.Millisecond)
			from := time.Now()
			p.traffic(t)
			time.Sleep(300 * time.Millisecond)
			to := time.Now()
			time.Sleep(1200 * time.Millisecond) // libpcap's block timeout
			for _, r := range runs {
				r.pr.stop(t)
			}
			got := map[string][]pkt{}
			for _, r := range runs {
				all, lt := readCapture(t, r.file)
				r.lt = lt
				if r.nsdebug {
					captured, recv, dropped := parseCounts(t, r.pr.stderr.String())
					if captured != len(all) || dropped != 0 || recv < captured {
						t.Errorf("%s: counters %d captured, %d received, %d dropped for %d packets in the file", r.name, captured, recv, dropped, len(all))
					}
				}
				got[r.name] = byLinkHeader(within(all, from, to), lt)
			}
			for _, iface := range round.ifaces {
				ref := got["tcpdump -i "+iface]
				if len(ref) < 10 {
					t.Fatalf("-i %s: tcpdump captured only %d packets of the traffic", iface, len(ref))
				}
				for _, kind := range []string{"big", "small"} {
					name := "nsdebug -i " + iface + " " + kind
					g := got[name]
					lt := layers.LinkTypeEthernet
					if iface == "any" {
						lt = layers.LinkTypeLinuxSLL2
					}
					if len(g) != len(ref) {
						t.Errorf("%s: %d packets, tcpdump %d\n%s", name, len(g), len(ref), diffPkts(g, ref, lt))
						continue
					}
					for i := range ref {
						if !bytes.Equal(g[i].data, ref[i].data) {
							t.Errorf("%s: packet %d differs:\n got %x\nwant %x", name, i, g[i].data, ref[i].data)
							break
						}
					}
				}
			}
		})
	}
}

var (
	ssSockRe   = regexp.MustCompile(`^p_(raw|dgr)\s.*pid=(\d+),`)
	ssFilterRe = regexp.MustCompile(`^\s+bpf filter \((\d+)\):`)
)

// socketFilters maps the PID owning each packet socket in netns to the
// length of its kernel filter (0: none), from ss -0 -b -p (also returned).
func socketFilters(t *testing.T, netns string) (map[int]int, string) {
	t.Helper()
	out := testbed.MustRun(t, "ip", "netns", "exec", netns, "ss", "-0", "-b", "-p")
	res := map[int]int{}
	last := 0
	for _, l := range strings.Split(out, "\n") {
		if m := ssSockRe.FindStringSubmatch(l); m != nil {
			last, _ = strconv.Atoi(m[2])
			res[last] = 0
			continue
		}
		if m := ssFilterRe.FindStringSubmatch(l); m != nil && last != 0 {
			res[last], _ = strconv.Atoi(m[1])
		}
	}
	return res, out
}
