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
