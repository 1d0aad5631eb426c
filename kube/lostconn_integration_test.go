package kube_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// apiProxy is a TCP proxy the test controls between the plugin and the
// test bed's API server: down() cuts every connection it carries and
// refuses new ones (the API server is unreachable), up() accepts again.
type apiProxy struct {
	t        *testing.T
	addr     string // 127.0.0.1:PORT, the same across down and up
	upstream string
	mu       sync.Mutex
	hold     bool // accept, then never answer (a black hole)
	ln       net.Listener
	conns    map[net.Conn]bool
	accepted int
}

func newAPIProxy(t *testing.T, upstream string) *apiProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &apiProxy{t: t, addr: ln.Addr().String(), upstream: upstream, ln: ln, conns: map[net.Conn]bool{}}
	go p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *apiProxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go p.pipe(c)
	}
}

func (p *apiProxy) pipe(c net.Conn) {
	p.mu.Lock()
	hold := p.hold
	if hold {
		p.conns[c] = true
	}
	p.mu.Unlock()
	if hold {
		_, _ = io.Copy(io.Discard, c) // until down() or the client closes it
		c.Close()
		return
	}
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // went down meanwhile
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.accepted++
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// down: every connection through the proxy is cut, and its port refuses
// new ones.
func (p *apiProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// up: the port accepts again.
func (p *apiProxy) up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	var err error
	for i := 0; i < 50; i++ {
		var ln net.Listener
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			p.ln, p.accepted = ln, 0
			go p.serve(ln)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Errorf("proxy: listen on %s again: %v", p.addr, err)
}

func (p *apiProxy) acceptedSinceUp() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// proxyKubeconfig is a copy of the test bed's kubeconfig whose server is
// the proxy; TLS still checks the API server's certificate, for the name
// it was issued to.
func proxyKubeconfig(t *testing.T, addr string) string {
	t.Helper()
	cluster := testbed.Kubectl(t, "config", "view", "--minify", "-o", "jsonpath={.clusters[0].name}")
	raw := testbed.Kubectl(t, "config", "view", "--raw", "--minify", "--flatten")
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(testbed.KubectlPath, "--kubeconfig", kubeconfig, "config", "set-cluster", cluster,
		"--server", "https://"+addr, "--tls-server-name", "kubernetes").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl config set-cluster: %v %s", err, out)
	}
	return kubeconfig
}

// apiServer is the test bed's API server address, HOST:PORT.
func apiServer(t *testing.T) string {
	t.Helper()
	server := testbed.Kubectl(t, "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
	return strings.TrimPrefix(server, "https://")
}

// helpersOf lists the helper pods made for target pod name (other
// engineers' tests may run helpers of their own meanwhile).
func helpersOf(t *testing.T, name string, running bool) []string {
	t.Helper()
	args := []string{"get", "pods", "-A", "-l", "app.kubernetes.io/managed-by=nsdebug,nsdebug.io/target-pod=" + name, "-o", "name"}
	if running {
		args = append(args, "--field-selector=status.phase=Running")
	}
	out := testbed.Kubectl(t, args...)
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// remoteSleep starts `kubectl nsdebug POD -- sleep N` (N unique) through
// kubeconfig and returns once that sleep runs in the pod's netns: the node
// is this machine, so the command is a process here.
func remoteSleep(t *testing.T, p *testbed.KubePod, kubeconfig string, stderr io.Writer) (cmd *exec.Cmd, helper string, pid int) {
	t.Helper()
	n := 100000 + rand.IntN(800000)
	cmd = plugin(t, "-n", p.Namespace, p.Name, "--", "sleep", fmt.Sprint(n))
	cmd.Env = append(cmd.Env, "KUBECONFIG="+kubeconfig)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if pid = findProcess(fmt.Sprintf("sleep\x00%d\x00", n)); pid != 0 {
			hs := helpersOf(t, p.Name, true)
			if len(hs) != 1 {
				t.Fatalf("helpers for %s: %v, want one", p.Name, hs)
			}
			helper = strings.TrimPrefix(hs[0], "pod/")
			// After the test's own checks: none is left for the next.
			t.Cleanup(func() {
				_, _, _ = testbed.KubectlRun(nil, "-n", "kube-system", "delete", "pod", helper, "--grace-period=0", "--force", "--ignore-not-found")
			})
			return cmd, helper, pid
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the remote sleep %d did not start within 60 s", n)
	return
}

// findProcess is the PID whose command line is cmdline, or 0.
func findProcess(cmdline string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && string(b) == cmdline {
			return pid
		}
	}
	return 0
}

// waitExit waits at most bound for cmd and returns its status and how long
// it took.
func waitExit(t *testing.T, cmd *exec.Cmd, bound time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), time.Since(start)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, time.Since(start)
	case <-time.After(bound):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the plugin did not exit within %s", bound)
		return 0, 0
	}
}

// The connection to the API server is lost mid-command: the plugin exits
// at once with one line and exit 125 (exec's own failure), and deletes the
// helper over a fresh connection once the API server answers again. When
// it stays unreachable, the line names the helper and what removes it.
func TestLostConnection(t *testing.T) {
	p := pod(t, testbed.KubePodOptions{})
	t.Run("API server back", func(t *testing.T) {
		prx := newAPIProxy(t, apiServer(t))
		kc := proxyKubeconfig(t, prx.addr)
		var e bytes.Buffer
		cmd, helper, sleepPID := remoteSleep(t, p, kc, &e)
		prx.down()
		time.AfterFunc(3*time.Second, prx.up)
		code, took := waitExit(t, cmd, 60*time.Second)
		t.Logf("exit %d after %s: %q", code, took, e.String())
		if line := pluginLine(t, e.String()); code != 125 || !strings.Contains(line, "connection to the API server lost") || !strings.HasSuffix(line, "; helper pod kube-system/"+helper+" was deleted") {
			t.Errorf("exit %d stderr %q; want 125 and one line saying the connection was lost and %s was deleted", code, e.String(), helper)
		}
		if took > 20*time.Second {
			t.Errorf("took %s to exit", took)
		}
		if hs := helpersOf(t, p.Name, false); len(hs) > 0 {
			t.Errorf("helper left: %v", hs)
		}
		if prx.acceptedSinceUp() == 0 {
			t.Errorf("nothing came through the proxy once it was back: who deleted %s?", helper)
		}
		// The remote command went with its helper.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", sleepPID)); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("the remote sleep (PID %d) still runs 30 s after its helper was deleted", sleepPID)
				break
			}
		}
	})
	t.Run("API server gone", func(t *testing.T) {
		prx := newAPIProxy(t, apiServer(t))
		kc := proxyKubeconfig(t, prx.addr)
		var e bytes.Buffer
		cmd, helper, _ := remoteSleep(t, p, kc, &e)
		prx.down()
		code, took := waitExit(t, cmd, 60*time.Second)
		t.Logf("exit %d after %s: %q", code, took, e.String())
		line := pluginLine(t, e.String())
		if code != 125 {
			t.Errorf("exit %d stderr %q; want 125", code, e.String())
		}
		for _, w := range []string{"connection to the API server lost", "kube-system/" + helper + " was not deleted", "kubectl nsdebug gc", "activeDeadlineSeconds"} {
			if !strings.Contains(line, w) {
				t.Errorf("stderr %q lacks %q", line, w)
			}
		}
		if took > 30*time.Second {
			t.Errorf("took %s to exit", took)
		}
		// It said so truly: the helper is still there (the cleanup deletes it).
		if hs := helpersOf(t, p.Name, false); len(hs) != 1 || hs[0] != "pod/"+helper {
			t.Errorf("helpers %v, want %s still there", hs, helper)
		}
	})
}

// pluginLine is the plugin's one line on stderr: the rest must be the
// remote nsdebug's own ("nsdebug: " lines, e.g. the warning about a pod
// without /etc/hosts), never client-go's logging.
func pluginLine(t *testing.T, stderr string) string {
	t.Helper()
	var mine []string
	for _, l := range strings.SplitAfter(stderr, "\n") {
		if l != "" && !strings.HasPrefix(l, "nsdebug: ") {
			mine = append(mine, l)
		}
	}
	if len(mine) != 1 || !strings.HasPrefix(mine[0], "kubectl-nsdebug: ") || !strings.HasSuffix(mine[0], "\n") {
		t.Errorf("stderr %q: want one line kubectl-nsdebug: ... besides the remote nsdebug's", stderr)
		return ""
	}
	return strings.TrimSuffix(mine[0], "\n")
}
