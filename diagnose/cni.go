package diagnose

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// DefaultCNIConfDir is where CNI runtimes (containerd's CRI, CRI-O,
// kubelet's) read their network configuration.
const DefaultCNIConfDir = "/etc/cni/net.d"

// cniPlugin is the part of a CNI plugin configuration that says which
// range a bridge hands out.
type cniPlugin struct {
	Type   string `json:"type"`
	Bridge string `json:"bridge"`
	IPAM   struct {
		Type   string `json:"type"`
		Subnet string `json:"subnet"`
		Ranges [][]struct {
			Subnet string `json:"subnet"`
		} `json:"ranges"`
	} `json:"ipam"`
}

// cniConf is a .conflist (plugins) or a single-plugin .conf/.json.
type cniConf struct {
	Name    string      `json:"name"`
	Plugins []cniPlugin `json:"plugins"`
	cniPlugin
}

// cniSubnets reads dir's network configurations (the file types libcni
// loads) and returns the host-local ranges of their bridge plugins with
// the bridge each lives on (the bridge plugin's default is cni0). Other
// plugins (ptp, macvlan) route per address or not through a bridge: their
// ranges are left out rather than judged against the wrong device. A file
// that cannot be read or parsed is a warning.
func cniSubnets(dir string) ([]SubnetOwner, []string) {
	var files []string
	for _, pat := range []string{"*.conflist", "*.conf", "*.json"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		files = append(files, m...)
	}
	sort.Strings(files)
	var out []SubnetOwner
	var warnings []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			warnings = append(warnings, "CNI configuration "+f+": "+err.Error())
			continue
		}
		var c cniConf
		if err := json.Unmarshal(b, &c); err != nil {
			warnings = append(warnings, "CNI configuration "+f+": "+err.Error())
			continue
		}
		plugins := c.Plugins
		if !strings.HasSuffix(f, ".conflist") || len(plugins) == 0 {
			plugins = append(plugins, c.cniPlugin)
		}
		for _, p := range plugins {
			if p.Type != "bridge" || p.IPAM.Type != "host-local" {
				continue
			}
			br := p.Bridge
			if br == "" {
				br = "cni0"
			}
			var subnets []string
			if p.IPAM.Subnet != "" {
				subnets = append(subnets, p.IPAM.Subnet)
			}
			for _, set := range p.IPAM.Ranges {
				for _, r := range set {
					if r.Subnet != "" {
						subnets = append(subnets, r.Subnet)
					}
				}
			}
			for _, s := range subnets {
				out = append(out, SubnetOwner{Network: "cni " + c.Name, Subnet: s, Bridge: br, Source: f})
			}
		}
	}
	return out, warnings
}
