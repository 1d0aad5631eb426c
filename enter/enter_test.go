package enter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

func threadNS(t testing.TB) nsfs.ID {
	t.Helper()
	id, err := nsfs.StatID(threadNetns)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// allThreadsIn fails t unless every thread of this process is in want.
// Threads that are exiting may still be listed for a moment: retry briefly.
func allThreadsIn(t testing.TB, want nsfs.ID) {
	t.Helper()
	var bad []string
	for try := 0; try < 50; try++ {
		bad = bad[:0]
		tasks, _ := filepath.Glob("/proc/self/task/*")
		for _, task := range tasks {
			id, err := nsfs.StatID(task + "/ns/net")
			if err != nil {
				continue // exited meanwhile
			}
			if id != want {
				bad = append(bad, filepath.Base(task)+"="+id.String())
			}
		}
		if len(bad) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("threads outside the host netns %s: %v", want, bad)
}

func openNS(t testing.TB, n *testbed.NetNS) *nsfs.Netns {
	t.Helper()
	ns, err := nsfs.Open(n.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

func TestDoRunsInsideAndComesHome(t *testing.T) {
	testbed.RequireRoot(t)
	home := threadNS(t)
	ns := openNS(t, testbed.NewNetNS(t, "do"))
	var inside nsfs.ID
	if err := Do(ns, func() error { inside = threadNS(t); return nil }); err != nil {
		t.Fatal(err)
	}
	if inside != ns.ID {
		t.Fatalf("fn ran in %s, want %s", inside, ns.ID)
	}
	want := errors.New("boom")
	if err := Do(ns, func() error { return want }); !errors.Is(err, want) {
		t.Fatalf("fn's error lost: %v", err)
	}
	if err := Do(ns, func() error { panic("in the namespace") }); err == nil {
		t.Fatal("a panic inside was not turned into an error")
	}
	allThreadsIn(t, home)
}

func TestEachVisitsEveryNamespaceInOrder(t *testing.T) {
	testbed.RequireRoot(t)
	home := threadNS(t)
	var nss []*nsfs.Netns
	for i := 0; i < 5; i++ {
		nss = append(nss, openNS(t, testbed.NewNetNS(t, "each"+strconv.Itoa(i))))
	}
	seen := make([]nsfs.ID, len(nss))
	errs := Each(nss, func(i int) error {
		seen[i] = threadNS(t)
		if i == 2 {
			return fmt.Errorf("third fails")
		}
		return nil
	})
	for i, ns := range nss {
		if seen[i] != ns.ID {
			t.Errorf("visit %d ran in %s, want %s", i, seen[i], ns.ID)
		}
		if (errs[i] != nil) != (i == 2) {
			t.Errorf("visit %d error %v", i, errs[i])
		}
	}
	allThreadsIn(t, home)
}

// The thread goes from one namespace straight to the next: one that cannot
// be entered, or whose visit panics, leaves the others as they were.
func TestEachGoesOnPastAFailedEntry(t *testing.T) {
	testbed.RequireRoot(t)
	home := threadNS(t)
	var nss []*nsfs.Netns
	for i := 0; i < 5; i++ {
		nss = append(nss, openNS(t, testbed.NewNetNS(t, "hop"+strconv.Itoa(i))))
	}
	// nss[2] is not a namespace any more: its fd number now holds /dev/null.
	bad, err := nss[2].Dup()
	if err != nil {
		t.Fatal(err)
	}
	nss[2] = bad
	bad.Close()
	devNull, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	seen := make([]nsfs.ID, len(nss))
	errs := Each(nss, func(i int) error {
		seen[i] = threadNS(t)
		if i == 3 {
			panic("in the fourth")
		}
		return nil
	})
	for i, ns := range nss {
		switch i {
		case 2:
			if errs[i] == nil || seen[i] != (nsfs.ID{}) {
				t.Errorf("visit 2 (not a namespace) ran in %s, error %v", seen[i], errs[i])
			}
		case 3:
			if seen[i] != ns.ID || errs[i] == nil {
				t.Errorf("visit 3 ran in %s (want %s), its panic gave %v", seen[i], ns.ID, errs[i])
			}
		default:
			if seen[i] != ns.ID || errs[i] != nil {
				t.Errorf("visit %d ran in %s (want %s), error %v", i, seen[i], ns.ID, errs[i])
			}
		}
	}
	allThreadsIn(t, home)
}

// Issue 6 case 2: when the way home fails, the thread must be destroyed, not
// returned to the scheduler; later host-side work still happens at home.
func TestFailedRestoreDiscardsTheThread(t *testing.T) {
	testbed.RequireRoot(t)
	home := threadNS(t)
	ns := openNS(t, testbed.NewNetNS(t, "restore"))

	// A listener in the host netns: if any later goroutine ran on a thread
	// left in ns, it could not reach it (ns has only a down loopback).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	// A DNS responder there too, made now, before any thread can be lost.
	dns := dnsResponder(t)

	restoreHook = func(int) int { return -1 } // an invalid fd: setns fails
	var tid int
	other := openNS(t, testbed.NewNetNS(t, "restore2"))
	var tids [2]int
	errs := Each([]*nsfs.Netns{ns, other}, func(i int) error { tids[i] = unixGettid(); return nil })
	restoreHook = nil
	// Both were visited, on one thread; the way home failed after the last.
	if errs[0] != nil || errs[1] == nil || !strings.Contains(errs[1].Error(), "restore network namespace") {
		t.Fatalf("a failed restore was not reported on the last visit: %v", errs)
	}
	if tids[0] != tids[1] {
		t.Fatalf("the visits ran on threads %d and %d, want one", tids[0], tids[1])
	}
	tid = tids[1]
	// The thread that could not get home is gone.
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, err := os.Stat("/proc/self/task/" + strconv.Itoa(tid)); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("thread %d survived a failed restore", tid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	allThreadsIn(t, home)

	// Lots of host-side work on whatever threads the runtime has now: TCP
	// to a host-netns listener, and real DNS queries (UDP) to a responder
	// that exists only in the host netns. A goroutine on a thread left in
	// ns could reach neither (ns has only a down loopback, and no
	// responder).
	var wg sync.WaitGroup
	var failures, queries atomic.Int32
	// At most 32 lookups at a time (each is an A and an AAAA query): the
	// point is many goroutines on many threads, not a flood that a
	// one-socket responder would drop.
	lookups := make(chan struct{}, 32)
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		queries.Add(1)
		if id, err := nsfs.StatID(threadNetns); err != nil || id != home {
			failures.Add(1)
		}
		var d net.Dialer
		return d.DialContext(ctx, "udp", dns)
	}}
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", l.Addr().String(), 2*time.Second)
			if err != nil {
				failures.Add(1)
				return
			}
			c.Close()
			if id, err := nsfs.StatID(threadNetns); err != nil || id != home {
				failures.Add(1)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			name := "host" + strconv.Itoa(i) + ".case2.nsdebug.test."
			lookups <- struct{}{}
			addrs, err := resolver.LookupHost(ctx, name)
			<-lookups
			if err != nil || len(addrs) != 1 || addrs[0] != dnsAnswer {
				t.Errorf("resolve %s after a discarded thread: %v %v", name, addrs, err)
				failures.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := failures.Load(); n > 0 || queries.Load() < 200 {
		t.Fatalf("%d host-side operations failed after a discarded thread (%d DNS queries)", n, queries.Load())
	}

	// Docker API calls, as the resolver makes them: every connection is
	// dialled from a thread of the host netns. (A unix socket reaches
	// dockerd from any netns, so the dialling thread itself is checked.)
	t.Run("docker API", func(t *testing.T) {
		testbed.Require(t)
		var dials, wrong atomic.Int32
		dialer := func(ctx context.Context, _, _ string) (net.Conn, error) {
			dials.Add(1)
			if id, err := nsfs.StatID(threadNetns); err != nil || id != home {
				wrong.Add(1)
			}
			var d net.Dialer
			return d.DialContext(ctx, "unix", "/var/run/docker.sock")
		}
		cli, err := client.New(client.WithHost("unix:///var/run/docker.sock"),
			client.WithHTTPClient(&http.Client{Transport: &http.Transport{DialContext: dialer, DisableKeepAlives: true}}))
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		var wg sync.WaitGroup
		var failed atomic.Int32
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
					failed.Add(1)
				}
			}()
		}
		wg.Wait()
		if failed.Load() > 0 || dials.Load() == 0 || wrong.Load() > 0 {
			t.Fatalf("after a discarded thread: %d of 50 Docker pings failed, %d dials, %d from a thread outside the host netns", failed.Load(), dials.Load(), wrong.Load())
		}
	})
}

// dnsAnswer is what dnsResponder answers to every A query.
const dnsAnswer = "192.0.2.53"

// dnsResponder serves DNS on 127.0.0.1 (a random UDP port) of the calling
// thread's netns, the host's: every A query gets dnsAnswer, anything else
// an empty answer. It returns its address.
func dnsResponder(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	// Room for bursts of queries (SO_RCVBUFFORCE: root may exceed rmem_max).
	if sc, err := pc.(*net.UDPConn).SyscallConn(); err == nil {
		sc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20) })
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			if len(q) < 12 || q[4] != 0 || q[5] != 1 {
				continue // one question
			}
			end := 12
			for end < len(q) && q[end] != 0 {
				end += int(q[end]) + 1
			}
			end += 5 // the root label, QTYPE, QCLASS
			if end > len(q) {
				continue
			}
			qtype := int(q[end-4])<<8 | int(q[end-3])
			resp := append([]byte{q[0], q[1], 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0}, q[12:end]...)
			if qtype == 1 { // A
				resp[7] = 1
				ip := net.ParseIP(dnsAnswer).To4()
				resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ip[0], ip[1], ip[2], ip[3])
			}
			pc.WriteTo(resp, from)
		}
	}()
	return pc.LocalAddr().String()
}

// Issue 3 / issue 6 case 1: 500 goroutines enter 50 namespaces for a while;
// afterwards every thread of the process is back in the host netns.
func TestStressEnterFromManyGoroutines(t *testing.T) {
	testbed.RequireRoot(t)
	home := threadNS(t)
	var nss []*nsfs.Netns
	for i := 0; i < 50; i++ {
		nss = append(nss, openNS(t, testbed.NewNetNS(t, "stress"+strconv.Itoa(i))))
	}
	dur := testbed.StressDuration()
	stop := time.Now().Add(dur)
	var entries, wrong atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 500; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; time.Now().Before(stop); i++ {
				ns := nss[i%len(nss)]
				err := Do(ns, func() error {
					if threadNS(t) != ns.ID {
						wrong.Add(1)
					}
					return nil
				})
				if err != nil {
					wrong.Add(1)
				}
				entries.Add(1)
				// Host-side work between entries must see the host.
				if threadNS(t) != home {
					wrong.Add(1)
				}
			}
		}(g)
	}
	wg.Wait()
	t.Logf("%d entries into 50 namespaces from 500 goroutines in %s", entries.Load(), dur)
	if wrong.Load() > 0 {
		t.Fatalf("%d entries or host-side checks saw the wrong namespace", wrong.Load())
	}
	allThreadsIn(t, home)
}
