package diagnose

import (
	"fmt"
	"math/rand"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/enter"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

// shortName is a device name that fits IFNAMSIZ and that hostState
// recognises ("dgbr", "dgd") as this suite's.
func shortName(prefix string) string { return fmt.Sprintf("%s%06d", prefix, rand.Intn(1000000)) }

// bridge makes a host bridge of the suite's own, up, removed in Cleanup.
func bridge(t *testing.T) string {
	t.Helper()
	br := shortName("dgbr")
	mustRun(t, "ip", "link", "add", br, "type", "bridge")
	t.Cleanup(func() { testbed.Run("ip", "link", "del", br) })
	mustRun(t, "ip", "link", "set", br, "up")
	return br
}

// bridgedNetns makes a netns with eth0 (addr) whose host end is on br.
func bridgedNetns(t *testing.T, br, addr string) *testbed.NetNS {
	t.Helper()
	ns := testbed.NewNetNS(t, "dg")
	hv := shortName("dgv")
	mustRun(t, "ip", "link", "add", hv, "type", "veth", "peer", "name", "eth0", "netns", ns.Name)
	t.Cleanup(func() { testbed.Run("ip", "link", "del", hv) })
	mustRun(t, "ip", "link", "set", hv, "master", br, "up")
	ns.Exec(t, "ip", "link", "set", "lo", "up")
	ns.Exec(t, "ip", "link", "set", "eth0", "up")
	if addr != "" {
		ns.Exec(t, "ip", "addr", "add", addr, "dev", "eth0")
	}
	return ns
}

func loNetns(t *testing.T) (*testbed.NetNS, *nsfs.Netns) {
	t.Helper()
	ns := testbed.NewNetNS(t, "dg")
	ns.Exec(t, "ip", "link", "set", "lo", "up")
	h, err := nsfs.Open(ns.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return ns, h
}

// socketIn makes a socket inside ns (then usable from anywhere).
func socketIn(t *testing.T, ns *nsfs.Netns, typ int) int {
	t.Helper()
	var fd int
	if err := enter.Do(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func lo(port int) *unix.SockaddrInet4 {
	return &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
}

func listenIn(t *testing.T, ns *nsfs.Netns, port, backlog int) int {
	t.Helper()
	fd := socketIn(t, ns, unix.SOCK_STREAM)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, lo(port)); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatal(err)
	}
	return fd
}

// acceptAll accepts and drains connections until the test ends.
func acceptAll(t *testing.T, fd int) {
	go func() {
		for {
			c, _, err := unix.Accept(fd)
			if err != nil {
				return
			}
			go func() {
				buf := make([]byte, 65536)
				for {
					if n, err := unix.Read(c, buf); err != nil || n == 0 {
						unix.Close(c)
						return
					}
				}
			}()
		}
	}()
}

// dnsResponder answers every query on fd (a UDP socket bound in a netns
// of the test's own) with NOERROR and no records, until stopped.
func dnsResponder(fd int) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			m := dnsmessage.Message{Header: dnsmessage.Header{ID: h.ID, Response: true, RecursionAvailable: true}, Questions: []dnsmessage.Question{q}}
			b, _ := m.Pack()
			unix.Sendto(fd, b, 0, from)
		}
	}()
	return func() { unix.Shutdown(fd, unix.SHUT_RDWR); unix.Close(fd); <-done }
}

func TestDNSProbe(t *testing.T) {
	// client netns --veth-- server netns; the server runs the test's own
	// DNS responder; the client process sees a resolv.conf naming it
	// (ip netns exec binds /etc/netns/NAME/resolv.conf).
	srv := testbed.NewNetNS(t, "dgsrv")
	cli := testbed.NewNetNS(t, "dgcli")
	mustRun(t, "ip", "-n", srv.Name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", cli.Name)
	srv.Exec(t, "ip", "addr", "add", "10.253.0.1/30", "dev", "eth0")
	cli.Exec(t, "ip", "addr", "add", "10.253.0.2/30", "dev", "eth0")
	for _, n := range []*testbed.NetNS{srv, cli} {
		n.Exec(t, "ip", "link", "set", "eth0", "up")
		n.Exec(t, "ip", "link", "set", "lo", "up")
	}
	cli.Exec(t, "ip", "route", "add", "default", "via", "10.253.0.1")
	dir := "/etc/netns/" + cli.Name
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(dir+"/resolv.conf", []byte("nameserver 10.253.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pid := cli.StartProcess(t, "sleep", "600")
	srvNS, err := nsfs.Open(srv.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer srvNS.Close()
	var fd int
	if err := enter.Do(srvNS, func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrInet4{Port: 53, Addr: [4]byte{10, 253, 0, 1}})
	}); err != nil {
		t.Fatal(err)
	}
	stop := dnsResponder(fd)
	target := fmt.Sprint("pid:", pid)
	before, _ := diag(t, target, diagOpts{probe: true})
	hasEvidence(t, before["dns.probe"], "10.253.0.1 A localhost.", "RCodeSuccess in")
	if before["dns.probe"].Status != Pass {
		t.Fatalf("dns.probe with a responder: %+v", before["dns.probe"])
	}
	stop()
	after, _ := diag(t, target, diagOpts{probe: true})
	r := expectOnly(t, before, after, "dns.probe", Fail, nil)
	hasEvidence(t, r, "10.253.0.1", "no answer")
	if !r.Probe {
		t.Error("dns.probe is not marked as a probe")
	}
	// Without --probe: no packet, SKIP naming the flag.
	passive, _ := diag(t, target, diagOpts{})
	if p := passive["dns.probe"]; p.Status != Skip || !strings.Contains(p.Explanation, "--probe") {
		t.Errorf("passive dns.probe: %+v", p)
	}
}

// udpFlows opens n conntrack entries in ns: UDP to closed ports on
// loopback (each stays UNREPLIED for the UDP timeout).
func udpFlows(t *testing.T, ns *nsfs.Netns, n, firstPort int) {
	t.Helper()
	fd := socketIn(t, ns, unix.SOCK_DGRAM)
	for i := 0; i < n; i++ {
		unix.Sendto(fd, []byte("x"), 0, lo(firstPort+i))
	}
}

func sysctlIn(t *testing.T, ns *testbed.NetNS, key string) string {
	t.Helper()
	return strings.TrimSpace(ns.Exec(t, "cat", "/proc/sys/"+strings.ReplaceAll(key, ".", "/")))
}

// lowerConntrackMax sets the host-wide nf_conntrack_max (the limit every
// netns's own count is held to) for as short as the caller needs.
func lowerConntrackMax(t *testing.T, to int) (restore func()) {
	t.Helper()
	old, err := readSysctl("net.netfilter.nf_conntrack_max")
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	restore = func() {
		once.Do(func() {
			if err := os.WriteFile("/proc/sys/net/netfilter/nf_conntrack_max", []byte(old), 0o644); err != nil {
				t.Errorf("restore nf_conntrack_max=%s: %v", old, err)
			}
		})
	}
	t.Cleanup(restore)
	if err := os.WriteFile("/proc/sys/net/netfilter/nf_conntrack_max", []byte(fmt.Sprint(to)), 0o644); err != nil {
		t.Fatal(err)
	}
	return restore
}

func TestConntrack(t *testing.T) {
	testbed.RequireRoot(t)
	ns, h := loNetns(t)
	// conntrack is hooked into a netns only once a rule needs it.
	ns.Exec(t, "iptables-nft", "-A", "OUTPUT", "-m", "conntrack", "--ctstate", "NEW", "-j", "ACCEPT")
	udpFlows(t, h, 1000, 20000)
	var count int
	fmt.Sscan(sysctlIn(t, ns, "net.netfilter.nf_conntrack_count"), &count)
	if count < 1000 {
		t.Fatalf("nf_conntrack_count %d after 1000 flows", count)
	}
	target := "netns:" + ns.Name
	t.Run("table full", func(t *testing.T) {
		before, _ := diag(t, target, diagOpts{interval: 50 * time.Millisecond})
		restore := lowerConntrackMax(t, count) // 100%: FAIL
		after, _ := diag(t, target, diagOpts{interval: 50 * time.Millisecond})
		restore()
		r := expectOnly(t, before, after, "conntrack.fill", Fail, nil)
		hasEvidence(t, r, "nf_conntrack_count / nf_conntrack_max", fmt.Sprintf("%d / %d (100%%)", count, count))
	})
	t.Run("drops rising", func(t *testing.T) {
		before, _ := diag(t, target, diagOpts{interval: 300 * time.Millisecond})
		restore := lowerConntrackMax(t, count-100)
		done := make(chan struct{})
		go func() {
			defer close(done)
			// New flows during the interval, each refused or early-dropped.
			for i := 0; i < 30; i++ {
				udpFlows(t, h, 20, 30000+20*i)
				time.Sleep(10 * time.Millisecond)
			}
		}()
		after, _ := diag(t, target, diagOpts{interval: 300 * time.Millisecond})
		restore()
		<-done
		// A full table is what makes conntrack drop.
		r := expectOnly(t, before, after, "conntrack.drops", Fail, map[string]Status{"conntrack.fill": Fail})
		if !strings.Contains(fmt.Sprint(r.Evidence), "drop") {
			t.Errorf("evidence %+v", r.Evidence)
		}
	})
}

func TestListenQueue(t *testing.T) {
	testbed.RequireRoot(t)
	ns, h := loNetns(t)
	lfd := listenIn(t, h, 9000, 1) // never accepts
	_ = lfd
	target := "netns:" + ns.Name
	before, _ := diag(t, target, diagOpts{interval: 300 * time.Millisecond})
	flood := func(n int) {
		for i := 0; i < n; i++ {
			fd := socketIn(t, h, unix.SOCK_STREAM|unix.SOCK_NONBLOCK)
			unix.Connect(fd, lo(9000))
		}
	}
	flood(10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 10; i++ {
			flood(3)
			time.Sleep(30 * time.Millisecond)
		}
	}()
	after, _ := diag(t, target, diagOpts{interval: 300 * time.Millisecond})
	<-done
	r := expectOnly(t, before, after, "listen.queue", Fail, nil)
	hasEvidence(t, r, "accept queue", "/ backlog 1")
	hasEvidence(t, r, "TcpExt.ListenOverflows", "+")
	// ss as ground truth for the queue.
	out := ns.Exec(t, "ss", "-Hltn", "sport = :9000")
	if f := strings.Fields(out); len(f) < 3 || f[1] == "0" || f[2] != "1" {
		t.Errorf("ss says %q", out)
	}
}

func TestEphemeralPorts(t *testing.T) {
	testbed.RequireRoot(t)
	ns, h := loNetns(t)
	ns.Exec(t, "sysctl", "-qw", "net.ipv4.ip_local_port_range=40000 40099")
	acceptAll(t, listenIn(t, h, 9001, 128))
	target := "netns:" + ns.Name
	before, _ := diag(t, target, diagOpts{})
	for i := 0; i < 95; i++ {
		fd := socketIn(t, h, unix.SOCK_STREAM)
		if err := unix.Connect(fd, lo(9001)); err != nil {
			t.Fatalf("connect %d: %v", i, err)
		}
	}
	after, _ := diag(t, target, diagOpts{})
	r := expectOnly(t, before, after, "ports.ephemeral", Fail, nil)
	hasEvidence(t, r, "busiest source -> destination", "127.0.0.1 -> 127.0.0.1:9001: 95 sockets (95%)")
	hasEvidence(t, r, "ip_local_port_range", "40000-40099 (100 ports)")
}

func TestRetransmits(t *testing.T) {
	testbed.RequireRoot(t)
	ns, h := loNetns(t)
	// Ethernet-sized segments, so that a write is many segments in flight
	// and losses are repaired by fast retransmit, not only by timeouts.
	ns.Exec(t, "ip", "link", "set", "lo", "mtu", "1500")
	acceptAll(t, listenIn(t, h, 9002, 128))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		fd := socketIn(t, h, unix.SOCK_STREAM)
		if err := unix.Connect(fd, lo(9002)); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := unix.Write(fd, buf); err != nil {
					return
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	target := "netns:" + ns.Name
	before, _ := diag(t, target, diagOpts{interval: time.Second})
	// Lose a tenth of the segments on the way in.
	ns.Exec(t, "iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "9002", "-m", "statistic", "--mode", "random", "--probability", "0.1", "-j", "DROP")
	after, _ := diag(t, target, diagOpts{interval: time.Second})
	r := expectOnly(t, before, after, "tcp.retrans", Fail, nil)
	hasEvidence(t, r, "Tcp.RetransSegs / Tcp.OutSegs", "over 1s")
}

func TestForwardPolicy(t *testing.T) {
	testbed.RequireRoot(t)
	out := mustRun(t, "iptables-nft", "-S", "FORWARD")
	if !strings.Contains(out, "-P FORWARD DROP") {
		// Docker sets DROP; on a host where it is not, set it for as
		// short as the test takes.
		mustRun(t, "iptables-nft", "-P", "FORWARD", "DROP")
		t.Cleanup(func() { testbed.Run("iptables-nft", "-P", "FORWARD", "ACCEPT") })
	}
	br := bridge(t)
	ns := bridgedNetns(t, br, "10.251.0.2/24")
	for _, d := range []string{"-i", "-o"} {
		mustRun(t, "iptables-nft", "-I", "FORWARD", d, br, "-j", "ACCEPT")
	}
	removed := false
	t.Cleanup(func() {
		if !removed {
			for _, d := range []string{"-i", "-o"} {
				testbed.Run("iptables-nft", "-D", "FORWARD", d, br, "-j", "ACCEPT")
			}
		}
	})
	target := "netns:" + ns.Name
	before, _ := diag(t, target, diagOpts{})
	for _, d := range []string{"-i", "-o"} {
		mustRun(t, "iptables-nft", "-D", "FORWARD", d, br, "-j", "ACCEPT")
	}
	removed = true
	after, _ := diag(t, target, diagOpts{})
	r := expectOnly(t, before, after, "forward.policy", Fail, nil)
	hasEvidence(t, r, "nft FORWARD policy; ACCEPT rules for "+br, "DROP; 0")
}

func TestRPFilter(t *testing.T) {
	testbed.RequireRoot(t)
	br := bridge(t)
	ns := bridgedNetns(t, br, "10.250.0.2/24")
	// A second uplink (a veth pair inside the netns: no dummy driver here).
	ns.Exec(t, "ip", "link", "add", "d0", "type", "veth", "peer", "name", "d0p")
	ns.Exec(t, "ip", "link", "set", "d0p", "up")
	ns.Exec(t, "ip", "link", "set", "d0", "up")
	ns.Exec(t, "ip", "addr", "add", "10.249.0.2/24", "dev", "d0")
	target := "netns:" + ns.Name
	before, _ := diag(t, target, diagOpts{})
	ns.Exec(t, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1")
	after, _ := diag(t, target, diagOpts{})
	r := expectOnly(t, before, after, "rp_filter", Warn, nil)
	hasEvidence(t, r, "rp_filter max(all, eth0)", "1")
	hasEvidence(t, r, "devices with IPv4 routes", "d0, eth0")
	hasEvidence(t, r, "rp_filter max(all, d0)", "1")
}

func TestAddrConflict(t *testing.T) {
	testbed.RequireRoot(t)
	br := bridge(t)
	a := bridgedNetns(t, br, "10.248.0.2/24")
	b := bridgedNetns(t, br, "10.248.0.3/24")
	target := "netns:" + a.Name
	before, _ := diag(t, target, diagOpts{})
	b.Exec(t, "ip", "addr", "flush", "dev", "eth0")
	b.Exec(t, "ip", "addr", "add", "10.248.0.2/24", "dev", "eth0")
	after, _ := diag(t, target, diagOpts{})
	r := expectOnly(t, before, after, "addr.conflict", Fail, nil)
	hasEvidence(t, r, "10.248.0.2 on "+br, b.Name)
}

func TestHostSubnetOverlap(t *testing.T) {
	net, subnet := network(t)
	c := container(t, net, nil)
	target := "docker:" + c.Name
	before, _ := diag(t, target, diagOpts{})
	// A route for the top /28 of the network's own range, through another
	// device (a VPN's route would look like this).
	base := strings.Split(strings.Split(subnet, "/")[0], ".")
	part := base[0] + "." + base[1] + "." + base[2] + ".240/28"
	d := shortName("dgd")
	mustRun(t, "ip", "link", "add", d, "type", "veth", "peer", "name", d+"p")
	t.Cleanup(func() { testbed.Run("ip", "link", "del", d) })
	mustRun(t, "ip", "link", "set", d+"p", "up")
	mustRun(t, "ip", "link", "set", d, "up")
	mustRun(t, "ip", "route", "add", part, "dev", d)
	after, _ := diag(t, target, diagOpts{})
	r := expectOnly(t, before, after, "host.subnet_overlap", Fail, nil)
	hasEvidence(t, r, subnet, part+" dev "+d)
}

// TestHostSubnetOverlapCNI: the CNI bridge's range, from the test bed's own
// /etc/cni/net.d (the one containerd's CRI gives pods addresses from),
// overlapped by a host route through another device.
func TestHostSubnetOverlapCNI(t *testing.T) {
	testbed.RequireRoot(t)
	const conf, subnet, br = "/etc/cni/net.d/10-nsdebug-testbed.conflist", "10.99.0.0/16", "nsdbg-cni0"
	if b, err := os.ReadFile(conf); err != nil || !strings.Contains(string(b), subnet) || !strings.Contains(string(b), br) {
		t.Fatalf("test bed CNI configuration %s (want %s on %s): %v", conf, subnet, br, err)
	}
	ns, _ := loNetns(t)
	target := "netns:" + ns.Name
	before, _ := diag(t, target, diagOpts{})
	hasEvidence(t, before["host.subnet_overlap"], "cni nsdebug-testbed "+subnet+" ("+br+")", "none")
	// The top /28 of the range (host-local hands out from the bottom),
	// through a device of the test's own, for as long as the test runs.
	const part = "10.99.255.240/28"
	d := shortName("dgd")
	mustRun(t, "ip", "link", "add", d, "type", "veth", "peer", "name", d+"p")
	t.Cleanup(func() { testbed.Run("ip", "link", "del", d) })
	mustRun(t, "ip", "link", "set", d+"p", "up")
	mustRun(t, "ip", "link", "set", d, "up")
	mustRun(t, "ip", "route", "add", part, "dev", d)
	after, _ := diag(t, target, diagOpts{})
	r := expectOnly(t, before, after, "host.subnet_overlap", Fail, nil)
	hasEvidence(t, r, "cni nsdebug-testbed "+subnet+" ("+br+")", part+" dev "+d)
	if r.Fix == nil || !strings.Contains(strings.Join(r.Fix.Commands, " "), conf) {
		t.Errorf("fix %+v does not name %s", r.Fix, conf)
	}
}
