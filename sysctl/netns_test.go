package sysctl

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

// Listing every sysctl of a namespace whose interfaces come and go (a busy
// container host) must not fail because one interface's directory vanished
// between listing its parent and reading it.
func TestReadAllWhileInterfacesChurn(t *testing.T) {
	testbed.RequireRoot(t)
	n := testbed.NewNetNS(t, "sysctl-churn")
	ns, err := nsfs.Open(n.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()

	var stop atomic.Bool
	var churns atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; !stop.Load(); i++ {
			a, b := fmt.Sprintf("ch%da", i%4), fmt.Sprintf("ch%db", i%4)
			exec.Command("ip", "-n", n.Name, "link", "add", a, "type", "veth", "peer", "name", b).Run()
			exec.Command("ip", "-n", n.Name, "link", "del", a).Run()
			churns.Add(1)
		}
	}()
	reads := 0
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); reads++ {
		vals, err := Read(ns, nil, false)
		if err != nil {
			stop.Store(true)
			<-done
			t.Fatalf("read %d, after %d interface churns: %v", reads, churns.Load(), err)
		}
		if len(vals) == 0 {
			t.Fatal("no sysctls listed")
		}
	}
	stop.Store(true)
	<-done
	if churns.Load() == 0 {
		t.Fatal("interfaces never churned: the test proves nothing")
	}
	t.Logf("%d full listings while interfaces were added and removed %d times", reads, churns.Load())
}

// A value with more numbers than an integer sysctl holds: the kernel stores
// the first and answers a short write. Run must report the key applied with
// the value the kernel kept, stop the list, and say so (exit 2's kind).
// The pre-write value check (CheckValue) refuses such a value, so it is
// turned off here to reach the kernel.
func TestRunShortWriteIsReportedApplied(t *testing.T) {
	testbed.RequireRoot(t)
	n := testbed.NewNetNS(t, "sysctl-short")
	ns, err := nsfs.Open(n.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	n.Exec(t, "sh", "-c", "echo 1234 >/proc/sys/net/core/somaxconn")
	oldFin := n.Exec(t, "cat", "/proc/sys/net/ipv4/tcp_fin_timeout")
	ops, err := ParseOps([]string{"net.core.somaxconn=77 88", "net.ipv4.tcp_fin_timeout=31"})
	if err != nil {
		t.Fatal(err)
	}
	steps, err := run(ns, ops, false, false)
	if err == nil || !errors.Is(err, nserr.ErrUsage) {
		t.Fatalf("err = %v, want a usage-kind error", err)
	}
	for _, want := range []string{`kept only "77"`, "net.core.somaxconn is now 77", "not attempted: net.ipv4.tcp_fin_timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	var re *RunError
	if !errors.As(err, &re) || re.Key != "net.core.somaxconn" || len(re.NotAttempted) != 1 || re.NotAttempted[0] != "net.ipv4.tcp_fin_timeout" {
		t.Errorf("RunError = %+v", re)
	}
	if len(steps) != 1 || steps[0].Write == nil || *steps[0].Write != (Change{Key: "net.core.somaxconn", Old: "1234", New: "77", Applied: true, Partial: true, Requested: "77 88"}) {
		t.Errorf("steps = %+v", steps)
	}
	if got := n.Exec(t, "cat", "/proc/sys/net/core/somaxconn"); got != "77" {
		t.Errorf("somaxconn = %s, want 77", got)
	}
	if got := n.Exec(t, "cat", "/proc/sys/net/ipv4/tcp_fin_timeout"); got != oldFin {
		t.Errorf("tcp_fin_timeout = %s, want %s (not attempted)", got, oldFin)
	}
}
