package resolver

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	"net/netip"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// NetConfig is what a runtime says about a container's networking: the ports
// it publishes on the host and the networks it is attached to. diagnose
// compares it with what the kernel shows. Nil when the runtime says nothing
// (containerd, pid and netns targets).
type NetConfig struct {
	Ports    []PortMapping       `json:"ports"`
	Networks []NetworkAttachment `json:"networks"`
}

// PortMapping is one published port: HostIP:HostPort on the host is
// forwarded to ContainerPort in the container's netns.
type PortMapping struct {
	Proto         string `json:"proto"` // tcp, udp, sctp
	ContainerPort int    `json:"container_port"`
	HostIP        string `json:"host_ip,omitempty"` // "" or 0.0.0.0 / :: = every address
	HostPort      int    `json:"host_port"`
}

// NetworkAttachment is one network a container is on, as the runtime
// reports it.
type NetworkAttachment struct {
	Name      string `json:"name"`
	ID        string `json:"id,omitempty"`
	IP        string `json:"ip,omitempty"`
	PrefixLen int    `json:"prefix_len,omitempty"`
	Gateway   string `json:"gateway,omitempty"`
}

// NetworkInfo is a runtime network (Docker's docker network inspect).
type NetworkInfo struct {
	Name     string   `json:"name"`
	ID       string   `json:"id"`
	Driver   string   `json:"driver"`
	Bridge   string   `json:"bridge,omitempty"` // the host bridge device, for the bridge driver
	Internal bool     `json:"internal"`
	Subnets  []string `json:"subnets"`
	// HairpinOption: com.docker.network.bridge.enable_icc etc. are not
	// needed; only what diagnose reads is kept.
}

// NetworkDescriber is implemented by backends that know networks as
// objects of their own (Docker). diagnose asks it once per network.
type NetworkDescriber interface {
	DescribeNetwork(ctx context.Context, id string) (*NetworkInfo, error)
}

// dockerNetConfig converts an inspect response's ports and networks.
func dockerNetConfig(ports network.PortMap, nets map[string]*network.EndpointSettings) *NetConfig {
	nc := &NetConfig{Ports: []PortMapping{}, Networks: []NetworkAttachment{}}
	for p, bindings := range ports {
		for _, b := range bindings {
			hp, err := strconv.Atoi(b.HostPort)
			if err != nil {
				continue
			}
			nc.Ports = append(nc.Ports, PortMapping{Proto: string(p.Proto()), ContainerPort: int(p.Num()), HostIP: addrString(b.HostIP), HostPort: hp})
		}
	}
	sort.Slice(nc.Ports, func(i, j int) bool {
		a, b := nc.Ports[i], nc.Ports[j]
		if a.HostPort != b.HostPort {
			return a.HostPort < b.HostPort
		}
		return a.HostIP < b.HostIP
	})
	for name, ep := range nets {
		if ep == nil {
			continue
		}
		nc.Networks = append(nc.Networks, NetworkAttachment{Name: name, ID: ep.NetworkID, IP: addrString(ep.IPAddress), PrefixLen: ep.IPPrefixLen, Gateway: addrString(ep.Gateway)})
	}
	sort.Slice(nc.Networks, func(i, j int) bool { return nc.Networks[i].Name < nc.Networks[j].Name })
	return nc
}

// addrString is "" for an address Docker left out (the zero netip.Addr).
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// DescribeNetwork inspects one Docker network.
func (b *dockerBackend) DescribeNetwork(ctx context.Context, id string) (*NetworkInfo, error) {
	cli, err := b.client()
	if err != nil {
		return nil, err
	}
	res, err := cli.NetworkInspect(ctx, id, client.NetworkInspectOptions{})
	if err != nil {
		return nil, b.apiError(ctx, err)
	}
	n := res.Network
	info := &NetworkInfo{Name: n.Name, ID: n.ID, Driver: n.Driver, Internal: n.Internal, Subnets: []string{}}
	for _, c := range n.IPAM.Config {
		if c.Subnet.IsValid() {
			info.Subnets = append(info.Subnets, c.Subnet.String())
		}
	}
	if n.Driver == "bridge" {
		// Docker's default bridge names its device in an option; user
		// networks are br-<first 12 of the ID> unless that option is set.
		info.Bridge = n.Options["com.docker.network.bridge.name"]
		if info.Bridge == "" && len(n.ID) >= 12 {
			info.Bridge = "br-" + n.ID[:12]
		}
	}
	return info, nil
}

// criPortMappings reads the pod's port mappings from the sandbox's verbose
// info (containerd keeps the PodSandboxConfig it was made with under
// "config"; protocol is the CRI enum: 0 TCP, 1 UDP, 2 SCTP).
func parseSandboxPorts(raw string) []PortMapping {
	out := []PortMapping{}
	var v struct {
		Config *sandboxConfigView `json:"config"`
	}
	if raw == "" || json.Unmarshal([]byte(raw), &v) != nil || v.Config == nil {
		return out
	}
	for _, p := range v.Config.PortMappings {
		proto := "tcp"
		switch strings.ToUpper(strings.Trim(string(p.Protocol), `"`)) {
		case "1", "UDP":
			proto = "udp"
		case "2", "SCTP":
			proto = "sctp"
		}
		out = append(out, PortMapping{Proto: proto, ContainerPort: p.ContainerPort, HostIP: p.HostIP, HostPort: p.HostPort})
	}
	return out
}
