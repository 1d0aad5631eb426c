package diagnose

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nsdebug/nsdebug/enter"
	"github.com/nsdebug/nsdebug/inspect"
	"github.com/nsdebug/nsdebug/internal/nldump"
	"github.com/nsdebug/nsdebug/internal/nsfs"
	"github.com/nsdebug/nsdebug/resolver"
)

// Facts is everything the checks of one namespace read. Checks never do
// I/O: they look only here.
type Facts struct {
	Target      string
	Runtime     string // docker, cri, containerd, pid, netns, path
	NetworkMode string
	// Net: the runtime's published ports and networks (nil: it says
	// nothing); Networks: the networks' own settings by attachment name.
	Net      *resolver.NetConfig
	Networks map[string]*resolver.NetworkInfo
	Report   *inspect.Report
	// Sysctl holds sysctls read inside the namespace beyond the report's.
	Sysctl map[string]string
	// Counters read Interval apart.
	Before, After Counters
	Interval      time.Duration
	ResolvConf    *ResolvConf
	ResolvErr     string
	Hosts         string
	HostsErr      string
	DNSProbe      *ProbeResult
	// Host: the host's facts (also set for host checks).
	Host *HostFacts
	// Missing: evidence that could not be read, by name, with why.
	Missing map[string]string
	// AdminUp: each interface's IFF_UP (set up by someone), apart from
	// its operational state (a veth whose peer is down is up but has no
	// carrier).
	AdminUp map[string]bool
}

// HostFacts is what the host checks read, gathered once per invocation.
type HostFacts struct {
	Report      *inspect.Report
	Sysctl      map[string]string
	IPTables    map[string]*Ruleset // legacy, nft
	IPTablesErr map[string]string
	// UserlandProxy: Docker's userland-proxy setting as dockerd was
	// started (command line, else daemon.json; default on); "" unknown
	// (no dockerd running).
	UserlandProxy string
	ProxySource   string
	DockerProxies []DockerProxy
	// Hairpin by bridge port name: IFLA_BRPORT_MODE from an AF_BRIDGE link
	// dump, "1" or "0" (what /sys/class/net/X/brport/hairpin_mode shows,
	// read by netlink because /sys shows only the namespace it was mounted
	// in).
	Hairpin map[string]string
	// Netns: every namespace's addresses, for address conflicts.
	Peers []PeerAddrs
	// Subnets: runtime networks' subnets with their bridge (Docker
	// networks, and the CNI configuration's host-local ranges).
	Subnets       []SubnetOwner
	Before, After Counters
	// AdminUp: the host links' IFF_UP.
	AdminUp map[string]bool
	// PeersErr: why the namespaces on the bridges could not be read.
	PeersErr string
	// Node: these are the facts of a namespace other than the host's that
	// holds targets' veth peers and bridges (a kind node, a pod's node
	// netns): it does their forwarding, so its sysctls and rules are the
	// ones that count for them. Path and Inode name it; Forwards lists
	// the targets it serves.
	Node     bool
	Path     string
	Inode    uint64
	Forwards []string
	ns       *nsfs.Netns
	// veths: the namespace's veths with their peers, from gatherHost's
	// link dump (closed linksRead), so that the address-conflict scan does
	// not dump the links again.
	veths     []hostVeth
	linksRead chan struct{}
}

// DockerProxy is one docker-proxy process: it owns a published host port
// while userland-proxy is on.
type DockerProxy struct {
	PID           int    `json:"pid"`
	Proto         string `json:"proto"`
	HostIP        string `json:"host_ip"`
	HostPort      int    `json:"host_port"`
	ContainerIP   string `json:"container_ip"`
	ContainerPort int    `json:"container_port"`
}

// PeerAddrs are one namespace's addresses with the host bridge each
// interface's veth peer hangs on.
type PeerAddrs struct {
	// NetnsID is the host's netnsid of the namespace; Netns its inode,
	// known only once it was named (an address seen twice).
	NetnsID int
	Netns   uint64
	Label   string
	Addrs   []string // CIDR
	Bridge  string
}

// SubnetOwner is a runtime network's subnet and its bridge.
type SubnetOwner struct {
	Network string
	Subnet  string
	Bridge  string
	// Source: the CNI configuration file it came from ("" for Docker).
	Source string
}

// Target is one namespace to diagnose.
type Target struct {
	Res      *resolver.Result
	Networks map[string]*resolver.NetworkInfo
}

// GatherOptions tune Gather.
type GatherOptions struct {
	Interval time.Duration
	Probe    bool
	ProcRoot string
	HostNS   *nsfs.Netns
	Workers  int
	// HostFacts: gather the host's evidence too (host checks selected).
	HostFacts bool
	// DockerProxies: look for dockerd and docker-proxy in /proc (a Docker
	// target publishes ports).
	DockerProxies bool
	// Prefetch: the host's rules, already being read (nil: read them here).
	Prefetch *HostPrefetch
}

// Gather reads the evidence of every target and of the host. Counters are
// read at the start and once more when Interval has passed since then: one
// interval for all namespaces, which are read in parallel meanwhile.
func Gather(ctx context.Context, targets []Target, opts GatherOptions) ([]*Facts, *HostFacts, []*HostFacts) {
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	start := time.Now()
	facts := make([]*Facts, len(targets))
	nss := make([]*nsfs.Netns, len(targets))
	for i, t := range targets {
		facts[i] = &Facts{
			Target: t.Res.Target, Runtime: t.Res.Runtime, NetworkMode: t.Res.NetworkMode, Net: t.Res.Net,
			Networks: t.Networks, Interval: opts.Interval, Missing: map[string]string{}, Sysctl: map[string]string{},
		}
		nss[i] = t.Res.NS
	}
	host := &HostFacts{Sysctl: map[string]string{}, Hairpin: map[string]string{}, ns: opts.HostNS, linksRead: make(chan struct{})}
	if opts.HostNS != nil {
		host.Path, host.Inode = opts.HostNS.Path, opts.HostNS.ID.Inode
	}

	// The host's reads first: its forks are the longest wait.
	var wg sync.WaitGroup
	if opts.HostFacts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gatherHost(ctx, opts, host, true)
		}()
	}
	// First counter read: one thread visits every namespace in turn.
	all := append(append([]*nsfs.Netns{}, nss...), opts.HostNS)
	before := make([]Counters, len(all))
	readAllCounters(all, before)
	for i := range facts {
		facts[i].Before = before[i]
	}
	host.Before = before[len(all)-1]

	sem := make(chan struct{}, opts.Workers)
	var tw sync.WaitGroup
	for i := range targets {
		tw.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; tw.Done() }()
			gatherNetns(ctx, targets[i], opts, facts[i])
		}(i)
	}
	tw.Wait()
	// A target whose veth peers live in a namespace other than the host's
	// is forwarded by that namespace: its host-side facts are read there.
	nodes := forwarders(facts, host)
	var nw sync.WaitGroup
	for _, n := range nodes {
		nw.Add(1)
		go func() {
			defer nw.Done()
			if opts.HostFacts {
				gatherHost(ctx, opts, n, false)
			}
		}()
	}
	nw.Wait()
	// Address conflicts: the namespaces on the targets' bridges, read
	// while the host's evidence still comes in.
	for _, hf := range append([]*HostFacts{host}, nodes...) {
		if hf.ns == nil {
			continue
		}
		bridges := map[string]bool{}
		for _, f := range facts {
			if f.Host != hf {
				continue
			}
			for _, l := range f.hostVeths() {
				if l.Peer.Bridge != "" {
					bridges[l.Peer.Bridge] = true
				}
			}
		}
		var veths []hostVeth
		if opts.HostFacts {
			<-hf.linksRead
			veths = hf.veths
		}
		peers, err := bridgePeers(hf.ns, veths, bridges, opts.ProcRoot)
		if err != nil {
			hf.PeersErr = err.Error()
		} else {
			hf.Peers = peers
		}
	}
	wg.Wait()

	if wait := opts.Interval - time.Since(start); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
	after := make([]Counters, len(all))
	readAllCounters(all, after)
	for i := range facts {
		facts[i].After = after[i]
	}
	host.After = after[len(all)-1]
	for _, n := range nodes {
		n.ns.Close()
		n.ns = nil
	}
	return facts, host, nodes
}

// forwarders points each target's Host at the namespace holding its veth
// peers: the host's when any peer is there (Docker, CRI), else the one
// other namespace its first peer lives in, opened once per namespace.
// It returns those other namespaces' facts, still to be gathered.
func forwarders(facts []*Facts, host *HostFacts) []*HostFacts {
	byInode := map[uint64]*HostFacts{}
	var nodes []*HostFacts
	for _, f := range facts {
		f.Host = host
		var other *inspect.PeerNetns
		onHost := false
		for _, l := range f.uplinks() {
			if l.Peer == nil || l.Peer.Netns.Same {
				continue
			}
			if l.Peer.Netns.Host || (host.ns != nil && l.Peer.Netns.Inode == host.Inode) {
				onHost = true
			} else if other == nil && l.Peer.Netns.Path != "" {
				other = &l.Peer.Netns
			}
		}
		if onHost || other == nil {
			continue
		}
		n, ok := byInode[other.Inode]
		if !ok {
			ns, err := nsfs.Open(other.Path)
			if err != nil || ns.ID.Inode != other.Inode {
				if err == nil {
					ns.Close()
					err = fmt.Errorf("%s is no longer net:[%d]", other.Path, other.Inode)
				}
				f.Missing["forwarder"] = "forwarder: the namespace holding the veth peer: " + err.Error()
				continue
			}
			n = &HostFacts{Sysctl: map[string]string{}, Hairpin: map[string]string{}, Node: true, Path: other.Path, Inode: other.Inode, ns: ns, Report: &inspect.Report{}, linksRead: make(chan struct{})}
			byInode[other.Inode] = n
			nodes = append(nodes, n)
		}
		n.Forwards = append(n.Forwards, f.Target)
		f.Host = n
	}
	return nodes
}

// readAllCounters reads every namespace's counters, a few threads at once.
func readAllCounters(nss []*nsfs.Netns, into []Counters) {
	const threads = 4
	var wg sync.WaitGroup
	for w := 0; w < threads; w++ {
		var mine []*nsfs.Netns
		var idx []int
		for i := w; i < len(nss); i += threads {
			if nss[i] == nil {
				into[i] = Counters{NetErr: "namespace not open", ConntrackErr: "namespace not open"}
				continue
			}
			mine, idx = append(mine, nss[i]), append(idx, i)
		}
		if len(mine) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs := enter.Each(mine, func(j int) error {
				into[idx[j]] = readCounters()
				return nil
			})
			for j, err := range errs {
				if err != nil {
					into[idx[j]] = Counters{NetErr: err.Error(), ConntrackErr: err.Error()}
				}
			}
		}()
	}
	wg.Wait()
}

func gatherNetns(ctx context.Context, t Target, opts GatherOptions, f *Facts) {
	rep, err := inspect.Inspect(ctx, t.Res.NS, inspect.Options{ProcRoot: opts.ProcRoot, Host: opts.HostNS})
	if err != nil {
		f.Missing["report"] = err.Error()
		rep = &inspect.Report{}
	}
	f.Report = rep
	if _, up, _, err := readLinks(t.Res.NS); err != nil {
		f.Missing["links"] = "interface flags: " + err.Error()
	} else {
		f.AdminUp = up
	}
	for _, w := range rep.Warnings {
		section, _, _ := strings.Cut(w, ":")
		f.Missing[section] = w
	}
	// Sysctls the report does not carry, per interface.
	var keys []string
	for _, l := range rep.Links {
		keys = append(keys, "net.ipv4.conf."+l.Name+".rp_filter")
	}
	keys = append(keys, "net.ipv6.conf.lo.disable_ipv6", "net.ipv4.tcp_max_tw_buckets")
	err = enter.Do(t.Res.NS, func() error {
		for _, k := range keys {
			if v, err := readSysctl(k); err == nil {
				f.Sysctl[k] = v
			}
		}
		return nil
	})
	if err != nil {
		f.Missing["sysctls"] = err.Error()
	}
	f.ResolvConf, f.ResolvErr = readResolvConf(t.Res, opts.ProcRoot)
	f.Hosts, f.HostsErr = readContainerFile(t.Res, opts.ProcRoot, t.Res.Hosts, "/etc/hosts")
	if opts.Probe && f.ResolvConf != nil {
		f.DNSProbe = probeDNS(t.Res.NS, f.ResolvConf.Nameservers)
	}
}

func readSysctl(name string) (string, error) {
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
	if err != nil {
		return "", err
	}
	return strings.Join(strings.Fields(string(b)), " "), nil
}

// readContainerFile reads a file the container sees: the runtime's copy on
// the host when it names one, else through a process's root.
func readContainerFile(res *resolver.Result, procRoot, hostPath, inside string) (string, string) {
	// A Docker container's process sees its own mounts (a -v over
	// /etc/hosts); a pod's sandbox process has the pause image's files,
	// the app containers the runtime's copy.
	if res.Runtime == "docker" && res.PID != 0 {
		if b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(res.PID), "root", inside)); err == nil {
			return string(b), ""
		}
	}
	if hostPath != "" {
		b, err := os.ReadFile(hostPath)
		if err == nil {
			return string(b), ""
		}
		if res.PID == 0 {
			return "", err.Error()
		}
	}
	if res.PID == 0 {
		return "", "no process to read " + inside + " through"
	}
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(res.PID), "root", inside))
	if err != nil {
		return "", err.Error()
	}
	return string(b), ""
}

// gatherHost reads the forwarding side's facts in h's namespace: the
// host's (isHost: nsdebug runs there, so files and tools are read
// directly) or a node namespace's (through enter/).
func gatherHost(ctx context.Context, opts GatherOptions, h *HostFacts, isHost bool) {
	ns := h.ns
	linksDone := false
	defer func() {
		if !linksDone {
			close(h.linksRead)
		}
	}()
	ipt := make(chan struct{})
	go func() {
		defer close(ipt)
		switch {
		case isHost && opts.Prefetch != nil:
			p := opts.Prefetch.wait()
			h.IPTables, h.IPTablesErr = p.ipt, p.iptErr
		case isHost:
			h.IPTables, h.IPTablesErr = readIPTables(ctx, nil)
		default:
			h.IPTables, h.IPTablesErr = readIPTables(ctx, ns)
		}
	}()
	if ns != nil {
		// Routes through inspect; links read here: inspect would name every
		// host veth's peer namespace, which costs a visit to each.
		if rep, err := inspect.Inspect(ctx, ns, inspect.Options{Sections: []string{"routes"}, ProcRoot: opts.ProcRoot}); err == nil {
			h.Report = rep
			h.Report.Links, h.AdminUp, h.veths, err = readLinks(ns)
			if err != nil {
				h.Report.Warnings = append(h.Report.Warnings, "links: "+err.Error())
			}
		}
		linksDone = true
		close(h.linksRead)
		if hp, err := readHairpin(ns); err == nil {
			h.Hairpin = hp
		} else if h.Report != nil {
			h.Report.Warnings = append(h.Report.Warnings, "hairpin: "+err.Error())
		}
	}
	if h.Report == nil {
		h.Report = &inspect.Report{}
	}
	keys := []string{"net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "net.netfilter.nf_conntrack_count", "net.netfilter.nf_conntrack_max"}
	read := func() error {
		for _, k := range keys {
			if v, err := readSysctl(k); err == nil {
				h.Sysctl[k] = v
			}
		}
		return nil
	}
	if isHost || ns == nil {
		_ = read()
	} else if err := enter.Do(ns, read); err != nil {
		h.Report.Warnings = append(h.Report.Warnings, "sysctls: "+err.Error())
	}
	<-ipt
	if opts.DockerProxies && isHost {
		h.UserlandProxy, h.ProxySource, h.DockerProxies = dockerProxyFacts(opts.ProcRoot)
	}
}

// dockerProxyFacts finds dockerd's userland-proxy setting and the
// docker-proxy processes, from /proc.
func dockerProxyFacts(procRoot string) (setting, source string, proxies []DockerProxy) {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return "", "", nil
	}
	var dockerd []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(procRoot + "/" + e.Name() + "/cmdline")
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		switch filepath.Base(args[0]) {
		case "dockerd":
			dockerd = args
		case "docker-proxy":
			proxies = append(proxies, parseDockerProxy(pid, args[1:]))
		}
	}
	if dockerd == nil {
		return "", "", proxies
	}
	for i, a := range dockerd {
		switch a {
		case "--userland-proxy=false":
			return "false", "dockerd --userland-proxy=false", proxies
		case "--userland-proxy=true", "--userland-proxy":
			if a == "--userland-proxy" && i+1 < len(dockerd) && (dockerd[i+1] == "false" || dockerd[i+1] == "true") {
				return dockerd[i+1], "dockerd --userland-proxy " + dockerd[i+1], proxies
			}
			return "true", "dockerd " + a, proxies
		}
	}
	cfg := "/etc/docker/daemon.json"
	for i, a := range dockerd {
		if v, ok := strings.CutPrefix(a, "--config-file="); ok {
			cfg = v
		} else if a == "--config-file" && i+1 < len(dockerd) {
			cfg = dockerd[i+1]
		}
	}
	if b, err := os.ReadFile(cfg); err == nil {
		s := strings.ReplaceAll(string(b), " ", "")
		if strings.Contains(s, `"userland-proxy":false`) {
			return "false", cfg, proxies
		}
	}
	return "true", "dockerd default", proxies
}

func parseDockerProxy(pid int, args []string) DockerProxy {
	p := DockerProxy{PID: pid}
	for i := 0; i+1 < len(args); i++ {
		v := args[i+1]
		switch strings.TrimLeft(args[i], "-") {
		case "proto":
			p.Proto = v
		case "host-ip":
			p.HostIP = v
		case "host-port":
			p.HostPort, _ = strconv.Atoi(v)
		case "container-ip":
			p.ContainerIP = v
		case "container-port":
			p.ContainerPort, _ = strconv.Atoi(v)
		}
	}
	return p
}

// String for messages.
func (p DockerProxy) String() string {
	return fmt.Sprintf("docker-proxy pid %d %s %s:%d -> %s:%d", p.PID, p.Proto, p.HostIP, p.HostPort, p.ContainerIP, p.ContainerPort)
}

// readLinks lists a namespace's links (name, state, MTU, bridge) and
// which are set up.
func readLinks(ns *nsfs.Netns) ([]inspect.Link, map[string]bool, []hostVeth, error) {
	h, err := enter.NetlinkHandle(ns)
	if err != nil {
		return nil, nil, nil, err
	}
	defer h.Close()
	links, err := nldump.Retry(h.LinkList)
	if err != nil {
		return nil, nil, nil, err
	}
	var veths []hostVeth
	up := map[string]bool{}
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	out := make([]inspect.Link, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		out = append(out, inspect.Link{Name: a.Name, Index: a.Index, Type: l.Type(), State: a.OperState.String(), MTU: a.MTU, Master: names[a.MasterIndex], LinkNetnsID: a.NetNsID})
		up[a.Name] = a.Flags&net.FlagUp != 0
		if l.Type() == "veth" {
			veths = append(veths, hostVeth{Name: a.Name, Master: names[a.MasterIndex], NetnsID: a.NetNsID, PeerIndex: a.ParentIndex})
		}
	}
	return out, up, veths, nil
}
