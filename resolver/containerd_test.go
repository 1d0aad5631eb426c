package resolver

import (
	"testing"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"google.golang.org/protobuf/types/known/anypb"
)

func specAny(json string) *anypb.Any {
	return &anypb.Any{TypeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Spec", Value: []byte(json)}
}

func TestContainerdCandidate(t *testing.T) {
	podLabels := map[string]string{
		labelPodName: "web", labelPodNamespace: "shop", labelPodUID: "u-1",
	}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	cases := []struct {
		name string
		ns   string
		ct   *containersapi.Container
		want Owner
		path string
	}{
		{
			name: "plain container, new netns",
			ns:   "nsdebug-test",
			ct:   &containersapi.Container{ID: "c1", Spec: specAny(`{"linux":{"namespaces":[{"type":"network"}]}}`)},
			want: Owner{Runtime: "containerd", ID: "c1", Name: "c1", Namespace: "nsdebug-test"},
		},
		{
			name: "CRI sandbox",
			ns:   "k8s.io",
			ct: &containersapi.Container{ID: "sb", Labels: with(podLabels, labelCRIKind, "sandbox"),
				Spec: specAny(`{"linux":{"namespaces":[{"type":"network","path":"/var/run/netns/cni-1"}]}}`)},
			want: Owner{Runtime: "containerd", ID: "sb", Name: "web", Namespace: "k8s.io", Sandbox: true,
				Pod: &PodRef{Namespace: "shop", Name: "web", UID: "u-1"}},
			path: "/var/run/netns/cni-1",
		},
		{
			name: "CRI app container joins the sandbox by /proc path: not trusted",
			ns:   "k8s.io",
			ct: &containersapi.Container{ID: "app1", Labels: with(podLabels, labelCRIKind, "container", labelContainerName, "app"),
				Spec: specAny(`{"linux":{"namespaces":[{"type":"network","path":"/proc/5345/ns/net"}]}}`)},
			want: Owner{Runtime: "containerd", ID: "app1", Name: "app", Namespace: "k8s.io", Container: "app",
				Pod: &PodRef{Namespace: "shop", Name: "web", UID: "u-1"}},
		},
		{
			name: "docker host mode: no network namespace in the spec",
			ns:   "moby",
			ct:   &containersapi.Container{ID: "d1", Spec: specAny(`{"linux":{"namespaces":[{"type":"mount"}]}}`)},
			want: Owner{Runtime: "containerd", ID: "d1", Name: "d1", Namespace: "moby"},
		},
		{
			name: "unreadable spec",
			ns:   "x",
			ct:   &containersapi.Container{ID: "bad", Spec: specAny(`{not json`)},
			want: Owner{Runtime: "containerd", ID: "bad", Name: "bad", Namespace: "x"},
		},
		{
			name: "no spec",
			ns:   "x",
			ct:   &containersapi.Container{ID: "nospec"},
			want: Owner{Runtime: "containerd", ID: "nospec", Name: "nospec", Namespace: "x"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := containerdCandidate(c.ns, c.ct)
			if got.Running || got.PID != 0 {
				t.Errorf("running/pid set without a task: %+v", got)
			}
			if got.NetnsPath != c.path {
				t.Errorf("netns path %q, want %q", got.NetnsPath, c.path)
			}
			g, w := got.Owner, c.want
			if (g.Pod == nil) != (w.Pod == nil) || (g.Pod != nil && *g.Pod != *w.Pod) {
				t.Errorf("pod %+v, want %+v", g.Pod, w.Pod)
			}
			g.Pod, w.Pod = nil, nil
			if g != w {
				t.Errorf("owner\n got %+v\nwant %+v", g, w)
			}
		})
	}
}

func TestSetTaskState(t *testing.T) {
	cases := []struct {
		st      tasktypes.Status
		running bool
		pid     int
		state   string
	}{
		{tasktypes.Status_RUNNING, true, 42, "running"},
		{tasktypes.Status_STOPPED, false, 0, "stopped"}, // a stale PID is never reported
		{tasktypes.Status_CREATED, false, 0, "created"},
		{tasktypes.Status_PAUSED, true, 42, "paused"}, // frozen, but its netns is there
	}
	for _, c := range cases {
		var cand Candidate
		setTaskState(&cand, c.st, 42)
		if cand.Running != c.running || cand.PID != c.pid || cand.State != c.state {
			t.Errorf("%s: got running=%v pid=%d state=%s", c.st, cand.Running, cand.PID, cand.State)
		}
	}
}

func TestIDPrefixFilter(t *testing.T) {
	cases := []struct {
		prefix, filter string
		possible       bool
	}{
		{"3f2a1b", "id~=^3f2a1b", true},
		{"nsdbg-ctrd_1", "id~=^nsdbg-ctrd_1", true},
		{"redis.v2.x", "id~=^redis", true}, // '.' is a regexp metacharacter: stop there
		{".hidden", "id~=^", true},
		{"a*b", "", false},
		{"a b", "", false},
		{"a\"b", "", false},
		{"ü", "", false},
	}
	for _, c := range cases {
		f, ok := idPrefixFilter(c.prefix)
		if f != c.filter || ok != c.possible {
			t.Errorf("idPrefixFilter(%q) = %q, %v; want %q, %v", c.prefix, f, ok, c.filter, c.possible)
		}
	}
}
