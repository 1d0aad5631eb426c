package testbed

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RunKubePod's pod on the real cluster: its IP from the API is the address
// iproute2 shows on eth0 in the netns of the sandbox process the CRI names,
// in the netns file, and inside the pod (kubectl exec); each container runs.
// After the test's cleanup the pod, its sandbox and its netns are gone.
func TestRunKubePod(t *testing.T) {
	RequireKube(t)
	var p *KubePod
	t.Run("pod", func(t *testing.T) {
		p = RunKubePod(t, KubePodOptions{
			Labels:     map[string]string{"nsdebug-test": "runkubepod"},
			Containers: []KubeContainer{{Name: "one"}, {Name: "two", PullPolicy: "Never"}},
		})
		if p.IP == "" || p.UID == "" {
			t.Fatalf("pod %s: no IP (%q) or UID (%q)", p.Ref(), p.IP, p.UID)
		}
		want := "inet " + p.IP + "/"
		for _, ns := range []string{fmt.Sprintf("/proc/%d/ns/net", p.SandboxPID), p.NetnsPath} {
			if got := MustRun(t, "nsenter", "--net="+ns, "ip", "-4", "-o", "addr", "show", "eth0"); !strings.Contains(got, want) {
				t.Errorf("ip -4 addr in %s: %q; want %q", ns, got, want)
			}
		}
		for _, c := range []string{"one", "two"} {
			if got := Kubectl(t, "-n", p.Namespace, "exec", p.Name, "-c", c, "--", "ip", "-4", "-o", "addr", "show", "eth0"); !strings.Contains(got, want) {
				t.Errorf("kubectl exec -c %s ip -4 addr: %q; want %q", c, got, want)
			}
		}
		if got := Kubectl(t, "-n", p.Namespace, "get", "pods", "-l", "nsdebug-test=runkubepod", "-o", "name"); got != "pod/"+p.Name {
			t.Errorf("pods by label: %q; want pod/%s", got, p.Name)
		}
	})
	if p == nil || p.UID == "" {
		t.Fatal("no pod")
	}
	if out, errOut, err := KubectlRun(nil, "-n", p.Namespace, "get", "pod", p.Name); err == nil || !strings.Contains(errOut, "NotFound") {
		t.Errorf("pod %s after cleanup: %v %s%s", p.Ref(), err, out, errOut)
	}
	conn, rt := kubeCRI(t)
	defer conn.Close()
	sbs, err := rt.ListPodSandbox(context.Background(), &cri.ListPodSandboxRequest{Filter: &cri.PodSandboxFilter{
		LabelSelector: map[string]string{LabelPodUID: p.UID},
	}})
	if err != nil || len(sbs.Items) != 0 {
		t.Errorf("sandboxes of %s after cleanup: %v %v", p.Ref(), sbs, err)
	}
	if _, err := os.Stat(p.NetnsPath); !os.IsNotExist(err) {
		t.Errorf("netns %s after cleanup: %v", p.NetnsPath, err)
	}
}
