package resolver

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/testbed"
)

// staticBackend answers from a fixed list. It is not a runtime mock: it feeds
// the Resolver's merge and decision logic with candidates that point at real
// namespaces (this test process's own), so the pinning below is real.
type staticBackend struct {
	name  string
	cands []Candidate
	err   error
	delay time.Duration
}

func (s *staticBackend) Name() string     { return s.name }
func (s *staticBackend) Endpoint() string { return "static://" + s.name }
func (s *staticBackend) Close() error     { return nil }
func (s *staticBackend) List(ctx context.Context) ([]Candidate, error) {
	return s.Find(ctx, Query{})
}
func (s *staticBackend) Find(ctx context.Context, q Query) ([]Candidate, error) {
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if s.err != nil {
		return nil, s.err
	}
	var out []Candidate
	for _, c := range s.cands {
		if q.Name == "" || strings.HasPrefix(c.ID, q.Name) || c.Name == q.Name {
			out = append(out, c)
		}
	}
	return out, nil
}

func self(runtime, id, name string) Candidate {
	return Candidate{Owner: Owner{Runtime: runtime, ID: id, Name: name, Namespace: "moby"}, Running: true, State: "running", PID: os.Getpid()}
}

func TestResolveMergesSameNetns(t *testing.T) {
	docker := &staticBackend{name: "docker", cands: []Candidate{self("docker", "abc123", "web")}}
	ctrd := &staticBackend{name: "containerd", cands: []Candidate{self("containerd", "abc123", "abc123")}}
	r := New(Options{Backends: []Backend{ctrd, docker}})
	res, err := r.Resolve(context.Background(), Target{Kind: KindAuto, Name: "abc", Raw: "abc"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if res.Runtime != "docker" || res.Name != "web" {
		t.Errorf("primary owner = %s %s, want docker web", res.Runtime, res.Name)
	}
	if len(res.Owners) != 2 {
		t.Errorf("owners = %+v, want docker and containerd", res.Owners)
	}
	want, _ := os.Readlink("/proc/self/ns/net")
	if got := "net:[" + itoa(res.Netns.Inode) + "]"; got != want {
		t.Errorf("netns %s, want %s", got, want)
	}
}

func TestResolveNotRunningNotFoundUnavailable(t *testing.T) {
	stopped := Candidate{Owner: Owner{Runtime: "docker", ID: "dead0000beef", Name: "old"}, Running: false, State: "exited"}
	docker := &staticBackend{name: "docker", cands: []Candidate{stopped}}
	down := &staticBackend{name: "cri", err: nserr.New(nserr.ErrUnavailable, "cri: connection refused at unix:///x")}
	slow := &staticBackend{name: "containerd", delay: time.Hour}
	r := New(Options{Backends: []Backend{docker, down, slow}, Timeout: 200 * time.Millisecond})

	start := time.Now()
	_, err := r.Resolve(context.Background(), Target{Kind: KindAuto, Name: "old", Raw: "old"})
	if !errors.Is(err, nserr.ErrNotRunning) || !strings.Contains(err.Error(), "docker:old") || !strings.Contains(err.Error(), "exited") {
		t.Errorf("stopped container: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a hung backend held resolution for %s", d)
	}

	// Unknown to the runtimes that answered, but two did not: "not found"
	// would be a guess, so it is "runtime unavailable".
	_, err = r.Resolve(context.Background(), Target{Kind: KindAuto, Name: "nope", Raw: "nope"})
	if !errors.Is(err, nserr.ErrUnavailable) {
		t.Fatalf("unknown name while runtimes are down: %v, want unavailable", err)
	}
	for _, want := range []string{"docker (static://docker)", "may belong to one that did not", "connection refused", "did not answer within"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}

	// Every runtime answered: a plain miss.
	r = New(Options{Backends: []Backend{docker}})
	if _, err = r.Resolve(context.Background(), Target{Kind: KindAuto, Name: "nope", Raw: "nope"}); !errors.Is(err, nserr.ErrNotFound) {
		t.Errorf("unknown name, every runtime answered: %v, want not found", err)
	}

	// A configuration error is the user's to fix, not an outage.
	bad := &staticBackend{name: "docker", err: nserr.New(nserr.ErrUsage, "DOCKER_API_VERSION=\"x\" is not a Docker API version")}
	r = New(Options{Backends: []Backend{bad, down}})
	if _, err = r.Resolve(context.Background(), Target{Kind: KindAuto, Name: "web", Raw: "web"}); !errors.Is(err, nserr.ErrUsage) || !strings.Contains(err.Error(), "DOCKER_API_VERSION") {
		t.Errorf("bad DOCKER_API_VERSION: %v, want the usage error", err)
	}

	// No runtime at all for a prefixed target: say which sockets are missing.
	r = New(Options{Backends: []Backend{down}})
	if _, err = r.Resolve(context.Background(), Target{Kind: KindDocker, Name: "web", Raw: "docker:web"}); !errors.Is(err, nserr.ErrUnavailable) || !strings.Contains(err.Error(), "/var/run/docker.sock") {
		t.Errorf("docker: target without docker: %v", err)
	}
}

func TestCheckAPIVersionEnv(t *testing.T) {
	for v, ok := range map[string]bool{"": true, "1.41": true, "1.24": true, "banana": false, "1": false, "1.": false, ".41": false, "v1.41": false, "1.41.0": false, "1.4x": false} {
		t.Setenv("DOCKER_API_VERSION", v)
		err := checkAPIVersionEnv()
		if (err == nil) != ok {
			t.Errorf("DOCKER_API_VERSION=%q: %v", v, err)
		}
		if err != nil && !errors.Is(err, nserr.ErrUsage) {
			t.Errorf("DOCKER_API_VERSION=%q: %v is not a usage error", v, err)
		}
	}
}

func TestResolveOnlyAsksTheNamedRuntime(t *testing.T) {
	docker := &staticBackend{name: "docker", cands: []Candidate{self("docker", "abc", "web")}}
	cri := &staticBackend{name: "cri", cands: []Candidate{self("cri", "abc", "web")}}
	r := New(Options{Backends: []Backend{docker, cri}})
	res, err := r.Resolve(context.Background(), Target{Kind: KindPod, Name: "web", Namespace: "default", Raw: "pod:web"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if res.Runtime != "cri" || len(res.Owners) != 1 {
		t.Errorf("pod: target answered by %s with owners %+v", res.Runtime, res.Owners)
	}
}

// Two runtimes naming different namespaces: an ambiguity error that lists
// both in target syntax. Needs two real namespaces, so root.
func TestResolveAmbiguous(t *testing.T) {
	testbed.RequireRoot(t)
	ns := testbed.NewNetNS(t, "amb")
	pid := ns.StartProcess(t, "sleep", "30")
	waitNetns(t, pid, ns.Path)
	other := Candidate{Owner: Owner{Runtime: "cri", ID: "podid", Name: "web", Pod: &PodRef{Namespace: "shop", Name: "web"}}, Running: true, PID: pid}
	docker := &staticBackend{name: "docker", cands: []Candidate{self("docker", "abc", "web")}}
	cri := &staticBackend{name: "cri", cands: []Candidate{other}}
	r := New(Options{Backends: []Backend{docker, cri}})
	_, err := r.Resolve(context.Background(), Target{Kind: KindAuto, Name: "web", Raw: "web"})
	if !errors.Is(err, nserr.ErrAmbiguous) || !strings.Contains(err.Error(), "docker:web") || !strings.Contains(err.Error(), "pod:shop/web") {
		t.Fatalf("want ambiguity listing docker:web and pod:shop/web, got %v", err)
	}
}

// A netns name whose bind mount is gone (an empty placeholder) is refused as
// not a network namespace, never entered.
func TestResolvePlaceholderIsNotNetns(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/ghost", nil, 0o444); err != nil {
		t.Fatal(err)
	}
	r := New(Options{NetnsDir: dir})
	_, err := r.Resolve(context.Background(), Target{Kind: KindNetns, Name: "ghost", Raw: "netns:ghost"})
	if !errors.Is(err, nserr.ErrNotNetns) || !strings.Contains(err.Error(), "placeholder") {
		t.Fatalf("placeholder: %v", err)
	}
	for _, p := range []string{"/etc/passwd", "/proc/self/status", dir} {
		_, err := r.Resolve(context.Background(), Target{Kind: KindPath, Path: p, Raw: p})
		if !errors.Is(err, nserr.ErrNotNetns) {
			t.Errorf("%s: %v, want not a network namespace", p, err)
		}
	}
	_, err = r.Resolve(context.Background(), Target{Kind: KindNetns, Name: "missing", Raw: "netns:missing"})
	if !errors.Is(err, nserr.ErrNotFound) {
		t.Errorf("missing netns name: %v", err)
	}
}

func waitNetns(t *testing.T, pid int, path string) {
	t.Helper()
	want, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if st, err := os.Stat("/proc/" + itoa(uint64(pid)) + "/ns/net"); err == nil && os.SameFile(st, want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("process %d never entered %s", pid, path)
}

func itoa(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for v > 0 {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
	}
	return string(b)
}

// A pid: or path: target never asks a runtime, so its clients are not made
// (issue 13: that cost start-up for nothing); the first runtime question
// makes them, once, and Close closes only what was made.
func TestBackendsAreMadeOnFirstUse(t *testing.T) {
	made := 0
	docker := &staticBackend{name: "docker", cands: []Candidate{self("docker", "abc123", "web")}}
	r := New(Options{OpenBackends: func() []Backend { made++; return []Backend{docker} }})
	for _, s := range []string{"/proc/self/ns/net", "pid:" + strconv.Itoa(os.Getpid())} {
		tg, err := ParseTarget(s)
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Resolve(context.Background(), tg)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		res.Close()
	}
	if made != 0 {
		t.Fatalf("the backends were made %d times for pid: and path: targets", made)
	}
	res, err := r.Resolve(context.Background(), Target{Kind: KindDocker, Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	res.Close()
	if len(r.Backends()) != 1 || made != 1 {
		t.Fatalf("backends made %d times, %d listed; want once, 1", made, len(r.Backends()))
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	unused := New(Options{OpenBackends: func() []Backend { made++; return nil }})
	if err := unused.Close(); err != nil || made != 1 {
		t.Fatalf("Close made backends to close them (made %d, %v)", made, err)
	}
}
