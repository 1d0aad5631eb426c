package sysctl

import (
	"fmt"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

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
