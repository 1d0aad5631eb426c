package kube_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nsdebug/nsdebug/internal/testbed"
)

// spdyOnly is a kubeconfig for the test bed's API server through a proxy
// that refuses WebSocket upgrades with 400 and passes SPDY upgrades on, in
// namespace ns, and the upgrades the proxy has seen.
func spdyOnly(t *testing.T, ns string) (kubeconfig string, seenUpgrades func() []string) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", testbed.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := rest.TLSConfigFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// HTTP/1.1 only: upgrades do not exist in HTTP/2.
	tr := &http.Transport{TLSClientConfig: tlsCfg, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	rt, err := rest.HTTPWrappersForConfig(cfg, tr)
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(cfg.Host)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = rt
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := strings.ToLower(r.Header.Get("Upgrade"))
		if up != "" {
			mu.Lock()
			seen = append(seen, up)
			mu.Unlock()
		}
		if up == "websocket" {
			http.Error(w, "no websockets here", http.StatusBadRequest)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: p, cluster: {server: "+srv.URL+"}}]\nusers: [{name: p, user: {}}]\ncontexts: [{name: p, context: {cluster: p, user: p, namespace: "+ns+"}}]\ncurrent-context: p\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return kc, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// The exec falls back to SPDY when the WebSocket upgrade is refused (as by
// an old proxy in front of the API server). Between the plugin and the real
// API server sits a reverse proxy that answers every WebSocket upgrade with
// 400 and passes SPDY upgrades on: the command still runs, and the proxy saw
// the WebSocket attempt first. This is the fallback that silently never
// happens when the upgrade error is checked with another httpstream package
// than the one client-go's executors use.
func TestExecFallsBackToSPDY(t *testing.T) {
	p := pod(t, testbed.KubePodOptions{})
	kc, seenUpgrades := spdyOnly(t, p.Namespace)
	cmd := plugin(t, p.Name, "--", "ip", "-4", "-o", "addr", "show", "eth0")
	cmd.Env = append(cmd.Env, "KUBECONFIG="+kc)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "inet "+p.IP+"/") {
		t.Fatalf("exec through a proxy without WebSocket: %v %q", err, out)
	}
	if seen := seenUpgrades(); len(seen) < 2 || seen[0] != "websocket" || !strings.HasPrefix(seen[len(seen)-1], "spdy/") {
		t.Errorf("upgrades seen by the proxy: %q; want websocket, then SPDY", seen)
	}
}
