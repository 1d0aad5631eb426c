package cmd

// nsdebug as a Docker CLI plugin: installed as docker-nsdebug in a
// cli-plugins directory (~/.docker/cli-plugins, /usr/libexec/docker/cli-plugins),
// `docker nsdebug ARGS` runs it as
//
//	docker-nsdebug [DOCKER GLOBAL OPTIONS] nsdebug ARGS
//
// (the CLI passes its own arguments through, and no DOCKER_HOST: the plugin
// must choose the daemon from -H, --context, DOCKER_HOST, DOCKER_CONTEXT and
// the config's current context as the CLI does), and asks it
// `docker-nsdebug docker-cli-plugin-metadata` first. Completion comes as
// `docker-nsdebug __complete nsdebug ARGS`. Inside the plugin a bare WORD
// target is a Docker container of that daemon.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nsdebug/nsdebug/internal/nserr"
	"github.com/nsdebug/nsdebug/internal/version"
	"github.com/nsdebug/nsdebug/resolver"
)

// DockerPluginName is the file name the docker CLI runs the plugin by.
const DockerPluginName = "docker-nsdebug"

// pluginMetadata is the protocol's answer to docker-cli-plugin-metadata.
type pluginMetadata struct {
	SchemaVersion    string
	Vendor           string
	Version          string
	ShortDescription string
	URL              string
}

// MainAs is Main for a binary started as argv0: as docker-nsdebug it is the
// Docker CLI plugin.
func MainAs(argv0 string, args []string, streams IOStreams) int {
	if filepath.Base(argv0) != DockerPluginName {
		return Main(args, streams)
	}
	return runDockerPlugin(args, streams, os.Getenv)
}

func runDockerPlugin(args []string, streams IOStreams, getenv func(string) string) int {
	if len(args) > 0 && args[0] == "docker-cli-plugin-metadata" {
		v, _, _ := version.Info()
		b, _ := json.Marshal(pluginMetadata{
			SchemaVersion: "0.1.0", Vendor: "nsdebug", Version: v,
			ShortDescription: "Work inside a container's network namespace with the host's tools",
			URL:              "https://github.com/nsdebug/nsdebug",
		})
		fmt.Fprintf(streams.Out, "%s\n", b)
		return 0
	}
	var globals resolver.DockerCLIOptions
	if len(args) >= 2 && args[0] == cobra.ShellCompRequestCmd && args[1] == "nsdebug" {
		args = append([]string{args[0]}, args[2:]...)
	} else {
		var err error
		if globals, args, err = splitDockerGlobals(args); err != nil {
			fmt.Fprintf(streams.ErrOut, "nsdebug: %s\n", oneLine(err.Error()))
			return nserr.ExitCode(err, false)
		}
	}
	ep, err := resolver.DockerCLIEndpoint(globals, getenv)
	if err != nil {
		if len(args) > 0 && args[0] == cobra.ShellCompRequestCmd {
			ep = resolver.DockerEndpoint{} // completion never prints an error
		} else {
			fmt.Fprintf(streams.ErrOut, "nsdebug: %s\n", oneLine(err.Error()))
			return nserr.ExitCode(err, false)
		}
	}
	if ep.TLSDir != "" {
		// The Docker client reads the context's certificates from here.
		os.Setenv("DOCKER_CERT_PATH", ep.TLSDir)
		if !ep.SkipTLSVerify {
			os.Setenv("DOCKER_TLS_VERIFY", "1")
		}
	}
	env := &Env{IO: streams, Cfg: resolver.Config{BareWord: resolver.KindDocker}, dockerHostDefault: ep.Host}
	return Run(env, args)
}

// splitDockerGlobals takes the docker CLI's global options off the front of
// args, up to the plugin's name.
func splitDockerGlobals(args []string) (resolver.DockerCLIOptions, []string, error) {
	var o resolver.DockerCLIOptions
	valued := map[string]bool{"H": true, "host": true, "c": true, "context": true, "config": true, "l": true, "log-level": true, "tlscacert": true, "tlscert": true, "tlskey": true}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "nsdebug" {
			return o, args[i+1:], nil
		}
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			return o, nil, nserr.New(nserr.ErrUsage, "run as a Docker CLI plugin, expected 'nsdebug' after the docker options, got %q (use: docker nsdebug ...)", a)
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "--") && len(name) > 1 && valued[name[:1]] {
			name, val, hasVal = name[:1], name[1:], true // -Hunix:///x
		}
		if valued[name] && !hasVal {
			if i+1 >= len(args) {
				return o, nil, nserr.New(nserr.ErrUsage, "docker option %s needs a value", a)
			}
			i++
			val = args[i]
		}
		switch name {
		case "H", "host":
			o.Hosts = append(o.Hosts, val)
		case "c", "context":
			o.Context = val
		case "config":
			o.ConfigDir = val
		}
	}
	// Run by hand without arguments: nsdebug's own help.
	return o, nil, nil
}
