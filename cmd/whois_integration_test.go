package cmd

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nsdebug/nsdebug/enter"
	"github.com/nsdebug/nsdebug/inspect"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

// TestWhoisThreadID: a thread ID (not a process's leader, so not listed in
// /proc) is found, in the namespace that thread is in, which is not its
// leader's: a thread of this test, parked inside a netns the test made.
func TestWhoisThreadID(t *testing.T) {
	testbed.Require(t)
	n := testbed.NewNetNS(t, "nsdbg-wtid")
	ns, err := nsfs.Open(n.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	tids := make(chan int)
	release := make(chan struct{})
	done := make(chan error)
	go func() {
		done <- enter.Do(ns, func() error {
			tids <- unix.Gettid()
			<-release
			return nil
		})
	}()
	var tid int
	select {
	case tid = <-tids:
	case err := <-done:
		t.Fatalf("enter %s: %v", n.Name, err)
	}
	stdout, stderr, code := run(t, "whois", "pid:"+strconv.Itoa(tid), "-o", "json")
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if tid == os.Getpid() {
		t.Fatalf("fixture: thread %d is the process's leader", tid)
	}
	if code != 0 {
		t.Fatalf("whois pid:%d: exit %d: %s", tid, code, stderr)
	}
	var res inspect.WhoisResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("thread %d of process %d (", tid, os.Getpid())
	if len(res.Matches) != 1 || res.Matches[0].Netns.Inode != inode(t, n.Path) || !strings.HasPrefix(res.Matches[0].Reason, want) {
		t.Errorf("whois pid:%d: want exactly net:[%d] (%s) because %q...: %s", tid, inode(t, n.Path), n.Name, want, stdout)
	}
}

// whois IP looks at each namespace's addresses first and reads the rest of
// a namespace only where the address is: the same address in two
// namespaces (isolated networks reuse addresses), IPv4 and IPv6, is found
// in both and nowhere else, and a miss says how many were searched.
func TestWhoisAddressInSeveralNamespaces(t *testing.T) {
	testbed.RequireRoot(t)
	a := testbed.NewNetNS(t, "whois-a")
	b := testbed.NewNetNS(t, "whois-b")
	other := testbed.NewNetNS(t, "whois-o")
	for _, ns := range []*testbed.NetNS{a, b, other} {
		ns.Exec(t, "ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1") // no dummy module here
		ns.Exec(t, "ip", "link", "set", "d0", "up")
	}
	for _, ns := range []*testbed.NetNS{a, b} {
		ns.Exec(t, "ip", "addr", "add", "198.18.77.7/24", "dev", "d0")
		ns.Exec(t, "ip", "-6", "addr", "add", "fd00:77::7/64", "dev", "d0", "nodad")
	}
	other.Exec(t, "ip", "addr", "add", "198.18.77.8/24", "dev", "d0")
	want := map[uint64]bool{inode(t, a.Path): true, inode(t, b.Path): true}

	for _, ip := range []string{"198.18.77.7", "fd00:77::7"} {
		stdout, stderr, code := run(t, "whois", ip, "-o", "json")
		if code != 0 {
			t.Fatalf("whois %s: exit %d %s", ip, code, stderr)
		}
		var res struct {
			Matches []struct {
				Reason     string `json:"reason"`
				Netns      struct{ Inode uint64 }
				Interfaces []struct {
					Name      string   `json:"name"`
					Addresses []string `json:"addresses"`
				} `json:"interfaces"`
			} `json:"matches"`
		}
		if err := json.Unmarshal([]byte(stdout), &res); err != nil {
			t.Fatal(err)
		}
		got := map[uint64]bool{}
		for _, m := range res.Matches {
			got[m.Netns.Inode] = true
			if m.Reason != "address "+ip+" on d0" {
				t.Errorf("whois %s: reason %q", ip, m.Reason)
			}
			// A match is read whole: its interfaces and addresses are there.
			full := false
			for _, ifc := range m.Interfaces {
				if ifc.Name == "d0" && len(ifc.Addresses) > 0 {
					full = true
				}
			}
			if !full {
				t.Errorf("whois %s: match %d lacks its interfaces: %+v", ip, m.Netns.Inode, m.Interfaces)
			}
		}
		if len(res.Matches) != 2 || !got[inode(t, a.Path)] || !got[inode(t, b.Path)] {
			t.Errorf("whois %s: matches %v, want exactly %v", ip, got, want)
		}
	}

	_, stderr, code := run(t, "whois", "198.18.77.9")
	if code != 3 || !strings.Contains(stderr, "looked for an address in ") || strings.Contains(stderr, " in 0 network namespace") {
		t.Errorf("whois of an address nobody holds: exit %d, %q", code, stderr)
	}
}

// whois IP asks Docker and Podman only for the containers whose processes
// are in the namespaces that hold the address (named by their cgroups), not
// for every container: its owners must still be exactly those that ls,
// which lists every container, gives the same namespaces. A container
// joined to another's network (--network container:), a host-network one
// (the host's address) and a Podman container cover the ways a namespace
// gets its owners.
func TestWhoisOwnersMatchTheFullListing(t *testing.T) {
	testbed.Require(t)
	web := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "whoisweb"})
	side := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "whoisside", Network: "container:" + web.Name})
	hostc := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "whoishost", Network: "host"})
	pm := testbed.RunPodman(t, testbed.ContainerOpts{Prefix: "whoispm"})
	if len(web.IPs) != 1 || len(pm.IPs) != 1 {
		t.Fatalf("fixture: addresses %v, %v", web.IPs, pm.IPs)
	}
	// Only this test's containers are compared: other packages' tests run
	// at the same time and start host-network containers of their own.
	ours := map[string]bool{web.ID: true, side.ID: true, hostc.ID: true, pm.ID: true}
	refs := func(owners []struct{ Runtime, Name, ID string }) string {
		var s []string
		for _, o := range owners {
			if ours[o.ID] {
				s = append(s, o.Runtime+":"+o.Name+":"+o.ID)
			}
		}
		return strings.Join(s, " ")
	}
	type row struct {
		Netns  struct{ Inode uint64 }
		Owners []struct{ Runtime, Name, ID string }
	}
	stdout, stderr, code := run(t, "ls", "-o", "json")
	if code != 0 {
		t.Fatalf("ls: exit %d: %s", code, stderr)
	}
	var rows []row
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatal(err)
	}
	listed := map[uint64]string{}
	for _, rw := range rows {
		listed[rw.Netns.Inode] = refs(rw.Owners)
	}
	hostIP := testbed.MustRun(t, "sh", "-c", "ip -4 -o addr show dev docker0 | awk '{print $4}' | cut -d/ -f1")
	for _, c := range []struct {
		ip   string
		want []string
	}{
		{web.IPs[0], []string{web.Name, side.Name}},
		{pm.IPs[0], []string{pm.Name}},
		{strings.TrimSpace(hostIP), []string{hostc.Name}},
	} {
		stdout, stderr, code := run(t, "whois", c.ip, "-o", "json")
		if code != 0 {
			t.Fatalf("whois %s: exit %d: %s", c.ip, code, stderr)
		}
		var res struct{ Matches []row }
		if err := json.Unmarshal([]byte(stdout), &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Matches) != 1 {
			t.Fatalf("whois %s: %d matches: %s", c.ip, len(res.Matches), stdout)
		}
		m := res.Matches[0]
		got := refs(m.Owners)
		if got != listed[m.Netns.Inode] {
			t.Errorf("whois %s: owners %q, ls gives that namespace %q", c.ip, got, listed[m.Netns.Inode])
		}
		for _, name := range c.want {
			if !strings.Contains(got, ":"+name+":") {
				t.Errorf("whois %s: owners %q lack %s", c.ip, got, name)
			}
		}
	}
}
