package kube_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// kubectl's own flags, from cli-runtime, work as they do for kubectl: a
// kubeconfig (KUBECONFIG or --kubeconfig) whose current context points at
// no API server and a second context with the real one and a namespace.
func TestKubectlFlags(t *testing.T) {
	p := pod(t, testbed.KubePodOptions{})
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte(testbed.Kubectl(t, "config", "view", "--raw", "--minify", "--flatten")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(testbed.KubectlPath, append([]string{"--kubeconfig", kc, "config"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("kubectl config %q: %v %s", args, err, out)
		}
	}
	cluster := testbed.Kubectl(t, "config", "view", "--minify", "-o", "jsonpath={.clusters[0].name}")
	user := testbed.Kubectl(t, "config", "view", "--minify", "-o", "jsonpath={.users[0].name}")
	cfg("set-cluster", "nowhere", "--server", "https://127.0.0.1:1") // refused
	cfg("set-context", "nowhere", "--cluster", "nowhere", "--user", user)
	cfg("set-context", "good", "--cluster", cluster, "--user", user, "--namespace", p.Namespace)
	cfg("use-context", "nowhere")
	run := func(env string, args ...string) result {
		t.Helper()
		cmd := plugin(t, args...)
		cmd.Env = append(cmd.Env, "KUBECONFIG="+env)
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return result{o.String(), e.String(), code}
	}
	// --context, and the pod's namespace is that context's (no -n).
	if r := run(kc, "--context", "good", p.Name, "--", "ip", "-4", "-o", "addr", "show", "eth0"); r.code != 0 || !strings.Contains(r.out, "inet "+p.IP+"/") {
		t.Errorf("--context good: code %d out %q err %q", r.code, r.out, r.err)
	}
	// The current context: no API server there, one line, exit 8.
	if r := run(kc, "inspect", p.Name); r.code != 8 || strings.Count(r.err, "\n") != 1 || !strings.Contains(r.err, "cannot reach the API server") || !strings.Contains(r.err, "127.0.0.1:1") {
		t.Errorf("current context nowhere: code %d err %q; want 8 and one line", r.code, r.err)
	}
	// --kubeconfig wins over KUBECONFIG, -n over the context's namespace.
	none := filepath.Join(t.TempDir(), "none")
	if r := run(none, "--kubeconfig", kc, "--context", "good", p.Name, "--", "true"); r.code != 0 {
		t.Errorf("--kubeconfig: code %d err %q", r.code, r.err)
	}
	if r := run(kc, "--context", "good", "-n", testbed.KubeRestrictedNamespace, "inspect", p.Name); r.code != 3 || !strings.Contains(r.err, `pod "`+p.Name+`" not found in namespace "`+testbed.KubeRestrictedNamespace+`"`) {
		t.Errorf("-n over the context's namespace: code %d err %q", r.code, r.err)
	}
}

// --request-timeout bounds each API request (an API server that accepts
// connections and never answers: exit 8 in about that time, not at the TLS
// handshake's 10 s), but not a running command's stream.
func TestRequestTimeout(t *testing.T) {
	p := pod(t, testbed.KubePodOptions{})
	prx := newAPIProxy(t, apiServer(t))
	prx.hold = true
	kc := proxyKubeconfig(t, prx.addr)
	cmd := plugin(t, "-n", p.Namespace, "--request-timeout", "1s", "inspect", p.Name)
	cmd.Env = append(cmd.Env, "KUBECONFIG="+kc)
	var e strings.Builder
	cmd.Stderr = &e
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	code, took := waitExit(t, cmd, 60*time.Second)
	if code != 8 || strings.Count(e.String(), "\n") != 1 || !strings.Contains(e.String(), "cannot reach the API server") {
		t.Errorf("black hole: exit %d stderr %q; want 8 and one line", code, e.String())
	}
	if took > 6*time.Second {
		t.Errorf("black hole with --request-timeout 1s: exit after %s", took)
	}
	// The real API server: a command outlives the request timeout.
	if r := runPlugin(t, "", "-n", p.Namespace, "--request-timeout", "2s", p.Name, "--", "sh", "-c", "sleep 4; echo done"); r.code != 0 || r.out != "done\n" {
		t.Errorf("--request-timeout 2s, a 4 s command: code %d out %q err %q", r.code, r.out, r.err)
	}
}
