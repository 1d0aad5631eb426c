package resolver

import (
	"reflect"
	"testing"

	"net/netip"

	"github.com/moby/moby/api/types/network"
)

func TestParseSandboxPorts(t *testing.T) {
	// containerd 1.6 marshals the enum as a number; a name is accepted too.
	raw := `{"pid":1,"config":{"port_mappings":[{"container_port":8080,"host_port":30080},{"protocol":1,"container_port":53,"host_port":30053,"host_ip":"127.0.0.1"},{"protocol":"SCTP","container_port":9,"host_port":9}]}}`
	got := parseSandboxPorts(raw)
	want := []PortMapping{{Proto: "tcp", ContainerPort: 8080, HostPort: 30080}, {Proto: "udp", ContainerPort: 53, HostIP: "127.0.0.1", HostPort: 30053}, {Proto: "sctp", ContainerPort: 9, HostPort: 9}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"", "{", `{"config":null}`, `{"config":{"port_mappings":"x"}}`} {
		if got := parseSandboxPorts(bad); got == nil || len(got) != 0 {
			t.Errorf("%q: %+v, want []", bad, got)
		}
	}
}

func TestDockerNetConfig(t *testing.T) {
	ip := netip.MustParseAddr
	nc := dockerNetConfig(network.PortMap{
		network.MustParsePort("80/tcp"): {{HostIP: ip("0.0.0.0"), HostPort: "8080"}, {HostIP: ip("::"), HostPort: "8080"}},
		network.MustParsePort("53/udp"): {{HostIP: ip("127.0.0.1"), HostPort: "5353"}},
		network.MustParsePort("99/tcp"): nil, // exposed, not published
	}, map[string]*network.EndpointSettings{"bridge": {NetworkID: "abc", IPAddress: ip("172.17.0.2"), IPPrefixLen: 16, Gateway: ip("172.17.0.1")}})
	want := []PortMapping{{Proto: "udp", ContainerPort: 53, HostIP: "127.0.0.1", HostPort: 5353}, {Proto: "tcp", ContainerPort: 80, HostIP: "0.0.0.0", HostPort: 8080}, {Proto: "tcp", ContainerPort: 80, HostIP: "::", HostPort: 8080}}
	if !reflect.DeepEqual(nc.Ports, want) {
		t.Errorf("ports %+v", nc.Ports)
	}
	if len(nc.Networks) != 1 || nc.Networks[0] != (NetworkAttachment{Name: "bridge", ID: "abc", IP: "172.17.0.2", PrefixLen: 16, Gateway: "172.17.0.1"}) {
		t.Errorf("networks %+v", nc.Networks)
	}
}
