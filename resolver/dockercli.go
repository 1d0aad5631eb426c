package resolver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nsdebug/nsdebug/internal/nserr"
)

// DockerCLIOptions are the docker CLI's own global options that choose a
// daemon (`docker -H HOST`, `docker --context NAME`, `docker --config DIR`).
// A Docker CLI plugin is run with them in front of its name, and must pick
// the daemon the way the CLI does: the CLI passes no DOCKER_HOST of its own.
type DockerCLIOptions struct {
	Hosts     []string
	Context   string
	ConfigDir string
}

// DockerEndpoint is a daemon address with the TLS material of its context.
type DockerEndpoint struct {
	Context string // the context chosen ("default" for the environment's)
	Host    string // "" = the client's default (DOCKER_HOST, else the default socket)
	// TLSDir holds ca.pem, cert.pem and key.pem for the context, if any.
	TLSDir        string
	SkipTLSVerify bool
}

// DockerCLIEndpoint chooses the daemon as the docker CLI does: -H wins, then
// --context, then DOCKER_HOST, then DOCKER_CONTEXT, then the config's
// currentContext, else the default context (DOCKER_HOST or the default
// socket). getenv is os.Getenv outside tests.
func DockerCLIEndpoint(o DockerCLIOptions, getenv func(string) string) (DockerEndpoint, error) {
	if len(o.Hosts) > 0 && o.Context != "" {
		return DockerEndpoint{}, nserr.New(nserr.ErrUsage, "conflicting options: either specify --host or --context, not both")
	}
	if len(o.Hosts) > 1 {
		return DockerEndpoint{}, nserr.New(nserr.ErrUsage, "specify only one -H")
	}
	dir := o.ConfigDir
	if dir == "" {
		dir = getenv("DOCKER_CONFIG")
	}
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		dir = filepath.Join(home, ".docker")
	}
	name := "default"
	switch {
	case len(o.Hosts) > 0:
		return DockerEndpoint{Context: "default", Host: o.Hosts[0]}, nil
	case o.Context != "":
		name = o.Context
	case getenv("DOCKER_HOST") != "":
	case getenv("DOCKER_CONTEXT") != "":
		name = getenv("DOCKER_CONTEXT")
	default:
		var cfg struct {
			CurrentContext string `json:"currentContext"`
		}
		b, err := os.ReadFile(filepath.Join(dir, "config.json"))
		if err == nil {
			if err := json.Unmarshal(b, &cfg); err != nil {
				return DockerEndpoint{}, nserr.New(nserr.ErrUsage, "docker config %s: %v", filepath.Join(dir, "config.json"), err)
			}
		}
		if cfg.CurrentContext != "" {
			name = cfg.CurrentContext
		}
	}
	if name == "default" {
		return DockerEndpoint{Context: "default"}, nil
	}
	sum := sha256.Sum256([]byte(name))
	id := hex.EncodeToString(sum[:])
	metaPath := filepath.Join(dir, "contexts", "meta", id, "meta.json")
	b, err := os.ReadFile(metaPath)
	if errors.Is(err, os.ErrNotExist) {
		return DockerEndpoint{}, nserr.New(nserr.ErrNotFound, "docker context %q does not exist (no %s)", name, metaPath)
	}
	if err != nil {
		return DockerEndpoint{}, fmt.Errorf("docker context %q: %w", name, err)
	}
	var meta struct {
		Endpoints map[string]struct {
			Host          string
			SkipTLSVerify bool
		}
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return DockerEndpoint{}, nserr.New(nserr.ErrUsage, "docker context %q: %s: %v", name, metaPath, err)
	}
	ep, ok := meta.Endpoints["docker"]
	if !ok || ep.Host == "" {
		return DockerEndpoint{}, nserr.New(nserr.ErrUsage, "docker context %q has no docker endpoint", name)
	}
	out := DockerEndpoint{Context: name, Host: ep.Host, SkipTLSVerify: ep.SkipTLSVerify}
	tls := filepath.Join(dir, "contexts", "tls", id, "docker")
	if _, err := os.Stat(filepath.Join(tls, "ca.pem")); err == nil {
		out.TLSDir = tls
	}
	return out, nil
}
