package cmd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// --all with 20 containers: every packet lands on its own container's
// interface block, a container started during the capture is picked up,
// one removed during it ends its interface cleanly (a statistics block,
// a note), and tshark shows the names.
func TestCaptureAll(t *testing.T) {
	requireTcpdump(t)
	testbed.Require(t)
	bin := nsdebugBinary(t)
	const n = 20
	cs := make([]*testbed.Container, n)
	var wg sync.WaitGroup
	for i := range cs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cs[i] = testbed.RunContainer(t, testbed.ContainerOpts{Prefix: fmt.Sprintf("capall%d", i)})
		}(i)
		if i%4 == 3 {
			wg.Wait() // a few at a time: the daemon is shared
		}
	}
	wg.Wait()
	for _, c := range cs {
		if c == nil || len(c.IPs) == 0 {
			t.Fatalf("container without an address: %+v", c)
		}
	}
	pod := testbed.RunPod(t, testbed.PodOptions{Namespace: "capshop", Containers: []string{"cart"}})
	podIface := "pod:capshop/" + pod.Name + "/eth0"
	f := filepath.Join(t.TempDir(), "all.pcapng")
	pr := startCapture(t, nil, bin, "capture", "--all", "-w", f, "icmp")
	waitStderr(t, pr, func(s string) bool {
		for _, c := range cs {
			if !strings.Contains(s, "listening on docker:"+c.Name+"/eth0 ") {
				return false
			}
		}
		return strings.Contains(s, "listening on "+podIface+" ")
	})
	// Each container pings the next one with a size of its own.
	for i, c := range cs {
		next := cs[(i+1)%n]
		testbed.MustRun(t, "docker", "exec", c.Name, "ping", "-c", "2", "-i", "0.05", "-s", fmt.Sprint(100+i), next.IPs[0])
	}
	late := testbed.RunContainer(t, testbed.ContainerOpts{Prefix: "capalllate"})
	waitStderr(t, pr, func(s string) bool { return strings.Contains(s, "listening on docker:"+late.Name+"/eth0 ") })
	testbed.MustRun(t, "docker", "exec", late.Name, "ping", "-c", "2", "-i", "0.05", "-s", "300", cs[1].IPs[0])
	testbed.MustRun(t, "docker", "rm", "-f", cs[0].Name)
	waitStderr(t, pr, func(s string) bool { return strings.Contains(s, "docker:"+cs[0].Name+"/eth0 went away") })
	pr.stop(t)

	out, err := exec.Command("tshark", "-r", f, "-T", "fields", "-e", "frame.interface_name").Output()
	if err != nil {
		t.Fatalf("tshark -r: %v", err)
	}
	if !strings.Contains(string(out), "docker:"+late.Name+"/eth0\n") || !strings.Contains(string(out), "docker:"+cs[5].Name+"/eth0\n") {
		t.Errorf("tshark does not show the interface names:\n%s", out)
	}

	raw, _ := os.ReadFile(f)
	r, err := pcapgo.NewNgReader(bytes.NewReader(raw), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	ip := map[string]string{} // interface name -> its container's address
	for _, c := range append(cs, late) {
		ip["docker:"+c.Name+"/eth0"] = c.IPs[0]
	}
	perIface := map[string]int{}
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ifc, _ := r.Interface(ci.InterfaceIndex)
		want, ours := ip[ifc.Name]
		if !ours {
			continue // another test's container
		}
		pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		v4, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !ok || pkt.Layer(layers.LayerTypeICMPv4) == nil {
			t.Errorf("%s: not ICMP: %v", ifc.Name, pkt)
			continue
		}
		if v4.SrcIP.String() != want && v4.DstIP.String() != want {
			t.Errorf("%s (%s) has a packet %s > %s", ifc.Name, want, v4.SrcIP, v4.DstIP)
		}
		perIface[ifc.Name]++
	}
	for name := range ip {
		// 2 requests out and 2 replies in of its own; 4 more of the
		// previous container's pings (the first has the last's).
		min := 8
		if strings.Contains(name, late.Name) || strings.Contains(name, cs[0].Name) {
			min = 4
		}
		if perIface[name] < min {
			t.Errorf("%s: %d packets, want at least %d", name, perIface[name], min)
		}
	}
	// The removed container's interface ended with its statistics block;
	// the pod has its block, named by pod.
	podSeen := false
	for i := 0; i < r.NInterfaces(); i++ {
		ifc, _ := r.Interface(i)
		podSeen = podSeen || ifc.Name == podIface
		if ifc.Name == "docker:"+cs[0].Name+"/eth0" && ifc.Statistics.PacketsReceived < 4 {
			t.Errorf("%s: statistics %+v", ifc.Name, ifc.Statistics)
		}
	}
	if !podSeen {
		t.Errorf("no interface block %s", podIface)
	}
	if !strings.Contains(pr.stderr.String(), "docker:"+cs[3].Name+"/eth0: ") {
		t.Errorf("no per-interface counters: %s", pr.stderr.String())
	}
	parseCounts(t, pr.stderr.String())
}

func waitStderr(t *testing.T, p *proc, ok func(string) bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !ok(p.stderr.String()); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out; stderr:\n%s", p.stderr.String())
		}
	}
}
