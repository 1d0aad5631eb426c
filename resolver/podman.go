package resolver

import (
	"path/filepath"
	"sort"
	"strings"
)

func init() { registerBackend(newPodmanBackends) }

// Where Podman's API service listens: rootful, and per user when rootless.
// Podman has no daemon: its containers run under conmon whether or not the
// service runs, but only the service answers questions about them
// (`podman system service`, or systemd's podman.socket).
var (
	defaultPodmanSocket = "/run/podman/podman.sock"
	rootlessPodmanGlob  = "/run/user/*/podman/podman.sock"
)

// newPodmanBackends talks to Podman through its Docker-compatible API (the
// same protocol and client as Docker's): the socket CONTAINER_HOST or
// --podman-host names (Podman's own convention), else the rootful socket
// and every rootless user's socket that exists. An absent socket is not an
// outage: most hosts have no Podman.
func newPodmanBackends(cfg Config) []Backend {
	if cfg.PodmanHost != "" {
		return []Backend{&dockerBackend{runtime: "podman", host: podmanHost(cfg.PodmanHost)}}
	}
	var socks []string
	if exists(defaultPodmanSocket) {
		socks = append(socks, defaultPodmanSocket)
	}
	rootless, _ := filepath.Glob(rootlessPodmanGlob)
	sort.Strings(rootless)
	socks = append(socks, rootless...)
	bs := make([]Backend, 0, len(socks))
	for _, s := range socks {
		bs = append(bs, &dockerBackend{runtime: "podman", host: "unix://" + s})
	}
	return bs
}

// podmanHost accepts what CONTAINER_HOST accepts for a local socket
// (unix:///path) and a bare absolute path.
func podmanHost(h string) string {
	if strings.HasPrefix(h, "/") {
		return "unix://" + h
	}
	return h
}
