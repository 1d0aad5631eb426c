package kubelet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeProc builds PROC/PID/cmdline and PROC/PID/root (a directory standing
// for kubelet's root).
func fakeProc(t *testing.T, procs map[string][]string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for pid, argv := range procs {
		if err := os.MkdirAll(filepath.Join(dir, pid, "root"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, pid, "cmdline"), []byte(strings.Join(argv, "\x00")+"\x00"), 0o644); err != nil {
			t.Fatal(err)
		}
		for p, c := range files {
			full := filepath.Join(dir, pid, "root", p)
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func TestFind(t *testing.T) {
	cases := []struct {
		name     string
		procs    map[string][]string
		files    map[string]string
		endpoint string
		from     string
		pid      int
	}{
		{"flag with =", map[string][]string{"40": {"/usr/bin/kubelet", "--v=2", "--container-runtime-endpoint=unix:///run/k/c.sock"}}, nil, "unix:///run/k/c.sock", "flag", 40},
		{"flag with space", map[string][]string{"40": {"kubelet", "--container-runtime-endpoint", "/run/k/c.sock"}}, nil, "/run/k/c.sock", "flag", 40},
		{"config yaml", map[string][]string{"7": {"/opt/kubelet", "--config=/etc/k/config.yaml"}}, map[string]string{"/etc/k/config.yaml": "kind: KubeletConfiguration\ncontainerRuntimeEndpoint: unix:///run/x/containerd.sock\n"}, "unix:///run/x/containerd.sock", "config /etc/k/config.yaml", 7},
		{"config json", map[string][]string{"7": {"/opt/kubelet", "--config", "/c.json"}}, map[string]string{"/c.json": `{"containerRuntimeEndpoint":"unix:///j.sock"}`}, "unix:///j.sock", "config /c.json", 7},
		{"config without endpoint", map[string][]string{"7": {"/opt/kubelet", "--config", "/c.yaml"}}, map[string]string{"/c.yaml": "failSwapOn: false\n"}, DefaultEndpoint, "default", 7},
		{"lowest pid of two, others ignored", map[string][]string{"90": {"kubelet", "--container-runtime-endpoint=unix:///b"}, "12": {"kubelet", "--container-runtime-endpoint=unix:///a"}, "5": {"/usr/bin/kubeletx"}, "6": {"sh", "-c", "kubelet"}}, nil, "unix:///a", "flag", 12},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			proc := fakeProc(t, c.procs, c.files)
			k, err := Find(proc)
			if err != nil {
				t.Fatal(err)
			}
			if k.Endpoint != c.endpoint || k.From != c.from || k.PID != c.pid {
				t.Errorf("got %+v, want endpoint %q from %q pid %d", k, c.endpoint, c.from, c.pid)
			}
			if k.Root != filepath.Join(proc, k.Root[len(proc)+1:]) || !strings.HasSuffix(k.Root, "/root") {
				t.Errorf("root %q", k.Root)
			}
		})
	}
}

func TestFindNone(t *testing.T) {
	proc := fakeProc(t, map[string][]string{"3": {"containerd"}}, nil)
	if _, err := Find(proc); err == nil || !strings.Contains(err.Error(), "no kubelet process") {
		t.Fatalf("err %v", err)
	}
}

func TestEndpointUnder(t *testing.T) {
	for in, want := range map[string]string{
		"unix:///run/containerd/containerd.sock": "unix:///proc/9/root/run/containerd/containerd.sock",
		"/var/run/crio/crio.sock":                "unix:///proc/9/root/var/run/crio/crio.sock",
	} {
		got, err := EndpointUnder("/proc/9/root", in)
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", in, got, err, want)
		}
	}
	if _, err := EndpointUnder("/proc/9/root", "tcp://1.2.3.4:1"); err == nil {
		t.Error("tcp endpoint accepted")
	}
}
