package kube_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// captureWhilePinging runs `kubectl nsdebug capture POD ARGS...` and, once
// it listens, pings the pod from the node three times.
func captureWhilePinging(t *testing.T, p *testbed.KubePod, args ...string) (stdout []byte, stderr string, code int) {
	t.Helper()
	cmd := plugin(t, append([]string{"-n", p.Namespace, "capture", p.Name}, args...)...)
	var o bytes.Buffer
	var e testbed.SyncBuffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(e.String(), "listening on eth0"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("capture not listening within 60 s: %q", e.String())
		}
	}
	if out, err := exec.Command("busybox", "ping", "-c", "3", "-i", "0.2", "-W", "2", p.IP).CombinedOutput(); err != nil {
		t.Errorf("ping %s: %v %s", p.IP, err, out)
	}
	code, _ = waitExit(t, cmd, 30*time.Second)
	return o.Bytes(), e.String(), code
}

// capture through the plugin: nsdebug's own capturer in the pod's netns on
// the node, text lines and a pcapng stream (read back by tcpdump), the
// counters on stderr; diagnose: the checks nsdebug runs on the node.
func TestCaptureAndDiagnose(t *testing.T) {
	p := pod(t, testbed.KubePodOptions{})
	out, errOut, code := captureWhilePinging(t, p, "-c", "4", "icmp")
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	re := regexp.MustCompile(`^\S+ eth0 (In  IP \S+ > ` + regexp.QuoteMeta(p.IP) + `: ICMP echo request|Out IP ` + regexp.QuoteMeta(p.IP) + ` > \S+: ICMP echo reply), id \d+, seq \d, length 64$`)
	if code != 0 || len(lines) != 4 || !strings.Contains(errOut, "4 packets captured") {
		t.Errorf("capture -c 4 icmp: exit %d out %q err %q", code, out, errOut)
	}
	for _, l := range lines {
		if !re.MatchString(l) {
			t.Errorf("line %q: want an ICMP echo to or from %s", l, p.IP)
		}
	}
	// -w -: binary through the exec stream, as tcpdump reads it.
	out, errOut, code = captureWhilePinging(t, p, "-c", "2", "-w", "-", "icmp")
	if code != 0 {
		t.Fatalf("capture -w -: exit %d err %q", code, errOut)
	}
	tcpdump := exec.Command("tcpdump", "-nn", "-r", "-")
	tcpdump.Stdin = bytes.NewReader(out)
	read, err := tcpdump.Output()
	if err != nil || strings.Count(string(read), "ICMP echo") != 2 || !strings.Contains(string(read), p.IP) {
		t.Errorf("tcpdump -r of the plugin's pcapng: %v %q", err, read)
	}

	// diagnose -o json: the pod's checks, the same ones nsdebug runs on the
	// node itself, and the node's host checks in the node's own netns.
	r := runPlugin(t, "", "-n", p.Namespace, "diagnose", p.Name, "-o", "json")
	type report struct {
		Host struct {
			Target string
			Checks []struct{ ID string }
		}
		Targets []struct {
			Target string
			Checks []struct{ ID, Status string }
		}
	}
	var got report
	if err := json.Unmarshal([]byte(r.out), &got); (r.code != 0 && r.code != 1) || err != nil || len(got.Targets) != 1 {
		t.Fatalf("diagnose -o json: %d %v %q %q", r.code, err, r.out, r.err)
	}
	local, err := exec.Command(filepath.Join(pluginDir(t), "nsdebug"), "--cri-endpoint", "unix://"+testbed.KubeContainerdSock, "diagnose", "pod:"+p.Namespace+"/"+p.Name, "-o", "json").Output()
	var want report
	if jerr := json.Unmarshal(local, &want); jerr != nil || len(want.Targets) != 1 {
		t.Fatalf("nsdebug diagnose on the node: %v %v %q", err, jerr, local)
	}
	ids := func(rep report) string {
		var s []string
		for _, c := range rep.Host.Checks {
			s = append(s, "host:"+c.ID)
		}
		for _, c := range rep.Targets[0].Checks {
			s = append(s, c.ID)
		}
		sort.Strings(s)
		return strings.Join(s, " ")
	}
	if got.Targets[0].Target != "pod:"+p.Namespace+"/"+p.Name || got.Host.Target != "host" || ids(got) != ids(want) {
		t.Errorf("diagnose through the plugin: target %q host %q checks %s; want pod:%s/%s, host, checks %s",
			got.Targets[0].Target, got.Host.Target, ids(got), p.Namespace, p.Name, ids(want))
	}
}

// Ctrl-C ends a capture through the plugin as it ends a local one: the
// remote capture stops (its stdin closed), sends its last packets and its
// counters, exits 0, and the helper is deleted after. The pcapng stream is
// whole (tcpdump reads every packet the counters name). Over SPDY (the
// fallback) stdin's end travels as a half-close, over WebSocket as its
// v5 protocol's close message.
func TestCaptureCtrlC(t *testing.T) {
	for _, mode := range []string{"pcapng", "text", "pcapng over SPDY"} {
		t.Run(mode, func(t *testing.T) {
			p := pod(t, testbed.KubePodOptions{})
			args := []string{"-n", p.Namespace, "capture", p.Name}
			if strings.HasPrefix(mode, "pcapng") {
				args = append(args, "-w", "-")
			}
			cmd := plugin(t, append(args, "icmp")...)
			var seenUpgrades func() []string
			if strings.HasSuffix(mode, "SPDY") {
				var kc string
				kc, seenUpgrades = spdyOnly(t, p.Namespace)
				cmd.Env = append(cmd.Env, "KUBECONFIG="+kc)
			}
			var o bytes.Buffer
			var e testbed.SyncBuffer
			cmd.Stdout, cmd.Stderr = &o, &e
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer interruptIfRunning(cmd)
			for deadline := time.Now().Add(60 * time.Second); !strings.Contains(e.String(), "listening on eth0"); time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("capture not listening within 60 s: %q", e.String())
				}
			}
			if out, err := exec.Command("busybox", "ping", "-c", "3", "-i", "0.2", "-W", "2", p.IP).CombinedOutput(); err != nil {
				t.Fatalf("ping %s: %v %s", p.IP, err, out)
			}
			_ = cmd.Process.Signal(syscall.SIGINT)
			code, took := waitExit(t, cmd, 30*time.Second)
			m := regexp.MustCompile(`(?m)^(?:\S+ )?(\d+) packets captured$`).FindStringSubmatch(e.String())
			if code != 0 || m == nil || m[1] != "6" || strings.Contains(e.String(), "kubectl-nsdebug:") {
				t.Fatalf("after Ctrl-C (%s): exit %d, want 0 with \"6 packets captured\" (3 pings and replies); stderr %q", took, code, e.String())
			}
			got := o.String()
			if strings.HasPrefix(mode, "pcapng") {
				tcpdump := exec.Command("tcpdump", "-nn", "-r", "-")
				tcpdump.Stdin = bytes.NewReader(o.Bytes())
				read, err := tcpdump.CombinedOutput()
				if err != nil {
					t.Fatalf("tcpdump -r of the stream: %v %q", err, read)
				}
				got = string(read)
			}
			if n := strings.Count(got, "ICMP echo"); n != 6 {
				t.Errorf("%d ICMP echo packets in the %s output, want 6:\n%s", n, mode, got)
			}
			if hs := helpersOf(t, p.Name, false); len(hs) > 0 {
				t.Errorf("helper left after Ctrl-C: %v", hs)
			}
			if seenUpgrades != nil {
				if seen := seenUpgrades(); len(seen) == 0 || !strings.HasPrefix(seen[len(seen)-1], "spdy/") {
					t.Errorf("upgrades seen by the proxy: %q; want SPDY last", seen)
				}
			}
		})
	}
}

// capture -l: the pods on one node are captured at once (each its own exec
// into the node's helper), lines prefixed with the pod; Ctrl-C ends them all
// as it ends one, with each pod's counters, status 0.
func TestCaptureSelector(t *testing.T) {
	noNodeHelpersLeft(t)
	label := testbed.UniqueName("capsel")
	var ps []*testbed.KubePod
	for i := 0; i < 2; i++ {
		ps = append(ps, pod(t, testbed.KubePodOptions{Labels: map[string]string{"nsdebug-sel": label}}))
	}
	cmd := plugin(t, "-n", testbed.KubeNamespace, "capture", "-l", "nsdebug-sel="+label, "--", "icmp")
	var o, e testbed.SyncBuffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer interruptIfRunning(cmd)
	for deadline := time.Now().Add(60 * time.Second); strings.Count(e.String(), "listening on eth0") < len(ps); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not both captures listening within 60 s: %q", e.String())
		}
	}
	for _, p := range ps {
		if out, err := exec.Command("busybox", "ping", "-c", "3", "-i", "0.2", "-W", "2", p.IP).CombinedOutput(); err != nil {
			t.Fatalf("ping %s: %v %s", p.IP, err, out)
		}
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	code, took := waitExit(t, cmd, 30*time.Second)
	if code != 0 {
		t.Fatalf("after Ctrl-C (%s): exit %d, want 0; stderr %q", took, code, e.String())
	}
	for _, p := range ps {
		prefix := regexp.QuoteMeta("[pod/" + p.Name + "/main] ")
		if n := len(regexp.MustCompile(`(?m)^`+prefix+`.*ICMP echo`).FindAllString(o.String(), -1)); n != 6 {
			t.Errorf("%s: %d ICMP echo lines, want 6 (3 pings and replies):\n%s", p.Name, n, o.String())
		}
		if !regexp.MustCompile(`(?m)^` + prefix + `6 packets captured$`).MatchString(e.String()) {
			t.Errorf("%s: no \"6 packets captured\" in %q", p.Name, e.String())
		}
	}
}

// interruptIfRunning ends a plugin that a failed test left running with
// SIGTERM, so that it deletes its helper (SIGKILL would leave it to
// activeDeadlineSeconds and to later tests' checks).
func interruptIfRunning(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		_, _ = cmd.Process.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
	}
}
