// Package kubelet finds the CRI endpoint the node's kubelet uses, from the
// kubelet process itself (its command line, else its --config file). nsdebug
// in kubectl-nsdebug's helper pod (hostPID) runs with --cri-endpoint kubelet:
// a node's runtime socket is wherever its kubelet was told, and other
// containerd instances on the same node (not kubelet's) must not be asked.
package kubelet

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/nsdebug/nsdebug/internal/nserr"
)

// DefaultEndpoint is kubelet's own default containerRuntimeEndpoint.
const DefaultEndpoint = "unix:///run/containerd/containerd.sock"

// Kubelet is what Find learns.
type Kubelet struct {
	PID int
	// Endpoint as kubelet was given it, in kubelet's mount namespace.
	Endpoint string
	// From says where the endpoint was read: "flag", "config FILE" or "default".
	From string
	// Root is kubelet's root directory through procfs (PROC/PID/root): the
	// paths kubelet and its runtime report are valid below it.
	Root string
}

// Find returns the kubelet running in procRoot's PID namespace (the lowest
// PID if several).
func Find(procRoot string) (*Kubelet, error) {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, nserr.Wrap(nserr.ErrEnvironment, err, "read %s", procRoot)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		argv := cmdline(procRoot, pid)
		if len(argv) > 0 && filepath.Base(argv[0]) == "kubelet" {
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		return nil, nserr.New(nserr.ErrUnavailable, "no kubelet process in %s: --cri-endpoint kubelet needs the node's PID namespace (hostPID) and a running kubelet", procRoot)
	}
	sort.Ints(pids)
	pid := pids[0]
	k := &Kubelet{PID: pid, Root: filepath.Join(procRoot, strconv.Itoa(pid), "root")}
	argv := cmdline(procRoot, pid)
	if ep := flagValue(argv, "container-runtime-endpoint"); ep != "" {
		k.Endpoint, k.From = ep, "flag"
		return k, nil
	}
	if cfg := flagValue(argv, "config"); cfg != "" {
		if !filepath.IsAbs(cfg) {
			// Relative to kubelet's working directory, through procfs.
			if cwd, err := os.Readlink(filepath.Join(procRoot, strconv.Itoa(pid), "cwd")); err == nil {
				cfg = filepath.Join(cwd, cfg)
			}
		}
		b, err := os.ReadFile(filepath.Join(k.Root, cfg))
		if err != nil {
			return nil, nserr.Wrap(nserr.ErrUnavailable, err, "read kubelet's --config %s", cfg)
		}
		var c struct {
			ContainerRuntimeEndpoint string `json:"containerRuntimeEndpoint"`
		}
		if err := yaml.Unmarshal(b, &c); err != nil {
			return nil, nserr.Wrap(nserr.ErrUnavailable, err, "parse kubelet's --config %s", cfg)
		}
		if c.ContainerRuntimeEndpoint != "" {
			k.Endpoint, k.From = c.ContainerRuntimeEndpoint, "config "+cfg
			return k, nil
		}
	}
	k.Endpoint, k.From = DefaultEndpoint, "default"
	return k, nil
}

// EndpointUnder rewrites a unix endpoint so that it is reached through root
// (kubelet's root seen through procfs): unix:///run/x.sock ->
// unix:///proc/PID/root/run/x.sock.
func EndpointUnder(root, endpoint string) (string, error) {
	p, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok {
		if !strings.HasPrefix(endpoint, "/") {
			return "", nserr.New(nserr.ErrUnavailable, "kubelet's runtime endpoint %q is not a unix socket", endpoint)
		}
		p = endpoint
	}
	return "unix://" + filepath.Join(root, p), nil
}

func cmdline(procRoot string, pid int) []string {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "cmdline"))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// flagValue finds --name=V, --name V, -name=V or -name V (Go's flag
// spellings, which kubelet's pflag accepts as the first two).
func flagValue(argv []string, name string) string {
	val := ""
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		for _, p := range []string{"--" + name, "-" + name} {
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				val = v
			} else if a == p && i+1 < len(argv) {
				val = argv[i+1]
			}
		}
	}
	return val // the last one wins, as with pflag
}
