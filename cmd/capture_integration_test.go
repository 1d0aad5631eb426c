package cmd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/nsdebug/nsdebug/capture"
	"github.com/nsdebug/nsdebug/capture/filter"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

// capturePair is two namespaces joined by a veth: traffic is made in A
// towards B (and on A's loopback), captured in A.
type capturePair struct {
	A, B   *testbed.NetNS
	IfA    string
	MacA   net.HardwareAddr
	V4B    string
	V6B    string
	HTTPPt int
}

func newCapturePair(t *testing.T) *capturePair {
	t.Helper()
	testbed.RequireRoot(t)
	a := testbed.NewNetNS(t, "capa")
	b := testbed.NewNetNS(t, "capb")
	ifa, ifb := fmt.Sprintf("cpa%d", os.Getpid()%100000), fmt.Sprintf("cpb%d", os.Getpid()%100000)
	testbed.MustRun(t, "ip", "link", "add", ifa, "netns", a.Name, "type", "veth", "peer", "name", ifb, "netns", b.Name)
	for _, c := range [][]string{
		{"-n", a.Name, "addr", "add", "10.251.0.1/24", "dev", ifa},
		{"-n", b.Name, "addr", "add", "10.251.0.2/24", "dev", ifb},
		{"-n", a.Name, "addr", "add", "fd00:251::1/64", "dev", ifa, "nodad"},
		{"-n", b.Name, "addr", "add", "fd00:251::2/64", "dev", ifb, "nodad"},
		{"-n", a.Name, "link", "set", "lo", "up"},
		{"-n", b.Name, "link", "set", "lo", "up"},
		{"-n", a.Name, "link", "set", ifa, "up"},
		{"-n", b.Name, "link", "set", ifb, "up"},
	} {
		testbed.MustRun(t, "ip", c...)
	}
	p := &capturePair{A: a, B: b, IfA: ifa, V4B: "10.251.0.2", V6B: "fd00:251::2", HTTPPt: 40080}
	link := testbed.MustRun(t, "ip", "-n", a.Name, "-o", "link", "show", ifa)
	m := regexp.MustCompile(`link/ether ([0-9a-f:]+)`).FindStringSubmatch(link)
	if m == nil {
		t.Fatalf("no MAC in %q", link)
	}
	p.MacA, _ = net.ParseMAC(m[1])
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), bytes.Repeat([]byte("x"), 3000), 0o644)
	b.StartProcess(t, "busybox", "httpd", "-f", "-p", strconv.Itoa(p.HTTPPt), "-h", dir)
	time.Sleep(300 * time.Millisecond) // the link's own IPv6 and MLD chatter
	return p
}

// traffic makes a fixed mix in A: ICMP and ICMPv6 of two sizes, UDP,
// HTTP over IPv4 and IPv6 (TCP handshakes, data, FIN), ARP, loopback.
func (p *capturePair) traffic(t *testing.T) {
	t.Helper()
	sh := func(script string) {
		t.Helper()
		if out, err := testbed.Run("ip", "netns", "exec", p.A.Name, "bash", "-c", script); err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
	}
	sh("ip neigh flush dev " + p.IfA)
	sh("busybox ping -c 3 -i 0.05 -W 1 " + p.V4B)
	sh("busybox ping -c 2 -i 0.05 -s 1000 -W 1 " + p.V4B)
	sh("busybox ping6 -c 2 -i 0.05 -W 1 " + p.V6B)
	sh("busybox ping -c 2 -i 0.05 -W 1 127.0.0.1")
	sh("for i in 1 2 3 4 5; do echo udp$i > /dev/udp/" + p.V4B + "/40001; done")
	sh("echo six > /dev/udp/" + p.V6B + "/40003")
	sh(fmt.Sprintf("busybox wget -q -O /dev/null http://%s:%d/", p.V4B, p.HTTPPt))
	sh(fmt.Sprintf("busybox wget -q -O /dev/null http://[%s]:%d/", p.V6B, p.HTTPPt))
	sh(fmt.Sprintf("busybox wget -q -O /dev/null http://127.0.0.1:%d/ || true", p.HTTPPt))
	sh("busybox arping -c 1 -w 1 -I " + p.IfA + " " + p.V4B + " || true")
}

// proc is a capture process whose stderr is watched for its "listening"
// line.
type proc struct {
	cmd    *exec.Cmd
	stderr *testbed.SyncBuffer
	ready  chan struct{}
}

func startCapture(t *testing.T, stdout io.Writer, name string, args ...string) *proc {
	t.Helper()
	c := exec.Command(name, args...)
	c.Stdout = stdout
	pr, pw := io.Pipe()
	p := &proc{cmd: c, stderr: &testbed.SyncBuffer{}, ready: make(chan struct{})}
	c.Stderr = pw
	go func() {
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			fmt.Fprintln(p.stderr, sc.Text())
			if strings.Contains(sc.Text(), "listening on") {
				once.Do(func() { close(p.ready) })
			}
		}
	}()
	if err := c.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if c.ProcessState == nil {
			c.Process.Kill()
			c.Wait()
		}
		pw.Close()
	})
	go func() {
		select {
		case <-p.ready:
		case <-time.After(10 * time.Second):
		}
	}()
	return p
}

func (p *proc) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-p.ready:
	case <-time.After(10 * time.Second):
		t.Fatalf("%v not listening after 10s: %s", p.cmd.Args, p.stderr.String())
	}
}

// stop sends SIGINT and waits; tcpdump and nsdebug both exit 0 on it.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%v: %v\n%s", p.cmd.Args, err, p.stderr.String())
		}
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("%v did not stop on SIGINT: %s", p.cmd.Args, p.stderr.String())
	}
}

type pkt struct {
	ts   time.Time
	data []byte
	dir  int // pcapng direction flag: 1 in, 2 out, 0 unknown
	ifc  string
}

// readCapture reads a pcap or pcapng file with pcapgo (and checks it is
// valid for tcpdump -r as well).
func readCapture(t *testing.T, path string) (pkts []pkt, lt layers.LinkType) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tcpdump", "-nn", "-r", path).CombinedOutput(); err != nil {
		t.Fatalf("tcpdump -r %s: %v\n%s", path, err, out)
	}
	if bytes.HasPrefix(raw, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		r, err := pcapgo.NewNgReader(bytes.NewReader(raw), pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for {
			data, ci, opts, err := r.ReadPacketDataWithOptions()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			dir := 0
			if opts.Flags != nil {
				dir = int(opts.Flags.Direction)
			}
			ifc, _ := r.Interface(ci.InterfaceIndex)
			pkts = append(pkts, pkt{ci.Timestamp, append([]byte(nil), data...), dir, ifc.Name})
		}
		return pkts, r.LinkType()
	}
	r, err := pcapgo.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		pkts = append(pkts, pkt{ts: ci.Timestamp, data: append([]byte(nil), data...)})
	}
	return pkts, r.LinkType()
}

// byLinkHeader orders packets by their link header (addresses, cooked
// packet type and interface), keeping each header's packets in the order
// captured. The kernel hands every tap a packet in the order it saw it on
// one CPU, but a packet sent on one CPU and one received on the other reach
// two sockets in either order: only the order within one direction and
// interface is the same for tcpdump and nsdebug.
func byLinkHeader(pkts []pkt, lt layers.LinkType) []pkt {
	n := map[layers.LinkType]int{layers.LinkTypeEthernet: 14, layers.LinkTypeLinuxSLL: 16, layers.LinkTypeLinuxSLL2: 20}[lt]
	key := func(p pkt) string {
		if len(p.data) < n {
			return string(p.data)
		}
		return string(p.data[:n])
	}
	sort.SliceStable(pkts, func(i, j int) bool { return key(pkts[i]) < key(pkts[j]) })
	return pkts
}

func within(pkts []pkt, from, to time.Time) []pkt {
	var out []pkt
	for _, p := range pkts {
		if !p.ts.Before(from) && !p.ts.After(to) {
			out = append(out, p)
		}
	}
	return out
}

type captureCase struct {
	iface, linktype string // nsdebug's -i and --linktype
	tcpdumpY        string // tcpdump's -y
	expr            string
}

// nsdebug capture and nsenter -n tcpdump, side by side on the same
// traffic, capture the same packets for every expression: the same bytes
// after (and with) the link header, in the same order, on the same
// interface, in the right direction.
func TestCaptureMatchesTcpdump(t *testing.T) {
	requireTcpdump(t)
	p := newCapturePair(t)
	mac := p.MacA.String()
	exprs := []string{
		"", "icmp", "udp", "tcp", "ip6", "arp", "icmp6", "ip proto 17",
		"host 10.251.0.2", "src host 10.251.0.1", "dst host 10.251.0.1", "net 10.251.0.0/24", "net 10.251.0.0 mask 255.255.255.0",
		"port 40001", "tcp port 40080", "udp and dst port 40001", "portrange 40000-40010", "ip6 and tcp",
		"tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn", "tcp[tcpflags] & tcp-fin != 0", "ip[8] == 64", "len > 1000", "less 80", "greater 500",
		"not icmp and not arp", "icmp or (udp and port 40001)", "ether src " + mac, "ether proto 0x0806", "broadcast or multicast",
		"ip6 and udp port 40003", "icmp[icmptype] == icmp-echoreply",
	}
	var cases []captureCase
	for _, e := range exprs {
		cases = append(cases, captureCase{iface: p.IfA, expr: e})
	}
	for _, e := range []string{"", "tcp", "udp port 40001", "icmp or icmp6", "host 127.0.0.1", "not arp and ip"} {
		cases = append(cases, captureCase{iface: "any", linktype: "sll2", tcpdumpY: "LINUX_SLL2", expr: e})
	}
	for _, e := range []string{"", "tcp port 40080"} {
		cases = append(cases, captureCase{iface: "any", linktype: "sll", tcpdumpY: "LINUX_SLL", expr: e})
	}

	bin := nsdebugBinary(t)
	dir := t.TempDir()
	type running struct {
		c        captureCase
		ref, got string
		tp, np   *proc
	}
	var runs []running
	for i, c := range cases {
		r := running{c: c, ref: filepath.Join(dir, fmt.Sprintf("ref%d.pcap", i)), got: filepath.Join(dir, fmt.Sprintf("got%d.pcapng", i))}
		targs := []string{"--net=" + p.A.Path, "tcpdump", "-i", c.iface, "-w", r.ref}
		nargs := []string{"capture", "netns:" + p.A.Name, "-i", c.iface, "-w", r.got}
		if c.tcpdumpY != "" {
			targs = append(targs, "-y", c.tcpdumpY)
			nargs = append(nargs, "--linktype", c.linktype)
		}
		if c.expr != "" {
			targs = append(targs, c.expr)
			nargs = append(nargs, c.expr)
		}
		r.tp = startCapture(t, nil, "nsenter", targs...)
		r.np = startCapture(t, nil, bin, nargs...)
		runs = append(runs, r)
	}
	for _, r := range runs {
		r.tp.waitReady(t)
		r.np.waitReady(t)
	}
	time.Sleep(200 * time.Millisecond)
	from := time.Now()
	p.traffic(t)
	// The window closes once the traffic's last packets (FINs, last ACKs)
	// are surely out, so no packet of the test lies near its edge.
	time.Sleep(300 * time.Millisecond)
	to := time.Now()
	// libpcap hands over a ring block only once it is full or a second old,
	// and a tcpdump stopped sooner after the last packet loses that block:
	// wait past the timeout, so the oracle has the window's tail.
	time.Sleep(1200 * time.Millisecond)
	for _, r := range runs {
		r.tp.stop(t)
		r.np.stop(t)
	}
	nonEmpty := 0
	for _, r := range runs {
		name := fmt.Sprintf("-i %s %s %q", r.c.iface, r.c.linktype, r.c.expr)
		ref, rlt := readCapture(t, r.ref)
		got, glt := readCapture(t, r.got)
		if rlt != glt {
			t.Errorf("%s: link type %v, tcpdump's %v", name, glt, rlt)
		}
		ref, got = byLinkHeader(within(ref, from, to), rlt), byLinkHeader(within(got, from, to), glt)
		if len(ref) > 0 {
			nonEmpty++
		}
		if len(ref) != len(got) {
			t.Errorf("%s: %d packets, tcpdump %d\n%s", name, len(got), len(ref), diffPkts(got, ref, glt))
			continue
		}
		for i := range ref {
			if !bytes.Equal(ref[i].data, got[i].data) {
				t.Errorf("%s: packet %d differs:\n got %x\nwant %x", name, i, got[i].data, ref[i].data)
				break
			}
			if got[i].ifc != r.c.iface {
				t.Errorf("%s: packet %d on interface %q", name, i, got[i].ifc)
			}
			if glt == layers.LinkTypeEthernet {
				wantDir := 1
				if bytes.Equal(got[i].data[6:12], p.MacA) {
					wantDir = 2
				}
				if got[i].dir != wantDir {
					t.Errorf("%s: packet %d direction %d, want %d", name, i, got[i].dir, wantDir)
				}
			}
		}
		if !strings.Contains(r.np.stderr.String(), " captured\n") {
			t.Errorf("%s: no counters: %s", name, r.np.stderr.String())
		}
	}
	if nonEmpty < len(runs)-2 {
		t.Errorf("only %d of %d expressions matched any packet: the traffic is not what the cases expect", nonEmpty, len(runs))
	}
}

// diffPkts describes the packets one capture has and the other has not.
func diffPkts(got, ref []pkt, lt layers.LinkType) string {
	key := func(p pkt) string { return string(p.data) }
	count := map[string]int{}
	for _, p := range ref {
		count[key(p)]++
	}
	var b strings.Builder
	for _, p := range got {
		if count[key(p)] > 0 {
			count[key(p)]--
			continue
		}
		fmt.Fprintf(&b, "  only nsdebug: %s %s\n", p.ts.Format("15:04:05.000000"), capture.FormatPacket(p.data, filter.LinkType(lt), len(p.data)))
	}
	for _, p := range ref {
		if count[key(p)] > 0 {
			count[key(p)]--
			fmt.Fprintf(&b, "  only tcpdump: %s %s\n", p.ts.Format("15:04:05.000000"), capture.FormatPacket(p.data, filter.LinkType(lt), len(p.data)))
		}
	}
	return b.String()
}

func requireTcpdump(t *testing.T) {
	t.Helper()
	testbed.RequireRoot(t)
	for _, tool := range []string{"tcpdump", "tshark", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (apt-get install tcpdump tshark)", tool)
		}
	}
}

var countsRe = regexp.MustCompile(`(?m)^(\d+) packets? captured\n(\d+) packets? received by filter\n(\d+) packets? dropped by kernel$`)

func parseCounts(t *testing.T, stderr string) (captured, recv, dropped int) {
	t.Helper()
	m := countsRe.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no counters in stderr: %q", stderr)
	}
	captured, _ = strconv.Atoi(m[1])
	recv, _ = strconv.Atoi(m[2])
	dropped, _ = strconv.Atoi(m[3])
	return
}

// -c, --duration, SIGINT and a closed pipe each end with a valid file and
// the counters.
func TestCaptureStops(t *testing.T) {
	requireTcpdump(t)
	p := newCapturePair(t)
	bin := nsdebugBinary(t)
	dir := t.TempDir()
	target := "netns:" + p.A.Name
	flood := func(stop chan struct{}) {
		for {
			select {
			case <-stop:
				return
			default:
			}
			testbed.Run("ip", "netns", "exec", p.A.Name, "busybox", "ping", "-c", "5", "-i", "0.02", "-W", "1", p.V4B)
		}
	}
	stopFlood := make(chan struct{})
	go flood(stopFlood)
	defer close(stopFlood)

	t.Run("count", func(t *testing.T) {
		f := filepath.Join(dir, "c.pcapng")
		_, stderr, code := runProcess(exec.Command(bin, "capture", target, "-c", "7", "-w", f))
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		pk, _ := readCapture(t, f)
		if c, _, _ := parseCounts(t, stderr); len(pk) != 7 || c != 7 {
			t.Errorf("%d packets in the file, %d counted; want 7", len(pk), c)
		}
	})
	t.Run("duration", func(t *testing.T) {
		f := filepath.Join(dir, "d.pcap")
		start := time.Now()
		_, stderr, code := runProcess(exec.Command(bin, "capture", target, "--duration", "1s", "--format", "pcap", "-w", f))
		if code != 0 || time.Since(start) > 5*time.Second || time.Since(start) < time.Second {
			t.Fatalf("exit %d after %s: %s", code, time.Since(start), stderr)
		}
		pk, _ := readCapture(t, f)
		if c, r, _ := parseCounts(t, stderr); len(pk) != c || c == 0 || r < c {
			t.Errorf("%d packets in the file, counters %d captured %d received", len(pk), c, r)
		}
	})
	t.Run("sigint", func(t *testing.T) {
		f := filepath.Join(dir, "i.pcapng")
		pr := startCapture(t, nil, bin, "capture", target, "-w", f)
		pr.waitReady(t)
		time.Sleep(500 * time.Millisecond)
		pr.stop(t)
		pk, _ := readCapture(t, f)
		if c, _, _ := parseCounts(t, pr.stderr.String()); len(pk) != c || c == 0 {
			t.Errorf("%d packets in the file, %d counted", len(pk), c)
		}
		// The interface statistics block is there, for tshark too.
		out, err := exec.Command("tshark", "-r", f, "-q", "-z", "io,stat,0").CombinedOutput()
		if err != nil {
			t.Errorf("tshark -r: %v\n%s", err, out)
		}
	})
	// kubectl-nsdebug's Ctrl-C: the hidden --stop-on-stdin-eof ends the
	// capture as SIGINT does when stdin closes; without it, stdin means
	// nothing to capture.
	t.Run("stdin closed", func(t *testing.T) {
		f := filepath.Join(dir, "e.pcapng")
		c := exec.Command(bin, "capture", "--stop-on-stdin-eof", target, "-w", f)
		in, err := c.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr testbed.SyncBuffer
		c.Stderr = &stderr
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer c.Process.Kill()
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(stderr.String(), "listening on"); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("not listening after 10s: %s", stderr.String())
			}
		}
		time.Sleep(500 * time.Millisecond)
		in.Close()
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("exit: %v (%s)", err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("did not stop when stdin closed: %s", stderr.String())
		}
		pk, _ := readCapture(t, f)
		if c, _, _ := parseCounts(t, stderr.String()); len(pk) != c || c == 0 {
			t.Errorf("%d packets in the file, %d counted", len(pk), c)
		}

		// Without the flag a closed stdin does not stop it.
		c = exec.Command(bin, "capture", target, "--duration", "1500ms", "-w", filepath.Join(dir, "f.pcapng"))
		c.Stdin = strings.NewReader("")
		start := time.Now()
		if out, err := c.CombinedOutput(); err != nil || time.Since(start) < 1500*time.Millisecond {
			t.Errorf("without --stop-on-stdin-eof: %v after %s: %s", err, time.Since(start), out)
		}
	})
	t.Run("closed pipe", func(t *testing.T) {
		c := exec.Command(bin, "capture", target, "-w", "-")
		out, _ := c.StdoutPipe()
		var stderr testbed.SyncBuffer
		c.Stderr = &stderr
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		// Read the section header and a packet or two, as a reader that
		// then goes away (Wireshark closed).
		buf := make([]byte, 300)
		if _, err := io.ReadFull(out, buf); err != nil {
			t.Fatalf("read: %v (%s)", err, stderr.String())
		}
		if !bytes.HasPrefix(buf, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
			t.Errorf("not pcapng: %x", buf[:8])
		}
		out.Close()
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("exit: %v (%s)", err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			c.Process.Kill()
			t.Fatalf("did not stop on a closed pipe: %s", stderr.String())
		}
		parseCounts(t, stderr.String())
		if !strings.Contains(stderr.String(), "pipe was closed") {
			t.Errorf("no note about the pipe: %s", stderr.String())
		}
	})
}

// SIGINT right after the last packet: the kernel still holds it in a ring
// block it hands over only after its block timeout, and nsdebug reads on
// that long, so every packet received before the signal is in the file
// (before: 4 of 6, the last echo and its reply lost).
func TestCaptureSignalKeepsWhatCameBefore(t *testing.T) {
	p := newCapturePair(t)
	f := filepath.Join(t.TempDir(), "s.pcapng")
	for round := 0; round < 3; round++ {
		pr := startCapture(t, nil, nsdebugBinary(t), "capture", "netns:"+p.A.Name, "-w", f, "icmp")
		pr.waitReady(t)
		if out, err := testbed.Run("ip", "netns", "exec", p.A.Name, "busybox", "ping", "-c", "3", "-i", "0.2", "-W", "1", p.V4B); err != nil {
			t.Fatalf("ping: %v %s", err, out)
		}
		pr.stop(t)
		pk, _ := readCapture(t, f)
		if c, r, _ := parseCounts(t, pr.stderr.String()); len(pk) != 6 || c != 6 || r != 6 {
			t.Fatalf("round %d: %d packets in the file, %d captured, %d received; want 6 (3 echoes, 3 replies)", round, len(pk), c, r)
		}
	}
}

// A two-block ring and a pipe nobody reads: the kernel drops packets and
// the counters say so, consistent with the file.
func TestCaptureReportsKernelDrops(t *testing.T) {
	requireTcpdump(t)
	p := newCapturePair(t)
	bin := nsdebugBinary(t)
	c := exec.Command(bin, "capture", "netns:"+p.A.Name, "-B", "256", "-w", "-")
	out, _ := c.StdoutPipe()
	pr := &testbed.SyncBuffer{}
	c.Stderr = pr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Process.Kill()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(pr.String(), "listening on"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not listening: %s", pr.String())
		}
	}
	// 20000 datagrams of 1000 bytes: far more than a 64 KiB pipe and a
	// 256 KiB ring hold.
	testbed.MustRun(t, "ip", "netns", "exec", p.A.Name, "bash", "-c",
		"x=$(head -c 1000 /dev/zero | tr '\\0' x); for i in $(seq 20000); do echo $x > /dev/udp/"+p.V4B+"/40001; done")
	c.Process.Signal(syscall.SIGINT)
	// Now read everything: the blocked write finishes and nsdebug exits.
	data, _ := io.ReadAll(out)
	if err := c.Wait(); err != nil {
		t.Fatalf("exit: %v (%s)", err, pr.String())
	}
	f := filepath.Join(t.TempDir(), "drops.pcapng")
	os.WriteFile(f, data, 0o644)
	pk, _ := readCapture(t, f)
	captured, recv, dropped := parseCounts(t, pr.String())
	t.Logf("captured %d, received %d, dropped %d", captured, recv, dropped)
	if dropped == 0 {
		t.Errorf("no kernel drops reported with a 256 KiB ring and an unread pipe")
	}
	if len(pk) != captured || recv < captured+dropped || recv > 20000+100 {
		t.Errorf("file has %d, counters: %d captured, %d received, %d dropped", len(pk), captured, recv, dropped)
	}
}

// Bad input: one line, the documented exit code, no file left behind.
func TestCaptureBadInput(t *testing.T) {
	testbed.RequireRoot(t)
	p := newCapturePair(t)
	bin := nsdebugBinary(t)
	dir := t.TempDir()
	f := filepath.Join(dir, "never.pcapng")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"capture", "netns:" + p.A.Name, "-i", "eth9", "-w", f}, 3, "it has: lo, " + p.IfA + ", any"},
		{[]string{"capture", "netns:" + p.A.Name, "-w", f, "tcp", "port"}, 2, "bad filter"},
		{[]string{"capture", "netns:" + p.A.Name, "-w", "/proc/no/such/dir/x.pcapng"}, 2, "cannot write"},
		{[]string{"capture", "netns:nsdebug-no-such-ns", "-w", f}, 3, ""},
	} {
		_, stderr, code := runProcess(exec.Command(bin, c.args...))
		if code != c.code || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d (want %d), stderr %q", c.args, code, c.code, stderr)
		}
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%v left %s behind", c.args, f)
		}
	}
}
