package resolver

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

func TestPodResolve(t *testing.T) {
	testbed.Require(t)
	ns := testbed.UniqueName("nsdbg-ns")
	p := testbed.RunPod(t, testbed.PodOptions{Namespace: ns, Containers: []string{"app", "side"}})
	if !strings.HasPrefix(p.NetnsPath, "/var/run/netns/cni-") {
		t.Fatalf("fixture netns %q: want a /var/run/netns/cni-* file", p.NetnsPath)
	}
	want := statInode(t, p.NetnsPath)
	if got := statInode(t, procNet(p.Containers["app"].PID)); got != want {
		t.Fatalf("ground truth disagrees: %s is %d, app container's netns is %d", p.NetnsPath, want, got)
	}

	res := mustResolve(t, p.Ref())
	if res.Netns.Inode != want || res.Host {
		t.Errorf("%s: inode %d host %v, want %d false", p.Ref(), res.Netns.Inode, res.Host, want)
	}
	if res.Runtime != "cri" || res.ID != p.SandboxID || res.Name != p.Name || res.PID != p.SandboxPID {
		t.Errorf("%s: runtime=%s id=%s name=%s pid=%d, want cri %s %s %d", p.Ref(), res.Runtime, res.ID, res.Name, res.PID, p.SandboxID, p.Name, p.SandboxPID)
	}
	if res.Pod == nil || *res.Pod != (PodRef{Namespace: ns, Name: p.Name, UID: p.UID}) {
		t.Errorf("pod %+v, want %s/%s uid %s", res.Pod, ns, p.Name, p.UID)
	}
	// containerd's CRI keeps the pod's resolver files under its root; the
	// fixture asked for kubelet's ClusterFirst DNS.
	if b, err := os.ReadFile(res.ResolvConf); err != nil || !strings.Contains(string(b), "nameserver 10.99.0.10") || !strings.Contains(string(b), ns+".svc.cluster.local") {
		t.Errorf("resolv.conf %q: %v %q", res.ResolvConf, err, b)
	}
	if b, err := os.ReadFile(res.Hosts); err != nil || !strings.Contains(string(b), "localhost") {
		t.Errorf("hosts %q: %v %q", res.Hosts, err, b)
	}

	t.Run("container", func(t *testing.T) {
		res := mustResolve(t, p.Ref()+"/side")
		if res.Netns.Inode != want || res.ID != p.Containers["side"].ID {
			t.Errorf("inode %d id %s, want %d %s", res.Netns.Inode, res.ID, want, p.Containers["side"].ID)
		}
		if !hasOwner(res.Owners, func(o Owner) bool { return o.Runtime == "cri" && o.Container == "side" && o.Ref() == p.Ref()+"/side" }) {
			t.Errorf("owners %+v lack %s/side", res.Owners, p.Ref())
		}
	})
	t.Run("missing container", func(t *testing.T) {
		_, err := resolveTarget(t, Config{}, p.Ref()+"/nope")
		if !errors.Is(err, nserr.ErrNotFound) || !strings.Contains(err.Error(), `no container "nope"`) || !strings.Contains(err.Error(), "app, side") {
			t.Fatalf("got %v, want ErrNotFound naming the pod's containers", err)
		}
	})
	t.Run("other namespace", func(t *testing.T) {
		_, err := resolveTarget(t, Config{}, "pod:"+ns+"-other/"+p.Name)
		if !errors.Is(err, nserr.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	})
}

func TestPodDefaultNamespaceAndBareName(t *testing.T) {
	testbed.Require(t)
	p := testbed.RunPod(t, testbed.PodOptions{Containers: []string{"app"}})
	want := statInode(t, p.NetnsPath)
	for _, target := range []string{"pod:" + p.Name, p.Name, p.SandboxID[:12]} {
		res := mustResolve(t, target)
		if res.Netns.Inode != want || res.Runtime != "cri" || res.Pod == nil || res.Pod.Namespace != "default" || res.Pod.Name != p.Name {
			t.Errorf("%s: inode %d runtime %s pod %+v, want %d cri default/%s", target, res.Netns.Inode, res.Runtime, res.Pod, want, p.Name)
		}
	}
	// A sandbox ID prefix is also the sandbox container in containerd's
	// k8s.io namespace: the same netns, so one match with both owners.
	res := mustResolve(t, p.SandboxID[:12])
	if !hasOwner(res.Owners, func(o Owner) bool {
		return o.Runtime == "containerd" && o.Namespace == "k8s.io" && o.ID == p.SandboxID && o.Sandbox
	}) ||
		!hasOwner(res.Owners, func(o Owner) bool { return o.Runtime == "cri" && o.ID == p.SandboxID }) {
		t.Errorf("owners %+v: want the pod (cri) and its sandbox (containerd k8s.io)", res.Owners)
	}
}

func TestPodSameNameInTwoNamespacesIsAmbiguous(t *testing.T) {
	testbed.Require(t)
	name := testbed.UniqueName("nsdbg-twin")
	a := testbed.RunPod(t, testbed.PodOptions{Namespace: name + "-a", Name: name})
	b := testbed.RunPod(t, testbed.PodOptions{Namespace: name + "-b", Name: name})
	_, err := resolveTarget(t, Config{}, name)
	if !errors.Is(err, nserr.ErrAmbiguous) {
		t.Fatalf("%s: got %v, want ErrAmbiguous", name, err)
	}
	for _, ref := range []string{a.Ref(), b.Ref()} {
		if !strings.Contains(err.Error(), ref+" (") {
			t.Errorf("error %q does not list %s", err, ref)
		}
	}
	if res := mustResolve(t, b.Ref()); res.Netns.Inode != statInode(t, b.NetnsPath) {
		t.Errorf("%s resolved to inode %d, want %d", b.Ref(), res.Netns.Inode, statInode(t, b.NetnsPath))
	}
}

func TestPodHostNetwork(t *testing.T) {
	testbed.Require(t)
	p := testbed.RunPod(t, testbed.PodOptions{HostNetwork: true, Containers: []string{"app"}})
	res := mustResolve(t, p.Ref())
	if !res.Host || res.NetworkMode != "host" {
		t.Errorf("host=%v network_mode=%q, want true host", res.Host, res.NetworkMode)
	}
	if want := statInode(t, procNet(p.Containers["app"].PID)); res.Netns.Inode != want {
		t.Errorf("inode %d, want the app container's %d", res.Netns.Inode, want)
	}
}

func TestPodStoppedIsNotRunning(t *testing.T) {
	testbed.Require(t)
	p := testbed.RunPod(t, testbed.PodOptions{Containers: []string{"app"}})
	p.Stop(t)
	for _, target := range []string{p.Ref(), p.Ref() + "/app"} {
		_, err := resolveTarget(t, Config{}, target)
		if !errors.Is(err, nserr.ErrNotRunning) || !strings.Contains(err.Error(), "notready") {
			t.Errorf("%s: got %v, want ErrNotRunning (state: notready)", target, err)
		}
	}
}

func TestCRIList(t *testing.T) {
	testbed.Require(t)
	p := testbed.RunPod(t, testbed.PodOptions{Namespace: testbed.UniqueName("nsdbg-ls")})
	b := &criBackend{endpoint: "unix://" + testbed.ContainerdSock, timeout: 10 * time.Second}
	defer b.Close()
	cands, err := b.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cands {
		if c.ID != p.SandboxID {
			continue
		}
		if !c.Running || c.PID != p.SandboxPID || c.NetnsPath != p.NetnsPath || c.Ref() != p.Ref() {
			t.Errorf("List: %+v, want running pid %d netns %s %s", c, p.SandboxPID, p.NetnsPath, p.Ref())
		}
		return
	}
	t.Errorf("List lacks pod %s (%s)", p.Ref(), p.SandboxID)
}

// silentSocket listens on a unix socket that accepts connections and never
// says a word: a hung runtime.
func silentSocket(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "silent.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return path
}

func TestCRIEndpointThatNeverAnswers(t *testing.T) {
	testbed.Require(t)
	sock := silentSocket(t)
	cfg := Config{CRIEndpoint: "unix://" + sock, Timeout: 500 * time.Millisecond}
	const slack = 1500 * time.Millisecond

	start := time.Now()
	_, err := resolveTarget(t, cfg, "pod:default/whatever")
	took := time.Since(start)
	if !errors.Is(err, nserr.ErrUnavailable) || !strings.Contains(err.Error(), sock) {
		t.Errorf("got %v, want ErrUnavailable naming %s", err, sock)
	}
	if took > cfg.Timeout+slack {
		t.Errorf("took %s with a %s timeout", took, cfg.Timeout)
	}

	// The other runtimes still answer a bare word; the silent one is a note.
	c := testbed.RunCtrdContainer(t, testbed.CtrdNamespace, testbed.UniqueName("nsdbg-hung"))
	start = time.Now()
	res, err := resolveTarget(t, cfg, c.ID)
	took = time.Since(start)
	if err != nil {
		t.Fatalf("%s with a hung CRI: %v", c.ID, err)
	}
	if res.Netns.Inode != statInode(t, procNet(c.PID)) {
		t.Errorf("inode %d, want %d", res.Netns.Inode, statInode(t, procNet(c.PID)))
	}
	if !strings.Contains(strings.Join(res.Warnings, "\n"), sock) {
		t.Errorf("warnings %q do not mention the silent CRI socket", res.Warnings)
	}
	if took > cfg.Timeout+slack {
		t.Errorf("took %s with a %s timeout", took, cfg.Timeout)
	}
}

// Docker's own containerd runs without the CRI plugin: as a default socket it
// simply has no pods; named explicitly it is an error that says why.
func TestCRISocketWithoutCRIService(t *testing.T) {
	testbed.Require(t)
	for _, explicit := range []bool{false, true} {
		b := &criBackend{endpoint: "unix://" + testbed.DockerContainerdSock, timeout: 5 * time.Second, explicit: explicit}
		cands, ferr := b.Find(context.Background(), Query{Name: "x"})
		_, lerr := b.List(context.Background())
		b.Close()
		for _, err := range []error{ferr, lerr} {
			switch {
			case !explicit && (err != nil || len(cands) > 0):
				t.Errorf("default socket: got %v %v, want no pods and no error", cands, err)
			case explicit && (!errors.Is(err, nserr.ErrUnavailable) || !strings.Contains(err.Error(), "does not serve")):
				t.Errorf("explicit endpoint: got %v, want ErrUnavailable (does not serve the API)", err)
			}
		}
	}
}
