package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nsdebug/nsdebug/internal/nserr"
)

// sandboxFiles makes a sandbox directory with resolv.conf and hosts, as
// containerd keeps under <root>/io.containerd.grpc.v1.cri/sandboxes/<id>.
func sandboxFiles(t *testing.T, names ...string) string {
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestParseSandboxInfo(t *testing.T) {
	both := sandboxFiles(t, "resolv.conf", "hosts")
	onlyResolv := sandboxFiles(t, "resolv.conf")
	// The shape containerd 1.6 returns (trimmed), and CRI-O's.
	containerd := func(dir string) string {
		return `{"pid":5345,"processStatus":"running","netNamespaceClosed":false,
		  "runtimeSpec":{"mounts":[
		    {"destination":"/dev/shm","type":"bind","source":"/run/containerd/io.containerd.grpc.v1.cri/sandboxes/ba2d/shm"},
		    {"destination":"/etc/resolv.conf","type":"bind","source":"` + dir + `/resolv.conf"}],
		   "linux":{"namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},
		     {"type":"network","path":"/var/run/netns/cni-21ae8eae-de89-5506-8df7-19895b9a890d"}]}},
		  "cniResult":{}}`
	}
	crio := `{"pid":77,"image":"registry.k8s.io/pause:3.9",
	  "runtimeSpec":{"annotations":{"io.kubernetes.cri-o.ResolvPath":"` + both + `/resolv.conf"},
	   "linux":{"namespaces":[{"type":"network","path":"/var/run/netns/0f6a1b2c"}]}}}`
	cases := []struct {
		name string
		raw  string
		want sandboxInfo
	}{
		{"containerd", containerd(both), sandboxInfo{PID: 5345, NetnsPath: "/var/run/netns/cni-21ae8eae-de89-5506-8df7-19895b9a890d", ResolvConf: both + "/resolv.conf", Hosts: both + "/hosts"}},
		{"containerd, no hosts file", containerd(onlyResolv), sandboxInfo{PID: 5345, NetnsPath: "/var/run/netns/cni-21ae8eae-de89-5506-8df7-19895b9a890d", ResolvConf: onlyResolv + "/resolv.conf"}},
		{"files gone", containerd("/nonexistent/sandbox"), sandboxInfo{PID: 5345, NetnsPath: "/var/run/netns/cni-21ae8eae-de89-5506-8df7-19895b9a890d"}},
		{"cri-o", crio, sandboxInfo{PID: 77, NetnsPath: "/var/run/netns/0f6a1b2c", ResolvConf: both + "/resolv.conf", Hosts: both + "/hosts"}},
		{"hostNetwork: no network entry", `{"pid":9,"runtimeSpec":{"linux":{"namespaces":[{"type":"pid"}]}}}`, sandboxInfo{PID: 9}},
		{"proc path is not trusted", `{"pid":9,"runtimeSpec":{"linux":{"namespaces":[{"type":"network","path":"/proc/12/ns/net"}]}}}`, sandboxInfo{PID: 9}},
		{"no spec", `{"pid":9}`, sandboxInfo{PID: 9}},
		{"empty", ``, sandboxInfo{}},
		{"not JSON", `pid=9`, sandboxInfo{}},
		{"wrong types", `{"pid":"nine","runtimeSpec":[]}`, sandboxInfo{}},
	}
	same := func(p string) string { return p }
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := parseSandboxInfo(c.raw, same); got != c.want {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
	// In a helper pod the runtime's paths are the node's, seen below its
	// root (/proc/1/root): the files are checked there, not at the path as
	// the runtime wrote it (which the helper's own root does not have).
	t.Run("node root", func(t *testing.T) {
		root := t.TempDir()
		dir := filepath.Join(root, "var/lib/k/sandboxes/ab")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"resolv.conf", "hosts"} {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("x\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got := parseSandboxInfo(containerd("/var/lib/k/sandboxes/ab"), func(p string) string { return InRoot(root, p) })
		want := sandboxInfo{PID: 5345, NetnsPath: "/var/run/netns/cni-21ae8eae-de89-5506-8df7-19895b9a890d", ResolvConf: dir + "/resolv.conf", Hosts: dir + "/hosts"}
		if got != want {
			t.Errorf("got  %+v\nwant %+v", got, want)
		}
	})
}

// TestParseContainerHosts: the kubelet's etc-hosts, as a container's
// runtime spec mounts it, seen from here.
func TestParseContainerHosts(t *testing.T) {
	root := t.TempDir()
	kubelet := filepath.Join(root, "var/lib/kubelet/pods/u1")
	if err := os.MkdirAll(kubelet, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(kubelet, "etc-hosts"), []byte("10.0.0.5 web\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	info := func(src string) string {
		return `{"sandboxID":"ab","pid":12,"runtimeSpec":{"mounts":[
		  {"destination":"/etc/resolv.conf","source":"/var/lib/containerd/sandboxes/ab/resolv.conf"},
		  {"destination":"/etc/hosts","type":"bind","source":"` + src + `"}]}}`
	}
	seen := func(p string) string { return InRoot(root, p) }
	for _, c := range []struct {
		name, raw, want string
	}{
		{"kubelet's file", info("/var/lib/kubelet/pods/u1/etc-hosts"), kubelet + "/etc-hosts"},
		{"file gone", info("/var/lib/kubelet/pods/u2/etc-hosts"), ""},
		{"a directory", info("/var/lib/kubelet/pods/u1"), ""},
		{"no hosts mount", `{"runtimeSpec":{"mounts":[{"destination":"/etc/resolv.conf","source":"/x"}]}}`, ""},
		{"no spec", `{"pid":12}`, ""},
		{"not JSON", `pid=12`, ""},
		{"empty", ``, ""},
	} {
		if got := parseContainerHosts(c.raw, seen); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func TestStateWord(t *testing.T) {
	for in, want := range map[string]string{
		cri.PodSandboxState_SANDBOX_READY.String():    "ready",
		cri.PodSandboxState_SANDBOX_NOTREADY.String(): "notready",
		cri.ContainerState_CONTAINER_EXITED.String():  "exited",
		cri.ContainerState_CONTAINER_UNKNOWN.String(): "unknown",
	} {
		if got := stateWord(in); got != want {
			t.Errorf("stateWord(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestPickPodContainer(t *testing.T) {
	ctr := func(id, name string, attempt uint32, st cri.ContainerState, created int64) *cri.Container {
		return &cri.Container{Id: id, State: st, CreatedAt: created, Metadata: &cri.ContainerMetadata{Name: name, Attempt: attempt}}
	}
	exited, running := cri.ContainerState_CONTAINER_EXITED, cri.ContainerState_CONTAINER_RUNNING
	cs := []*cri.Container{
		ctr("a0", "app", 0, exited, 1),
		ctr("a1", "app", 1, running, 2),
		ctr("a2", "app", 2, exited, 3), // newer, but the running one wins
		ctr("s0", "side", 0, exited, 1),
		ctr("s1", "side", 1, exited, 5),
		ctr("w0", "web", 0, exited, 4),
		ctr("w0b", "web", 0, exited, 6), // same attempt: the newer
	}
	for name, wantID := range map[string]string{"app": "a1", "side": "s1", "web": "w0b", "nope": ""} {
		got, names := pickPodContainer(cs, name)
		if gotID := got.GetId(); gotID != wantID {
			t.Errorf("%s: picked %q, want %q", name, gotID, wantID)
		}
		if !reflect.DeepEqual(names, []string{"app", "side", "web"}) {
			t.Errorf("names %v", names)
		}
	}
	if got, names := pickPodContainer(nil, "app"); got != nil || names != nil {
		t.Errorf("no containers: %v %v", got, names)
	}
}

func TestUnixSocketPath(t *testing.T) {
	cases := []struct{ in, want string }{
		{"unix:///run/containerd/containerd.sock", "/run/containerd/containerd.sock"},
		{"/var/run/crio/crio.sock", "/var/run/crio/crio.sock"},
		{"unix:///run//x/../containerd.sock", "/run/containerd.sock"},
		{"tcp://10.0.0.1:1234", ""},
		{"unix://relative.sock", ""},
		{"npipe:////./pipe/containerd", ""},
		{"", ""},
	}
	for _, c := range cases {
		got, err := unixSocketPath(c.in)
		if c.want == "" {
			if !errors.Is(err, nserr.ErrUsage) {
				t.Errorf("%q: got %q, %v; want ErrUsage", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: got %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestRPCError(t *testing.T) {
	live := context.Background()
	expired, cancel := context.WithTimeout(live, -time.Second)
	defer cancel()
	refused := status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial unix /x.sock: connect: connection refused"`)
	cases := []struct {
		name     string
		ctx      context.Context
		err      error
		kind     error
		contains string
	}{
		{"refused", live, refused, nserr.ErrUnavailable, "cri is not answering at unix:///x.sock: dial unix /x.sock: connect: connection refused"},
		{"wrapped", live, fmt.Errorf("list: %w", refused), nserr.ErrUnavailable, "not answering"},
		{"canceled", live, status.Error(codes.Canceled, "context canceled"), nserr.ErrUnavailable, "not answering"},
		{"permission", live, status.Error(codes.Unavailable, `dial unix /x.sock: connect: permission denied`), nserr.ErrPermission, "cannot connect to cri at unix:///x.sock: dial unix /x.sock: connect: permission denied"},
		{"deadline", expired, status.Error(codes.DeadlineExceeded, "context deadline exceeded"), nserr.ErrUnavailable, "did not answer at unix:///x.sock"},
		{"old runtime", live, status.Error(codes.Unimplemented, "unknown service runtime.v1.RuntimeService"), nserr.ErrUnavailable, "does not serve"},
		{"other", live, status.Error(codes.Internal, "boom"), nil, "cri at unix:///x.sock: rpc error: code = Internal desc = boom"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := rpcError(c.ctx, "cri", "unix:///x.sock", c.err)
			if c.kind != nil && !errors.Is(got, c.kind) {
				t.Errorf("kind: got %v, want %v", got, c.kind)
			}
			if c.kind == nil && (errors.Is(got, nserr.ErrUnavailable) || !errors.Is(got, c.err)) {
				t.Errorf("got %v, want the cause wrapped and no kind", got)
			}
			if !strings.Contains(got.Error(), c.contains) {
				t.Errorf("message %q lacks %q", got, c.contains)
			}
		})
	}
}

func TestExistingSockets(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "a.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	link := filepath.Join(dir, "link.sock")
	if err := os.Symlink(sock, link); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "plain")
	os.WriteFile(file, nil, 0o644)
	got := existingSockets([]string{filepath.Join(dir, "missing.sock"), file, sock, link})
	if !reflect.DeepEqual(got, []string{sock}) {
		t.Errorf("got %v, want [%s]", got, sock)
	}
}

func TestWithTimeout(t *testing.T) {
	ctx, cancel := withTimeout(context.Background(), time.Minute)
	defer cancel()
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > time.Minute {
		t.Errorf("no or wrong deadline: %v %v", d, ok)
	}
	parent, pcancel := context.WithTimeout(context.Background(), time.Hour)
	defer pcancel()
	ctx, cancel = withTimeout(parent, time.Second)
	defer cancel()
	if d, _ := ctx.Deadline(); time.Until(d) < time.Minute {
		t.Errorf("an existing deadline was shortened")
	}
}

// Backends on sockets that are missing or silent fail fast with
// ErrUnavailable naming the socket; nothing blocks at construction.
func TestRuntimeBackendsUnavailable(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.sock")
	silent := filepath.Join(dir, "silent.sock")
	l, err := net.Listen("unix", silent) // accepts (backlog), never answers
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, sock := range []string{missing, silent} {
		for _, b := range []Backend{
			&criBackend{endpoint: "unix://" + sock, timeout: 300 * time.Millisecond},
			&containerdBackend{address: sock, timeout: 300 * time.Millisecond},
		} {
			t.Run(b.Name()+" "+filepath.Base(sock), func(t *testing.T) {
				defer b.Close()
				start := time.Now()
				_, ferr := b.Find(context.Background(), Query{Name: "x", Namespace: "default"})
				_, lerr := b.List(context.Background())
				took := time.Since(start)
				for _, err := range []error{ferr, lerr} {
					if !errors.Is(err, nserr.ErrUnavailable) || !strings.Contains(err.Error(), sock) {
						t.Errorf("got %v, want ErrUnavailable naming %s", err, sock)
					}
				}
				if took > 2*time.Second {
					t.Errorf("took %s with a 300ms timeout per call", took)
				}
			})
		}
	}
}

// A runtime that answers "no such container in that pod" is an answer: the
// Resolver returns it (exit code not-found), not an outage.
func TestResolverReturnsRuntimeNotFound(t *testing.T) {
	b := &staticBackend{name: "cri", err: nserr.New(nserr.ErrNotFound, `pod default/web has no container "db" (it has: app)`)}
	r := New(Options{Backends: []Backend{b}})
	_, err := r.Resolve(context.Background(), Target{Kind: KindPod, Namespace: "default", Name: "web", Container: "db", Raw: "pod:web/db"})
	if !errors.Is(err, nserr.ErrNotFound) || errors.Is(err, nserr.ErrUnavailable) || !strings.Contains(err.Error(), `no container "db"`) {
		t.Fatalf("got %v", err)
	}
	// For a bare word, a runtime's "not there" is an answer too; the message
	// is the general one that lists where nsdebug looked.
	_, err = r.Resolve(context.Background(), Target{Kind: KindAuto, Name: "web", Raw: "web"})
	if !errors.Is(err, nserr.ErrNotFound) || errors.Is(err, nserr.ErrUnavailable) || !strings.Contains(err.Error(), "looked in cri (static://cri)") || strings.Contains(err.Error(), "not answering") {
		t.Fatalf("bare word: got %v", err)
	}
}

func TestNewBackendsHonourConfig(t *testing.T) {
	cfg := Config{ContainerdAddress: "/tmp/x/containerd.sock", CRIEndpoint: "unix:///tmp/x/cri.sock", Timeout: time.Second}
	cb := newContainerdBackends(cfg)
	if len(cb) != 1 || cb[0].Endpoint() != "/tmp/x/containerd.sock" || cb[0].Name() != "containerd" {
		t.Errorf("containerd backends %v", cb)
	}
	rb := newCRIBackends(cfg)
	if len(rb) != 1 || rb[0].Endpoint() != "unix:///tmp/x/cri.sock" || rb[0].Name() != "cri" {
		t.Errorf("cri backends %v", rb)
	}
	t.Setenv("CONTAINERD_ADDRESS", "/tmp/env/containerd.sock")
	t.Setenv("CONTAINER_RUNTIME_ENDPOINT", "unix:///tmp/env/cri.sock")
	t.Setenv("CONTAINER_HOST", "unix:///tmp/env/podman.sock")
	r := Open(Config{})
	defer r.Close()
	var eps []string
	for _, b := range r.Backends() {
		if b.Name() != "docker" {
			eps = append(eps, b.Name()+"="+b.Endpoint())
		}
	}
	if want := []string{"podman=unix:///tmp/env/podman.sock", "containerd=/tmp/env/containerd.sock", "cri=unix:///tmp/env/cri.sock"}; !reflect.DeepEqual(eps, want) {
		t.Errorf("from the environment: %v, want %v", eps, want)
	}
}

func TestMatchPods(t *testing.T) {
	pod := func(id, ns, name string) *cri.PodSandbox {
		return &cri.PodSandbox{Id: id, Metadata: &cri.PodSandboxMetadata{Namespace: ns, Name: name}}
	}
	pods := []*cri.PodSandbox{
		pod("aa11", "shop", "cart"),
		pod("bb22", "staging", "cart"),
		pod("cafe01", "shop", "web"),
		pod("cafe02", "shop", "cafe"), // a pod named like another's ID prefix
	}
	ids := func(ps []*cri.PodSandbox) string {
		var s []string
		for _, p := range ps {
			s = append(s, p.Id)
		}
		return strings.Join(s, ",")
	}
	cases := []struct {
		q    Query
		want string
	}{
		{Query{Name: "cart", Namespace: "shop"}, "aa11"},
		{Query{Name: "cart"}, "aa11,bb22"},              // bare word: every namespace
		{Query{Name: "cart", Namespace: "default"}, ""}, // pod:cart
		{Query{Name: "aa1"}, "aa11"},                    // bare ID prefix
		{Query{Name: "aa11", Namespace: "shop"}, ""},    // pod: targets take names only
		{Query{Name: "cafe"}, "cafe02"},                 // a name beats ID prefixes
		{Query{Name: "cafe0"}, "cafe01,cafe02"},         // an ambiguous prefix: both, for the Resolver to report
		{Query{Name: "aa1", Container: "app"}, ""},
	}
	for _, c := range cases {
		if got := ids(matchPods(pods, c.q)); got != c.want {
			t.Errorf("%+v: got %q, want %q", c.q, got, c.want)
		}
	}
}
