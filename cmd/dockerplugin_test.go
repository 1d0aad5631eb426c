package cmd

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/nsdebug/nsdebug/resolver"
)

func TestSplitDockerGlobals(t *testing.T) {
	cases := []struct {
		in   []string
		want resolver.DockerCLIOptions
		rest []string
	}{
		{[]string{"nsdebug", "ls"}, resolver.DockerCLIOptions{}, []string{"ls"}},
		{[]string{"-H", "unix:///x", "--log-level", "warn", "-D", "nsdebug", "exec", "web", "--", "nsdebug"}, resolver.DockerCLIOptions{Hosts: []string{"unix:///x"}}, []string{"exec", "web", "--", "nsdebug"}},
		{[]string{"--context=prod", "--config", "/c", "--tlsverify", "nsdebug"}, resolver.DockerCLIOptions{Context: "prod", ConfigDir: "/c"}, []string{}},
		{[]string{"-Hunix:///y", "-c", "x", "nsdebug", "-o", "json"}, resolver.DockerCLIOptions{Hosts: []string{"unix:///y"}, Context: "x"}, []string{"-o", "json"}},
	}
	for _, c := range cases {
		o, rest, err := splitDockerGlobals(c.in)
		if err != nil || !reflect.DeepEqual(o, c.want) || len(rest) != len(c.rest) || (len(rest) > 0 && !reflect.DeepEqual(rest, c.rest)) {
			t.Errorf("%q: %+v %q %v; want %+v %q", c.in, o, rest, err, c.want, c.rest)
		}
	}
	for _, bad := range [][]string{{"ls"}, {"-H"}, {"--context"}} {
		if _, _, err := splitDockerGlobals(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// The docker CLI's order: -H, --context, DOCKER_HOST, DOCKER_CONTEXT, the
// config's currentContext, the default.
func TestDockerCLIEndpointPrecedence(t *testing.T) {
	dir := t.TempDir()
	mkctx := func(name, host string, tls bool) {
		sum := sha256.Sum256([]byte(name))
		id := hex.EncodeToString(sum[:])
		p := filepath.Join(dir, "contexts", "meta", id)
		os.MkdirAll(p, 0o755)
		os.WriteFile(filepath.Join(p, "meta.json"), []byte(`{"Name":"`+name+`","Metadata":{},"Endpoints":{"docker":{"Host":"`+host+`","SkipTLSVerify":false}}}`), 0o644)
		if tls {
			p := filepath.Join(dir, "contexts", "tls", id, "docker")
			os.MkdirAll(p, 0o755)
			os.WriteFile(filepath.Join(p, "ca.pem"), []byte("x"), 0o644)
		}
	}
	mkctx("a", "unix:///a.sock", false)
	mkctx("b", "tcp://b:2376", true)
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"currentContext":"a"}`), 0o644)
	envs := func(kv ...string) func(string) string {
		m := map[string]string{"DOCKER_CONFIG": dir}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	cases := []struct {
		name string
		o    resolver.DockerCLIOptions
		env  func(string) string
		host string
	}{
		{"current context", resolver.DockerCLIOptions{}, envs(), "unix:///a.sock"},
		{"-H", resolver.DockerCLIOptions{Hosts: []string{"unix:///h"}}, envs("DOCKER_CONTEXT", "b"), "unix:///h"},
		{"--context", resolver.DockerCLIOptions{Context: "b"}, envs("DOCKER_HOST", "unix:///env"), "tcp://b:2376"},
		{"DOCKER_HOST", resolver.DockerCLIOptions{}, envs("DOCKER_HOST", "unix:///env", "DOCKER_CONTEXT", "b"), ""},
		{"DOCKER_CONTEXT", resolver.DockerCLIOptions{}, envs("DOCKER_CONTEXT", "b"), "tcp://b:2376"},
		{"default", resolver.DockerCLIOptions{Context: "default"}, envs(), ""},
	}
	for _, c := range cases {
		ep, err := resolver.DockerCLIEndpoint(c.o, c.env)
		if err != nil || ep.Host != c.host {
			t.Errorf("%s: %+v %v, want host %q", c.name, ep, err, c.host)
		}
		if ep.Host == "tcp://b:2376" && ep.TLSDir == "" {
			t.Errorf("%s: context b's TLS material not found", c.name)
		}
	}
	if _, err := resolver.DockerCLIEndpoint(resolver.DockerCLIOptions{Context: "nope"}, envs()); err == nil {
		t.Error("a missing context is no error")
	}
	if _, err := resolver.DockerCLIEndpoint(resolver.DockerCLIOptions{Context: "a", Hosts: []string{"x"}}, envs()); err == nil {
		t.Error("-H with --context is no error")
	}
}
