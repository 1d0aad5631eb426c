package reliability

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/inspect"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/internal/testbed"
	"github.com/nsdebug/nsdebug/resolver"
	"github.com/nsdebug/nsdebug/sysctl"
)

// Case 1: 500 goroutines enter and leave 50 namespaces concurrently through
// the real operations (resolve, inspect over netlink handles opened inside,
// sysctl reads on a switched thread) for 10 s in CI. Each namespace is made
// recognisable (its own address and tcp_keepalive_time), so every answer is
// checked to come from the namespace asked for; afterwards every thread of
// this process is back in the host netns.
func TestCase01_ConcurrentEntryAllThreadsComeHome(t *testing.T) {
	testbed.RequireRoot(t)
	home, err := nsfs.StatID("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}

	const nNS, nGoroutines = 50, 500
	type fixture struct {
		name, addr, keepalive string
		id                    nsfs.ID
		ns                    *nsfs.Netns
	}
	fx := make([]fixture, nNS)
	for i := range fx {
		n := testbed.NewNetNS(t, fmt.Sprintf("stress%d", i))
		fx[i] = fixture{name: n.Name, addr: fmt.Sprintf("10.251.%d.1", i), keepalive: strconv.Itoa(1000 + i)}
		// lo: these kernels may lack the dummy link type.
		testbed.MustRun(t, "ip", "-n", n.Name, "addr", "add", fx[i].addr+"/32", "dev", "lo")
		n.Exec(t, "sh", "-c", "echo "+fx[i].keepalive+" >/proc/sys/net/ipv4/tcp_keepalive_time")
		ns, err := nsfs.Open(n.Path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Close() })
		fx[i].ns, fx[i].id = ns, ns.ID
	}
	keepalive, err := sysctl.ParseKey("net.ipv4.tcp_keepalive_time")
	if err != nil {
		t.Fatal(err)
	}
	res := resolver.New(resolver.Options{}) // netns: targets need no runtime

	dur := testbed.StressDuration()
	stop := time.Now().Add(dur)
	var ops [3]atomic.Int64
	var wrongMu sync.Mutex
	var wrong []string
	fail := func(format string, args ...any) {
		wrongMu.Lock()
		defer wrongMu.Unlock()
		if len(wrong) < 20 {
			wrong = append(wrong, fmt.Sprintf(format, args...))
		}
	}
	var wg sync.WaitGroup
	for g := 0; g < nGoroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; time.Now().Before(stop); i++ {
				f := fx[i%nNS]
				switch op := i % 3; op {
				case 0:
					r, err := res.Resolve(context.Background(), resolver.Target{Kind: resolver.KindNetns, Name: f.name})
					if err != nil {
						fail("resolve %s: %v", f.name, err)
						continue
					}
					if r.Netns.Inode != f.id.Inode || r.NS.ID != f.id {
						fail("resolve %s gave %d, want %s", f.name, r.Netns.Inode, f.id)
					}
					r.Close()
				case 1:
					rep, err := inspect.Inspect(context.Background(), f.ns, inspect.Options{Sections: []string{"links", "addrs"}})
					if err != nil {
						fail("inspect %s: %v", f.name, err)
						continue
					}
					var got []string
					for _, a := range rep.Addresses {
						got = append(got, a.Address)
					}
					if !containsPrefix(got, f.addr+"/") {
						fail("inspect %s saw addresses %v, want %s", f.name, got, f.addr)
					}
				case 2:
					vals, err := sysctl.Read(f.ns, []sysctl.Key{keepalive}, false)
					if err != nil {
						fail("sysctl read %s: %v", f.name, err)
						continue
					}
					if len(vals) != 1 || vals[0].Value != f.keepalive {
						fail("sysctl read in %s = %v, want %s", f.name, vals, f.keepalive)
					}
				}
				ops[i%3].Add(1)
				// Host-side work between entries must see the host.
				if id, err := nsfs.StatID("/proc/thread-self/ns/net"); err != nil || id != home {
					fail("goroutine %d back on a thread in %s", g, id)
				}
			}
		}(g)
	}
	wg.Wait()
	t.Logf("%d goroutines over %d namespaces for %s: %d resolves, %d inspects, %d sysctl reads",
		nGoroutines, nNS, dur, ops[0].Load(), ops[1].Load(), ops[2].Load())
	if len(wrong) > 0 {
		t.Fatalf("%d+ wrong answers, e.g.:\n%s", len(wrong), strings.Join(wrong, "\n"))
	}
	for i := range ops {
		if ops[i].Load() == 0 {
			t.Fatal("an operation never ran: the stress proves nothing")
		}
	}

	// Locked threads that were discarded take a moment to exit.
	var bad []string
	for try := 0; try < 100; try++ {
		bad = bad[:0]
		tasks, _ := filepath.Glob("/proc/self/task/*")
		for _, task := range tasks {
			if id, err := nsfs.StatID(task + "/ns/net"); err == nil && id != home {
				bad = append(bad, filepath.Base(task)+"="+id.String())
			}
		}
		if len(bad) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("threads outside the host netns %s after the stress: %v", home, bad)
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
