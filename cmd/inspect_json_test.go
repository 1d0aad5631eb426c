package cmd

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/nsdebug/nsdebug/inspect"
	"github.com/nsdebug/nsdebug/resolver"
)

// jsonKind is one kind of JSON object nsdebug prints: the keys it always
// has, the keys left out when empty, and the kind of each nested object.
type jsonKind struct {
	required, optional []string
	children           map[string]string
}

// jsonSchema pins the field names of inspect -o json and whois -o json,
// which scripts rely on. Renaming a JSON tag, or making a key optional or
// required, fails TestInspectJSONFieldNames: change this table (and
// inspect --help / whois --help) only on purpose.
var jsonSchema = map[string]jsonKind{
	"report": {[]string{"target", "netns", "host", "owners", "links", "addresses", "routes", "rules", "neighbors", "sockets", "sysctls", "conntrack", "firewall"}, []string{"warnings"},
		map[string]string{"netns": "netns", "owners": "owner", "links": "link", "addresses": "address", "routes": "route", "rules": "rule", "neighbors": "neighbor", "sockets": "socket", "conntrack": "conntrack", "firewall": "firewall"}},
	"netns":      {[]string{"path", "inode", "dev"}, nil, nil},
	"owner":      {[]string{"runtime", "id", "name", "pod"}, []string{"namespace", "container", "network_mode", "sandbox"}, map[string]string{"pod": "pod"}},
	"pod":        {[]string{"namespace", "name"}, []string{"uid"}, nil},
	"link":       {[]string{"name", "index", "type", "state", "mtu", "mac", "link_netnsid"}, []string{"master", "peer", "lower"}, map[string]string{"peer": "peer", "lower": "peer"}},
	"peer":       {[]string{"name", "index", "netns"}, []string{"bridge"}, map[string]string{"netns": "peer netns"}},
	"peer netns": {[]string{"host", "same"}, []string{"inode", "path", "owners"}, nil},
	"address":    {[]string{"ifname", "index", "family", "address", "scope"}, nil, nil},
	"route":      {[]string{"table", "type", "family", "dst", "scope"}, []string{"gateway", "dev", "src", "protocol", "metric", "nexthops"}, map[string]string{"nexthops": "nexthop"}},
	"nexthop":    {[]string{"weight"}, []string{"gateway", "dev"}, nil},
	"rule":       {[]string{"priority", "family", "action"}, []string{"table", "src", "dst", "iif", "oif", "fwmark", "fwmask", "goto", "not"}, nil},
	"neighbor":   {[]string{"ip", "dev", "state"}, []string{"mac"}, nil},
	"socket":     {[]string{"proto", "family", "state", "local", "remote", "recv_q", "send_q", "inode", "uid", "processes"}, nil, map[string]string{"processes": "process"}},
	"process":    {[]string{"pid", "command"}, nil, nil},
	"conntrack":  {[]string{"count", "max"}, nil, nil},
	"firewall":   {[]string{"nftables", "iptables_legacy"}, nil, map[string]string{"nftables": "fw table", "iptables_legacy": "fw table"}},
	"fw table":   {[]string{"family", "name", "chains"}, nil, map[string]string{"chains": "chain"}},
	"chain":      {[]string{"name", "rules"}, []string{"hook"}, nil},

	"whois": {[]string{"query", "matches"}, []string{"warnings"}, map[string]string{"matches": "match"}},
	"match": {[]string{"reason", "netns", "host", "orphaned", "owners", "pids", "mounts", "interfaces"}, []string{"host_veths", "error"},
		map[string]string{"netns": "netns", "owners": "owner", "mounts": "mount", "interfaces": "interface", "host_veths": "host veth"}},
	"mount":     {[]string{"path", "hidden"}, nil, nil},
	"interface": {[]string{"name", "index", "type", "state", "addresses"}, nil, nil},
	"host veth": {[]string{"name"}, []string{"bridge", "peer"}, nil},
}

type keyMode int

const (
	allKeys      keyMode = iota // every field set: required and optional keys
	requiredKeys                // every field empty: required keys only
	someKeys                    // real output: required keys, some optional ones
)

// checkJSONKeys checks the key set of v (decoded JSON of kind) and of
// every object nested in it.
func checkJSONKeys(t *testing.T, path, kind string, v any, mode keyMode) {
	t.Helper()
	k, ok := jsonSchema[kind]
	if !ok {
		t.Fatalf("no schema for %s", kind)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		t.Errorf("%s: %T, want an object", path, v)
		return
	}
	allowed := map[string]bool{}
	for _, key := range append(append([]string{}, k.required...), k.optional...) {
		allowed[key] = true
	}
	var got []string
	for key := range obj {
		got = append(got, key)
		if !allowed[key] {
			t.Errorf("%s: unknown key %q (%s has %q)", path, key, kind, sortedStrings(allowed))
		}
	}
	sort.Strings(got)
	for _, key := range k.required {
		if _, ok := obj[key]; !ok {
			t.Errorf("%s: required key %q missing (has %q)", path, key, got)
		}
	}
	for _, key := range k.optional {
		_, ok := obj[key]
		if mode == allKeys && !ok {
			t.Errorf("%s: key %q missing though its field is set (has %q)", path, key, got)
		}
		// A nested object set only to reach its own keys is not empty.
		nested := k.children[key] != "" && obj[key] != nil
		if mode == requiredKeys && ok && !nested {
			t.Errorf("%s: key %q present though its field is empty (left out when empty)", path, key)
		}
	}
	for key, child := range k.children {
		switch c := obj[key].(type) {
		case nil:
		case []any:
			for _, e := range c {
				checkJSONKeys(t, path+"."+key+"[]", child, e, mode)
			}
		default:
			checkJSONKeys(t, path+"."+key, child, c, mode)
		}
	}
}

func sortedStrings(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func decodeJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestInspectJSONFieldNames pins the JSON field names: a report and a whois
// result with every field set have exactly the documented keys, with every
// field empty exactly the keys that are never left out; inspect --help and
// whois --help name every key.
func TestInspectJSONFieldNames(t *testing.T) {
	owner := resolver.Owner{Runtime: "docker", ID: "abc", Name: "web", Namespace: "moby", Pod: &resolver.PodRef{Namespace: "shop", Name: "cart", UID: "u1"}, Container: "app", NetworkMode: "bridge", Sandbox: true}
	peer := &inspect.Peer{Name: "veth1", Index: 9, Bridge: "docker0", Netns: inspect.PeerNetns{Inode: 5, Path: "/proc/1/ns/net", Host: true, Owners: []string{"docker:web"}}}
	chains := []inspect.NFChain{{Name: "INPUT", Hook: "input", Rules: 2}}
	full := &inspect.Report{
		Target: "web", Netns: resolver.NetnsInfo{Path: "/p", Inode: 1, Dev: 4}, Host: true, Owners: []resolver.Owner{owner},
		Links:     []inspect.Link{{Name: "eth0", Index: 2, Type: "veth", State: "up", MTU: 1500, MAC: "02:00:00:00:00:01", Master: "br0", LinkNetnsID: 0, Peer: peer, Lower: peer}},
		Addresses: []inspect.Address{{Ifname: "eth0", Index: 2, Family: "inet", Address: "10.0.0.2/24", Scope: "global"}},
		Routes: []inspect.Route{{Table: "main", Type: "unicast", Family: "inet", Dst: "default", Gateway: "10.0.0.1", Dev: "eth0", Src: "10.0.0.2", Protocol: "boot", Scope: "global", Metric: 100,
			Nexthops: []inspect.Nexthop{{Gateway: "10.0.0.1", Dev: "eth0", Weight: 1}}}},
		Rules:     []inspect.Rule{{Priority: 1, Family: "inet", Table: "main", Src: "10.0.0.0/8", Dst: "10.1.0.0/16", IIf: "eth0", OIf: "eth1", Fwmark: "0x1", Fwmask: "0xff", Action: "goto", Goto: 5, Not: true}},
		Neighbors: []inspect.Neighbor{{IP: "10.0.0.1", MAC: "02:00:00:00:00:02", Dev: "eth0", State: "REACHABLE"}},
		Sockets:   []inspect.Socket{{Proto: "tcp", Family: "inet", State: "LISTEN", Local: "0.0.0.0:80", Remote: "0.0.0.0:*", RecvQ: 1, SendQ: 2, Inode: 3, UID: 4, Processes: []inspect.Process{{PID: 1, Command: "httpd"}}}},
		Sysctls:   map[string]string{"net.ipv4.ip_forward": "1"},
		Conntrack: &inspect.Conntrack{Count: 1, Max: 2},
		Firewall:  &inspect.Firewall{NFTables: []inspect.NFTable{{Family: "ip", Name: "filter", Chains: chains}}, IPTablesLegacy: []inspect.NFTable{{Family: "ip", Name: "nat", Chains: chains}}},
		Warnings:  []string{"w"},
	}
	checkJSONKeys(t, "report", "report", decodeJSON(t, full), allKeys)
	empty := &inspect.Report{
		Owners: []resolver.Owner{{Pod: &resolver.PodRef{}}}, Links: []inspect.Link{{}, {Peer: &inspect.Peer{}}},
		Addresses: []inspect.Address{{}}, Routes: []inspect.Route{{}, {Nexthops: []inspect.Nexthop{{}}}}, Rules: []inspect.Rule{{}},
		Neighbors: []inspect.Neighbor{{}}, Sockets: []inspect.Socket{{Processes: []inspect.Process{{}}}}, Conntrack: &inspect.Conntrack{},
		Firewall: &inspect.Firewall{NFTables: []inspect.NFTable{{Chains: []inspect.NFChain{{}}}}, IPTablesLegacy: []inspect.NFTable{}},
	}
	checkJSONKeys(t, "report", "report", decodeJSON(t, empty), requiredKeys)

	row := inspect.NetnsRow{Netns: inspect.NetnsRef{Inode: 1, Dev: 4, Path: "/p"}, Host: true, Orphaned: true, Owners: []resolver.Owner{owner}, PIDs: []int{1},
		Mounts: []inspect.MountRef{{Path: "/run/netns/x", Hidden: true}}, Interfaces: []inspect.Interface{{Name: "eth0", Index: 2, Type: "veth", State: "up", Addresses: []string{"10.0.0.2/24"}}},
		HostVeths: []inspect.HostVeth{{Name: "veth1", Bridge: "docker0", Peer: "eth0"}}, Error: "e"}
	checkJSONKeys(t, "whois", "whois", decodeJSON(t, &inspect.WhoisResult{Query: "q", Matches: []inspect.WhoisMatch{{Reason: "r", NetnsRow: row}}, Warnings: []string{"w"}}), allKeys)
	emptyRow := inspect.NetnsRow{Owners: []resolver.Owner{{Pod: &resolver.PodRef{}}}, Mounts: []inspect.MountRef{{}}, Interfaces: []inspect.Interface{{}}}
	checkJSONKeys(t, "whois", "whois", decodeJSON(t, &inspect.WhoisResult{Matches: []inspect.WhoisMatch{{NetnsRow: emptyRow}}}), requiredKeys)
	emptyRow.HostVeths = []inspect.HostVeth{{}}
	checkJSONKeys(t, "whois", "whois", decodeJSON(t, &inspect.WhoisResult{Matches: []inspect.WhoisMatch{{NetnsRow: emptyRow}}}), requiredKeys)

	inspectHelp, _, _ := run(t, "inspect", "--help")
	whoisHelp, _, _ := run(t, "whois", "--help")
	for kind, k := range jsonSchema {
		help := inspectHelp
		if kind == "whois" || kind == "match" || kind == "mount" || kind == "interface" || kind == "host veth" {
			help = whoisHelp
		}
		for _, key := range append(append([]string{}, k.required...), k.optional...) {
			if !regexp.MustCompile(`(^|[^a-z_])` + regexp.QuoteMeta(key) + `([^a-z_]|$)`).MatchString(help) {
				t.Errorf("%s --help does not name the key %q (%s)", strings.Fields(help)[0], key, kind)
			}
		}
	}
}
